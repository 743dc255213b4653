"""Keeping secrets out of the log: which values are secrets, and one function that
takes them out of any text the log records.

    secrets = _secrets_in({"api_key": "sk-…", "extra_headers": {...}})
    _remember(secrets)
    _redact(error_text)                 # "Incorrect API key provided: [REDACTED]"

A secret is a string given under a name that looks like one (``api_key``,
``Authorization``, ``aws_secret_access_key``, ``OPENAI_API_KEY`` …), wherever it
is given: a bot's arguments, an experiment's metadata, or the environment, where
litellm finds provider keys. Every secret a bot or an experiment is given is
remembered for the life of the process, so a run's traceback is cleaned of a key
that only the bot knew.

Text comes in two kinds. Error messages and tracebacks lose every known secret
and also whatever looks like a credential (a bearer token, an ``sk-`` key, a
provider's masked copy of a key, a password or token in a URL). Messages and
replies are data, logged as written: they lose only known secrets (of 6
characters or more, so a short placeholder key does not eat ordinary words) and
the passwords of URLs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_REDACTED = "[REDACTED]"

# A name is a secret's if one of its words is one of these, or ends like the last
# four ("apikey", "authtoken"). Whole words, so max_tokens, author and keyword are not.
_SECRET_WORDS = frozenset(
    {
        "key", "secret", "token", "password", "passwd", "pwd", "passphrase", "auth",
        "authorization", "credential", "credentials", "cookie", "bearer", "sig", "signature",
    }
)
_SECRET_ENDINGS = ("key", "token", "secret", "password")
# Under these every string is a secret, unless it is too short to be one.
_SECRET_CONTAINERS = frozenset({"header", "headers"})
_NAME_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Secrets this long are removed wherever they appear; shorter ones only as whole
# words and only from error text; shorter still, never (they are not credentials).
_ANYWHERE = 6
_SHORTEST = 3
_NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    """True when a value under ``name`` is a secret: ``api_key``, ``x-api-key``,
    ``Authorization``, ``OPENAI_API_KEY``, ``vertex_credentials``, ``HF_TOKEN`` …"""
    words = [word.lower() for word in _NAME_WORDS.findall(name)]
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS) for word in words)


def _is_container_name(name: str) -> bool:
    return any(word.lower() in _SECRET_CONTAINERS for word in _NAME_WORDS.findall(name))


# --- finding secrets ---------------------------------------------------------------


def _secrets_in(values: Mapping[str, Any]) -> list[str]:
    """Every secret among ``values`` (a bot's arguments, an experiment's metadata):
    strings under a secret's name at any depth, strings under headers, a JSON
    string's secret members, and the passwords and secret query parameters of URLs."""
    found: list[str] = []

    def visit(name: str, value: Any, inherited: bool) -> None:
        own = _is_secret_name(name)
        if isinstance(value, Mapping):
            for key, inner in value.items():
                visit(str(key), inner, own or inherited or _is_container_name(name))
        elif isinstance(value, (list, tuple)):
            for inner in value:
                visit(name, inner, inherited)
        elif isinstance(value, str):
            if own or (inherited and len(value) >= _ANYWHERE):
                found.append(value)
                if value[:7].lower() == "bearer ":
                    found.append(value[7:])
                if value.lstrip().startswith("{"):  # a JSON credential: its secret members
                    try:
                        members = json.loads(value)
                    except ValueError:
                        members = None
                    if isinstance(members, dict):
                        for key, inner in members.items():
                            visit(str(key), inner, False)
            elif "://" in value:
                found.extend(_url_secrets(value))

    for name, value in values.items():
        visit(str(name), value, False)
    return sorted({s for s in found if len(s) >= _SHORTEST}, key=len, reverse=True)


def _url_secrets(url: str) -> list[str]:
    """The password of a URL, and its query parameters named like secrets."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if v and _is_secret_name(k)]
    except ValueError:
        return []
    return found


class _Known:
    """The secrets remembered so far, and the regexes that find them (compiled once
    per new secret, so redacting a message is a few substring checks)."""

    def __init__(self, secrets: frozenset[str] = frozenset()):
        ordered = sorted(secrets, key=len, reverse=True)
        self.secrets = secrets
        self.long = tuple(s for s in ordered if len(s) >= _ANYWHERE)
        long = [re.escape(s) for s in self.long]
        short = [rf"(?<!\w){re.escape(s)}(?!\w)" for s in ordered if len(s) < _ANYWHERE]
        self.in_content = re.compile("|".join(long)) if long else None
        self.in_errors = re.compile("|".join(long + short)) if ordered else None


_known = _Known()
_known_lock = threading.Lock()
_environment_read = False


def _remember(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` out of every text redacted from now on, in this process."""
    global _known
    new = frozenset(s for s in secrets if len(s) >= _SHORTEST)
    if not new <= _known.secrets:
        with _known_lock:
            _known = _Known(_known.secrets | new)


def _remember_environment() -> None:
    """Remember the secrets in the environment as it is now. Reading it takes a
    while, so it is read when a bot is made and for each error, not for each message."""
    global _environment_read
    _environment_read = True
    _remember(_environment_secrets())


def _environment_secrets() -> list[str]:
    """Values of environment variables named like secrets (``OPENAI_API_KEY`` and
    every other provider key litellm reads), and keys set on litellm itself
    (``litellm.api_key``, ``litellm.openai_key`` …)."""
    found = [
        value
        for name, value in os.environ.items()
        if len(value) >= _ANYWHERE and _is_secret_name(name) and not value.isdigit()
        and value.lower() not in _NOT_SECRETS
    ]
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        for name in _litellm_key_names(litellm):
            value = getattr(litellm, name, None)
            if isinstance(value, str) and len(value) >= _ANYWHERE:
                found.append(value)
    return found


_litellm_keys: tuple[str, ...] | None = None


def _litellm_key_names(litellm: Any) -> tuple[str, ...]:
    global _litellm_keys
    if _litellm_keys is None:
        _litellm_keys = tuple(
            name for name in list(vars(litellm)) if name == "api_key" or name.endswith("_key")
        )
    return _litellm_keys


# --- taking them out -----------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:'\"]*):[^/@\s'\"]+@")
# What looks like a credential in error text, known to us or not.
_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # ?key=…, &access_token=…, &sig=… in any URL.
    (
        re.compile(r"([?&;])([\w.\-]+)=([^&#\s'\"]+)"),
        lambda m: f"{m[1]}{m[2]}={_REDACTED}" if _is_secret_name(m[2]) else m[0],
    ),
    # Authorization: Bearer … / Basic … (a token has a digit or a symbol; a word has not).
    (
        re.compile(r"\b(Bearer|Basic)\s+(?=[\w\-.~+/]*[\d\-.~+/])[\w\-.~+/]{8,}=*", re.I),
        lambda m: f"{m[1]} {_REDACTED}",
    ),
    # 'api_key': '…', "x-api-key": "…", password="…": a quoted value under a secret's name.
    (
        re.compile(r"""(?<![\w\-'"])(['"]?)([\w\-]+)\1(\s*[:=]\s*)(['"])([^'"\s]{3,})\4"""),
        lambda m: f"{m[1]}{m[2]}{m[1]}{m[3]}{m[4]}{_REDACTED}{m[4]}"
        if _is_secret_name(m[2]) else m[0],
    ),
    # OpenAI- and Anthropic-style keys, and a provider's masked copy of a key
    # (sk-proj-ABCD****4068): its visible ends are real pieces of the key.
    (re.compile(r"\bsk-[\w\-]{16,}"), _REDACTED),
    (re.compile(r"(?<![\w\-.*])(?:[\w\-.]*\w\*{3,}|\*{3,}\w)[\w\-.*]*"), _REDACTED),
)


def _redact(text: str | None, *, content: bool = False) -> str | None:
    """``text`` without any secret: every one remembered or in the environment, and
    (unless ``content``: a message or a reply, logged as written) whatever looks
    like a credential."""
    if not text:
        return text
    if not content:
        _remember_environment()  # a key set since, and echoed in this error
    elif not _environment_read:
        _remember_environment()
    return _take_out(text, content)


def _take_out(text: str, content: bool) -> str:
    known = _known
    if content:
        if known.in_content is not None and any(secret in text for secret in known.long):
            text = known.in_content.sub(_REDACTED, text)
    elif known.in_errors is not None:
        text = known.in_errors.sub(_REDACTED, text)
    if "://" in text:
        # The password of any URL (``https://user:password@host``), known to us or not.
        text = _URL_PASSWORD.sub(rf"\1:{_REDACTED}@", text)
    if not content:
        for credential, replacement in _CREDENTIAL_PATTERNS:
            text = credential.sub(replacement, text)
    return text


def _redact_exception(error: BaseException) -> BaseException:
    """Take secrets out of ``error`` and every exception chained to it, in place:
    their args, their string attributes (litellm's ``message``), the body of a
    provider's reply, and notes. Whoever catches it, prints it or logs it later
    sees no secret. Returns ``error``."""
    _remember_environment()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            current.args = tuple(_scrub(arg) for arg in current.args)
            for name, value in list(vars(current).items()):
                if isinstance(value, (str, dict, list)) and not name.startswith("__"):
                    setattr(current, name, _scrub(value))
            notes = getattr(current, "__notes__", None)
            if isinstance(notes, list):
                notes[:] = [_scrub(note) for note in notes]
        except (AttributeError, TypeError):  # an exception type that forbids it: skip
            pass
        current = current.__cause__ or current.__context__
    return error


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _take_out(value, content=False)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _mask(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` (an experiment's metadata) with every secret replaced by
    ``[REDACTED]`` and remembered; other strings lose the passwords of URLs."""
    _remember(_secrets_in(values))

    def mask(name: str, value: Any, secret: bool) -> Any:
        secret = secret or _is_secret_name(name)
        if isinstance(value, dict):
            return {k: mask(str(k), v, secret) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(name, v, secret) for v in value]
        if isinstance(value, str):
            return _REDACTED if secret else _redact(value, content=True)
        return value

    return {k: mask(str(k), v, False) for k, v in values.items()}
