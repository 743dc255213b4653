"""``@metric``: what is accepted, what is refused, and how it is stored."""

from __future__ import annotations

import inspect
import math
import sqlite3

import numpy as np
import pytest

import promptlog
from promptlog import Experiment, metric
from promptlog.errors import MetricError


def returning(value):
    @metric
    def score():
        """A score."""
        return value

    return score


@pytest.mark.parametrize(
    ("value", "stored", "kind"),
    [
        (True, 1.0, "bool"),
        (False, 0.0, "bool"),
        (3, 3.0, "int"),
        (-7, -7.0, "int"),
        (2**40, float(2**40), "int"),
        (2**53, float(2**53), "int"),
        (-(2**53), -float(2**53), "int"),
        (0.25, 0.25, "float"),
        (-1e300, -1e300, "float"),
        (np.int64(5), 5.0, "int"),
        (np.uint8(7), 7.0, "int"),
        (np.float32(0.5), 0.5, "float"),
        (np.float64(2.5), 2.5, "float"),
        (np.bool_(True), 1.0, "bool"),
    ],
)
def test_accepted_values_are_stored_with_their_kind(value, stored, kind, db_path):
    exp = Experiment("accepted", quiet=True)
    (returned,) = exp.run(returning(value))
    assert returned is value  # the caller gets its value back unchanged
    row = sqlite3.connect(db_path).execute("SELECT name, value, kind FROM metrics").fetchone()
    assert row == ("score", stored, kind)
    assert exp.runs[0].metrics == {"score": stored}


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("0.9", "str"),
        (b"1", "bytes"),
        (None, "NoneType"),
        (math.nan, "float"),
        (math.inf, "float"),
        (-math.inf, "float"),
        (np.float64("nan"), "float64"),
        ([1, 2], "list"),
        ((1,), "tuple"),
        ({"a": 1}, "dict"),
        ({1}, "set"),
        (np.array([1.0, 2.0]), "ndarray"),
        (object(), "object"),
        (1 + 2j, "complex"),
    ],
)
def test_refused_values_name_the_metric_and_the_type(value, type_name, db_path):
    with pytest.raises(MetricError, match=rf"Metric 'score' returned .*{type_name}"):
        returning(value)()  # outside an experiment it still validates

    exp = Experiment("refused", quiet=True)
    with pytest.raises(promptlog.errors.ExperimentFailedError):
        exp.run(returning(value))
    assert isinstance(exp.runs[0].error, MetricError)
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM metrics").fetchone() == (0,)


@pytest.mark.parametrize(
    "value", [2**53 + 1, -(2**53) - 1, 2**60, 10**400, np.int64(2**53 + 1), np.uint64(2**64 - 1)]
)
def test_integers_a_double_cannot_hold_exactly_are_refused(value, db_path):
    with pytest.raises(MetricError, match=r"Metric 'score' .*not exactly representable.*float"):
        returning(value)()

    exp = Experiment("huge", quiet=True)
    with pytest.raises(promptlog.errors.ExperimentFailedError):
        exp.run(returning(value))
    assert isinstance(exp.runs[0].error, MetricError)
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM metrics").fetchone() == (0,)
    if abs(int(value)) < 2**1000:
        assert returning(float(value))() == float(value)  # as a float, it is accepted


def test_outside_an_experiment_a_metric_only_validates_and_returns(db_path):
    assert returning(4)() == 4
    promptlog.flush()
    assert not db_path.exists() or sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM metrics"
    ).fetchone() == (0,)


def test_the_decorator_keeps_name_signature_and_docstring():
    @metric
    def accuracy(predicted: str, expected: str = "") -> bool:
        """Whether the prediction is right."""
        return predicted == expected

    assert accuracy.__name__ == "accuracy"
    assert accuracy.__doc__ == "Whether the prediction is right."
    assert list(inspect.signature(accuracy).parameters) == ["predicted", "expected"]
    assert inspect.signature(accuracy) == inspect.signature(accuracy.__wrapped__)
