"""Helpers for the function a search scores with, as llm_optimize has them:
``run_python`` runs a candidate piece of code in a child process, ``llm_judge``
scores a text with a model against a rubric.

    score = promptlog.optimize.run_python(code, inputs={"n": 10}, outputs=["total"])
    judge = promptlog.optimize.llm_judge("Rate how well the text describes ML (1-10).",
                                         model_name="gpt-4o-mini")
    score, feedback = judge("Machine learning is ...")

``run_python`` is no sandbox: the code runs with the same rights as the caller.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import CodeError, OptimizerError

if TYPE_CHECKING:
    from ..bots import SimpleBot

# Runs in the child: inputs come as JSON on stdin, the code's own prints go to stderr,
# and the outputs asked for leave as one JSON object on stdout.
_RUNNER = r"""
import json, sys, traceback
request = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__", **request["inputs"]}
out, sys.stdout = sys.stdout, sys.stderr
def plain(value):
    for convert in ("item", "tolist"):
        if hasattr(value, convert):
            return getattr(value, convert)()
    raise TypeError(f"{type(value).__name__} is not JSON-able")
try:
    exec(compile(request["code"], "<candidate>", "exec"), namespace)
except BaseException as error:  # the runner's own frame left out
    shown = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
    reply = {"error": "".join(shown)}
else:
    missing = [name for name in request["outputs"] if name not in namespace]
    if missing:
        reply = {"error": f"The code did not set {', '.join(missing)}."}
    else:
        try:
            text = json.dumps({"outputs": {n: namespace[n] for n in request["outputs"]}},
                              default=plain)
        except (TypeError, ValueError) as error:
            reply = {"error": f"An output is not JSON: {error}."}
        else:
            reply = None
if reply is not None:
    text = json.dumps(reply)
out.write(text)
out.flush()
"""

_TAIL = 2000  # characters of the child's stderr kept in an error


def run_python(
    code: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Iterable[str] = (),
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run ``code`` in a new Python process (``sys.executable``) and return the
    values of the global names in ``outputs`` it set.

    ``inputs`` (JSON-able) are global names the code sees. A child that runs
    longer than ``timeout`` seconds is killed, with everything it started. Raises
    :class:`~promptlog.CodeError` when the code raises (with its traceback), times
    out, does not set an output or sets one that is not JSON. Not a sandbox: the
    code can do anything the caller can.
    """
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    try:
        request = json.dumps({"code": code, "inputs": dict(inputs or {}), "outputs": names})
    except (TypeError, ValueError) as error:
        raise CodeError(f"run_python's inputs must be JSON-able: {error}.") from None
    child = subprocess.Popen(
        [sys.executable, "-c", _RUNNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout kills its children too
    )
    try:
        stdout, stderr = child.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        child.communicate()
        raise CodeError(f"The code ran longer than {timeout:g} s and was stopped.") from None
    except BaseException:
        _kill_group(child)
        raise
    try:
        reply = json.loads(stdout)
    except ValueError:
        raise CodeError(
            f"The code ended the process (exit status {child.returncode}) before giving "
            f"its outputs. Its last output:\n{stderr[-_TAIL:]}"
        ) from None
    if "error" in reply:
        raise CodeError(reply["error"].rstrip())
    return dict(reply["outputs"])


def _kill_group(child: subprocess.Popen[str]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        child.kill()


_FINAL_SCORE = re.compile(r"final_score\s*=\s*`?\s*(-?\d+(?:\.\d+)?)")


def final_score(reply: str) -> float:
    """The number after the last ``final_score=`` in a judge's reply."""
    found = _FINAL_SCORE.findall(reply)
    if not found:
        raise OptimizerError(
            "The judge's reply has no final_score=<number>; pass parse_score= to read "
            "another format."
        )
    return float(found[-1])


def llm_judge(
    rubric: str,
    *,
    parse_score: Callable[[str], float] = final_score,
    model_name: str | None = None,
    bot: SimpleBot | None = None,
    **bot_options: Any,
) -> Callable[[str], tuple[float, str]]:
    """A function that scores a text against ``rubric`` with a model: it returns
    ``(score, the judge's reply)``, the reply becoming the search's feedback.

    ``parse_score`` reads the score from the reply (default: the number after
    ``final_score=``). The judge is ``bot`` (its model and options), or a bot on
    ``model_name`` at temperature 0 with ``bot_options``. Called inside a search,
    its calls are logged on the evaluation's run and count in the search's cost.
    """
    from ..bots import SimpleBot
    from .search_prompts import judge, judge_system

    if not isinstance(rubric, str) or not rubric.strip():
        raise OptimizerError("llm_judge needs a rubric: the text the judge rates against.")
    if (model_name is None) == (bot is None):
        raise OptimizerError("llm_judge needs model_name=... or bot=..., one of them.")
    options = bot.options() if bot is not None else {"model_name": model_name, **bot_options}
    options.setdefault("temperature", 0.0)
    judge_bot = SimpleBot(judge_system(), name="judge", **options)

    def score(x: str) -> tuple[float, str]:
        reply = judge_bot(judge(rubric, x)).content
        return float(parse_score(reply)), reply

    return score
