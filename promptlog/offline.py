"""A small deterministic offline model, reachable through litellm as ``promptlog/offline``.

The demo, the examples and the notebooks use it so that they run on any machine, without
a key or a network. It is a litellm custom provider, so bots call it like any other model.

A reply is a pure function of the messages, the seed and the response schema: plain chat
gets a few English sentences about the words of the last user message; a call with
``response_format``, or whose prompt gives a JSON schema (as a bot does for a model that
cannot take one in ``response_format``), gets JSON valid against the schema; a request to
"create 3 …" (make, generate, give, list, return, write) gets a list of 3. A request
for an answer in a fenced block that shows fenced blocks (as ``promptlog.optimize``
asks) gets a variant of the last one shown, its numbers nudged or its words edited;
a request to end with ``final_score=<score>`` (as ``llm_judge`` asks) gets a score. Two hooks
in a user message help test retry logic: ``[offline:invalid-json]`` makes the first
structured reply of a conversation broken JSON, ``[offline:always-invalid]`` makes every
reply prose.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import math
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

# litellm fetches its cost map over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from litellm.llms.custom_llm import CustomLLM  # noqa: E402
from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage  # noqa: E402
from litellm.utils import custom_llm_setup, type_to_response_format_param  # noqa: E402

from .schemas import has_finite_instance, schema_from_text  # noqa: E402

__all__ = [
    "ALWAYS_INVALID_HOOK",
    "INVALID_JSON_HOOK",
    "MODEL_NAME",
    "PROVIDER",
    "OfflineModel",
    "register",
    "reply",
]

PROVIDER = "promptlog"
MODEL_NAME = "promptlog/offline"
INVALID_JSON_HOOK = "[offline:invalid-json]"
ALWAYS_INVALID_HOOK = "[offline:always-invalid]"

_HOOK_RE = re.compile(r"\[offline:[a-z-]+\]")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_BRIEF_RE = re.compile(r"\b(short|shorter|brief|concise|catchy|succinct|terse|at most)\b")
_VERBOSE_RE = re.compile(r"\b(long|longer|detailed|descriptive|elaborate|thorough)\b")
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_WORD_COUNT_RE = re.compile(r"\b(one|two|three|four|[1-4]) words?\b")
# "create 3 mock customers": how many items the request asks for (its outermost list).
_ITEM_COUNT_RE = re.compile(r"\b(?:create|make|generate|give|list|return|write)\s+(\d{1,2})\s")
_MAX_DEPTH = 6  # from this depth on, recursive schemas stop growing (empty lists, nulls)

_NOUNS = (
    "pipeline", "dataset", "model", "prompt", "signal", "baseline", "metric", "pattern",
    "insight", "workflow", "feature", "platform", "team", "system", "report", "strategy",
    "experiment", "benchmark", "engine", "studio", "lab", "forge", "atlas", "compass",
    "bridge", "harbor", "beacon", "garden", "summit", "circuit", "ledger", "toolkit",
)  # fmt: skip
_ADJECTIVES = (
    "clear", "steady", "bright", "careful", "practical", "robust", "simple", "curious",
    "swift", "quiet", "bold", "lucid", "nimble", "solid", "open", "focused",
)  # fmt: skip
_VERBS = (
    "measure", "compare", "refine", "explore", "build", "test", "review", "shape",
    "track", "improve", "simplify", "document",
)  # fmt: skip
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from give had has have
    how i if in into is it its me my no not of on or our please should so some tell than
    that the their them then there these they this those to us was we were what when where
    which who why will with would you your about also any just like make more most much one
    other only such very via given follows following describe described description
    someone something generate create write return provide based using need want name
    names title good best new short shorter catchy brief concise long longer detailed
    descriptive elaborate word words least mention fits fit fitting suggest propose come
    think great nice two three four five""".split()
)
_OPENINGS = (
    "Here is a short answer about {k}.",
    "Good question about {k}.",
    "Sure, let us talk about {k}.",
    "Thinking about {k}, a few things stand out.",
)
_SENTENCES = (
    "The key to {k} is a {a} {n}.",
    "I would start by looking at how {k} relates to the {n}.",
    "A {a} approach is to {v} the {n} first, then {v} the {k}.",
    "That keeps the {n} {a} and easy to {v}.",
    "In practice, {k} works best with a {a} {n}.",
    "It helps to {v} {k} against a simple {n}.",
    "Over time the {n} becomes more {a}.",
    "Most teams {v} their {n} once the {k} is {a}.",
)
_PROSE_FIELDS = frozenset(
    """description summary explanation reason reasoning rationale text content answer
    comment feedback body message details justification notes note response analysis
    critique steps instructions ideas suggestions points reasons advice""".split()
)
_TITLE_FIELDS = frozenset("name title label headline heading subject".split())
_WORD_FIELDS = frozenset(
    "keyword keywords tag tags topic topics skill skills category categories word words".split()
)

_lock = threading.Lock()


class OfflineModel(CustomLLM):
    """The litellm handler behind ``promptlog/<anything>``; stateless, so one serves all."""

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        answer = _answer(model, messages, kwargs)
        time.sleep(answer.latency)
        return _response(answer, kwargs.get("model_response"))

    async def acompletion(
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        answer = _answer(model, messages, kwargs)
        await asyncio.sleep(answer.latency)
        return _response(answer, kwargs.get("model_response"))

    def streaming(
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> Iterator[GenericStreamingChunk]:
        answer = _answer(model, messages, kwargs)
        time.sleep(answer.latency)
        yield from _chunks(answer)

    async def astreaming(  # type: ignore[override]
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        answer = _answer(model, messages, kwargs)
        await asyncio.sleep(answer.latency)
        for chunk in _chunks(answer):
            yield chunk


_handler = OfflineModel()


def register() -> None:
    """Make ``promptlog/<anything>`` callable through litellm, at zero cost.

    Idempotent and thread-safe; it checks litellm's provider map itself, so it also
    repairs a map that someone reset.
    """
    with _lock:
        if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _handler})
        # litellm also runs this at the start of every call; running it here makes the
        # provider known to helpers (get_llm_provider, ...) before the first call.
        custom_llm_setup()
        _price_locked(MODEL_NAME)


def reply(
    messages: list[dict[str, Any]],
    *,
    seed: int = 0,
    response_format: Any = None,
) -> str:
    """The text the offline model answers to ``messages``: a pure function of its arguments.

    ``response_format`` takes what litellm accepts: a pydantic model class, or a dict
    ``{"type": "json_schema", "json_schema": {"schema": ...}}`` or ``{"type": "json_object"}``.
    Without a schema there, a JSON schema written in a system or user message is used.
    A schema that no finite value matches raises ``ValueError``.
    """
    structured, schema = _schema_of(response_format)
    if schema is None:
        in_prompt = _schema_in_prompt(messages)
        if in_prompt is not None:
            structured, schema = True, in_prompt
    if schema is not None and not has_finite_instance(schema):
        raise ValueError(
            "The response schema has no finite instance (a required field refers back to "
            "its own object with no way to end), so no reply can match it."
        )
    user_texts = [_text(m) for m in messages if m.get("role") == "user"]
    if any(ALWAYS_INVALID_HOOK in text for text in user_texts):
        writer = _Writer(messages, seed, schema, _keywords(user_texts[-1:]))
        return "I am sorry, I can only answer in prose today. " + writer.sentence()
    if not structured:
        last = user_texts[-1] if user_texts else ""
        if _RATING_ASK_RE.search(last):
            return _rating(messages, seed)
        if _FENCED_ASK_RE.search(last) and "```" in last:
            return _variant(last, messages, seed)
        return _Writer(messages, seed, schema, _keywords(user_texts[-1:])).chat()
    # The request is the last user turn before the first assistant turn; later user turns
    # are usually validation feedback, whose words make poor names.
    first_assistant = next(
        (i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages)
    )
    request = [_text(m) for m in messages[:first_assistant] if m.get("role") == "user"][-1:]
    writer = _Writer(messages, seed, schema, _keywords(request or user_texts[-1:]))
    text = json.dumps(writer.document(schema))
    if first_assistant == len(messages) and any(INVALID_JSON_HOOK in t for t in user_texts):
        return _break_json(text)
    return text


# --- litellm glue -----------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    model: str
    content: str
    prompt_tokens: int
    completion_tokens: int
    latency: float


def _answer(model: str, messages: list, kwargs: dict[str, Any]) -> _Answer:
    """Answer one call from the arguments litellm hands a custom provider."""
    # litellm passes every parameter it does not know (seed, response_format, latency)
    # through in optional_params; response_format arrives as a json_schema dict.
    params = kwargs.get("optional_params") or {}
    full_model = model if model.startswith(f"{PROVIDER}/") else f"{PROVIDER}/{model}"
    _price(full_model)
    try:
        content = reply(
            messages, seed=_seed(params), response_format=params.get("response_format")
        )
    except ValueError as error:
        # Raised as litellm's own error, it reaches the caller as a bad request (anything
        # else becomes a connection error, which callers retry).
        raise litellm.BadRequestError(str(error), model=full_model, llm_provider=PROVIDER) from None
    return _Answer(
        model=full_model,
        content=content,
        prompt_tokens=max(1, sum(_count_tokens(_text(m)) for m in messages)),
        completion_tokens=max(1, _count_tokens(content)),
        latency=float(params.get("latency") or 0),
    )


def _response(answer: _Answer, response: ModelResponse | None) -> ModelResponse:
    """Fill litellm's response object (or a fresh one) with ``answer``."""
    if response is None:
        response = ModelResponse()
    response.choices[0].message.content = answer.content
    response.choices[0].finish_reason = "stop"
    response.model = answer.model
    response.created = int(time.time())
    usage = Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )
    response.usage = usage  # type: ignore[attr-defined]
    return response


def _chunks(answer: _Answer) -> Iterator[GenericStreamingChunk]:
    """Stream the answer a few words at a time; the last chunk carries usage."""
    pieces = re.findall(r"\S+\s*", answer.content) or [""]
    for start in range(0, len(pieces), 4):
        last = start + 4 >= len(pieces)
        yield GenericStreamingChunk(
            text="".join(pieces[start : start + 4]),
            tool_use=None,
            is_finished=last,
            finish_reason="stop" if last else "",
            usage={
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            }
            if last
            else None,
            index=0,
        )


def _seed(params: dict[str, Any]) -> int:
    """The call's seed; without one, a fresh seed when sampling (temperature > 0), else 0."""
    if params.get("seed") is not None:
        return int(params["seed"])
    if (params.get("temperature") or 0) > 0:
        return secrets.randbits(32)
    return 0


def _price(model: str) -> None:
    if model not in litellm.model_cost:
        with _lock:
            _price_locked(model)


def _price_locked(model: str) -> None:
    """Give ``model`` a zero price, so litellm's cost calculation works for it."""
    if model in litellm.model_cost:
        return
    litellm.register_model(
        {
            model: {
                "litellm_provider": PROVIDER,
                "mode": "chat",
                "max_tokens": 4096,
                "max_input_tokens": 128_000,
                "max_output_tokens": 4096,
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                # It follows a JSON schema given in response_format, as bots can tell.
                "supports_response_schema": True,
                # Without these litellm warns that cache pricing defaults to 0.
                "cache_creation_input_token_cost": 0.0,
                "cache_read_input_token_cost": 0.0,
            }
        }
    )


# --- reading the request ----------------------------------------------------


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def _keywords(texts: list[str]) -> list[str]:
    """Content words of ``texts``, in order of first appearance."""
    words: dict[str, None] = {}
    for text in texts:
        for word in _WORD_RE.findall(_HOOK_RE.sub(" ", text)):
            acronym = word.isupper() and len(word) <= 5  # AI, ML, SQL keep their case
            lowered = word if acronym else word.lower()
            if (acronym or len(lowered) > 2) and lowered.lower() not in _STOPWORDS:
                words.setdefault(lowered)
    return list(words)


def _schema_of(response_format: Any) -> tuple[bool, dict[str, Any] | None]:
    """Whether the call wants JSON, and the JSON schema if it gives one."""
    if response_format is None:
        return False, None
    if isinstance(response_format, type):
        # The conversion litellm applies before calling us, so both routes give one schema.
        response_format = type_to_response_format_param(response_format)
    if not isinstance(response_format, dict):
        return False, None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        return True, spec.get("schema") or response_format.get("schema")
    if kind == "json_object":
        return True, response_format.get("response_schema")
    return False, None


def _schema_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema the last system or user message that gives one asks for."""
    for message in reversed(messages):
        if message.get("role") in ("system", "user"):
            schema = schema_from_text(_text(message))
            if schema is not None:
                return schema
    return None


def _break_json(text: str) -> str:
    """``text`` cut short, as a model that ran out of patience would leave it."""
    broken = text[: max(1, len(text) * 2 // 3)]
    try:
        json.loads(broken)
    except ValueError:
        return broken
    return broken + " {"


# --- writing the answer -----------------------------------------------------

_FENCED_ASK_RE = re.compile(r"fenced\s+block")
_RATING_ASK_RE = re.compile(r"final_score=(<|score\b)")  # asked for, not a score given
_FENCED_RE = re.compile(r"```\n(.*?)\n```", re.DOTALL)  # a shown x, not a mention of ```
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _variant(request: str, messages: list[dict[str, Any]], seed: int) -> str:
    """A proposal in a fenced block: the last block of ``request`` with its numbers
    nudged (ints by a step or a factor, floats by a factor) or, without numbers, one
    word dropped or two neighbours swapped."""
    blocks = [block.strip() for block in _FENCED_RE.findall(request) if block.strip()]
    rng = _rng("variant", [[m.get("role"), _text(m)] for m in messages], seed)
    base = blocks[-1] if blocks else "x"

    def nudge(match: re.Match[str]) -> str:
        text = match.group(0)
        if "." in text:  # stays a float: 1.0 * 1.25 * 0.8 is "1.0", never the int "1"
            nudged = f"{float(text) * rng.choice((0.5, 0.8, 1.25, 2.0)):.6g}"
            return nudged if any(c in nudged for c in ".en") else nudged + ".0"
        number = int(text)
        if abs(number) > 20:
            return str(round(number * rng.choice((0.5, 0.8, 1.25, 2.0))))
        return str(number + rng.choice((-2, -1, 1, 2)))

    variant = _NUMBER_RE.sub(nudge, base) if _NUMBER_RE.search(base) else None
    if variant is None:
        words = base.split(" ")
        if len(words) > 3 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        elif len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        variant = " ".join(words)
    return f"A small change to the best so far may do better.\n```\n{variant}\n```"


def _rating(messages: list[dict[str, Any]], seed: int) -> str:
    """A judge's reply: a sentence, then ``final_score=`` a number from 1 to 10 that
    depends on the text rated (and the seed)."""
    rng = _rng("rating", [[m.get("role"), _text(m)] for m in messages], seed)
    return f"The text meets parts of the rubric.\nfinal_score={rng.randint(1, 10)}"



def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class _Writer:
    """Draws words, sentences and schema values for one reply.

    ``rng`` depends on the messages, seed and schema; ``style`` on the message texts
    alone, so that a prompt has its own typical lengths whatever the seed.
    """

    def __init__(
        self,
        messages: list[dict[str, Any]],
        seed: int,
        schema: dict[str, Any] | None,
        keywords: list[str],
    ) -> None:
        texts = [[m.get("role"), _text(m)] for m in messages]
        self.rng = _rng("reply", texts, seed, schema)
        style = _rng("style", texts)
        # One verbosity knob per prompt, so that rewording a prompt shifts typical lengths
        # (all in the same direction, so they do not cancel out), nudged by what the
        # prompt asks for, as a real model would be.
        prompt = " ".join(_text(m) for m in messages).lower()
        verbosity = style.random()
        if _BRIEF_RE.search(prompt):
            verbosity *= 0.35
        elif _VERBOSE_RE.search(prompt):
            verbosity = 0.65 + 0.35 * verbosity
        self.name_words = 1.6 + 2.8 * verbosity
        self.name_range = (2, 4)
        count = _WORD_COUNT_RE.search(prompt)
        if count:
            self.name_words = _NUMBERS[count.group(1)]
            self.name_range = (self.name_words, self.name_words)
        self.sentences = 2 + round(2 * verbosity)
        self.long_words = verbosity  # how often the longer of two candidate words wins
        self.keyword_share = style.uniform(0.3, 0.8)
        self.keywords = keywords[:12]
        self.root = schema or {}
        asked = _ITEM_COUNT_RE.search(
            " ".join(_text(m) for m in messages if m.get("role") == "user").lower()
        )
        self.items = int(asked.group(1)) if asked else None  # the outermost list's length

    # words and prose

    def keyword(self) -> str:
        pool: tuple[str, ...] = _NOUNS
        if self.keywords and self.rng.random() < self.keyword_share:
            pool = tuple(self.keywords)
        first, second = sorted((self.rng.choice(pool), self.rng.choice(pool)), key=len)
        return second if self.rng.random() < self.long_words else first

    def title(self) -> str:
        low, high = self.name_range
        count = min(high, max(low, round(self.rng.gauss(self.name_words, 0.7))))
        words: list[str] = []
        for _ in range(count * 4):
            adjective = len(words) < count - 1 and self.rng.random() < 0.3
            word = self.rng.choice(_ADJECTIVES) if adjective else self.keyword()
            if word not in words:
                words.append(word)
            if len(words) == count:
                break
        return " ".join(word if word.isupper() else word.capitalize() for word in words)

    def sentence(self, templates: tuple[str, ...] = _SENTENCES) -> str:
        template = self.rng.choice(templates)
        text = template.format(
            k=self.keyword(),
            n=self.rng.choice(_NOUNS),
            a=self.rng.choice(_ADJECTIVES),
            v=self.rng.choice(_VERBS),
        )
        return text[0].upper() + text[1:]

    def prose(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def chat(self) -> str:
        count = self.sentences + self.rng.randint(0, 1)
        return " ".join([self.sentence(_OPENINGS)] + [self.sentence() for _ in range(count)])

    # schema values

    def document(self, schema: dict[str, Any] | None) -> Any:
        if not schema or not _is_typed(schema):
            return {"answer": self.prose(self.sentences), "keywords": self.words(3)}
        return self.value(schema, "", 0)

    def words(self, count: int) -> list[str]:
        return [self.keyword() for _ in range(count)]

    def value(self, schema: dict[str, Any], field: str, depth: int) -> Any:
        if not isinstance(schema, dict):  # `true` and `{}` both allow anything
            return self.make_string({}, field, depth)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            return self.choose(options, field, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.choose([{**schema, "type": k} for k in kind], field, depth)
        if kind is None:
            kind = (
                "object" if "properties" in schema
                else "array" if "items" in schema or "prefixItems" in schema
                else "string"
            )  # fmt: skip
        maker = getattr(self, f"make_{kind}", self.make_string)
        return maker(schema, field, depth)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged."""
        while "$ref" in schema:
            target: Any = self.root
            for part in schema["$ref"].lstrip("#").strip("/").split("/"):
                if part:
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            properties = dict(merged.get("properties", {}))
            for part in map(self.resolve, schema["allOf"]):
                properties.update(part.get("properties", {}))
                merged = {**part, **merged}
            if properties:
                merged["properties"] = properties
            return merged
        return schema

    def choose(self, options: list[dict[str, Any]], field: str, depth: int) -> Any:
        typed = [self.resolve(o) for o in options]
        real = [o for o in typed if o.get("type") != "null"]
        if len(real) < len(typed) and (not real or depth >= _MAX_DEPTH or self.rng.random() < 0.2):
            return None
        return self.value(self.rng.choice(real), field, depth)

    def make_null(self, schema: dict[str, Any], field: str, depth: int) -> None:
        return None

    def make_boolean(self, schema: dict[str, Any], field: str, depth: int) -> bool:
        return self.rng.random() < 0.5

    def make_object(self, schema: dict[str, Any], field: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if properties:
            return {name: self.value(sub, name, depth + 1) for name, sub in properties.items()}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and depth < _MAX_DEPTH:
            keys = dict.fromkeys(self.words(self.rng.randint(1, 3)))
            return {key: self.value(extra, key, depth + 1) for key in keys}
        return {}

    def make_array(self, schema: dict[str, Any], field: str, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        if prefix:
            return [self.value(sub, field, depth + 1) for sub in prefix]
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, 4))
        if depth >= _MAX_DEPTH:
            count = low
        elif self.items is not None and low <= self.items <= schema.get("maxItems", 99):
            count, self.items = self.items, None
        else:
            count = self.rng.randint(min(max(low, 1), high), min(max(low + 1, 3), high))
        items = schema.get("items") or {}
        # Models rarely repeat an item, so avoid it even where the schema allows it.
        values: dict[str, Any] = {}
        for _ in range(count * 5):
            value = self.value(items, field, depth + 1)
            values.setdefault(json.dumps(value, sort_keys=True), value)
            if len(values) == count:
                break
        result = list(values.values())
        while len(result) < count and not schema.get("uniqueItems"):
            result.append(self.value(items, field, depth + 1))
        return result

    def make_integer(self, schema: dict[str, Any], field: str, depth: int) -> int:
        low, high = _bounds(schema, field, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first, last = -(-int(low) // step), int(high) // step
            if first <= last:
                return self.rng.randint(first, last) * step
        return self.rng.randint(int(low), int(high))

    def make_number(self, schema: dict[str, Any], field: str, depth: int) -> float:
        low, high = _bounds(schema, field, integer=False)
        value = round(self.rng.uniform(low, high), 2)
        return min(max(value, low), high)

    def make_string(self, schema: dict[str, Any], field: str, depth: int) -> str:
        text = self.string(schema.get("format", ""), field)
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        while len(text) < low:
            text = f"{text} {self.keyword()}".strip()
        if high is not None and len(text) > high:
            cut = text[: high + 1].rsplit(" ", 1)[0].rstrip(" ,.")
            text = cut if low <= len(cut) <= high else text[:high]
        return text

    def string(self, fmt: str, field: str) -> str:
        """A plausible string for a field called ``field``."""
        words = _field_words(field)
        stem = words[-1] if words else ""
        if fmt == "date-time" or stem in ("timestamp", "datetime", "at"):
            return self.moment().isoformat()
        if fmt == "date" or stem == "date":
            return self.moment().date().isoformat()
        if fmt == "time":
            return self.moment().time().isoformat()
        if fmt == "uuid" or stem in ("id", "uuid"):
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if fmt == "email" or "email" in words:
            return f"{self.keyword()}.{self.rng.choice(_NOUNS)}@example.com"
        if fmt in ("uri", "url") or stem in ("url", "uri", "link", "website", "homepage"):
            return f"https://example.com/{self.keyword()}/{self.rng.choice(_NOUNS)}"
        if stem in _TITLE_FIELDS:
            return self.title()
        if stem == "description":
            return self.sentence()
        if stem in _PROSE_FIELDS:
            return self.prose(max(1, self.sentences - 1 + self.rng.randint(0, 1)))
        if stem in _WORD_FIELDS:
            return self.keyword()
        adjective = [self.rng.choice(_ADJECTIVES)] if self.rng.random() < 0.5 else []
        return " ".join(adjective + [self.keyword()])

    def moment(self) -> datetime.datetime:
        start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        return start + datetime.timedelta(seconds=self.rng.randrange(6 * 365 * 86400))


def _is_typed(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` says anything about the shape of the answer."""
    if schema.get("type") == "object":
        return bool(schema.get("properties")) or isinstance(
            schema.get("additionalProperties"), dict
        )
    return any(
        key in schema
        for key in (
            "type",
            "properties",
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "enum",
            "const",
            "items",
        )
    )


def _field_words(field: str) -> list[str]:
    """``jobName``, ``job_name`` and ``job-name`` all give ``["job", "name"]``."""
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", field)]


# (words in the field name, range for a number) tried in order; the first match wins.
_NUMBER_RANGES: tuple[tuple[frozenset[str], tuple[float, float]], ...] = (
    (frozenset({"age"}), (18.0, 80.0)),
    (frozenset({"year"}), (1990.0, 2025.0)),
    (frozenset({"confidence", "probability", "ratio", "fraction", "share"}), (0.0, 1.0)),
    (frozenset({"score", "rating", "grade", "rank"}), (1.0, 10.0)),
    (frozenset({"count", "number", "num", "quantity", "size", "n"}), (1.0, 20.0)),
    (frozenset({"price", "cost", "salary", "amount"}), (10.0, 1000.0)),
    (frozenset({"percent", "percentage", "pct"}), (0.0, 100.0)),
)


def _bounds(schema: dict[str, Any], field: str, *, integer: bool) -> tuple[float, float]:
    """The range to draw a number from: the schema's bounds, else a guess from the name."""
    words = set(_field_words(field))
    low, high = next((r for names, r in _NUMBER_RANGES if names & words), (0.0, 100.0))
    if integer and high <= 1.0:
        high = 100.0
    unit = 1.0 if integer else 0.01
    floor = schema.get("minimum")
    if "exclusiveMinimum" in schema:
        floor = schema["exclusiveMinimum"] + unit
    ceiling = schema.get("maximum")
    if "exclusiveMaximum" in schema:
        ceiling = schema["exclusiveMaximum"] - unit
    span = high - low
    if floor is not None and ceiling is not None:
        low, high = floor, ceiling
    elif floor is not None:
        low, high = floor, max(high, floor + span)
    elif ceiling is not None:
        low, high = min(low, ceiling - span), ceiling
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return low, max(low, high)
