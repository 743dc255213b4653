"""Knobs: overriding a prompt's template, declared hyperparameters and other knobs in
a context, recorded on every run."""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptlog
from promptlog import Experiment, KnobError, hyperparameter, metric, overrides, prompt
from promptlog.cli import cli as main
from promptlog.knobs import active, register

ROOT = Path(__file__).resolve().parents[1]


@prompt("user")
def knob_namer(job_description, tone="plain"):
    """Give me a name for a job that follows this description: {{ job_description }}."""


SHORTER = "Name this {{ tone }} job: {{ job_description }}."


# --- the interface typed functions build on ---------------------------------------


class Owner:
    """Stands in for a typed function: registers knobs, reads them when called."""

    def __init__(self, name: str):
        self.name = name
        register(name, self, kind="function", knobs={"template", "temperature", "demos"})

    def __call__(self) -> dict[str, object]:
        return dict(active(self.name))


def test_active_is_empty_without_overrides_and_resolves_every_kind_of_key():
    summarise = Owner("apps.text.summarise")
    assert summarise() == {}
    with overrides({"apps.text.summarise": {"temperature": 0.1}}):
        assert summarise() == {"temperature": 0.1}
        with overrides({"summarise": {"demos": [1]}}):  # short name
            assert summarise() == {"temperature": 0.1, "demos": [1]}
            with overrides({summarise: {"temperature": 0.9}}):  # the object itself
                assert summarise() == {"temperature": 0.9, "demos": [1]}
            assert summarise() == {"temperature": 0.1, "demos": [1]}
    assert summarise() == {}


def test_overrides_follow_contextvars_into_threads():
    translate = Owner("apps.text.translate")
    seen = []
    with overrides({translate: {"temperature": 0.5}}):
        context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: seen.append(context.run(translate)))
    thread.start()
    thread.join()
    assert seen == [{"temperature": 0.5}]
    assert translate() == {}


def test_unknown_and_ambiguous_keys_and_unknown_knobs_are_clear_errors():
    Owner("apps.one.classify")
    Owner("apps.two.classify")
    with pytest.raises(
        KnobError,
        match=r"'classify' is ambiguous.*apps\.one\.classify.*"
        r"apps\.two\.classify",
    ):
        with overrides({"classify": {"temperature": 0}}):
            pass
    with overrides({"one.classify": {"temperature": 0}}) as applied:
        assert applied == {"apps.one.classify": {"temperature": 0}}
    with pytest.raises(
        KnobError,
        match=r"'no_such_thing' names no registered.*known:.*"
        r"apps\.one\.classify",
    ):
        with overrides({"no_such_thing": 1}):
            pass
    with pytest.raises(
        KnobError,
        match=r"no knob 'temprature'; its knobs are demos, "
        r"temperature, template",
    ):
        with overrides({"apps.one.classify": {"temprature": 0}}):
            pass
    with pytest.raises(KnobError, match="must be a dict of its knobs"):
        with overrides({"apps.one.classify": 0.5}):
            pass
    with pytest.raises(KnobError, match="not a registered prompt or function"):
        with overrides({object(): {}}):
            pass
    assert issubclass(KnobError, promptlog.PromptlogError)


# --- prompts ----------------------------------------------------------------------


def test_a_template_override_renders_and_is_a_new_version_of_the_same_prompt():
    first = knob_namer("builds AI apps")
    assert first.prompt_version.version == 1
    with overrides({knob_namer: {"template": SHORTER}}):
        message = knob_namer("builds AI apps", tone="bold")
        assert knob_namer.render("x") == "Name this plain job: x."
    assert message.content == "Name this bold job: builds AI apps."
    assert message.prompt_version.name == knob_namer.name
    assert message.prompt_version.version == 2
    assert message.prompt_version.template == SHORTER
    shown = str(promptlog.diff("knob_namer"))
    assert "-Give me a name for a job" in shown and "+Name this {{ tone }} job" in shown

    again = knob_namer("builds AI apps")  # reverting reuses v1
    assert again.content == first.content and again.prompt_version == first.prompt_version
    with overrides({"knob_namer": {"template": f"\n    {SHORTER}\n    "}}):  # as a docstring
        assert knob_namer("x").prompt_version.version == 2
    assert [v.version for v in knob_namer.versions()] == [1, 2]


def test_a_template_override_is_checked_against_the_prompt_on_entry():
    with pytest.raises(
        KnobError,
        match=r"uses \{\{ company \}\}, but knob_namer takes no "
        r"parameter 'company'; it takes job_description, tone",
    ):
        with overrides({knob_namer: {"template": "At {{ company }}: {{ job_description }}"}}):
            pass
    with pytest.raises(KnobError, match="Jinja syntax error"):
        with overrides({knob_namer: {"template": "{{ job_description"}}):
            pass
    with pytest.raises(KnobError, match="Prompt .*knob_namer has no knob 'demos'"):
        with overrides({knob_namer: {"demos": []}}):
            pass


# --- hyperparameters and runs -----------------------------------------------------


def test_hyperparameters_are_declared_overridden_and_columns_of_runs():
    assert hyperparameter("knob_top_k", 3) == 3
    with overrides({"knob_top_k": 5}):
        assert hyperparameter("knob_top_k", 3) == 5

    @metric
    def top_k(value):
        return value

    with Experiment("defaults", quiet=True) as plain:
        top_k(hyperparameter("knob_top_k", 3))
    with Experiment("tuned", quiet=True, overrides={"knob_top_k": 8}) as tuned:
        top_k(hyperparameter("knob_top_k", 3))
    runs = promptlog.open().runs([plain.id, tuned.id])
    assert runs["knob_top_k"].tolist() == [3, 8]
    assert runs["top_k"].tolist() == [3, 8]
    run = promptlog.open().run(runs["run_id"][1])
    assert run["hyperparameters"]["declared"] == {"knob_top_k": 8}


def test_each_concurrent_execution_sees_and_records_its_own_overrides():
    @metric
    def index_seen(value):
        return value

    hyperparameter("knob_seed", -1)  # declared, so that overrides may name it

    def execution():
        index = promptlog.current_run().execution_index
        with overrides(
            {
                knob_namer: {"template": f"Job {index}: {{{{ job_description }}}}"},
                "knob_seed": index,
            }
        ):
            message = knob_namer("x")
            index_seen(hyperparameter("knob_seed", -1))
        return message.content

    exp = Experiment("per-execution", num_executions=8, max_workers=8, quiet=True)
    results = exp.run(execution)
    assert results == [f"Job {i}: x" for i in range(8)]
    runs = promptlog.open().runs(exp.id).set_index("execution_index")
    assert runs["index_seen"].tolist() == list(range(8))
    assert runs["knob_seed"].tolist() == list(range(8))
    templates = {v.id: v.template for v in knob_namer.versions()}
    assert len(templates) == 8
    for i in range(8):
        template = f"Job {i}: {{{{ job_description }}}}"
        run = promptlog.open().run(runs["run_id"][i])
        assert run["hyperparameters"]["overrides"] == {knob_namer.name: {"template": template}}
        assert run["hyperparameters"]["declared"] == {"knob_seed": i}
        assert [templates[v["prompt_version_id"]] for v in run["prompt_versions"]] == [template]


@metric
def shortened(message):
    return message.content.startswith("Name this")


def test_experiment_overrides_apply_to_a_with_block_and_are_recorded():
    with Experiment(
        "tuned-block", num_executions=3, quiet=True, overrides={knob_namer: {"template": SHORTER}}
    ) as exp:
        shortened(knob_namer("builds AI apps"))
    assert knob_namer("y").content.startswith("Give me")  # left with the block
    runs = promptlog.open().runs(exp.id)
    assert runs["shortened"].all() and len(runs) == 3
    numbers = {v.template: v.version for v in knob_namer.versions()}
    assert (runs["knob_namer_version"] == numbers[SHORTER]).all()
    for run_id in runs["run_id"]:
        recorded = promptlog.open().run(run_id)["hyperparameters"]["overrides"]
        assert recorded == {knob_namer.name: {"template": SHORTER}}
    with pytest.raises(KnobError, match="no_such_prompt"):
        Experiment("bad", overrides={"no_such_prompt": {"template": "x"}})


def test_experiment_overrides_apply_to_exp_run_and_end_with_it():
    exp = Experiment(
        "tuned-run", num_executions=3, quiet=True, overrides={"knob_namer": {"template": SHORTER}}
    )
    assert exp.run(lambda: knob_namer("x").content) == ["Name this plain job: x."] * 3
    assert knob_namer("x").content.startswith("Give me")
    cli = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["runs", "tuned-run", "--json"])
    assert cli.exit_code == 0, cli.output
    shown = json.loads(cli.output)
    numbers = {v.template: v.version for v in knob_namer.versions()}
    assert [run["hyperparameters"]["knob_namer_version"] for run in shown] == [numbers[SHORTER]] * 3


def test_overrides_around_an_experiment_reach_its_workers_and_other_knobs_are_columns():
    summarise = Owner("apps.text.knob_summarise")

    def execution():
        return summarise()

    with overrides({summarise: {"temperature": 0.2, "demos": ["a", "b"]}}):
        exp = Experiment("outer", num_executions=4, quiet=True)
        assert exp.run(execution) == [{"temperature": 0.2, "demos": ["a", "b"]}] * 4
    runs = promptlog.open().runs(exp.id)
    assert runs["knob_summarise.temperature"].tolist() == [0.2] * 4
    assert runs["knob_summarise.demos"].tolist() == ['["a", "b"]'] * 4


def test_nested_overrides_of_a_prompt_and_a_hyperparameter_inner_wins():
    hyperparameter("knob_depth", 1)
    with overrides({knob_namer: {"template": SHORTER}, "knob_depth": 2}):
        with overrides({"knob_depth": 3}):
            assert hyperparameter("knob_depth", 1) == 3
            assert knob_namer("x").content == "Name this plain job: x."
        with overrides({"test_knobs.knob_namer": {"template": "Only {{ job_description }}"}}):
            assert knob_namer("x").content == "Only x"
            assert hyperparameter("knob_depth", 1) == 2
        assert knob_namer("x").content == "Name this plain job: x."
    assert hyperparameter("knob_depth", 1) == 1
    with pytest.raises(KnobError, match="already the name of a prompt"):
        hyperparameter(knob_namer.name, 1)


def test_saving_checks_the_keys_and_loading_a_bad_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(KnobError, match="'no_such_prompt' names no registered"):
        promptlog.save_overrides({"no_such_prompt": {"template": "x"}}, tmp_path / "x.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KnobError, match="bad.json is not a JSON file of overrides"):
        promptlog.load_overrides(tmp_path / "bad.json")
    with pytest.raises(KnobError, match="Cannot read overrides from"):
        promptlog.load_overrides(tmp_path / "missing.json")


# --- saving and loading -----------------------------------------------------------


def test_saved_overrides_load_in_a_fresh_process_and_render_the_saved_version(
    tmp_path: Path, db_path: Path
):
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "prompts.py").write_text(
        textwrap.dedent('''
        from promptlog import prompt

        @prompt("user")
        def greet(name):
            """Hello {{ name }}."""
    ''')
    )
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import promptlog
        {{body}}
    """)

    def run(body: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script.format(body=textwrap.dedent(body))],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    saved = tmp_path / "tuned.json"
    out = run(f"""
        from app.prompts import greet
        print(greet("Ada").prompt_version.version)
        promptlog.hyperparameter("greeting_level", 1)
        promptlog.save_overrides(
            {{greet: {{"template": "Hi {{{{ name }}}}!"}}, "greeting_level": 2}}, {str(saved)!r}
        )
    """)
    assert out == "1"
    assert '"app.prompts.greet"' in saved.read_text()
    out = run(f"""
        print(promptlog.load_overrides({str(saved)!r}))
        from app.prompts import greet  # defined after loading: applied when defined
        message = greet("Ada")
        print(message.content, message.prompt_version.version)
        with promptlog.overrides({{"greet": {{"template": "Hey {{{{ name }}}}"}}}}):
            print(greet("Ada").content)  # a context layer over the loaded base
        print(greet("Ada").content)
        print(promptlog.hyperparameter("greeting_level", 1))  # declared after loading
    """)
    assert out.splitlines() == [
        "{'app.prompts.greet': {'template': 'Hi {{ name }}!'}, 'greeting_level': 2}",
        "Hi Ada! 2",
        "Hey Ada",
        "Hi Ada!",
        "2",
    ]


def test_a_knob_named_like_a_secret_is_masked_in_the_log():
    with Experiment("secret-knob", quiet=True) as exp:
        hyperparameter("knob_api_key", "sk-knob-0123456789abcdef")
    run_id = promptlog.open().runs(exp.id)["run_id"][0]
    declared = promptlog.open().run(run_id)["hyperparameters"]["declared"]
    assert declared == {"knob_api_key": "[REDACTED]"}
