"""Pytest plugin: the ``fake_openai`` fixture, an OpenAI-compatible server on 127.0.0.1.

Load it with ``pytest_plugins = ["fake_server_plugin"]`` in the root ``conftest.py``.
A test marked ``@pytest.mark.fake_openai(**options)`` gets a server made with those
options, e.g. ``response_formats=["json_object"]`` for one that refuses JSON schemas.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptlog.testing import FakeOpenAIServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_openai(**options): options of the test's FakeOpenAIServer"
    )


@pytest.fixture
def fake_openai(request: pytest.FixtureRequest) -> Iterator[FakeOpenAIServer]:
    """A running ``FakeOpenAIServer`` for one test; it stops by itself after two minutes."""
    marker = request.node.get_closest_marker("fake_openai")
    options = {"max_seconds": 120, **(marker.kwargs if marker else {})}
    with FakeOpenAIServer(**options) as server:
        yield server
