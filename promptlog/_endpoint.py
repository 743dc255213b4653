"""What the test servers have in common: an OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations


class OpenAICompatibleEndpoint:
    """A server on 127.0.0.1 that litellm reaches as ``openai/<model>`` at ``base_url``.

    Subclasses say which port they listen on, the model name they answer to, and the
    dummy key a client sends.
    """

    _served_model: str
    _dummy_key: str

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """What to pass as litellm's ``api_base``, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """A litellm model name that routes to this server's OpenAI-style API."""
        return f"openai/{self._served_model}"

    @property
    def bot_kwargs(self) -> dict[str, str]:
        """What a promptlog bot needs to talk to this server:
        ``SimpleBot("…", **server.bot_kwargs)``."""
        return {"model_name": self.model, "api_base": self.base_url, "api_key": self._dummy_key}
