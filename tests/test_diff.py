"""promptlog.diff: two versions of a prompt, as a unified diff and side by side."""

from __future__ import annotations

import pytest

import promptlog
from promptlog import prompt
from promptlog.errors import PromptNotFoundError
from promptlog.prompts import PromptFunction

V1 = "You are a helpful assistant.\nAnswer in English."
V2 = "You are a terse assistant.\nAnswer in English.\nUse at most ten words."
V3 = "You are a terse assistant.\nAnswer in French."


def assistant(template: str, module: str = "diffs") -> PromptFunction:
    """The prompt ``<module>.assistant`` with ``template``; rendering logs the version."""

    def assistant() -> None:
        pass

    assistant.__doc__ = template
    assistant.__module__ = module
    assistant.__qualname__ = "assistant"
    function = prompt("system")(assistant)
    function()
    return function


def test_the_last_two_versions_by_default_as_a_unified_diff():
    assistant(V1)
    latest = assistant(V2)
    found = promptlog.diff(latest)
    assert (found.a.version, found.b.version) == (1, 2)
    assert str(found) == (
        f"--- diffs.assistant v1 ({found.a.hash[:15]})\n"
        f"+++ diffs.assistant v2 ({found.b.hash[:15]})\n"
        "@@ -1,2 +1,3 @@\n"
        "-You are a helpful assistant.\n"
        "+You are a terse assistant.\n"
        " Answer in English.\n"
        "+Use at most ten words.\n"
    )
    assert found.changed


def test_versions_by_number_hash_prefix_or_one_side():
    first = assistant(V1)
    assistant(V2)
    assistant(V3)
    by_number = promptlog.diff("diffs.assistant", 1, 3)
    assert (by_number.a.version, by_number.b.version) == (1, 3)
    assert "-Answer in English.\n" in str(by_number)
    assert "+Answer in French.\n" in str(by_number)
    prefix = first.hash.removeprefix("sha256:")[:10]
    assert promptlog.diff("assistant", prefix, "3").a.version == 1
    assert promptlog.diff("assistant", first.hash, 3).a.version == 1
    assert (promptlog.diff("assistant", "v1", "V3").a.version, by_number.b.version) == (1, 3)
    only_b = promptlog.diff("assistant", b=2)
    assert (only_b.a.version, only_b.b.version) == (1, 2)
    only_a = promptlog.diff("assistant", 1)
    assert (only_a.a.version, only_a.b.version) == (1, 3)


def test_side_by_side_html_for_notebooks():
    assistant(V1)
    found = promptlog.diff(assistant(V2))
    html = found._repr_html_()
    assert html.count("<table") == 1
    assert "v1 (sha256:" in html and "v2 (sha256:" in html
    assert 'class="diff_add"' in html and "background-color" in html
    assert ">Use at most ten words.</span>" in html
    assert ">helpful</span>" in html and ">terse</span>" in html  # the words that changed
    data = found.to_dict()
    assert data["prompt"] == "diffs.assistant"
    assert (data["a"]["version"], data["b"]["version"]) == (1, 2)
    assert data["diff"] == found.unified


def test_side_by_side_html_wraps_between_words_and_has_no_navigation_column():
    words = "Answer every question about the weather in Reykjavik thoroughly and politely"
    assistant(f"{words}, in English.")
    found = promptlog.diff(assistant(f"{words}, in Icelandic please."))
    html = found._repr_html_()
    assert html.count("<tr>") == 2  # the titles, then one changed line
    # four cells a row: line number and text on each side, no navigation links
    assert html.count("<td") == 4 and "<a " not in html and "diff_next" not in html
    assert "&nbsp;" not in html and "<br" not in html and "nowrap" not in html
    assert f">{words}, in " in html.replace("</span>", "")  # never cut inside a word
    assert "white-space: pre-wrap" in html


def digits_only_hash_template() -> str:
    """A template whose hash starts with six digits (about one template in 17)."""
    from promptlog.prompts import template_hash

    for i in range(1000):
        template = f"You are assistant number {i}."
        if template_hash(template, "system")[7:13].isdigit():
            return template
    raise AssertionError("no template found")


def test_a_hash_prefix_of_digits_is_a_hash_and_a_short_number_is_a_version():
    first = assistant(V1)
    digits = assistant(digits_only_hash_template())
    prefix = digits.hash.removeprefix("sha256:")[:6]
    assert prefix.isdigit()
    found = promptlog.diff("assistant", "1", prefix)
    assert (found.a.version, found.b.version) == (1, 2)
    assert promptlog.diff("assistant", f"sha256:{prefix}", 1).a.version == 2
    assert promptlog.diff("assistant", "v2", "00001").b.version == 1
    with pytest.raises(PromptNotFoundError, match="has no version 'sha256:999999'"):
        promptlog.diff("assistant", "999999")
    assert first.hash != digits.hash


def test_a_version_against_itself_says_so():
    assistant(V1)
    assistant(V2)
    same = promptlog.diff("assistant", 2, 2)
    assert not same.changed and same.unified == ""
    assert str(same) == "diffs.assistant: v2 and v2 have the same template.\n"


def test_unknown_prompts_and_versions_are_clear_errors():
    assistant(V1)
    with pytest.raises(PromptNotFoundError, match="has only 1 version"):
        promptlog.diff("assistant")
    with pytest.raises(PromptNotFoundError, match="first version"):
        promptlog.diff("assistant", b=1)
    assistant(V2)
    with pytest.raises(PromptNotFoundError, match="has no version 7; its versions are 1, 2"):
        promptlog.diff("assistant", 7)
    with pytest.raises(PromptNotFoundError, match="has no version 'beef'"):
        promptlog.diff("assistant", "beef")
    with pytest.raises(PromptNotFoundError, match="No prompt named 'nobody'"):
        promptlog.diff("nobody")
    assistant(V1, module="other")
    with pytest.raises(PromptNotFoundError, match="ambiguous.*diffs.assistant, other.assistant"):
        promptlog.diff("assistant")


def test_promptlog_diff_is_the_function_whichever_import_came_first():
    import importlib

    module = importlib.import_module("promptlog.diffs")  # as compare and the CLI do
    assistant(V1)
    assistant(V2)
    from promptlog import diff

    assert diff("assistant").b.version == 2
    assert promptlog.diff("assistant").b.version == 2
    assert module.diff("assistant", 1, 2).changed
