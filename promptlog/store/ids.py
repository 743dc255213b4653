"""Time stamps, ids, and the token that names this process."""

from __future__ import annotations

import itertools
import os
import socket
import time

_second: tuple[int, str] = (-1, "")  # (a second since the epoch, its ISO 8601 text)


def now() -> str:
    """The current time as UTC ISO 8601 (``2025-01-31T12:00:00.123456Z``), the one
    timestamp format in the log."""
    global _second
    micros = time.time_ns() // 1_000
    seconds, fraction = divmod(micros, 1_000_000)
    cached = _second
    if cached[0] != seconds:  # formatting a date costs more than the rest: once a second
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{cached[1]}.{fraction:06d}Z"


# ULIDs: 48 bits of milliseconds, then 80 bits that a ULID library fills with random
# bytes under a lock (~5 us an id, python-ulid). Here they are 40 random bits drawn once per
# process and a 40-bit count: still unique (the count within a process, the
# random bits between processes), sorted by time, and in creation order within
# a millisecond, for a tenth of the cost, and no lock (next() on a count is atomic).
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_id_millisecond: tuple[int, str] = (-1, "")
_id_process = ""
_id_count = itertools.count()


def _base32(value: int, characters: int) -> str:
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(5 * characters - 10, -1, -10))


def _new_process_ids() -> None:
    global _id_process, _id_count
    _id_process = _base32(int.from_bytes(os.urandom(5), "big"), 8)
    _id_count = itertools.count()


_new_process_ids()


def new_id() -> str:
    """A new ULID: unique, and sorts by creation time."""
    global _id_millisecond
    millisecond = time.time_ns() // 1_000_000
    count = next(_id_count)
    cached = _id_millisecond
    if cached[0] != millisecond:
        cached = _id_millisecond = (millisecond, _base32(millisecond, 10))
    return (
        f"{cached[1]}{_id_process}{_PAIRS[(count >> 30) & 1023]}{_PAIRS[(count >> 20) & 1023]}"
        f"{_PAIRS[(count >> 10) & 1023]}{_PAIRS[count & 1023]}"
    )


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # Field 22 (start time in clock ticks) follows the parenthesised name.
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


_PROCESS: str | None = None


def process_token() -> str:
    """Names this process (host, pid, start time) so that a later process can tell
    whether the one that left a run ``running`` is still alive."""
    global _PROCESS
    if _PROCESS is None:
        pid = os.getpid()
        _PROCESS = f"{socket.gethostname()}/{pid}/{_process_start(pid)}"
    return _PROCESS


def process_alive(token: str) -> bool:
    """Whether the process named by ``token`` (see :func:`process_token`) may still run."""
    try:
        host, pid_text, started = token.rsplit("/", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True  # another machine's process: we cannot tell, so assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started == "?" or _process_start(pid) == started


def _after_fork_in_child() -> None:
    # A forked child is another process: it needs its own token and id bits.
    global _PROCESS
    _PROCESS = None
    _new_process_ids()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
