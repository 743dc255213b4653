"""``python -m benchmarks``: every benchmark, written to benchmarks/results.md."""

from .run import main

main()
