"""What ``import promptlog`` offers: the names users call, the types they get back and
every error promptlog raises on purpose, all loaded lazily."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import promptlog
from promptlog import errors

ERRORS = sorted(
    name for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, errors.PromptlogError)
)  # fmt: skip
RETURNED_TYPES = ["Log", "Records", "Comparison", "PromptDiff", "Experiment", "PromptVersion"]


@pytest.mark.parametrize("name", ERRORS + RETURNED_TYPES)
def test_errors_and_returned_types_are_exported(name):
    assert name in promptlog.__all__
    assert getattr(promptlog, name).__name__ == name


def test_what_users_get_back_is_what_promptlog_exports():
    assert isinstance(promptlog.open(), promptlog.Log)
    assert promptlog.Log.experiment_records.__annotations__["return"] == "Records"
    assert promptlog.Comparison.__module__ == "promptlog.comparisons"
    assert issubclass(promptlog.ExperimentFailedError, promptlog.PromptlogError)


def test_all_matches_the_lazy_table_and_star_import_works():
    from promptlog import _LAZY

    assert sorted(promptlog.__all__) == sorted([*_LAZY, "load_ipython_extension"])
    assert sorted(dir(promptlog)) == sorted(promptlog.__all__)
    namespace: dict[str, object] = {}
    exec("from promptlog import *", namespace)  # noqa: S102
    assert set(promptlog.__all__) <= set(namespace)


def test_importing_promptlog_loads_nothing_heavy():
    script = (
        "import sys, promptlog\n"
        "promptlog.WriteError, promptlog.MetricError\n"
        "print([m for m in ('litellm', 'pandas', 'promptlog.read', 'promptlog.bots') "
        "if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
