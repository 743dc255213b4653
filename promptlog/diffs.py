"""What changed between two versions of a prompt.

    promptlog.diff("namer_user")          # the last two versions
    promptlog.diff(namer_user, 1, 3)      # by number, or by hash (a prefix will do)

``str()`` of the result is a unified diff, as ``promptlog diff`` prints it; in a
notebook it shows as a side-by-side HTML table. (The module is ``diffs`` so that
importing it never hides the function ``promptlog.diff``.)
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from typing import Any

from .errors import PromptNotFoundError
from .prompts import PromptFunction, PromptVersion, find_version, unified_diff, versions

# Inline styles as well as difflib's classes: notebook front ends may drop <style>.
_STYLES = {
    "diff_add": "background-color: #d4f7d4",
    "diff_chg": "background-color: #fff2a8",
    "diff_sub": "background-color: #ffd6d6",
}


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
        table = difflib.HtmlDiff(wrapcolumn=60).make_table(
            self.a.template.splitlines(),
            self.b.template.splitlines(),
            html.escape(self._title(self.a)),
            html.escape(self._title(self.b)),
        )
        for css_class, style in _STYLES.items():
            table = table.replace(f'class="{css_class}"', f'class="{css_class}" style="{style}"')
        note = "" if self.changed else " (no change)"
        return f"<p><b>{html.escape(self.a.name)}</b>{note}</p>\n{table}"


def diff(
    prompt: PromptFunction | str,
    a: int | str | None = None,
    b: int | str | None = None,
) -> PromptDiff:
    """The diff between two logged versions of a prompt (default: the last two).

    ``prompt`` is a prompt function, its full ``module.qualname``, or the last
    part of that name when no other logged prompt shares it. ``a`` and ``b`` are
    version numbers or hashes (a unique prefix is enough); with only ``b``, ``a``
    is the version before it; with only ``a``, ``b`` is the latest.
    """
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
