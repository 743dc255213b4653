"""promptlog's benchmarks against its peers (MLflow, llamabot, raw SQLite): see run.py."""
