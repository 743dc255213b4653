"""Bots: chat models called through litellm, each call attempt logged as a ``calls`` row.

litellm is imported on first use (it takes seconds), after pinning its model
cost map to the local copy so that import never reaches for the network.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable, Generator
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pydantic

from . import cache as _cache
from . import store
from .context import RunContext, current_run
from .credentials import _credentials_error, _is_credentials_error
from .errors import BotError, StructuredOutputError
from .prompts import Message
from .redaction import (
    _redact,
    _redact_exception,
    _remember,
    _remember_environment,
    _secrets_in,
)
from .replies import ReplyInvalid as _ReplyInvalid
from .replies import reply_format
from .schemas import schema_instructions
from .settings import check_cache_mode

ModelT = TypeVar("ModelT")
_BotT = TypeVar("_BotT", bound="SimpleBot")

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


class _Request(dict[str, Any]):
    """A step asks its driver to call the model with these arguments."""


class _Pause(float):
    """A step asks its driver to wait this many seconds."""


class _CachedMessage:
    __slots__ = ("content",)

    def __init__(self, content: str | None):
        self.content = content


class _CachedChoice:
    __slots__ = ("message",)

    def __init__(self, content: str | None):
        self.message = _CachedMessage(content)


class _CachedUsage:
    __slots__ = ("prompt_tokens", "completion_tokens")

    def __init__(self, prompt_tokens: int | None, completion_tokens: int | None):
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class _CachedResponse:
    """A reply rebuilt from the response cache: what a bot reads of a litellm
    response, made anew for each hit (nothing in it is shared with another call)."""

    __slots__ = ("choices", "usage", "saved_cost", "parsed", "_hidden_params")

    def __init__(self, kept: store.cache.CachedReply):
        self.choices = [_CachedChoice(kept.response_text)]
        self.usage = _CachedUsage(kept.input_tokens, kept.output_tokens)
        self.saved_cost = kept.cost
        self.parsed: Any = None
        self._hidden_params: dict[str, Any] = {}


# A call to a model written once as a generator of steps: it yields _Request and _Pause
# and gets back the model's response (or its exception, thrown in). _drive runs the
# steps with litellm.completion and time.sleep, _adrive with acompletion and
# asyncio.sleep, so that sync and async calls share every rule of retrying and logging.
Steps = Generator[Any, Any, ModelT]


def _drive(steps: Steps[ModelT]) -> ModelT:
    sent: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(sent) if error is None else steps.throw(error)
        except StopIteration as done:
            return done.value
        sent = error = None
        if isinstance(step, _Pause):
            time.sleep(step)
            continue
        try:
            sent = _get_litellm().completion(**step)
        except Exception as raised:
            error = raised


async def _adrive(steps: Steps[ModelT]) -> ModelT:
    sent: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(sent) if error is None else steps.throw(error)
        except StopIteration as done:
            return done.value
        sent = error = None
        if isinstance(step, _Pause):
            await asyncio.sleep(step)
            continue
        try:
            sent = await _get_litellm().acompletion(**step)
        except Exception as raised:
            error = raised


class SimpleBot:
    """A chat bot: a system prompt and a model; call it with messages, get the reply.

    ``model_name`` is any model litellm knows (``"gpt-4o-mini"``,
    ``"anthropic/claude-3-5-haiku-latest"``, ``"ollama/llama3"``), or
    ``"promptlog/offline"`` for the built-in offline stand-in. Every argument after
    the system prompt is passed by keyword. Other keyword arguments go to
    ``litellm.completion``; only an allow-list of them is logged. A rate limit,
    server error or timeout is retried ``num_retries`` times (default 2) with
    backoff; every attempt is logged.

    ``cache=True`` answers a request asked before (same model, messages, parameters
    and sample index) from the response cache, with no provider request;
    ``cache="refresh"`` calls the model and replaces the entry; ``cache=False`` never
    uses it. Left as None, the experiment's or :func:`promptlog.configure`'s setting
    applies (off by default). See ``docs/cache.md``.
    """

    def __new__(cls: type[_BotT], *args: Any, **kwargs: Any) -> _BotT:
        # Before __init__, so that a call in the old positional style is told what to do.
        if len(args) > 1:
            raise TypeError(
                f"{cls.__name__} takes the system prompt as its only positional argument; "
                f"pass the others by keyword: {cls.__name__}(system_prompt, "
                f"{'pydantic_model=..., ' if issubclass(cls, StructuredBot) else ''}"
                f"model_name=...)."
            )
        return super().__new__(cls)

    def __init__(
        self,
        system_prompt: str | Message,
        *,
        model_name: str,
        temperature: float = 0.0,
        name: str | None = None,
        num_retries: int = 2,
        retry_backoff: float = 0.5,
        cache: bool | Literal["refresh"] | None = None,
        **litellm_kwargs: Any,
    ):
        if not isinstance(model_name, str) or not model_name:
            raise BotError(
                "A bot needs model_name: e.g. \"gpt-4o-mini\", \"ollama/llama3\", or "
                "\"promptlog/offline\" for the offline stand-in."
            )
        _check_litellm_kwargs(type(self).__name__, litellm_kwargs)
        self.system_prompt = _as_message(system_prompt, role="system")
        self.model_name = model_name
        self.temperature = temperature
        self.name = name or type(self).__name__
        self.num_retries = num_retries
        self.retry_backoff = retry_backoff
        self.cache: bool | Literal["refresh"] | None = check_cache_mode(
            cache, type(self).__name__, BotError
        )
        self.litellm_kwargs = litellm_kwargs
        # Any argument that is not logged may hold a secret, and so may api_base
        # (logged without the password and query that an error may quote), and so
        # may the environment, where litellm finds provider keys. Remembered, they
        # are kept out of every text the log records, a run's traceback included.
        _remember(_secrets_in({
            name: value for name, value in litellm_kwargs.items()
            if name not in LOGGED_PARAMETERS or name in ("api_base", "base_url")
        }))
        _remember_environment()
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
        return _drive(self._reply(messages))

    async def acall(self, *messages: str | Message) -> Message:
        """The same as calling the bot, awaitable (through ``litellm.acompletion``)."""
        return await _adrive(self._reply(messages))

    def options(self) -> dict[str, Any]:
        """The keyword arguments that make a bot calling the same model the same way."""
        return {
            "model_name": self.model_name,
            "temperature": self.temperature,
            "num_retries": self.num_retries,
            "retry_backoff": self.retry_backoff,
            **({"cache": self.cache} if self.cache is not None else {}),
            **self.litellm_kwargs,
        }

    def _reply(self, messages: tuple[str | Message, ...]) -> Steps[Message]:
        if not messages:
            raise BotError(f"{self.name} was called with no messages: pass at least one.")
        response = yield from self._steps(self._conversation(messages))
        return Message(role="assistant", content=response.choices[0].message.content or "")

    def _conversation(self, messages: tuple[str | Message, ...]) -> list[Message]:
        return [self.system_prompt, *(_as_message(m) for m in messages)]

    def _complete(
        self,
        conversation: list[Message],
        extra: dict[str, Any] | None = None,
        attempt: int = 1,
        validate: Callable[[Any], Any] | None = None,
        logged: dict[str, Any] | None = None,
    ) -> Any:
        """Call the model and return its response: see :meth:`_steps`."""
        return _drive(self._steps(conversation, extra, attempt, validate, logged))

    def _steps(
        self,
        conversation: list[Message],
        extra: dict[str, Any] | None = None,
        attempt: int = 1,
        validate: Callable[[Any], Any] | None = None,
        logged: dict[str, Any] | None = None,
    ) -> Steps[Any]:
        """Call the model, retrying transient errors, logging each attempt.

        ``validate`` turns a reply into a parsed value (or raises); its result is
        logged as the parsed response and returned as ``response.parsed``.
        ``logged`` adds parameters to the log that are not sent. An error that ends
        the call is raised with the number of its attempt in ``_promptlog_attempt``.
        """
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
        parameters.update(logged or {})
        key = None
        cache_mode = _cache.mode(self.cache)
        if cache_mode:
            keyed = parameters
            if isinstance(kwargs.get("response_format"), type):  # keyed by its schema
                keyed = {**parameters, "response_format": kwargs["response_format"]}
            key = _cache.request_key(
                self.model_name, [(m.role, m.content) for m in conversation], keyed,
                _cache._sample_index(),
            )
            if cache_mode is True:
                hit = self._cached(run, conversation, parameters, key, attempt, validate)
                if hit is not None:
                    return hit
        retries = 0
        while True:
            (run.db if run is not None else store.writer()).check()  # no reply thrown away
            started = store.now()
            clock = time.perf_counter()
            try:
                response = yield _Request(
                    model=self.model_name,
                    messages=[m.to_dict() for m in conversation],
                    temperature=self.temperature,
                    num_retries=0,
                    max_retries=0,
                    **kwargs,
                )
            except Exception as error:
                # Whoever catches it, prints it or logs it later sees no secret.
                _redact_exception(error)
                self._log(run, conversation, parameters, None, time.perf_counter() - clock,
                          started, attempt, status="failed", error=error)
                if _is_credentials_error(error):  # never retried, whatever its class
                    raise _credentials_error(error, self.model_name, kwargs) from None
                if retries < self.num_retries and isinstance(error, _transient_errors()):
                    retries += 1
                    attempt += 1
                    yield _Pause(_retry_delay(error, retries, self.retry_backoff))
                    continue
                error._promptlog_attempt = attempt  # type: ignore[attr-defined]
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
            if key is not None:
                self._keep(run, key, response, parsed, started)
            response.parsed = parsed
            return response

    def _cached(
        self,
        run: RunContext | None,
        conversation: list[Message],
        parameters: dict[str, Any],
        key: str,
        attempt: int,
        validate: Callable[[Any], Any] | None,
    ) -> Any:
        """The response kept under ``key``, logged as a cached call, or None. A
        structured reply is validated again, so a hit gives a value of its own."""
        db = run.db if run is not None else store.writer()
        started = store.now()
        clock = time.perf_counter()
        kept = store.cache.lookup(db, key)
        if kept is None:
            return None
        response = _CachedResponse(kept)
        parsed = None
        if validate is not None:
            try:
                parsed = validate(response)
            except _ReplyInvalid:
                return None  # not a good reply for this format: ask the model
        self._log(run, conversation, parameters, response, time.perf_counter() - clock,
                  started, attempt, status="succeeded", parsed=parsed, cached=True)
        store.record_cache_hit(db, key, started)
        response.parsed = parsed
        return response

    def _keep(
        self, run: RunContext | None, key: str, response: Any, parsed: Any, started: str
    ) -> None:
        """Keep a reply that succeeded (and validated) in the response cache."""
        usage = getattr(response, "usage", None)
        store.put_cache_entry(
            run.db if run is not None else store.writer(),
            key=key,
            model=self.model_name,
            response_text=_redact(response.choices[0].message.content, content=True),
            response_parsed=_parsed_json(parsed),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            cost=_cost(response),
            created_at=started,
        )

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
        cached: bool = False,
    ) -> None:
        """Queue the ``calls`` row of one attempt: a dict and a queue put, no I/O.
        A ``cached`` call cost nothing and saved what its reply first cost."""
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
                    "content": _redact(m.content, content=True),
                    "prompt_version_id": m.prompt_version.id if m.prompt_version else None,
                }
                for m in conversation
            ],
            response_text=_redact(text, content=True),
            response_parsed=_parsed_json(parsed),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            cost=0.0 if cached else _cost(response) if response is not None else None,
            latency_s=latency,
            status=status,
            error=_redact(_describe_error(error)) if error else None,
            attempt=attempt,
            created_at=started,
            cached=cached,
            saved_cost=response.saved_cost if cached else None,
        )


def _parsed_json(parsed: Any) -> Any:
    return parsed.model_dump(mode="json") if isinstance(parsed, pydantic.BaseModel) else parsed


class StructuredBot(SimpleBot, Generic[ModelT]):
    """A bot whose replies are validated instances of a pydantic model.

    ``pydantic_model`` may also be any other type pydantic validates: a dataclass or
    ``TypedDict`` is asked for as a JSON object, anything else (``int``, ``list[str]``,
    a ``Literal`` …) wrapped in one, ``{"return_value": …}``; the bot returns the value.

    On invalid JSON or a validation error the bot asks again with the error fed
    back, up to ``max_retries`` times, then raises
    :class:`~promptlog.errors.StructuredOutputError` carrying every attempt.

    How the schema reaches the model (``structured_output``, logged on each call):
    ``"json_schema"`` in ``response_format`` where litellm knows the model takes it,
    else ``"json_object"`` (JSON mode) with the schema in the system prompt, else
    ``"prompt"``, the schema in the system prompt alone. A server that rejects the
    ``response_format`` sent (a 400 naming it) gets the next of these, and the
    choice is kept for that model and ``api_base`` for the rest of the process.
    Pass ``structured_output=`` to use one mode and never fall back, or tell litellm
    that a local model takes a schema: ``litellm.register_model({"openai/my-model":
    {"litellm_provider": "openai", "mode": "chat", "supports_response_schema": True}})``.
    """

    def __init__(
        self,
        system_prompt: str | Message,
        *,
        pydantic_model: type[ModelT],
        model_name: str,
        temperature: float = 0.0,
        name: str | None = None,
        max_retries: int = 3,
        structured_output: StructuredOutput | None = None,
        **litellm_kwargs: Any,
    ):
        if structured_output is not None and structured_output not in STRUCTURED_OUTPUTS:
            raise BotError(
                f"structured_output={structured_output!r} is not a mode: use one of "
                f"{', '.join(map(repr, STRUCTURED_OUTPUTS))}, or leave it out to let the "
                f"bot choose."
            )
        if "response_format" in litellm_kwargs:
            raise BotError(
                "StructuredBot sets response_format from pydantic_model; to choose how the "
                "schema is sent, pass structured_output= one of "
                f"{', '.join(map(repr, STRUCTURED_OUTPUTS))}."
            )
        self._format = reply_format(pydantic_model)
        super().__init__(
            system_prompt, model_name=model_name, temperature=temperature, name=name,
            **litellm_kwargs,
        )
        self.pydantic_model = pydantic_model
        self.max_retries = max_retries
        self.structured_output = structured_output
        api_base = litellm_kwargs.get("api_base") or litellm_kwargs.get("base_url")
        self._endpoint = (model_name, _clean_api_base(api_base) if api_base else None)

    def describe(self) -> dict[str, Any]:
        described = {**super().describe(), "pydantic_model": self._format.name}
        if self.structured_output is not None:
            described["structured_output"] = self.structured_output
        return described

    def __call__(self, *messages: str | Message) -> ModelT:  # type: ignore[override]
        return _drive(self._structured(self._conversation(messages)))

    async def acall(self, *messages: str | Message) -> ModelT:  # type: ignore[override]
        """The same as calling the bot, awaitable (through ``litellm.acompletion``)."""
        return await _adrive(self._structured(self._conversation(messages)))

    def options(self) -> dict[str, Any]:
        options = {**super().options(), "max_retries": self.max_retries}
        if self.structured_output is not None:
            options["structured_output"] = self.structured_output
        return options

    def _structured(self, conversation: list[Message]) -> Steps[ModelT]:
        """Ask until a reply validates, feeding each validation error back."""
        if len(conversation) < 2:
            raise BotError(f"{self.name} was called with no messages: pass at least one.")
        attempts: list[tuple[str, str]] = []
        attempt = 1
        for _ in range(self.max_retries + 1):
            try:
                response = yield from self._structured_step(conversation, attempt)
                return self._format.unwrap(response.parsed)
            except _ReplyInvalid as invalid:
                attempts.append((invalid.reply, invalid.error))
                attempt = invalid.attempt + 1
                conversation = [
                    *conversation,
                    Message("assistant", invalid.reply),
                    Message(
                        "user",
                        f"That reply did not validate against the {self._format.name} "
                        f"schema:\n{invalid.error}\nReply again with only a JSON object that "
                        f"matches the schema.",
                    ),
                ]
        raise StructuredOutputError(
            f"{self.name}: no valid {self._format.name} after {len(attempts)} "
            f"attempts; the last error was:\n{attempts[-1][1]}",
            attempts,
        )

    def structured_output_mode(self) -> StructuredOutput:
        """The mode the next call uses: the one passed, else the one chosen for this
        model and ``api_base``."""
        if self.structured_output is not None:
            return self.structured_output
        mode = _chosen_modes.get(self._endpoint)
        if mode is None:
            mode = _chosen_modes.setdefault(
                self._endpoint,
                _default_mode(self.model_name, self.litellm_kwargs.get("custom_llm_provider")),
            )
        return mode

    def _structured_step(self, conversation: list[Message], attempt: int) -> Steps[Any]:
        """One step: a request in the current mode, and in each later mode in turn
        while the server rejects the ``response_format`` sent."""
        while True:
            mode = self.structured_output_mode()
            extra: dict[str, Any] = {}
            if mode == "json_schema":
                extra["response_format"] = self._format.model
            elif mode == "json_object":
                extra["response_format"] = {"type": "json_object"}
            sent = conversation
            if mode != "json_schema":
                # Added to the system prompt, which keeps its prompt version: some chat
                # templates refuse a second system message.
                system, *rest = conversation
                instructions = schema_instructions(self._format.schema)
                sent = [
                    Message(system.role, f"{system.content}\n\n{instructions}",
                            system.prompt_version),
                    *rest,
                ]
            try:
                return (
                    yield from self._steps(
                        sent,
                        extra,
                        attempt=attempt,
                        validate=self._format.validate,
                        logged={"structured_output": mode},
                    )
                )
            except Exception as error:
                forced = self.structured_output is not None
                if forced or mode == "prompt" or not _rejects_response_format(error):
                    raise
                _fall_back(self._endpoint, mode)
                attempt = getattr(error, "_promptlog_attempt", attempt) + 1


def _describe_error(error: BaseException) -> str:
    if isinstance(error, _ReplyInvalid):
        return f"ValidationError: {error.error}"
    return f"{type(error).__name__}: {error}"


StructuredOutput = Literal["json_schema", "json_object", "prompt"]
# From the most to the least help a server gives; a bot falls back along this order.
STRUCTURED_OUTPUTS: tuple[StructuredOutput, ...] = ("json_schema", "json_object", "prompt")

# (model, api_base) -> the mode StructuredBots use there, for the life of the process.
_chosen_modes: dict[tuple[str, str | None], StructuredOutput] = {}
_chosen_modes_lock = threading.Lock()


def _default_mode(model: str, provider: str | None = None) -> StructuredOutput:
    """The JSON schema if litellm knows the model takes one, else JSON mode if the
    provider takes ``response_format`` at all, else the prompt."""
    litellm = _get_litellm()
    if litellm.supports_response_schema(model, custom_llm_provider=provider):
        return "json_schema"
    try:
        model, provider, _, _ = litellm.get_llm_provider(model, custom_llm_provider=provider)
        supported = litellm.get_supported_openai_params(model, custom_llm_provider=provider)
    except Exception:  # a provider litellm cannot place: be safe
        supported = None
    return "json_object" if supported and "response_format" in supported else "prompt"


def _fall_back(endpoint: tuple[str, str | None], rejected: StructuredOutput) -> None:
    """Remember that ``endpoint`` rejected ``rejected``: use the next mode from now on
    (never an earlier one, whatever another thread learnt meanwhile)."""
    following = STRUCTURED_OUTPUTS[STRUCTURED_OUTPUTS.index(rejected) + 1]
    with _chosen_modes_lock:
        current = _chosen_modes.get(endpoint, rejected)
        if STRUCTURED_OUTPUTS.index(current) < STRUCTURED_OUTPUTS.index(following):
            _chosen_modes[endpoint] = following


def _rejects_response_format(error: BaseException) -> bool:
    """Whether a server (or litellm) refused the request for its ``response_format``:
    a 400 or 422 that names it. llama.cpp-based servers answer 500 to it, so a 500 that
    names it counts too."""
    status = getattr(error, "status_code", None)
    return status in (400, 422, 500) and "response_format" in str(error)


def _check_litellm_kwargs(bot_class: str, litellm_kwargs: dict[str, Any]) -> None:
    """Refuse litellm arguments that the bot sets itself, with what to pass instead."""
    if "max_retries" in litellm_kwargs:
        raise BotError(
            f"{bot_class} retries rate limits, server errors and timeouts itself, so that "
            f"every attempt is logged: pass num_retries={litellm_kwargs['max_retries']!r} "
            f"instead of max_retries= (litellm's own retries are turned off)."
        )
    if "model" in litellm_kwargs:
        raise BotError(f"{bot_class} takes the model as model_name=, not model=.")
    if "messages" in litellm_kwargs:
        raise BotError(f"{bot_class} takes messages when called: bot(message, ...).")
