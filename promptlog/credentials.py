"""Credentials: telling a missing or rejected provider key from other failures, and
saying in one sentence what to set.

litellm raises a missing key in several ways: ``AuthenticationError`` for some
providers, but a server error (OpenAI's "Missing credentials") or a connection
error (Gemini's "Missing Gemini API key") for others, classes that would otherwise
be retried. None of them goes away by trying again.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import CredentialsError
from .redaction import _is_secret_name, _redact

_MISSING = re.compile(
    r"missing (?:credentials|[\w ]{0,40}?\bapi[ _-]?(?:key|token)\b|(?:auth|access) token)"
    r"|api[ _-]?key (?:client option )?must be set"
    r"|no (?:api[ _-]?)?key (?:is )?(?:set|provided|found)"
    r"|unable to locate credentials"
    r"|credentials (?:were )?not found",
    re.IGNORECASE,
)
# litellm's prefixes: "litellm.AuthenticationError: AuthenticationError: OpenAIException - "
_PREFIXES = re.compile(r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)?(?:\w+Exception\s*-\s*)?")


def _is_credentials_error(error: BaseException) -> bool:
    """A provider key missing or rejected: an authentication error, or litellm
    saying (in whatever class, at any depth of the chain) that credentials are missing."""
    import openai

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, openai.AuthenticationError) or _MISSING.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _credentials_error(
    error: BaseException, model: str, kwargs: dict[str, Any]
) -> CredentialsError:
    """The error a bot raises instead of ``error``: one sentence naming what to set."""
    said = _PREFIXES.sub("", _redact(str(error)) or "").strip().splitlines()
    said_text = f"; the provider said: {said[0]}" if said else ""
    if kwargs.get("api_key"):
        return CredentialsError(
            f"{model} rejected the api_key given to the bot: pass a valid key{said_text}", error
        )
    missing = _missing_variables(model)
    if missing:
        names = (
            f"the environment variable {missing[0]}" if len(missing) == 1
            else f"the environment variables litellm asks for ({', '.join(missing)})"
        )
        return CredentialsError(
            f"No credentials for {model}: set {names}, or pass api_key= to the bot{said_text}",
            error,
        )
    present = _provider_variables(model)
    if present:
        return CredentialsError(
            f"{model} rejected the credentials in {' or '.join(present)}: set it to a valid "
            f"key, or pass api_key= to the bot{said_text}",
            error,
        )
    return CredentialsError(
        f"{model} found no valid credentials: set the provider's key variable, or pass "
        f"api_key= to the bot{said_text}",
        error,
    )


def _missing_variables(model: str) -> list[str]:
    """The variables litellm says ``model`` needs and the environment lacks."""
    import litellm

    try:
        return list(litellm.validate_environment(model=model).get("missing_keys") or [])
    except Exception:  # an unknown model or provider: nothing to name
        return []


def _provider_variables(model: str) -> list[str]:
    """The secret variables set for ``model``'s provider (OPENAI_API_KEY for openai/…)."""
    import litellm

    try:
        provider = litellm.get_llm_provider(model=model)[1]
    except Exception:
        return []
    prefix = provider.upper().replace("_", "")
    names = [
        name for name in os.environ
        if _is_secret_name(name) and name.replace("_", "").upper().startswith(prefix)
    ]
    return sorted(names, key=lambda name: (not name.endswith("_API_KEY"), name))[:2]
