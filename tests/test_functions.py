"""Typed LLM functions and LLM strategies, through the public API, on the offline model,
litellm's mock_response, the fake server and (once) the real local model."""

from __future__ import annotations

import abc
import asyncio
import contextvars
import dataclasses
import enum
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Generic, Literal, Optional, TypeVar

import pytest
from faults_support import calls
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import promptlog
from promptlog import (
    Experiment,
    FunctionArgumentError,
    FunctionError,
    KnobError,
    SimpleBot,
    StructuredOutputError,
    bots,
    llm_function,
    llm_strategy,
)

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = "promptlog/offline"


@pytest.fixture(autouse=True)
def fresh_structured_output_choices(monkeypatch):
    monkeypatch.setattr(bots, "_chosen_modes", {}, raising=False)


class Summary(BaseModel):
    title: str
    bullet_points: list[str]


@llm_function(model_name=OFFLINE)
def summarize(text: str, max_bullets: int = 3) -> Summary:
    """Summarize the text in at most {{ max_bullets }} bullet points."""


def test_a_typed_function_returns_a_validated_model_and_logs_the_call(db_path):
    result = summarize("Pipelines move data from sources to models, nightly.")
    assert isinstance(result, Summary)
    (row,) = calls(db_path)
    assert row["bot_name"] == "test_functions.summarize"
    assert row["status"] == "succeeded"
    system, user = row["messages"]
    assert "summarize(text: str, max_bullets: int = 3) -> Summary" in system["content"]
    # The template used max_bullets; text, which it does not name, travels as JSON.
    assert user["content"].startswith("Summarize the text in at most 3 bullet points.")
    assert '"text": "Pipelines move data' in user["content"]
    assert '"max_bullets"' not in user["content"]
    version = summarize.versions()[-1]
    assert user["prompt_version_id"] == version.id
    assert version.role == "function"
    assert version.template.startswith("Summarize the text in at most {{ max_bullets }}")
    assert '"bullet_points"' in version.template  # the output schema is part of it


def test_a_wrong_argument_is_a_clear_error_and_no_call_is_made(db_path):
    with pytest.raises(FunctionArgumentError, match=r"so no model was called: text: .*string"):
        summarize(42)
    with pytest.raises(FunctionArgumentError, match="max_bullets"):
        summarize("text", max_bullets="many")
    with pytest.raises(FunctionArgumentError, match="missing a required argument"):
        summarize()
    with pytest.raises(TypeError):  # it is a TypeError, as Python's own would be
        summarize(42)
    promptlog.flush()
    assert not db_path.exists() or calls(db_path) == []


def test_a_function_whose_docstring_names_no_variable_gets_its_inputs_as_json(db_path):
    @llm_function(model_name="gpt-4o-mini", mock_response='{"return_value": 3}')
    def count_words(text: str, language: str = "en") -> int:
        """Count the words."""

    assert count_words("one two three") == 3
    (row,) = calls(db_path)
    user = row["messages"][-1]["content"]
    assert json.loads(user.split("```")[1]) == {"text": "one two three", "language": "en"}
    assert '"language"' in row["messages"][0]["content"]  # the inputs' schema


# --- return types ---------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Span(TypedDict):
    start: int
    end: int


class Shelf(BaseModel):
    label: str = Field(max_length=20)
    points: list[Point]
    spans: dict[str, Span]


RETURN_TYPES = [
    (int, lambda v: isinstance(v, int)),
    (float, lambda v: isinstance(v, float)),
    (bool, lambda v: isinstance(v, bool)),
    (Literal["yes", "no"], lambda v: v in ("yes", "no")),
    (Color, lambda v: isinstance(v, Color)),
    (list[str], lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)),
    (dict[str, int], lambda v: all(isinstance(i, int) for i in v.values())),
    (tuple[int, str], lambda v: isinstance(v, tuple) and isinstance(v[0], int)),
    (Optional[int], lambda v: v is None or isinstance(v, int)),  # noqa: UP045
    (int | str, lambda v: isinstance(v, (int, str))),
    (Summary, lambda v: isinstance(v, Summary)),
    (Point, lambda v: isinstance(v, Point)),
    (Span, lambda v: isinstance(v, dict) and set(v) == {"start", "end"}),
    (list[Point], lambda v: all(isinstance(p, Point) for p in v)),
    (Shelf, lambda v: isinstance(v, Shelf) and all(isinstance(p, Point) for p in v.points)),
]


@pytest.mark.parametrize(("return_type", "check"), RETURN_TYPES,
                         ids=[promptlog.replies.type_name(t) for t, _ in RETURN_TYPES])
def test_every_kind_of_return_type_comes_back_validated(db_path, return_type, check):
    def guess(question: str):
        """Answer the question."""

    guess.__annotations__["return"] = return_type
    function = llm_function(model_name=OFFLINE)(guess)
    assert check(function("What is it?"))
    (row,) = calls(db_path)
    wrapped = not (isinstance(return_type, type) and return_type in (Summary, Point, Span, Shelf))
    assert ("return_value" in row["response_parsed"]) == wrapped


def test_str_is_plain_text_with_no_json(db_path):
    @llm_function(model_name=OFFLINE)
    def describe(topic: str) -> str:
        """Describe {{ topic }} in two sentences."""

    text = describe("data pipelines")
    assert isinstance(text, str) and not text.startswith("{")
    (row,) = calls(db_path)
    assert "response_format" not in row["parameters"]
    assert row["response_parsed"] is None


def test_replies_are_read_past_code_fences_and_prose(db_path):
    @llm_function(model_name="gpt-4o-mini",
                  mock_response='Sure! Here it is:\n```json\n{"x": 1, "y": 2}\n```\nAnything else?')
    def origin() -> Point:
        """The origin, shifted."""

    assert origin() == Point(1, 2)
    assert [r["status"] for r in calls(db_path)] == ["succeeded"]


# --- generics ---------------------------------------------------------------------------

T = TypeVar("T")


@dataclasses.dataclass
class Customer:
    key: str
    first_name: str
    birthdate: date


@llm_function(model_name=OFFLINE)
def pick_best(items: list[T], criterion: str) -> T:
    """Pick the item that best fits: {{ criterion }}."""


def test_a_typevar_is_resolved_from_the_arguments(db_path):
    customers = [Customer("a", "Ada", date(1990, 1, 1)), Customer("b", "Bo", date(1980, 2, 2))]
    assert isinstance(pick_best(customers, "the oldest"), Customer)
    assert isinstance(pick_best([1, 5, 3], "the largest"), int)
    first, second = calls(db_path)
    assert first["parameters"]["response_format"]["schema_name"] == "Customer"
    assert second["response_parsed"].keys() == {"return_value"}
    # Each binding is a version of its own: the schemas differ.
    assert len(pick_best.versions()) == 2


Params = TypeVar("Params")
Result = TypeVar("Result")
Hyper = TypeVar("Hyper")


class TaskRun(BaseModel, Generic[Params, Result, Hyper]):
    params: Params
    result: Result
    hyperparameters: Hyper


class SearchParams(BaseModel):
    query: str = Field(max_length=30)


class Learning(BaseModel):
    rate: float


class Optimizer:
    @staticmethod
    @llm_function(model_name=OFFLINE)
    def suggest_next(
        history: list[TaskRun[Params, Result, Hyper]], goal: str
    ) -> TaskRun[Params, Result, Hyper]:
        """Suggest the next run, to reach this goal: {{ goal }}."""


def test_generic_pydantic_models_are_parametrised_from_the_arguments(db_path):
    history = [
        TaskRun[SearchParams, float, Learning](
            params=SearchParams(query="cats"), result=0.5, hyperparameters=Learning(rate=0.1)
        )
    ]
    suggestion = Optimizer.suggest_next(history, "a better result")
    assert isinstance(suggestion, TaskRun)
    assert isinstance(suggestion.params, SearchParams)
    assert isinstance(suggestion.hyperparameters, Learning)
    (row,) = calls(db_path)
    assert "SearchParams" in row["parameters"]["response_format"]["schema_name"]


# --- retries, server modes --------------------------------------------------------------


def test_an_invalid_reply_is_fed_back_and_asked_again(db_path, fake_openai):
    fake_openai.enqueue(content='{"title": "only a title"}')
    fake_openai.enqueue(content='{"title": "T", "bullet_points": ["a", "b"]}')

    @llm_function(**fake_openai.bot_kwargs)
    def outline(text: str) -> Summary:
        """Outline the text."""

    assert outline("some text") == Summary(title="T", bullet_points=["a", "b"])
    rows = calls(db_path)
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "invalid"), (2, "succeeded")]
    assert "bullet_points" in rows[0]["error"]
    second = fake_openai.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"title": "only a title"}'}
    assert "did not validate" in second[-1]["content"]


def test_when_retries_run_out_every_attempt_is_in_the_error(db_path):
    @llm_function(model_name="gpt-4o-mini", mock_response="no JSON at all", max_retries=1)
    def outline(text: str) -> Summary:
        """Outline the text."""

    with pytest.raises(StructuredOutputError, match="after 2 attempts") as caught:
        outline("x")
    assert [reply for reply, _ in caught.value.attempts] == ["no JSON at all"] * 2
    assert [r["status"] for r in calls(db_path)] == ["invalid", "invalid"]


@pytest.mark.fake_openai(response_formats=["text"])
def test_a_server_that_refuses_response_format_gets_the_schema_in_the_prompt(
    db_path, fake_openai
):
    @llm_function(model_name="openai/gpt-4o-mini", api_base=fake_openai.base_url,
                  api_key="sk-fake")
    def pair(hint: str) -> tuple[int, int]:
        """Two numbers."""

    assert isinstance(pair("small"), tuple)
    rows = calls(db_path)
    assert [r["parameters"]["structured_output"] for r in rows] == [
        "json_schema", "json_object", "prompt"
    ]
    assert rows[-1]["status"] == "succeeded"
    assert "JSON schema" in fake_openai.requests[-1]["messages"][0]["content"]


# --- reasoning, async, model binding ----------------------------------------------------


def test_reasoning_is_asked_for_first_logged_and_not_returned(db_path):
    reply = '{"reasoning": "Two plus two is four.", "return_value": 4}'

    @llm_function(model_name="gpt-4o-mini", reasoning=True, mock_response=reply)
    def add(a: int, b: int) -> int:
        """Add {{ a }} and {{ b }}."""

    assert add(2, 2) == 4
    (row,) = calls(db_path)
    assert row["response_parsed"] == {"reasoning": "Two plus two is four.", "return_value": 4}
    assert "reasoning" in row["messages"][0]["content"]
    assert "reasoning: step by step" in add.versions()[-1].template


def test_async_functions_are_awaitable_and_logged_the_same(db_path):
    @llm_function(model_name=OFFLINE)
    async def headline(topic: str) -> Summary:
        """Write a headline about {{ topic }}."""

    async def main() -> list[Summary]:
        return await asyncio.gather(*(headline(f"topic {i}") for i in range(6)))

    results = asyncio.run(main())
    assert all(isinstance(r, Summary) for r in results)
    rows = calls(db_path)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"succeeded"}
    assert len({r["messages"][1]["prompt_version_id"] for r in rows}) == 1


def test_a_bot_or_the_configured_default_gives_the_model(db_path, monkeypatch):
    bot = SimpleBot("You are terse.", model_name="gpt-4o-mini", mock_response='{"return_value": 7}')

    @llm_function(bot=bot)
    def lucky() -> int:
        """A lucky number."""

    assert lucky() == 7
    assert calls(db_path)[0]["messages"][0]["content"].startswith("You are terse.")

    @llm_function
    def unlucky() -> int:
        """An unlucky number."""

    monkeypatch.delenv("PROMPTLOG_MODEL", raising=False)
    with pytest.raises(FunctionError, match=r"no model: .*configure\(model_name=.*PROMPTLOG_MODEL"):
        unlucky()
    promptlog.configure(model_name=OFFLINE)
    try:
        assert isinstance(unlucky(), int)
        promptlog.configure(model_name="promptlog/another")  # read at each call
        assert isinstance(unlucky(), int)
        assert calls(db_path)[-1]["model"] == "promptlog/another"
        monkeypatch.setenv("PROMPTLOG_MODEL", "gpt-4o-mini")  # the environment wins
        with promptlog.overrides({unlucky: {"mock_response": '{"return_value": 13}'}}):
            assert unlucky() == 13
    finally:
        promptlog.configure(model_name=None)
    assert calls(db_path)[-1]["model"] == "gpt-4o-mini"


def test_a_function_needs_a_return_annotation():
    with pytest.raises(FunctionError, match="no return annotation"):
        @llm_function(model_name=OFFLINE)
        def nothing(x: int):
            """Do something."""
    with pytest.raises(FunctionError, match=r"takes \*rest; name each argument"):
        @llm_function(model_name=OFFLINE)
        def anything(*rest: int) -> int:
            """Do something."""


# --- versions ---------------------------------------------------------------------------


def _define(doc: str, return_type: object, arg_type: object = str):
    def classify(text):
        pass

    classify.__doc__ = doc
    classify.__annotations__.update(text=arg_type, **{"return": return_type})
    return llm_function(model_name=OFFLINE, name="tests.classify")(classify)


def _version_hash(function) -> str:
    function("some text")
    return function.versions()[-1].hash


def test_the_version_changes_with_the_docstring_and_the_types_and_not_otherwise(db_path):
    base = _version_hash(_define("Classify: {{ text }}", Literal["a", "b"]))
    assert _version_hash(_define("Classify: {{ text }}", Literal["a", "b"])) == base
    assert _version_hash(_define("  Classify: {{ text }}\n  ", Literal["a", "b"])) == base
    assert _version_hash(_define("Classify this: {{ text }}", Literal["a", "b"])) != base
    assert _version_hash(_define("Classify: {{ text }}", Literal["a", "b", "c"])) != base
    assert _version_hash(_define("Classify:", Literal["a", "b"])) != base  # text sent as JSON
    function = _define("Classify: {{ text }}", Literal["a", "b"])
    function("another text, another call")
    assert [v.version for v in function.versions()] == [1, 2, 3, 4]  # reverting reuses v1
    diff = promptlog.diff("tests.classify", 1, 3)
    assert '+        "c"' in str(diff).splitlines()


def test_a_call_in_an_experiment_records_the_version_on_the_run(db_path):
    with Experiment("summaries", num_executions=2) as exp:
        summarize("Some text.")
    promptlog.flush()
    conn = sqlite3.connect(db_path)
    linked = conn.execute(
        "SELECT DISTINCT pv.name FROM run_prompt_versions r "
        "JOIN prompt_versions pv ON pv.id = r.prompt_version_id"
    ).fetchall()
    assert linked == [("test_functions.summarize",)]
    assert exp.to_pandas().shape[0] == 2


# --- knobs ------------------------------------------------------------------------------


@llm_function(model_name=OFFLINE)
def tag(text: str) -> list[str]:
    """Give tags for the text."""


def test_template_and_demo_overrides_in_eight_concurrent_executions(db_path):
    start = threading.Barrier(8)

    def execution(i: int) -> tuple[int, int]:
        demos = [{"inputs": {"text": f"demo text {i}"}, "output": [f"demo-tag-{i}"]}]
        start.wait()
        with promptlog.overrides({tag: {"template": f"Tags, style {i}:", "demos": demos}}):
            result = tag(f"text {i}")
        assert isinstance(result, list)
        return i, tag.versions()[-1].id

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: contextvars.copy_context().run(execution, i), range(8)))
    rows = calls(db_path)
    assert len(rows) == 8
    for row in rows:
        system, demo_user, demo_answer, user = row["messages"]
        i = user["content"].split("style ")[1][0]
        assert demo_user["content"].startswith(f"Tags, style {i}:")
        assert f'"demo text {i}"' in demo_user["content"]
        assert json.loads(demo_answer["content"]) == {"return_value": [f"demo-tag-{i}"]}
        assert f'"text {i}"' in user["content"]
    # Each template and demo set is a version of the same function.
    versions = tag.versions()
    assert len(versions) == 8 and {v.name for v in versions} == {"test_functions.tag"}
    assert all("demos: 1 (sha256:" in v.template for v in versions)
    assert len({r["messages"][-1]["prompt_version_id"] for r in rows}) == 8


def test_overrides_are_checked_on_entry(db_path):
    with pytest.raises(KnobError, match="takes no parameter 'topic'"):
        with promptlog.overrides({tag: {"template": "About {{ topic }}"}}):
            pass
    with pytest.raises(KnobError, match="inputs"):
        with promptlog.overrides({tag: {"demos": [{"output": ["x"]}]}}):
            pass
    with promptlog.overrides({tag: {"temperature": 0.7, "seed": 3}}):
        tag("text")
    (row,) = calls(db_path)
    assert (row["parameters"]["temperature"], row["parameters"]["seed"]) == (0.7, 3)


# --- strategies -------------------------------------------------------------------------


def _load_example():
    spec = importlib.util.spec_from_file_location(
        "customer_database", ROOT / "examples" / "customer_database.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["customer_database"] = module
    spec.loader.exec_module(module)
    return module


def test_the_customer_database_example_end_to_end(db_path):
    example = _load_example()
    made = example.MockCustomerDatabase.create_mock_customers(3)
    assert len(made) == 3 and all(isinstance(c, example.Customer) for c in made)
    database = example.MockCustomerDatabase()
    database.load()  # a real body, left alone: it calls create_mock_customers(5)
    assert len(database.customers) == 5
    ages = [customer.age for customer in database.customers]
    assert all(type(age) is int for age in ages)
    keys = database.find_customer_key("born in the 1990s")
    assert isinstance(keys, list) and all(isinstance(k, str) for k in keys)
    names = {r["bot_name"] for r in calls(db_path)}
    assert names == {
        "customer_database.MockCustomerDatabase.create_mock_customers",
        "customer_database.Customer.age",
        "customer_database.MockCustomerDatabase.find_customer_key",
    }
    # self travels as the instance's fields.
    age_call = next(r for r in calls(db_path) if r["bot_name"].endswith(".age"))
    sent = json.loads(age_call["messages"][-1]["content"].split("```")[1])
    assert set(sent["self"]) == {"key", "first_name", "last_name", "birthdate", "address"}


class Base:
    def kept(self) -> str:
        return "mine"

    def does_nothing(self) -> None:
        pass

    def ellipsis(self) -> int: ...

    @classmethod
    def make(cls, n: int) -> list[int]:
        """Make {{ n }} numbers."""

    @property
    def doc_only(self) -> bool:
        """Whether it is so."""


@llm_strategy(model_name=OFFLINE)
@dataclasses.dataclass
class Strategy(Base):
    name: str = "s"

    def __post_init__(self) -> None:
        self.ready = True

    async def later(self, n: int) -> int:
        """A number after {{ n }}."""
        raise NotImplementedError("a model does this")


def test_a_strategy_implements_only_the_unimplemented_members(db_path):
    s = Strategy()
    assert s.kept() == "mine" and s.does_nothing() is None and s.ready
    assert isinstance(s.ellipsis(), int)
    assert isinstance(Strategy.make(2), list)
    assert isinstance(s.doc_only, bool)
    assert isinstance(asyncio.run(s.later(3)), int)
    assert not hasattr(Base.ellipsis, "versions")  # the base class is untouched
    rows = calls(db_path)
    assert len(rows) == 4
    make = next(r for r in rows if r["bot_name"].endswith(".make"))
    assert "cls" not in make["messages"][-1]["content"]


# --- the import stays light, the real model -----------------------------------------------


def test_importing_promptlog_and_its_function_modules_does_not_import_litellm():
    code = (
        "import sys, promptlog; promptlog.llm_function; promptlog.llm_strategy; "
        "assert 'litellm' not in sys.modules and 'pandas' not in sys.modules, 'heavy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


class Verdict(BaseModel):
    answer: Literal["yes", "no"]
    confidence: int = Field(ge=0, le=10)


def test_a_typed_function_on_the_real_local_model(db_path, local_model):
    @llm_function(**local_model.bot_kwargs, temperature=0, max_tokens=48)
    def is_capital(city: str, country: str) -> Verdict:
        """Is {{ city }} the capital of {{ country }}?"""

    verdict = is_capital("Paris", "France")
    assert isinstance(verdict, Verdict)
    rows = calls(db_path)
    assert rows[-1]["status"] == "succeeded" and rows[-1]["output_tokens"] > 0


class Namer(abc.ABC):
    @abc.abstractmethod
    def name(self, topic: str) -> str:
        """A name for {{ topic }}."""


@llm_strategy(model_name=OFFLINE)
class Shape(BaseModel, Namer):
    sides: int

    def describe(self) -> str:
        """Describe a shape with {{ sides }} sides."""
        raise NotImplementedError


def test_a_strategy_on_a_pydantic_model_implements_abstract_methods_too(db_path):
    shape = Shape(sides=3)  # no longer abstract: the model implements name
    assert isinstance(shape.name("triangles"), str)
    assert isinstance(shape.describe(), str)
    rows = calls(db_path)
    # The instance's fields are template variables; self also travels as JSON.
    assert rows[-1]["messages"][-1]["content"].startswith("Describe a shape with 3 sides.")
    assert '{"self": {"sides": 3}}' in rows[-1]["messages"][-1]["content"]
    assert {r["bot_name"] for r in rows} == {"test_functions.Shape.name",
                                             "test_functions.Shape.describe"}


def test_promptlog_diff_shows_what_changed_between_two_versions_of_a_function(db_path):
    from click.testing import CliRunner

    from promptlog.cli import cli

    _version_hash(_define("Classify: {{ text }}", Literal["a", "b"]))
    _version_hash(_define("Sort into a group: {{ text }}", Literal["a", "b"], str | None))
    promptlog.flush()
    result = CliRunner().invoke(cli, ["diff", "classify"])
    assert result.exit_code == 0, result.output
    assert "-Classify: {{ text }}" in result.output
    assert "+Sort into a group: {{ text }}" in result.output
    assert "+signature: classify(text: str | None) -> Literal['a', 'b']" in result.output


def test_the_task_runs_example_suggests_hyperparameters_of_the_resolved_type(db_path):
    spec = importlib.util.spec_from_file_location("task_runs", ROOT / "examples" / "task_runs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["task_runs"] = module
    spec.loader.exec_module(module)
    assert isinstance(module.main(), module.SummaryHyper)
    suggest = next(r for r in calls(db_path) if r["bot_name"].endswith("suggest_hyperparameters"))
    assert suggest["parameters"]["response_format"]["schema_name"] == "SummaryHyper"


@dataclasses.dataclass
class Recipe:
    dish: str
    servings: int

    @llm_function(model_name=OFFLINE)
    def shopping_list(self, budget: int) -> list[str]:
        """Write the shopping list for {{ servings }} servings of {{ dish }}."""


def test_a_typed_function_in_a_class_body_is_a_method_sending_self(db_path):
    items = Recipe("soup", 4).shopping_list(budget=20)
    assert isinstance(items, list)
    (row,) = calls(db_path)
    user = row["messages"][-1]["content"]
    assert user.startswith("Write the shopping list for 4 servings of soup.")
    assert json.loads(user.split("```")[1]) == {
        "self": {"dish": "soup", "servings": 4}, "budget": 20
    }


def test_the_generic_task_runs_example_runs_as_a_script_and_logs_every_call(tmp_path):
    log = tmp_path / "example.db"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PROMPTLOG_DB=str(log), PROMPTLOG_MODEL="promptlog/offline")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "task_runs.py")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "next hyperparameters: temperature=" in done.stdout
    rows = promptlog.open(log).calls().to_dict("records")
    assert {row["bot_name"] for row in rows} == {
        "task_runs.Optimizer.reflect",
        "task_runs.Optimizer.suggest_hyperparameters",
    }
    assert all(row["status"] == "succeeded" for row in rows)
