"""Pytest plugin: the ``local_model`` fixture, a real tiny model (SmolLM2-135M-Instruct)
served by llama.cpp on 127.0.0.1, one server for the whole session.

Under CI (``CI`` set) a missing runtime or model fails the tests that need it:
``.ci/run`` installs xllamacpp with the test extra and fetches the model first.
Elsewhere the tests skip only when the model cannot be fetched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from promptlog.errors import LocalModelError
from promptlog.testing import LocalModelServer, find_test_model


@pytest.fixture(scope="session")
def local_model() -> Iterator[LocalModelServer]:
    """A running ``LocalModelServer`` (2 requests at once); it ends by itself after 10 minutes."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f'xllamacpp is not importable ({exc}): pip install -e ".[test]" installs it.',
            pytrace=False,
        )
    try:
        model = find_test_model()
    except LocalModelError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"The test model is missing under CI: {exc}", pytrace=False)
        pytest.skip(f"The test model cannot be had here: {exc}")
    with LocalModelServer(model, n_parallel=2, max_seconds=600) as server:
        yield server
