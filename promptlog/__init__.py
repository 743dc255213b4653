"""promptlog: a local-first experiment logger for LLM work, on one SQLite file.

Heavy parts (litellm, pandas) load on first use, so ``import promptlog`` is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

# public name -> module that defines it, imported when first touched
_LAZY = {
    "prompt": "prompts",
    "Message": "prompts",
    "PromptVersion": "prompts",
    "versions": "prompts",
    "SimpleBot": "bots",
    "llm_function": "functions",
    "LLMFunction": "functions",
    "llm_strategy": "strategies",
    "StructuredBot": "bots",
    "Experiment": "experiments",
    "experiment": "experiments",
    "metric": "metrics",
    "current_run": "context",
    "current_input": "context",
    "evaluate": "evaluation",
    "with_current_run": "context",
    "configure": "settings",
    "clear_cache": "cache",
    "db_path": "store",
    "flush": "store",
    "open": "read",
    "Log": "read",
    "Records": "read",
    "compare": "comparisons",
    "Comparison": "comparisons",
    "diff": "diffs",
    "PromptDiff": "diffs",
    "optimize": "tuning.search",
    "SearchResult": "tuning.search",
    "overrides": "knobs",
    "hyperparameter": "knobs",
    "load_overrides": "knobs",
    "save_overrides": "knobs",
    # every error promptlog raises on purpose
    "PromptlogError": "errors",
    "DatabaseError": "errors",
    "NotAPromptlogDatabase": "errors",
    "SchemaTooNewError": "errors",
    "WriteError": "errors",
    "PromptError": "errors",
    "PromptVariableError": "errors",
    "PromptTemplateError": "errors",
    "PromptNotFoundError": "errors",
    "BotError": "errors",
    "FunctionError": "errors",
    "FunctionArgumentError": "errors",
    "StructuredOutputError": "errors",
    "MetricError": "errors",
    "ExperimentError": "errors",
    "ExperimentFailedError": "errors",
    "ExecutorError": "errors",
    "RemoteError": "errors",
    "LocalModelError": "errors",
    "KnobError": "errors",
    "CredentialsError": "errors",
    "OptimizerError": "errors",
    "CodeError": "errors",
    "meta_optimize": "tuning.meta",
    "MetaOptimization": "tuning.meta",
}

__all__ = [  # the names of _LAZY, and load_ipython_extension
    "BotError",
    "CodeError",
    "Comparison",
    "CredentialsError",
    "DatabaseError",
    "Experiment",
    "ExperimentError",
    "ExperimentFailedError",
    "ExecutorError",
    "FunctionArgumentError",
    "FunctionError",
    "KnobError",
    "LocalModelError",
    "LLMFunction",
    "Log",
    "Message",
    "MetricError",
    "MetaOptimization",
    "NotAPromptlogDatabase",
    "OptimizerError",
    "PromptDiff",
    "PromptError",
    "PromptNotFoundError",
    "PromptTemplateError",
    "PromptVariableError",
    "PromptVersion",
    "PromptlogError",
    "Records",
    "RemoteError",
    "SchemaTooNewError",
    "SearchResult",
    "SimpleBot",
    "StructuredBot",
    "StructuredOutputError",
    "WriteError",
    "clear_cache",
    "compare",
    "configure",
    "current_input",
    "current_run",
    "db_path",
    "diff",
    "evaluate",
    "experiment",
    "flush",
    "hyperparameter",
    "llm_function",
    "llm_strategy",
    "load_ipython_extension",
    "load_overrides",
    "meta_optimize",
    "metric",
    "open",
    "optimize",
    "overrides",
    "prompt",
    "save_overrides",
    "versions",
    "with_current_run",
]

if TYPE_CHECKING:
    from .bots import SimpleBot, StructuredBot
    from .cache import clear_cache
    from .comparisons import Comparison, compare
    from .context import current_input, current_run, with_current_run
    from .diffs import PromptDiff, diff
    from .errors import (
        BotError,
        CodeError,
        CredentialsError,
        DatabaseError,
        ExecutorError,
        ExperimentError,
        ExperimentFailedError,
        FunctionArgumentError,
        FunctionError,
        KnobError,
        LocalModelError,
        MetricError,
        NotAPromptlogDatabase,
        OptimizerError,
        PromptError,
        PromptlogError,
        PromptNotFoundError,
        PromptTemplateError,
        PromptVariableError,
        RemoteError,
        SchemaTooNewError,
        StructuredOutputError,
        WriteError,
    )
    from .evaluation import evaluate
    from .experiments import Experiment, experiment
    from .functions import LLMFunction, llm_function
    from .knobs import hyperparameter, load_overrides, overrides, save_overrides
    from .metrics import metric
    from .prompts import Message, PromptVersion, prompt, versions
    from .read import Log, Records, open
    from .settings import configure
    from .store import db_path, flush
    from .strategies import llm_strategy
    from .tuning.meta import MetaOptimization, meta_optimize
    from .tuning.search import SearchResult, optimize


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
