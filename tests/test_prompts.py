"""Prompt functions: rendering, errors, and content-addressed versions."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import promptlog
from promptlog import prompt
from promptlog.errors import PromptError, PromptTemplateError, PromptVariableError
from promptlog.prompts import find_version, unified_diff

ROOT = Path(__file__).resolve().parents[1]


def define(template: str, qualname: str = "namer_user", role: str = "user", module: str = "drafts"):
    """A prompt function as if its source had been (re)written with this docstring."""

    def fn(job_description, tone="plain"):
        pass

    fn.__doc__ = template
    fn.__qualname__ = fn.__name__ = qualname
    fn.__module__ = module
    return prompt(role)(fn)


V1 = """
    Give me a name for a job that follows this description: {{ job_description }}.
    """
V2 = """
    Give me a short, catchy name for this job: {{ job_description }}.
    """


def test_calling_renders_a_message_with_role_content_and_version():
    @prompt("system")
    def namer_system(type_of_manager, company="Acme"):
        """You are an {{ type_of_manager }} at {{ company }}."""

    message = namer_system("data science manager")
    assert message.role == "system"
    assert message.content == "You are an data science manager at Acme."
    assert str(message) == message.content
    version = message.prompt_version
    assert version.name.startswith(f"{__name__}.test_calling_renders")
    assert version.name.endswith(".<locals>.namer_system")
    assert version.version == 1
    assert version.hash.startswith("sha256:") and len(version.hash) == len("sha256:") + 64
    assert version.template == "You are an {{ type_of_manager }} at {{ company }}."


def test_same_text_is_the_same_version():
    first = define(V1)("data engineer").prompt_version
    again = define(V1)("ml engineer").prompt_version
    assert again == first


def test_edit_makes_a_new_version_and_revert_reuses_the_old_one():
    v1 = define(V1)("x").prompt_version
    v2 = define(V2)("x").prompt_version
    reverted = define(V1)("x").prompt_version
    assert (v1.version, v2.version) == (1, 2)
    assert reverted == v1
    assert [v.version for v in promptlog.versions("drafts.namer_user")] == [1, 2]


def test_indentation_removed_by_dedent_is_not_a_change():
    flush_left = "Give me a name for a job that follows this description: {{ job_description }}."
    assert define(V1)("x").prompt_version == define(flush_left)("x").prompt_version


def test_whitespace_change_inside_the_text_is_a_new_version():
    base = define("Name this job: {{ job_description }}.")("x").prompt_version
    spaced = define("Name this job:  {{ job_description }}.")("x").prompt_version
    blank_line = define("Name this job:\n\n{{ job_description }}.")("x").prompt_version
    assert len({base.hash, spaced.hash, blank_line.hash}) == 3
    assert [base.version, spaced.version, blank_line.version] == [1, 2, 3]


def test_role_is_part_of_the_version():
    as_user = define(V1, qualname="a")("x").prompt_version
    as_system = define(V1, qualname="b", role="system")("x").prompt_version
    assert as_user.hash != as_system.hash


def test_same_text_in_two_functions_is_two_prompts():
    one = define(V1, qualname="first")("x").prompt_version
    two = define(V1, qualname="second")("x").prompt_version
    assert one.hash == two.hash
    assert one.id != two.id
    assert (one.name, two.name) == ("drafts.first", "drafts.second")
    assert (one.version, two.version) == (1, 1)


def test_missing_variable_names_the_prompt_and_the_variable():
    @prompt("user")
    def greet(name):
        """Hello {{ name }}, welcome to {{ place }}."""

    with pytest.raises(PromptVariableError, match=r"greet.*place"):
        greet("Ada")


def test_missing_argument_names_the_prompt():
    with pytest.raises(PromptVariableError, match=r"drafts\.namer_user.*job_description"):
        define(V1)()


def test_jinja_syntax_error_names_the_prompt_and_line():
    broken = define("First line.\nSecond {{ job_description ")
    with pytest.raises(PromptTemplateError, match=r"drafts\.namer_user.*line 2"):
        broken("x")


@pytest.mark.parametrize(
    "escape",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch ' ~ job_description).read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ job_description.__class__.__base__ }}",
        "{{ lipsum.__globals__['os'].popen('touch ' ~ job_description) }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_a_template_cannot_reach_python_internals(escape, tmp_path):
    marker = tmp_path / "pwned"
    unsafe = define(f"Name this job. {escape}")
    with pytest.raises(PromptTemplateError, match=r"drafts\.namer_user.*unsafe"):
        unsafe(str(marker))
    assert not marker.exists()


def test_the_sandbox_keeps_ordinary_templates_working():
    @prompt("user")
    def rich(items, person, tone="plain"):
        """{{ person.name|title }} ({{ tone|upper }}), {{ items|length }} items:
        {% for item in items|map("trim")|sort %}{{ loop.index }}. {{ item }} {% endfor %}
        {{ "%s!"|format(person["name"]) }} {{ "{} {}".format("a", "b") }} {{ tone.strip() }}"""

    text = rich(["b ", " a"], {"name": "ada"}).content
    assert text == "Ada (PLAIN), 2 items:\n1. a 2. b \nada! a b plain"


def test_decoration_errors():
    with pytest.raises(PromptError, match="needs a role"):

        @prompt
        def bare(x):
            """{{ x }}"""

    with pytest.raises(PromptError, match="Unknown prompt role 'narrator'"):
        prompt("narrator")

    with pytest.raises(PromptError, match="no docstring"):

        @prompt("user")
        def empty(x):
            pass


def test_jinja_control_flow_and_defaults_render():
    @prompt("user")
    def listing(items, header="Items"):
        """{{ header }}:
        {% for item in items %}- {{ item }}
        {% endfor %}"""

    assert listing(["a", "b"]).content == "Items:\n- a\n- b\n"


def test_only_the_first_render_touches_the_database(monkeypatch):
    from promptlog import store

    calls = []
    original = store.register_prompt_version

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "register_prompt_version", counting)
    greeter = define("Hi {{ job_description }}", qualname="cached")
    for i in range(100):
        greeter(str(i))
    assert len(calls) == 1


def test_versions_are_stored_once_per_name_and_hash(db_path):
    for _ in range(3):
        define(V1)("x")
        define(V2)("x")
    promptlog.flush()
    rows = sqlite3.connect(db_path).execute(
        "SELECT name, version, previous_version_id FROM prompt_versions ORDER BY id"
    ).fetchall()
    assert rows == [("drafts.namer_user", 1, None), ("drafts.namer_user", 2, 1)]


def test_unified_diff_between_two_versions():
    define(V1)("x")
    fn = define(V2)
    fn("x")
    a, b = find_version(fn, 1), find_version(fn, 2)
    text = unified_diff(a, b)
    assert "-Give me a name for a job that follows this description" in text
    assert "+Give me a short, catchy name for this job" in text
    assert text.startswith("--- drafts.namer_user v1")
    assert find_version(fn, b.hash[:20]) == b
    assert find_version("drafts.namer_user", None) == b


REVIEWER = '''
from promptlog import prompt

@prompt("user")
def critic_user(draft):
    """{template}"""

if __name__ == "__main__":
    print(critic_user("a draft").prompt_version.name)
'''


def _run_python(args: list[str], cwd, db_path) -> str:
    env = {**os.environ, "PROMPTLOG_DB": str(db_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_script_and_an_import_of_it_log_one_prompt_history(tmp_path, db_path):
    project = tmp_path / "project"
    (project / "tools").mkdir(parents=True)
    script = project / "reviewer.py"
    script.write_text(REVIEWER.format(template="Critique this draft: {{ draft }}"))
    assert _run_python(["reviewer.py"], project, db_path) == "reviewer.critic_user"
    assert _run_python(["-m", "reviewer"], project, db_path) == "reviewer.critic_user"
    # Run from elsewhere, by path: still the module's import name.
    assert _run_python([str(script)], project / "tools", db_path) == "reviewer.critic_user"

    script.write_text(REVIEWER.format(template="Critique this draft harshly: {{ draft }}"))
    _run_python(["-c", "import reviewer; reviewer.critic_user('a draft')"], project, db_path)

    names = sqlite3.connect(db_path).execute("SELECT DISTINCT name FROM prompt_versions")
    assert [name for (name,) in names] == ["reviewer.critic_user"]
    found = promptlog.diff("critic_user")
    assert (found.a.version, found.b.version) == (1, 2)
    assert "+Critique this draft harshly: {{ draft }}" in found.unified


def test_a_script_inside_a_package_is_named_by_its_package(tmp_path, db_path):
    package = tmp_path / "project" / "review"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "reviewer.py").write_text(REVIEWER.format(template="Critique: {{ draft }}"))
    expected = "review.reviewer.critic_user"
    assert _run_python(["review/reviewer.py"], package.parent, db_path) == expected
    assert _run_python(["-m", "review.reviewer"], package.parent, db_path) == expected


def test_a_prompt_can_be_given_its_name():
    @prompt("user", name="critic_user")
    def moved_and_renamed(draft):
        """Critique this draft: {{ draft }}"""

    assert moved_and_renamed("x").prompt_version.name == "critic_user"
    assert find_version("critic_user", 1).template == "Critique this draft: {{ draft }}"
    with pytest.raises(PromptError, match="non-empty string"):
        prompt("user", name="")
