"""Run one benchmark function in a fresh process and print its result as JSON.

    python -m benchmarks.worker MODULE FUNCTION '[args as JSON]'

A fresh process per repetition keeps repetitions independent (no warm caches,
no writer threads left over), as the peers' processes are.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    module, function, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = getattr(importlib.import_module(f"benchmarks.{module}"), function)(*args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
