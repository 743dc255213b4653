"""The release, read by the package, its log records and its build (pyproject.toml)."""

__version__ = "0.1.0"
