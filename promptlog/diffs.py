"""What changed between two versions of a prompt.

    promptlog.diff("namer_user")          # the last two versions
    promptlog.diff(namer_user, 1, "v3")   # by number, or by hash (a prefix will do)

``str()`` of the result is a unified diff, as ``promptlog diff`` prints it; in a
notebook it shows as a side-by-side HTML table. (The module is ``diffs`` so that
importing it never hides the function ``promptlog.diff``.)
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from typing import Any

from .errors import PromptNotFoundError
from .prompts import PromptFunction, PromptVersion, find_version, unified_diff, versions

# difflib's class names, with inline styles as well: notebook front ends may drop <style>.
_STYLES = {
    "diff_add": "background-color: #d4f7d4",
    "diff_chg": "background-color: #fff2a8",
    "diff_sub": "background-color: #ffd6d6",
}
# A template line wraps between words, like prose, and breaks inside a word only
# when the word alone is wider than its half of the table.
_TEXT_CELL = (
    'style="text-align: left; vertical-align: top; font-family: monospace; '
    'white-space: pre-wrap; overflow-wrap: break-word"'
)
_NUMBER_CELL = (
    'class="diff_header" style="text-align: right; vertical-align: top; color: #888; '
    'width: 3em"'
)
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _mark(text: str, css_class: str) -> str:
    return f'<span class="{css_class}" style="{_STYLES[css_class]}">{html.escape(text)}</span>'


def _changed_line(a: str, b: str) -> tuple[str, str]:
    """Two versions of one line as HTML, the words that differ marked."""
    words_a, words_b = _TOKENS.findall(a), _TOKENS.findall(b)
    left, right = [], []
    matcher = difflib.SequenceMatcher(None, words_a, words_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(words_a[i1:i2]), "".join(words_b[j1:j2])
        if op == "equal":
            left.append(html.escape(old))
            right.append(html.escape(new))
            continue
        if old:
            left.append(_mark(old, "diff_chg" if new else "diff_sub"))
        if new:
            right.append(_mark(new, "diff_chg" if old else "diff_add"))
    return "".join(left), "".join(right)


def _side_by_side(a: list[str], b: list[str]) -> list[tuple[int | None, str, int | None, str]]:
    """Rows of (line number in a, its HTML, line number in b, its HTML)."""
    rows: list[tuple[int | None, str, int | None, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            old = a[i] if i < i2 else None
            new = b[j] if j < j2 else None
            if op == "equal":
                rows.append((i + 1, html.escape(a[i]), j + 1, html.escape(b[j])))
            elif old is not None and new is not None:
                left, right = _changed_line(old, new)
                rows.append((i + 1, left, j + 1, right))
            elif old is not None:
                rows.append((i + 1, _mark(old, "diff_sub"), None, ""))
            else:
                assert new is not None
                rows.append((None, "", j + 1, _mark(new, "diff_add")))
    return rows


@dataclass(frozen=True)
class PromptDiff:
    """The change from version ``a`` to version ``b`` of one prompt."""

    a: PromptVersion
    b: PromptVersion

    @property
    def unified(self) -> str:
        """The unified diff of the two templates ("" when they are the same)."""
        text = unified_diff(self.a, self.b)
        if self.a.role != self.b.role:
            text = f"role: {self.a.role} -> {self.b.role}\n" + text
        return text

    @property
    def changed(self) -> bool:
        return (self.a.template, self.a.role) != (self.b.template, self.b.role)

    def _title(self, version: PromptVersion) -> str:
        return f"v{version.version} ({version.hash[:15]}, {version.created_at[:19]}Z)"

    def __str__(self) -> str:
        if not self.changed:
            return (
                f"{self.a.name}: v{self.a.version} and v{self.b.version} have the same "
                f"template.\n"
            )
        return self.unified

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-able data (the ``promptlog diff --json`` form)."""

        def side(version: PromptVersion) -> dict[str, Any]:
            return {
                "prompt_version_id": version.id,
                "version": version.version,
                "hash": version.hash,
                "role": version.role,
                "created_at": version.created_at,
            }

        return {"prompt": self.a.name, "a": side(self.a), "b": side(self.b), "diff": self.unified}

    def _repr_html_(self) -> str:
        """The two templates side by side, the changed words marked; lines wrap
        between words."""
        note = "" if self.changed else " (no change)"
        return f"<p><b>{html.escape(self.a.name)}</b>{note}</p>\n" + side_by_side_html(
            self.a.template, self.b.template, self._title(self.a), self._title(self.b)
        )


def side_by_side_html(a: str, b: str, title_a: str, title_b: str) -> str:
    """Two texts as an HTML table side by side, line by line, the changed words
    marked; lines wrap between words."""

    def number(n: int | None) -> str:
        return f"<td {_NUMBER_CELL}>{'' if n is None else n}</td>"

    rows = "".join(
        f"<tr>{number(i)}<td {_TEXT_CELL}>{left}</td>"
        f"{number(j)}<td {_TEXT_CELL}>{right}</td></tr>"
        for i, left, j, right in _side_by_side(a.splitlines(), b.splitlines())
    )
    head = "".join(
        f'<th colspan="2" class="diff_header" style="text-align: left">{html.escape(title)}</th>'
        for title in (title_a, title_b)
    )
    return (
        f'<table class="diff" style="table-layout: fixed; width: 100%">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


# A version as a person writes it: a number of up to five digits, bare or as
# printed (``v3``). Anything else, digits-only hashes of six or more included,
# is a hash or a prefix of one.
_VERSION_NUMBER = re.compile(r"[vV]?([0-9]{1,5})")


def _version_key(which: int | str | None) -> int | str | None:
    """A version number (``3``, ``"3"``, ``"v3"``) as an int; a hash or a prefix of
    one (``"sha256:1f2e…"``, ``"1f2e3d"``, ``"123456"``) as a string."""
    if which is None or isinstance(which, int):
        return which
    text = which.strip()
    number = _VERSION_NUMBER.fullmatch(text)
    if number:
        return int(number.group(1))
    # find_version reads a string of digits as a number: mark it as a hash.
    return f"sha256:{text}" if text.isdigit() else text


def diff(
    prompt: PromptFunction | str,
    a: int | str | None = None,
    b: int | str | None = None,
) -> PromptDiff:
    """The diff between two logged versions of a prompt (default: the last two).

    ``prompt`` is a prompt function, its full ``module.qualname``, or the last
    part of that name when no other logged prompt shares it. ``a`` and ``b`` are
    version numbers (``3`` or ``"v3"``) or hashes: a unique prefix is enough, of
    six characters or more, or starting ``sha256:`` (a shorter run of digits is
    a version number). With only ``b``, ``a`` is the version before it; with only
    ``a``, ``b`` is the latest.
    """
    a, b = _version_key(a), _version_key(b)
    if isinstance(prompt, str):
        from .read import open as open_log

        with open_log() as log:
            prompt = log.prompt_name(prompt)
    if a is None and b is not None:
        version_b = find_version(prompt, b)
        history = versions(prompt)
        position = [v.id for v in history].index(version_b.id)
        if position == 0:
            raise PromptNotFoundError(
                f"Version {version_b.version} is the first version of prompt "
                f"{version_b.name!r}; there is nothing before it to compare with."
            )
        return PromptDiff(history[position - 1], version_b)
    return PromptDiff(find_version(prompt, a, default=-2), find_version(prompt, b, default=-1))
