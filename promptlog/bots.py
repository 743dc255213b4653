"""Bots: chat models called through litellm, each call attempt logged as a ``calls`` row.

litellm is imported on first use (it takes seconds), after pinning its model
cost map to the local copy so that import never reaches for the network.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pydantic

from . import store
from .context import RunContext, current_run
from .errors import BotError, StructuredOutputError
from .prompts import Message

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# The only litellm arguments that reach the log. Everything else (api_key,
# headers, provider credentials …) is used for the call and never written.
LOGGED_PARAMETERS = frozenset(
    {
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "top_p",
        "seed",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "response_format",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "timeout",
        "api_base",
        "base_url",
        "api_version",
        "mock_response",
    }
)
# Arguments whose values are secrets even when they appear in error text.
_SECRET_WORDS = ("key", "secret", "token", "password", "auth", "credential")

_litellm: ModuleType | None = None
_litellm_lock = threading.Lock()


def _get_litellm() -> ModuleType:
    """Import litellm on first use, offline-safe, with the offline model registered."""
    global _litellm
    if _litellm is None:
        with _litellm_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                import litellm

                from . import offline

                litellm.suppress_debug_info = True
                offline.register()
                _litellm = litellm
    return _litellm


def _transient_errors() -> tuple[type[BaseException], ...]:
    litellm = _get_litellm()
    return (
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        litellm.Timeout,
        litellm.APIConnectionError,
    )


def _as_message(message: str | Message | dict[str, Any], role: str = "user") -> Message:
    if isinstance(message, Message):
        return message
    if isinstance(message, str):
        return Message(role=role, content=message)
    if isinstance(message, dict) and "role" in message and "content" in message:
        return Message(role=message["role"], content=message["content"])
    raise BotError(
        f"A bot takes strings or messages from prompt functions, not {type(message).__name__}."
    )


def _clean_api_base(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _loggable(name: str, value: Any) -> Any:
    if name in ("api_base", "base_url") and isinstance(value, str):
        return _clean_api_base(value)
    if name == "response_format" and isinstance(value, type):
        return {"type": "json_schema", "schema_name": value.__name__}
    return value


def _secrets(kwargs: dict[str, Any]) -> list[str]:
    """Every value among the call's arguments that must never reach the log: any
    string under an argument or key named like a secret (key, token, auth …), and
    every header value."""
    found: list[str] = []

    def visit(name: str, value: Any, secret: bool) -> None:
        lowered = name.lower()
        secret = secret or "header" in lowered or any(w in lowered for w in _SECRET_WORDS)
        if isinstance(value, dict):
            for key, inner in value.items():
                visit(str(key), inner, secret)
        elif secret and isinstance(value, str) and len(value) >= 6:
            found.append(value)
            if value.lower().startswith("bearer "):
                found.append(value[7:])

    for name, value in kwargs.items():
        if name in ("api_base", "base_url") and isinstance(value, str):
            # Logged without them, but an error message may quote the whole URL.
            parts = urlsplit(value)
            found += [p for p in (parts.username, parts.password) if p and len(p) >= 6]
        if name not in LOGGED_PARAMETERS:
            visit(name, value, False)
    return sorted(set(found), key=len, reverse=True)


_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]+@")


def _redact(text: str | None, secrets: list[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    # The password of any URL (``https://user:password@host``), known to us or not.
    return _URL_PASSWORD.sub(r"\1:[REDACTED]@", text)


def _cost(response: Any) -> float | None:
    cost = getattr(response, "_hidden_params", {}).get("response_cost")
    return float(cost) if isinstance(cost, (int, float)) else None


def _retry_delay(error: BaseException, attempt: int, backoff: float) -> float:
    headers = getattr(error, "headers", None) or {}
    response = getattr(error, "response", None)
    if not headers and response is not None:
        headers = getattr(response, "headers", None) or {}
    retry_after = headers.get("retry-after") if hasattr(headers, "get") else None
    if retry_after is not None:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return backoff * (2 ** (attempt - 1)) * (0.5 + random.random() / 2)


class SimpleBot:
    """A chat bot: a system prompt and a model; call it with messages, get the reply.

    ``model_name`` is any model litellm knows (``"gpt-4o-mini"``,
    ``"anthropic/claude-3-5-haiku-latest"``, ``"ollama/llama3"``), or
    ``"promptlog/offline"`` for the built-in offline stand-in. Other keyword
    arguments go to ``litellm.completion``; only an allow-list of them is logged.
    A rate limit, server error or timeout is retried ``num_retries`` times
    (default 2) with backoff; every attempt is logged.
    """

    def __init__(
        self,
        system_prompt: str | Message,
        model_name: str,
        temperature: float = 0.0,
        name: str | None = None,
        *,
        num_retries: int = 2,
        retry_backoff: float = 0.5,
        **litellm_kwargs: Any,
    ):
        if not isinstance(model_name, str) or not model_name:
            raise BotError(
                "A bot needs model_name: e.g. \"gpt-4o-mini\", \"ollama/llama3\", or "
                "\"promptlog/offline\" for the offline stand-in."
            )
        self.system_prompt = _as_message(system_prompt, role="system")
        self.model_name = model_name
        self.temperature = temperature
        self.name = name or type(self).__name__
        self.num_retries = num_retries
        self.retry_backoff = retry_backoff
        self.litellm_kwargs = litellm_kwargs
        self._secrets = _secrets(litellm_kwargs)
        self._key = f"{self.name}:{id(self)}"

    # what the log records ---------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        """The allow-listed parameters of this bot's calls."""
        params = {"temperature": self.temperature}
        for name, value in self.litellm_kwargs.items():
            if name in LOGGED_PARAMETERS:
                params[name] = _loggable(name, value)
        return params

    def describe(self) -> dict[str, Any]:
        """This bot as a run's hyperparameters record it."""
        version = self.system_prompt.prompt_version
        return {
            "name": self.name,
            "class": type(self).__name__,
            "model": self.model_name,
            **self.parameters(),
            "system_prompt_version_id": version.id if version else None,
            "system_prompt_name": version.name if version else None,
        }

    # calling ------------------------------------------------------------------

    def __call__(self, *messages: str | Message) -> Message:
        if not messages:
            raise BotError(f"{self.name} was called with no messages: pass at least one.")
        response = self._complete(self._conversation(messages))
        return Message(role="assistant", content=response.choices[0].message.content or "")

    def _conversation(self, messages: tuple[str | Message, ...]) -> list[Message]:
        return [self.system_prompt, *(_as_message(m) for m in messages)]

    def _complete(
        self,
        conversation: list[Message],
        extra: dict[str, Any] | None = None,
        attempt: int = 1,
        validate: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Call the model, retrying transient errors, logging each attempt.

        ``validate`` turns a reply into a parsed value (or raises); its result is
        logged as the parsed response and returned as ``response.parsed``.
        """
        litellm = _get_litellm()
        run = current_run()
        if run is not None:
            run.note_bot(self._key, self.describe)
            # A prompt rendered before the run began (a system prompt built once,
            # outside the block) is still one of this run's prompt versions.
            for message in conversation:
                version = message.prompt_version
                if version is not None:
                    run.note_prompt_version(version.id, version.name)
        extra = extra or {}
        kwargs = {**self.litellm_kwargs, **extra}
        parameters = self.parameters()
        parameters.update(
            (name, _loggable(name, value)) for name, value in extra.items()
            if name in LOGGED_PARAMETERS
        )
        retries = 0
        while True:
            (run.db if run is not None else store.writer()).check()  # no reply thrown away
            started = store.now()
            clock = time.perf_counter()
            try:
                response = litellm.completion(
                    model=self.model_name,
                    messages=[m.to_dict() for m in conversation],
                    temperature=self.temperature,
                    num_retries=0,
                    max_retries=0,
                    **kwargs,
                )
            except Exception as error:
                self._log(run, conversation, parameters, None, time.perf_counter() - clock,
                          started, attempt, status="failed", error=error)
                if retries < self.num_retries and isinstance(error, _transient_errors()):
                    retries += 1
                    attempt += 1
                    time.sleep(_retry_delay(error, retries, self.retry_backoff))
                    continue
                raise
            latency = time.perf_counter() - clock
            parsed = None
            if validate is not None:
                try:
                    parsed = validate(response)
                except _ReplyInvalid as invalid:
                    invalid.attempt = attempt
                    self._log(run, conversation, parameters, response, latency, started,
                              attempt, status="invalid", error=invalid)
                    raise
            self._log(run, conversation, parameters, response, latency, started, attempt,
                      status="succeeded", parsed=parsed)
            response.parsed = parsed
            return response

    def _log(
        self,
        run: RunContext | None,
        conversation: list[Message],
        parameters: dict[str, Any],
        response: Any,
        latency: float,
        started: str,
        attempt: int,
        *,
        status: str,
        error: BaseException | None = None,
        parsed: Any = None,
    ) -> None:
        """Queue the ``calls`` row of one attempt: a dict and a queue put, no I/O."""
        secrets = self._secrets
        text = usage = None
        if response is not None:
            text = response.choices[0].message.content
            usage = getattr(response, "usage", None)
        call_id = store.new_id()
        writer = run.db if run is not None else store.writer()
        store.log_call(
            writer,
            id=call_id,
            run_id=run.id if run is not None else None,
            bot_name=self.name,
            bot_class=type(self).__name__,
            model=self.model_name,
            parameters=parameters,
            messages=[
                {
                    "role": m.role,
                    "content": _redact(m.content, secrets),
                    "prompt_version_id": m.prompt_version.id if m.prompt_version else None,
                }
                for m in conversation
            ],
            response_text=_redact(text, secrets),
            response_parsed=parsed.model_dump(mode="json")
            if isinstance(parsed, pydantic.BaseModel)
            else parsed,
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            cost=_cost(response) if response is not None else None,
            latency_s=latency,
            status=status,
            error=_redact(_describe_error(error), secrets) if error else None,
            attempt=attempt,
            created_at=started,
        )


class StructuredBot(SimpleBot, Generic[ModelT]):
    """A bot whose replies are validated instances of a pydantic model.

    On invalid JSON or a validation error the bot asks again with the error fed
    back, up to ``max_retries`` times, then raises
    :class:`~promptlog.errors.StructuredOutputError` carrying every attempt.
    """

    def __init__(
        self,
        system_prompt: str | Message,
        pydantic_model: type[ModelT],
        model_name: str,
        temperature: float = 0.0,
        name: str | None = None,
        *,
        max_retries: int = 3,
        **litellm_kwargs: Any,
    ):
        is_model = isinstance(pydantic_model, type) and issubclass(
            pydantic_model, pydantic.BaseModel
        )
        if not is_model:
            raise BotError(
                f"StructuredBot needs pydantic_model= a pydantic BaseModel class, "
                f"not {pydantic_model!r}."
            )
        super().__init__(system_prompt, model_name, temperature, name, **litellm_kwargs)
        self.pydantic_model = pydantic_model
        self.max_retries = max_retries

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pydantic_model": self.pydantic_model.__name__}

    def __call__(self, *messages: str | Message) -> ModelT:  # type: ignore[override]
        if not messages:
            raise BotError(f"{self.name} was called with no messages: pass at least one.")
        conversation = self._conversation(messages)
        attempts: list[tuple[str, str]] = []
        attempt = 1
        for _ in range(self.max_retries + 1):
            try:
                response = self._complete(
                    conversation,
                    {"response_format": self.pydantic_model},
                    attempt=attempt,
                    validate=self._validate,
                )
                return response.parsed
            except _ReplyInvalid as invalid:
                attempts.append((invalid.reply, invalid.error))
                attempt = invalid.attempt + 1
                conversation = [
                    *conversation,
                    Message("assistant", invalid.reply),
                    Message(
                        "user",
                        f"That reply did not validate against the {self.pydantic_model.__name__} "
                        f"schema:\n{invalid.error}\nReply again with only a JSON object that "
                        f"matches the schema.",
                    ),
                ]
        raise StructuredOutputError(
            f"{self.name}: no valid {self.pydantic_model.__name__} after {len(attempts)} "
            f"attempts; the last error was:\n{attempts[-1][1]}",
            attempts,
        )

    def _validate(self, response: Any) -> ModelT:
        text = response.choices[0].message.content or ""
        try:
            return self.pydantic_model.model_validate_json(_strip_fences(text))
        except pydantic.ValidationError as e:
            raise _ReplyInvalid(text, str(e)) from None


class _ReplyInvalid(Exception):
    """A reply that did not validate; ``attempt`` is set by the attempt that got it."""

    def __init__(self, reply: str, error: str):
        super().__init__(error)
        self.reply = reply
        self.error = error
        self.attempt = 0


def _describe_error(error: BaseException) -> str:
    if isinstance(error, _ReplyInvalid):
        return f"ValidationError: {error.error}"
    return f"{type(error).__name__}: {error}"


def _strip_fences(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; take what is inside."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped
