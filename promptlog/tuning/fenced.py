"""Reading a proposal out of a model's reply: the last fenced block.

    >>> last_fenced_block("Try this:\\n```python\\nprint(1)\\n```")
    'print(1)'
    >>> last_fenced_block("```Madam, in Eden, I'm Adam```")
    "Madam, in Eden, I'm Adam"

A word right after the opening fence is a language tag only when a newline follows
it, so a one-line block keeps every word it holds.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
# What may stand after an opening fence as a language tag: python, c++, objective-c, c#.
_TAG = re.compile(r"[A-Za-z0-9_+#.-]*")


def last_fenced_block(reply: str) -> str | None:
    """The content of the last ````` fenced block in ``reply``, without its language
    tag and surrounding blank space; None when the reply has no complete block (or
    only empty ones)."""
    for match in reversed(list(_BLOCK.finditer(reply))):
        content = match.group(1)
        first, newline, rest = content.partition("\n")
        if newline and _TAG.fullmatch(first.strip()) and rest.strip():
            content = rest
        content = content.strip()
        if content:
            return content
    return None
