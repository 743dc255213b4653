"""Typed LLM functions: a docstring and annotations in, a validated Python value out.

    @llm_function(model_name="gpt-4o-mini")
    def summarize(text: str, max_bullets: int = 3) -> Summary:
        \"\"\"Summarize the text in at most {{ max_bullets }} bullet points.\"\"\"

    summarize("…")      # a validated Summary, the call logged

The docstring is a sandboxed Jinja2 template rendered with the arguments; the
arguments it does not use go to the model as JSON, with their JSON schema. The
return annotation is any type pydantic validates (``str`` is plain text). The
structured call is a :class:`~promptlog.bots.StructuredBot`'s: the same choice of how
the schema is sent, the same validation retries, one ``calls`` row per attempt.

A typed function is a prompt: its versions (named ``module.qualname``) hash the
template, the scaffold promptlog writes around it, the input and output schemas and
any few-shot demos, and its knobs (``template``, ``demos``, ``model_name``,
``temperature`` and the other bot options) can be overridden with
``promptlog.overrides``.
"""

from __future__ import annotations

import collections.abc
import contextvars
import dataclasses
import enum
import functools
import hashlib
import inspect
import json
import threading
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import pydantic
import typing_extensions

from . import knobs, prompts, settings
from .bots import LOGGED_PARAMETERS, SimpleBot, Steps, StructuredBot, _adrive, _drive
from .errors import FunctionArgumentError, FunctionError, KnobError, PromptError
from .prompts import Message, PromptVersion
from .replies import RETURN_FIELD, ReplyFormat, reply_format, type_name

__all__ = ["LLMFunction", "SCAFFOLD_VERSION", "llm_function"]

F = TypeVar("F", bound=Callable[..., Any])

# The version of the words promptlog writes around a function's template (the system
# message, how inputs and demos are laid out). Part of every version's identity: raise
# it whenever _system_text or _user_text changes what a model is sent.
SCAFFOLD_VERSION = 1
ROLE = "function"

_BOT_KNOBS = frozenset(
    {"model_name", "temperature", "num_retries", "max_retries", "structured_output"}
    | (LOGGED_PARAMETERS - {"response_format", "tools", "tool_choice"})
)
KNOBS = frozenset({"template", "demos"}) | _BOT_KNOBS
_STRUCTURED_ONLY = ("max_retries", "structured_output")

_REASONING_DESCRIPTION = "Think step by step: the reasoning that leads to the return value."

# Every typed function by full name, for code that finds them in the log (optimisers).
_by_name: weakref.WeakValueDictionary[str, LLMFunction] = weakref.WeakValueDictionary()

# Called after each successful call of a typed function with (function, validated
# arguments, reply): an optimiser's tracer, set in the context its runs start from.
Tracer = Callable[["LLMFunction", dict[str, Any], Any], None]
_tracer: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "promptlog_tracer", default=None
)


def find(name: str) -> LLMFunction | None:
    """The typed function defined in this process under the full name ``name``."""
    return _by_name.get(name)


def set_tracer(tracer: Tracer | None) -> contextvars.Token[Tracer | None]:
    """Have ``tracer`` see every successful typed-function call made in this context
    (and the runs and threads started from it); returns the token to reset it."""
    return _tracer.set(tracer)


def reset_tracer(token: contextvars.Token[Tracer | None]) -> None:
    _tracer.reset(token)


@dataclass(frozen=True)
class _Plan:
    """Everything about a call that does not depend on the argument values: made once
    per template, demos and resolved types, then reused."""

    template: prompts._Template
    arguments: pydantic.TypeAdapter[Any]  # validates every argument sent
    json_inputs: tuple[str, ...]  # the arguments the template does not use
    reply_type: Any  # what the model is asked for: the return type, or it with reasoning
    reply: ReplyFormat | None  # its format; None: the return value is plain text
    system: str
    version_text: str
    version_hash: str


class LLMFunction:
    """A function implemented by a model; see :func:`llm_function`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        bot: SimpleBot | None = None,
        reasoning: bool = False,
        name: str | None = None,
        owner: type | None = None,
        skip_first: bool = False,
        _register: bool = True,
        **bot_options: Any,
    ):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or f"{prompts._module_name(fn)}.{fn.__qualname__}"
        self.template = prompts._normalise_template(fn.__doc__ or "")
        self.reasoning = reasoning
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self._owner = owner  # the class whose instance ``self`` is, for a strategy's method
        self._skip_first = skip_first  # a classmethod's ``cls``: not sent
        if self._signature.return_annotation is inspect.Signature.empty:
            raise FunctionError(
                f"Typed function {self.name} has no return annotation: annotate what it "
                f"returns (-> str, -> int, -> a pydantic model …), so that the reply can "
                f"be validated."
            )
        for parameter in self._signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise FunctionError(
                    f"Typed function {self.name} takes *{parameter.name}; name each "
                    f"argument, so that it can be validated and sent."
                )
        if bot is not None and "model_name" in bot_options:
            raise FunctionError(
                f"Typed function {self.name} got both bot= and model_name=: pass one."
            )
        self._system_prompt: Message | None = None
        if bot is not None:
            if not isinstance(bot, SimpleBot):
                raise FunctionError(f"bot= takes a SimpleBot or StructuredBot, not {bot!r}.")
            bot_options = {**bot.options(), **bot_options}
            self._system_prompt = bot.system_prompt
        # What is not a knob (api_key, headers …) passes through to the bot as it is.
        self._options: dict[str, Any] = dict(bot_options)
        self._lock = threading.Lock()
        self._hints: dict[str, Any] | None = None
        self._generic = False  # whether the annotations hold TypeVars
        self._plans: dict[Any, _Plan] = {}
        self._bots: dict[Any, SimpleBot] = {}
        if _register:
            knobs.register(self.name, self, kind="function", knobs=KNOBS, check=self._check)
            _by_name[self.name] = self

    def __repr__(self) -> str:
        return f"<llm_function {self.name}>"

    def calling(self, **bot_options: Any) -> LLMFunction:
        """This function calling the model (``model_name=`` or ``bot=``) or with the bot
        options given, for code that picks them when it runs, as an optimiser does for
        its own functions: the same name, versions and knobs (overrides and
        :func:`find` still name this one)."""
        options = dict(self._options)
        if "bot" in bot_options:
            options.pop("model_name", None)
        copy = LLMFunction(
            self.fn, name=self.name, reasoning=self.reasoning, owner=self._owner,
            skip_first=self._skip_first, _register=False, **{**options, **bot_options},
        )
        if "bot" not in bot_options:
            copy._system_prompt = self._system_prompt
        return copy

    def __set_name__(self, owner: type, name: str) -> None:
        # Defined in a class body: an unannotated ``self`` is an instance of that class.
        first = next(iter(self._signature.parameters), None)
        if self._owner is None and not self._skip_first and first == "self":
            self._owner = owner

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # A typed function in a class body is a method: bound to the instance.
        return self if instance is None else types.MethodType(self, instance)

    # --- calling --------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return _adrive(self._steps(args, kwargs))
        return _drive(self._steps(args, kwargs))

    def _steps(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Steps[Any]:
        values = self._bind(args, kwargs)
        overrides = knobs.active(self.name)
        plan = self._plan(values, overrides.get("template"), overrides.get("demos"))
        validated = self._validate(plan, values)
        bot = self._bot(plan, overrides)
        version = prompts._register(self.name, ROLE, plan.version_text, plan.version_hash)
        conversation = [
            *self._demo_turns(plan, overrides.get("demos")),
            Message("user", self._user_text(plan, validated), version),
        ]
        tracer = _tracer.get()
        if plan.reply is None:
            reply = yield from bot._reply(tuple(conversation))
            if tracer is not None:
                tracer(self, validated, reply.content)
            return reply.content
        structured = typing.cast(StructuredBot[Any], bot)
        value = yield from structured._structured(structured._conversation(tuple(conversation)))
        if tracer is not None:
            tracer(self, validated, value)
        return getattr(value, RETURN_FIELD) if self.reasoning else value

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise FunctionArgumentError(f"Typed function {self.name}: {e}.") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        if self._skip_first:
            values.pop(next(iter(self._signature.parameters)), None)
        return values

    def _validate(self, plan: _Plan, values: dict[str, Any]) -> dict[str, Any]:
        try:
            return typing.cast(dict[str, Any], plan.arguments.validate_python(values))
        except pydantic.ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, error['loc'])) or 'arguments'}: {error['msg']} "
                f"(got {_short(error.get('input'))})"
                for error in e.errors(include_url=False)
            )
            raise FunctionArgumentError(
                f"Typed function {self.name} was called with an argument of the wrong "
                f"type, so no model was called: {problems}."
            ) from None

    def _bot(self, plan: _Plan, overrides: Mapping[str, Any]) -> SimpleBot:
        changed = {k: v for k, v in overrides.items() if k in _BOT_KNOBS}
        model = changed.get("model_name") or self._options.get("model_name")
        model = model or settings.model_name()  # the default, read at each call
        settings_key = tuple(sorted((k, repr(v)) for k, v in changed.items()))
        key = (plan.version_hash, model, settings_key)
        bot = self._bots.get(key)
        if bot is None:
            options = {**self._options, **changed, "model_name": model}
            if not model:
                raise FunctionError(
                    f"Typed function {self.name} has no model: pass @llm_function("
                    f"model_name=...), or set a default with promptlog.configure("
                    f"model_name=...) or the {settings.MODEL_ENV_VAR} environment variable."
                )
            system = Message(
                "system",
                plan.system
                if self._system_prompt is None
                else f"{self._system_prompt.content}\n\n{plan.system}",
                self._system_prompt.prompt_version if self._system_prompt else None,
            )
            options.setdefault("name", self.name)
            if plan.reply is None:
                for option in _STRUCTURED_ONLY:
                    options.pop(option, None)
                bot = SimpleBot(system, **options)
            else:
                bot = StructuredBot(system, pydantic_model=plan.reply_type, **options)
            # One bot per function and settings in a run's record, however many calls.
            bot._key = f"{self.name}:{model}:{settings_key}"
            if len(self._bots) < 256:  # bounded: overrides may vary without end
                self._bots[key] = bot
        return bot

    # --- what a call sends ------------------------------------------------------------

    def _plan(self, values: dict[str, Any], template: str | None, demos: Any) -> _Plan:
        hints = self._resolved_hints()
        bindings = _bindings(hints, values) if self._generic else {}
        demos_hash = _demos_hash(demos) if demos else None
        key = (template, demos_hash, tuple(bindings.items()))
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._make_plan(template, demos, demos_hash, hints, bindings)
                    if len(self._plans) < 256:
                        self._plans[key] = plan
        return plan

    def _make_plan(
        self,
        template_text: str | None,
        demos: Any,
        demos_hash: str | None,
        hints: dict[str, Any],
        bindings: dict[Any, Any],
    ) -> _Plan:
        template = prompts._Template(
            self.name, self.template if template_text is None else template_text, ROLE
        )
        parameters = self._sent_parameters()
        types_ = {p: _substitute(hints.get(p, Any), bindings) for p in parameters}
        arguments = _typed_dict(f"{self.fn.__name__}_arguments", types_)
        json_inputs = tuple(p for p in parameters if p not in template.variables)
        input_schema = (
            _typed_dict(f"{self.fn.__name__}_inputs", {p: types_[p] for p in json_inputs})
            .json_schema()
            if json_inputs
            else None
        )
        return_type = _substitute(hints["return"], bindings)
        reply_type = return_type
        if self.reasoning:
            fields: dict[str, Any] = {
                "reasoning": (str, pydantic.Field(description=_REASONING_DESCRIPTION)),
                RETURN_FIELD: (return_type, ...),
            }
            reply_type = pydantic.create_model(f"{self.fn.__name__}_reply", **fields)
        reply = None if reply_type is str else reply_format(reply_type)
        system = self._system_text(types_, return_type, input_schema, reply)
        version_text = "\n".join(
            [
                template.text,
                "",
                "--- promptlog typed function ---",
                f"signature: {self._signature_text(types_, return_type)}",
                f"scaffold: {SCAFFOLD_VERSION}",
                *(["reasoning: step by step"] if self.reasoning else []),
                "inputs (JSON schema): "
                + (json.dumps(input_schema, indent=2, sort_keys=True) if input_schema else "none"),
                "output (JSON schema): "
                + (json.dumps(reply.schema, indent=2, sort_keys=True) if reply else "plain text"),
                *([f"demos: {len(demos)} ({demos_hash})"] if demos else []),
                # Each demo on a line of its own, so that a diff shows which changed.
                *(f"  {_demo_line(demo)}" for demo in demos or ()),
            ]
        )
        return _Plan(
            template=template,
            arguments=arguments,
            json_inputs=json_inputs,
            reply_type=reply_type,
            reply=reply,
            system=system,
            version_text=version_text,
            version_hash=prompts.template_hash(version_text, ROLE),
        )

    def _sent_parameters(self) -> list[str]:
        names = list(self._signature.parameters)
        return names[1:] if self._skip_first else names

    def _signature_text(self, types_: dict[str, Any], return_type: Any) -> str:
        parts = []
        for name in self._sent_parameters():
            parameter = self._signature.parameters[name]
            text = f"{name}: {type_name(types_[name])}"
            if parameter.default is not inspect.Parameter.empty:
                text += f" = {parameter.default!r}"
            parts.append(text)
        return f"{self.fn.__name__}({', '.join(parts)}) -> {type_name(return_type)}"

    def _system_text(
        self,
        types_: dict[str, Any],
        return_type: Any,
        input_schema: dict[str, Any] | None,
        reply: ReplyFormat | None,
    ) -> str:
        lines = [
            f"You are the implementation of the Python function "
            f"`{self._signature_text(types_, return_type)}`. Each user message is one call: "
            f"the function's instructions, then its inputs. Follow the instructions and "
            f"reply with the function's return value."
        ]
        if input_schema is not None:
            lines.append(
                "The inputs come as a JSON object; their types, as a JSON Schema document:\n"
                f"```\n{json.dumps(input_schema, separators=(',', ':'))}\n```"
            )
        if self.reasoning:
            lines.append(
                "Reply with a JSON object: first `reasoning`, your step-by-step thinking, "
                f"then `{RETURN_FIELD}`, the return value."
            )
        elif reply is None:
            lines.append("Reply with the return value alone, as plain text.")
        elif reply.wrapped:
            lines.append(f'Reply with a JSON object: {{"{RETURN_FIELD}": <the return value>}}.')
        else:
            lines.append("Reply with the return value as a JSON object.")
        return "\n\n".join(lines)

    def _user_text(self, plan: _Plan, values: dict[str, Any]) -> str:
        rendered_with = values
        if self._owner is not None and not self._skip_first:
            # Jinja keeps the name ``self`` for itself: a method's template names the
            # instance's fields directly, ``{{ sides }}``.
            instance = values[next(iter(self._signature.parameters))]
            rendered_with = {**_fields(instance), **values}
        text = plan.template.render(self.name, rendered_with)
        if plan.json_inputs:
            inputs = plan.arguments.dump_python(
                {name: values[name] for name in plan.json_inputs}, mode="json"
            )
            rendered = json.dumps(inputs, ensure_ascii=False)
            text = f"{text}\n\nInputs:\n```\n{rendered}\n```" if text else (
                f"Inputs:\n```\n{rendered}\n```"
            )
        return text

    def _demo_turns(self, plan: _Plan, demos: Any) -> list[Message]:
        """Each demo as a call (a user turn) and its return value (an assistant turn)."""
        turns: list[Message] = []
        for number, demo in enumerate(demos or (), 1):
            try:
                values = {**self._defaults(), **demo["inputs"]}
                validated = typing.cast(dict[str, Any], plan.arguments.validate_python(values))
                output = demo["output"]
                if plan.reply is None:
                    answer = str(output)
                else:
                    if self.reasoning:
                        output = {"reasoning": demo.get("reasoning", ""), RETURN_FIELD: output}
                    elif plan.reply.wrapped:
                        output = {RETURN_FIELD: output}
                    parsed = plan.reply.model.model_validate(output)
                    answer = parsed.model_dump_json()
            except (pydantic.ValidationError, KeyError, TypeError) as e:
                raise KnobError(
                    f"Demo {number} of typed function {self.name} does not fit its "
                    f"signature: {e}"
                ) from None
            turns.append(Message("user", self._user_text(plan, validated)))
            turns.append(Message("assistant", answer))
        return turns

    def _defaults(self) -> dict[str, Any]:
        return {
            p.name: p.default
            for p in self._signature.parameters.values()
            if p.default is not inspect.Parameter.empty
        }

    def _resolved_hints(self) -> dict[str, Any]:
        """The annotations as types, resolved on first call (so that a return type may
        be defined after the function), ``self`` of a strategy's method its class."""
        if self._hints is None:
            localns = {self._owner.__name__: self._owner} if self._owner is not None else None
            try:
                hints = typing.get_type_hints(self.fn, localns=localns, include_extras=True)
            except (NameError, TypeError) as e:
                raise FunctionError(
                    f"The annotations of typed function {self.name} cannot be resolved: {e}. "
                    f"Define the types they name at module level."
                ) from None
            parameters = list(self._signature.parameters.values())
            if self._owner is not None and parameters and not self._skip_first:
                hints.setdefault(parameters[0].name, self._owner)
            self._generic = _has_typevars(hints)
            self._hints = hints
        return self._hints

    # --- knobs ------------------------------------------------------------------------

    def _check(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """An override's template normalised and parsed, its demos' shape checked."""
        checked = dict(overrides)
        names = set(self._sent_parameters())
        if self._owner is not None and not self._skip_first:
            names |= set(_field_names(self._owner))
        if "template" in overrides:
            text = overrides["template"]
            if not isinstance(text, str):
                raise KnobError(
                    f"The template override of typed function {self.name} must be a "
                    f"string, not {text!r}."
                )
            text = prompts._normalise_template(text)
            try:
                template = prompts._Template(self.name, text, ROLE)
            except prompts.PromptTemplateError as e:
                raise KnobError(f"Template override: {e}") from None
            unknown = sorted(template.variables - names)
            if unknown:
                raise KnobError(
                    f"The template override of typed function {self.name} uses "
                    f"{{{{ {unknown[0]} }}}}, but {self.fn.__qualname__} takes no parameter "
                    f"{unknown[0]!r}; it takes {', '.join(sorted(names)) or 'none'}."
                )
            checked["template"] = text
        if "demos" in overrides:
            demos = overrides["demos"]
            if demos is None:
                demos = ()
            if not isinstance(demos, collections.abc.Sequence) or isinstance(demos, str):
                raise KnobError(
                    f"The demos of typed function {self.name} must be a list of "
                    f'{{"inputs": {{...}}, "output": ...}}, not {_short(demos)}.'
                )
            for number, demo in enumerate(demos, 1):
                ok = (
                    isinstance(demo, Mapping)
                    and isinstance(demo.get("inputs"), Mapping)
                    and "output" in demo
                )
                if not ok:
                    raise KnobError(
                        f"Demo {number} of typed function {self.name} must be "
                        f'{{"inputs": {{...}}, "output": ...}}, not {_short(demo)}.'
                    )
                extra = sorted(set(demo["inputs"]) - names)
                if extra:
                    raise KnobError(
                        f"Demo {number} of typed function {self.name} has input "
                        f"{extra[0]!r}, which is not one of its parameters "
                        f"({', '.join(sorted(names))})."
                    )
            checked["demos"] = tuple(demos)
        return checked

    # --- demos ------------------------------------------------------------------------

    def demo(self, inputs: Mapping[str, Any], output: Any, reasoning: str | None = None
             ) -> dict[str, Any] | None:
        """A demo of this function (``{"inputs": …, "output": …}``, as its ``demos``
        knob takes), or None when the inputs or output do not fit its signature."""
        demo: dict[str, Any] = {"inputs": dict(inputs), "output": output}
        if self.reasoning and reasoning is not None:
            demo["reasoning"] = reasoning
        try:
            values = {**self._defaults(), **demo["inputs"]}
            self._demo_turns(self._plan(values, None, None), [demo])
        except (KnobError, FunctionError, PromptError):
            return None
        return demo

    def demo_from_call(
        self,
        version_text: str,
        user_text: str,
        reply_text: str | None,
        reply_parsed: Any,
        example: Any = None,
    ) -> dict[str, Any] | None:
        """The demo a logged call of this function makes: its inputs read back from the
        user message it sent (the JSON inputs, and template variables from the run's
        ``example``), kept only when rendering them again gives that message, and its
        reply as the output. None when they cannot be recovered."""
        template = version_text.split("\n\n--- promptlog typed function ---", 1)[0]
        values: dict[str, Any] = dict(self._defaults())
        marker = "Inputs:\n```\n"
        at = user_text.rfind(marker)
        if at >= 0 and user_text.endswith("\n```"):
            try:
                found = json.loads(user_text[at + len(marker) : -4])
            except ValueError:
                found = None
            if isinstance(found, dict):
                values.update(found)
        if isinstance(example, Mapping):
            for name in self._sent_parameters():
                if name in example and name not in values:
                    values[name] = example[name]
        values = {k: v for k, v in values.items() if k in self._sent_parameters()}
        try:
            plan = self._plan(values, None if template == self.template else template, None)
            if self._user_text(plan, self._validate(plan, values)) != user_text:
                return None
        except (KnobError, FunctionError, PromptError):
            return None
        reasoning = None
        if plan.reply is None:
            output = reply_text
        elif isinstance(reply_parsed, Mapping) and (self.reasoning or plan.reply.wrapped):
            output = reply_parsed.get(RETURN_FIELD)
            reasoning = reply_parsed.get("reasoning") if self.reasoning else None
        else:
            output = reply_parsed
        if output is None:
            return None
        return self.demo(values, output, reasoning)

    # --- the log ----------------------------------------------------------------------

    def versions(self) -> list[PromptVersion]:
        """Every logged version of this function, oldest first."""
        return prompts.versions(self.name)


@overload
def llm_function(fn: F) -> F: ...
@overload
def llm_function(
    *,
    model_name: str | None = None,
    bot: SimpleBot | None = None,
    reasoning: bool = False,
    name: str | None = None,
    **bot_options: Any,
) -> Callable[[F], F]: ...


def llm_function(fn: Any = None, **options: Any) -> Any:
    """Make a function with a docstring and annotations into one a model implements.

    ``@llm_function(model_name=..., **bot_options)`` takes what :class:`SimpleBot` takes
    (``temperature``, ``max_tokens``, ``api_base`` …) and, for a structured return,
    :class:`StructuredBot`'s ``max_retries`` and ``structured_output``;
    ``@llm_function(bot=SimpleBot(...))`` calls the model that bot calls, its system
    prompt first; a bare ``@llm_function`` uses ``promptlog.configure(model_name=...)``
    or ``PROMPTLOG_MODEL``. ``reasoning=True`` asks for step-by-step reasoning before
    the answer (logged with the call; the function returns the answer). ``name`` sets
    the name in the log (default ``module.qualname``). An ``async def`` gives an
    awaitable function.
    """
    if fn is not None:
        if not callable(fn):
            raise FunctionError(
                "@llm_function takes keyword arguments only: @llm_function(model_name=...)."
            )
        return LLMFunction(fn)

    def decorate(function: Callable[..., Any]) -> LLMFunction:
        return LLMFunction(function, **options)

    return decorate


# --- generics: TypeVars resolved from the arguments -------------------------------------


def _has_typevars(hints: Mapping[str, Any]) -> bool:
    return any(_typevars_of(tp) for tp in hints.values())


def _typevars_of(tp: Any) -> tuple[Any, ...]:
    """The TypeVars ``tp`` leaves open, however deep (``list[TaskRun[P, R]]``: P, R)."""
    if isinstance(tp, TypeVar):
        return (tp,)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return tuple(tp.__pydantic_generic_metadata__["parameters"])
    found: dict[Any, None] = dict.fromkeys(getattr(tp, "__parameters__", ()) or ())
    for arg in typing.get_args(tp):
        if not isinstance(arg, (str, int, float, bool, bytes, enum.Enum, type(None), list)):
            found.update(dict.fromkeys(_typevars_of(arg)))
    return tuple(found)


def _bindings(hints: Mapping[str, Any], values: Mapping[str, Any]) -> dict[Any, Any]:
    """Each TypeVar in the parameters' annotations bound to the type of the value it
    stands for (several types: their union)."""
    found: dict[Any, list[Any]] = {}
    for name, value in values.items():
        if name in hints:
            _bind(hints[name], value, found)
    return {
        var: types_[0] if len(types_) == 1 else typing.Union[tuple(types_)]  # noqa: UP007
        for var, types_ in found.items()
    }


def _note(found: dict[Any, list[Any]], var: Any, tp: Any) -> None:
    seen = found.setdefault(var, [])
    if tp not in seen:
        seen.append(tp)


def _bind(annotation: Any, value: Any, found: dict[Any, list[Any]]) -> None:
    if not _typevars_of(annotation):
        return
    if isinstance(annotation, TypeVar):
        _note(found, annotation, type(value))
        return
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        _bind_model(annotation, value, found)
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is not None:
            for arg in args:
                if arg is not type(None):
                    _bind(arg, value, found)
        return
    if origin is type and args:
        if isinstance(value, type) and isinstance(args[0], TypeVar):
            _note(found, args[0], value)
        return
    if origin is tuple and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            for item in value:
                _bind(args[0], item, found)
        else:
            for arg, item in zip(args, value, strict=False):
                _bind(arg, item, found)
        return
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        if isinstance(value, Mapping) and len(args) == 2:
            for key, item in value.items():
                _bind(args[0], key, found)
                _bind(args[1], item, found)
        return
    if isinstance(origin, type) and issubclass(origin, collections.abc.Iterable) and args:
        if isinstance(value, collections.abc.Iterable) and not isinstance(value, (str, bytes)):
            for item in value:
                _bind(args[0], item, found)


def _bind_model(
    annotation: type[pydantic.BaseModel], value: Any, found: dict[Any, list[Any]]
) -> None:
    """A pydantic generic model: its parameters from the value's own parametrisation
    (``TaskRun[P, R]`` given a ``TaskRun[Params, float]``), else from its fields."""
    meta = annotation.__pydantic_generic_metadata__
    origin = meta["origin"] or annotation
    args = meta["args"] or meta["parameters"]
    value_meta = getattr(type(value), "__pydantic_generic_metadata__", None)
    if value_meta and value_meta["origin"] is origin and value_meta["args"]:
        for arg, actual in zip(args, value_meta["args"], strict=False):
            if isinstance(arg, TypeVar):
                _note(found, arg, actual)
        return
    if isinstance(value, pydantic.BaseModel):
        hints = typing.get_type_hints(origin)
        parameters = origin.__pydantic_generic_metadata__["parameters"]
        substituted = dict(zip(parameters, args, strict=False))
        for field in origin.model_fields:
            if field in hints:
                _bind(_substitute(hints[field], substituted), getattr(value, field), found)


def _substitute(tp: Any, bindings: Mapping[Any, Any]) -> Any:
    """``tp`` with its TypeVars replaced by their bindings (unbound: their bound, their
    constraints' union, or ``Any``)."""
    parameters = _typevars_of(tp)
    if not parameters:
        return tp
    if isinstance(tp, TypeVar):
        return bindings.get(tp, _fallback(tp))
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return tp[tuple(bindings.get(p, _fallback(p)) for p in parameters)]  # type: ignore[index]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return typing.Annotated[(_substitute(args[0], bindings),) + tuple(args[1:])]
    substituted = tuple(_substitute(arg, bindings) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[substituted]  # noqa: UP007
    return origin[substituted]


def _fallback(var: Any) -> Any:
    if getattr(var, "__bound__", None) is not None:
        return var.__bound__
    if getattr(var, "__constraints__", ()):
        return typing.Union[var.__constraints__]  # noqa: UP007
    return Any


# --- small helpers ----------------------------------------------------------------------

_typed_dicts: dict[Any, pydantic.TypeAdapter[Any]] = {}


def _typed_dict(name: str, fields: dict[str, Any]) -> pydantic.TypeAdapter[Any]:
    """A TypeAdapter of a TypedDict with these fields: it validates arguments by name
    (errors name the parameter) and gives their JSON schema, with no clash between a
    parameter's name and a model's attributes."""
    key = (name, tuple(fields.items()))
    try:
        found = _typed_dicts.get(key)
    except TypeError:
        found = None
    if found is None:
        typed = typing_extensions.TypedDict(name, fields)  # type: ignore[misc]
        try:
            found = pydantic.TypeAdapter(typed)
            found.json_schema()
        except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError) as e:
            raise FunctionError(
                f"An argument type of {name.rsplit('_', 1)[0]} cannot be sent to a model as "
                f"JSON: {e}"
            ) from None
        try:
            _typed_dicts[key] = found
        except TypeError:
            pass
    return found


def _field_names(cls: type) -> list[str]:
    if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        return list(cls.model_fields)
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return []


def _fields(instance: Any) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in _field_names(type(instance))}


def _demo_line(demo: Any) -> str:
    return json.dumps(demo, sort_keys=True, default=str, ensure_ascii=False)


def _demos_hash(demos: Any) -> str:
    text = json.dumps(demos, sort_keys=True, default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
