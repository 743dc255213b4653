"""The test run's warning filters: pydantic's notes about ``ReadOnly`` TypedDict items
(raised while litellm's types are built) are noise, in the singular and the plural."""

from __future__ import annotations

import warnings

import pytest
from pydantic import TypeAdapter
from typing_extensions import ReadOnly, TypedDict


class OneReadOnly(TypedDict):
    a: ReadOnly[int]


class TwoReadOnly(TypedDict):
    a: ReadOnly[int]
    b: ReadOnly[str]


@pytest.mark.parametrize("typed_dict", [OneReadOnly, TwoReadOnly])
def test_pydantic_readonly_warnings_are_filtered(typed_dict):
    with warnings.catch_warnings(record=True) as caught:  # keeps the run's filters
        TypeAdapter(typed_dict)
    assert [str(w.message) for w in caught] == []
