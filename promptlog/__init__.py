"""promptlog: a local-first experiment logger for LLM work, on one SQLite file.

Heavy parts (litellm, pandas) load on first use, so ``import promptlog`` is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it, imported when first touched
_LAZY = {
    "prompt": "prompts",
    "Message": "prompts",
    "PromptVersion": "prompts",
    "versions": "prompts",
    "SimpleBot": "bots",
    "StructuredBot": "bots",
    "Experiment": "experiments",
    "experiment": "experiments",
    "metric": "metrics",
    "current_run": "context",
    "with_current_run": "context",
    "configure": "store",
    "db_path": "store",
    "flush": "store",
    "open": "read",
    "compare": "comparisons",
    "diff": "diffs",
    "PromptlogError": "errors",
    "CredentialsError": "errors",
}

__all__ = [
    "CredentialsError",
    "Experiment",
    "Message",
    "PromptVersion",
    "PromptlogError",
    "SimpleBot",
    "StructuredBot",
    "compare",
    "configure",
    "current_run",
    "db_path",
    "diff",
    "experiment",
    "flush",
    "load_ipython_extension",
    "metric",
    "open",
    "prompt",
    "versions",
    "with_current_run",
]

if TYPE_CHECKING:
    from .bots import SimpleBot, StructuredBot
    from .comparisons import compare
    from .context import current_run, with_current_run
    from .diffs import diff
    from .errors import CredentialsError, PromptlogError
    from .experiments import Experiment, experiment
    from .metrics import metric
    from .prompts import Message, PromptVersion, prompt, versions
    from .read import open
    from .store import configure, db_path, flush


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'promptlog' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"promptlog.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext promptlog``: adds the ``%%experiment`` cell magic."""
    from .notebook import load_ipython_extension as load

    load(ipython)
