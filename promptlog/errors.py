"""Every error promptlog raises on purpose, under one base class."""

from __future__ import annotations

from typing import Any


class PromptlogError(Exception):
    """Base class: catch this to catch anything promptlog raises on purpose."""


# --- the database -----------------------------------------------------------


class DatabaseError(PromptlogError):
    """The log file cannot be opened, created or written."""


class NotAPromptlogDatabase(DatabaseError):
    """The path holds something other than a promptlog log; it is left untouched."""


class SchemaTooNewError(DatabaseError):
    """The file was written by a newer promptlog; it is never downgraded."""


class WriteError(DatabaseError):
    """Records could not be written (disk full, read-only file, locked too long).

    The records are kept in memory and written again with the next batch, so
    nothing already logged is lost if the cause goes away.
    """


# --- prompts ----------------------------------------------------------------


class PromptError(PromptlogError):
    """A prompt function is defined or called wrongly."""


class PromptVariableError(PromptError, TypeError):
    """A template variable was not passed to the prompt function."""


class PromptTemplateError(PromptError):
    """The template has a Jinja syntax error, or tried something the sandbox forbids."""


class PromptNotFoundError(PromptError, LookupError):
    """No prompt (or prompt version) of that name, number or hash is logged."""


# --- typed functions ----------------------------------------------------------


class FunctionError(PromptlogError):
    """A typed function (``@llm_function``) or strategy is defined or called wrongly."""


class FunctionArgumentError(FunctionError, TypeError):
    """An argument of a typed function does not validate against its annotation."""


# --- bots -------------------------------------------------------------------


class BotError(PromptlogError):
    """A bot is configured or called wrongly."""


class CredentialsError(BotError):
    """The provider's credentials are missing or were rejected.

    Never retried: the message names the environment variable to set (or says
    that the ``api_key`` given to the bot was refused). ``provider_error`` is
    litellm's exception, with secrets taken out.
    """

    def __init__(self, message: str, provider_error: BaseException | None = None):
        super().__init__(message)
        self.provider_error = provider_error


class StructuredOutputError(BotError):
    """The model's replies never validated against the pydantic model.

    ``attempts`` holds one ``(reply_text, error_text)`` pair per attempt.
    """

    def __init__(self, message: str, attempts: list[tuple[str, str]]):
        super().__init__(message)
        self.attempts = attempts


# --- knobs ------------------------------------------------------------------


class KnobError(PromptlogError):
    """An override names an unknown (or ambiguous) prompt, function, knob or
    hyperparameter, or gives a knob a value it cannot take."""


# --- experiments and metrics ------------------------------------------------


class MetricError(PromptlogError):
    """A metric returned something that is not a finite scalar, or was recorded twice."""


class ExperimentError(PromptlogError):
    """An experiment is set up wrongly (nested, no source for the block, …)."""


class ExperimentFailedError(ExperimentError):
    """Every execution of an experiment failed; the first failure is the cause."""

    def __init__(self, message: str, failures: list[BaseException] | None = None):
        super().__init__(message)
        self.failures: list[Any] = failures or []


class ExecutorError(ExperimentError):
    """An executor cannot run this: a with-block sent to other processes, something
    that cannot be pickled, logging outside a run on a worker, a worker that died."""


class RemoteError(PromptlogError):
    """An exception raised by an execution on another process that could not be sent
    back whole: its type's name, message and traceback as text."""

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.traceback = traceback

    def __reduce__(self) -> Any:
        return (type(self), (self.type_name, str(self).partition(": ")[2], self.traceback))


# --- testing ----------------------------------------------------------------


class LocalModelError(PromptlogError):
    """The local test model cannot be had (runtime missing, download failed) or did not start."""


# --- optimisers -------------------------------------------------------------


class OptimizerError(PromptlogError):
    """An optimiser is set up wrongly (a bad budget, no typed function to tune, examples
    it cannot read demos from) or its program failed on every example."""


class CodeError(OptimizerError):
    """Code run by ``promptlog.optimize.run_python`` raised, timed out, or gave an
    output that is not JSON."""
