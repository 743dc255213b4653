"""`promptlog ui` in a real headless browser: Debian's chromium, driven by Playwright,
loads the leaderboard and reads the rendered table.

Skipped when /usr/bin/chromium is missing, except under CI (CI set), where a
missing browser is a failure: `.ci/run` installs it (apt-get install chromium).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_read import build_prompt_log

import promptlog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"promptlog ui exited with status {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"promptlog ui did not listen on port {port} within {timeout} s")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must apt-get install chromium.")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


def test_the_leaderboard_renders_in_a_headless_browser(chromium, db_path, tmp_path):
    from playwright.sync_api import sync_playwright

    build_prompt_log(runs=3)
    promptlog.open().status()  # everything written
    port = _free_port()
    log = (tmp_path / "ui.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", "from promptlog.cli import main; main()", "ui", "--port", str(port)],
        env={**os.environ, "PROMPTLOG_DB": str(db_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/message_log/leaderboard", timeout=30_000)
                assert "Experiment leaderboard" in page.title() or (
                    "Experiment leaderboard" in page.locator("h1").inner_text()
                )
                table = page.locator("table.rows-and-columns")
                headers = table.locator("thead th").all_inner_texts()
                assert [h.strip() for h in headers][:3] == ["metric", "experiment", "experiment_id"]
                rows = [
                    [cell.strip() for cell in row.locator("td").all_inner_texts()]
                    for row in table.locator("tbody tr").all()
                ]
                assert [(r[0], r[1], r[6]) for r in rows] == [
                    ("name_length", "names-v1", "28.0"),
                    ("name_length", "names-v2", "10.0"),
                    ("short", "names-v2", "1.0"),
                    ("short", "names-v1", "0.0"),
                ]
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
