"""What every benchmark shares: repeated side-by-side measurements, figures with
their median, min and max, the peers' virtual environments, and child processes
that report JSON.

The machine is shared and noisy, so no figure stands alone: each repetition
measures promptlog and what it is compared with one right after the other, the
ratio is taken within the repetition, and the table shows the median ratio with
its min and max over the repetitions.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
# Each peer is installed into a virtual environment of its own, never into ours.
PEERS = {"mlflow": ["mlflow"], "llamabot": ["llamabot"], "dspy": ["dspy"]}
QUIET_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "PROMPTLOG_PROGRESS": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PYTHONWARNINGS": "ignore",
}


@dataclass
class Figure:
    """One measured quantity over the repetitions."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


@dataclass
class Row:
    """A line of a results table: what, its figure, and how it compares."""

    what: str
    figure: Figure | None
    unit: str
    ratio: Figure | None = None
    ratio_label: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Section:
    title: str
    about: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ratios(a: Sequence[float], b: Sequence[float]) -> Figure:
    """Per-repetition ratios a[i] / b[i]."""
    return Figure([x / y for x, y in zip(a, b, strict=True)])


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(fns: dict[str, Callable[[], Any]], calls: int) -> dict[str, list[float]]:
    """Each function's call times (seconds), ``calls`` rounds of one call each in turn,
    so that what the machine is doing weighs on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(calls):
        for name, fn in fns.items():
            samples[name].append(timed(fn))
    return samples


# --- child processes ------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **QUIET_ENV, **extra}


def run_json(command: Sequence[str], *, timeout: float = 1800, **extra_env: str) -> Any:
    """Run a child process and return the JSON object it prints last."""
    done = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(**extra_env),
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(function: str, *args: Any, timeout: float = 1800, **extra_env: str) -> Any:
    """Run ``benchmarks.<module>.<function>(*args)`` in a fresh promptlog process."""
    module, name = function.rsplit(".", 1)
    return run_json(
        [sys.executable, "-m", "benchmarks.worker", module, name, json.dumps(args)],
        timeout=timeout,
        **extra_env,
    )


# --- peers ------------------------------------------------------------------------------


class PeerUnavailable(RuntimeError):
    """A peer could not be installed (no package index?): its rows say so."""


def peer_python(peer: str) -> Path:
    """The python of the peer's own virtual environment, created on first use."""
    venv = VENVS / peer
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    print(f"  installing {peer} into {venv} (once; this takes a few minutes)", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *PEERS[peer]],
            check=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as e:
        raise PeerUnavailable(f"could not install {peer}: {e}") from e
    marker.write_text("\n".join(PEERS[peer]) + "\n")
    return python


def peer_version(peer: str) -> str:
    python = peer_python(peer)
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({peer!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


# --- what we measure in our own process ---------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
