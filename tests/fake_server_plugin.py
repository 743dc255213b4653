"""Pytest plugin: the ``fake_openai`` fixture, an OpenAI-compatible server on 127.0.0.1.

Load it with ``pytest_plugins = ["fake_server_plugin"]`` in the root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptlog.testing import FakeOpenAIServer


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A running ``FakeOpenAIServer`` for one test; it stops by itself after two minutes."""
    with FakeOpenAIServer(max_seconds=120) as server:
        yield server
