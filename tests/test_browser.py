"""`promptlog ui` in a real headless browser: Debian's chromium, driven by Playwright,
loads the leaderboard and every page of the viewer, on a log built on the offline
model: no console error, no horizontal scroll at 1280 px, plots drawn, links that
go where they say, and the tables' folded cells and descriptions.

Each page's screenshot goes to a temporary folder; to refresh the ones in
docs/images/ (README.md and docs/ui.md show them):

    PROMPTLOG_SCREENSHOTS=1 python -m pytest tests/test_browser.py

Skipped when /usr/bin/chromium is missing, except under CI (CI set), where a
missing browser is a failure: `.ci/run` installs it (apt-get install chromium).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def _serve(db_path: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    log = log_file.open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", "from promptlog.cli import main; main()", "ui", "--port", str(port)],
        env={**os.environ, "PROMPTLOG_DB": str(db_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    _wait_for_port(port, server)
    return server, port


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_the_leaderboard_renders_in_a_headless_browser(chromium, db_path, tmp_path):
    from playwright.sync_api import sync_playwright

    build_prompt_log(runs=3)
    promptlog.open().status()  # everything written
    server, port = _serve(db_path, tmp_path / "ui.log")
    try:
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
        _stop(server)


# --- the viewer -------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"
WIDTH = 1280


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`promptlog ui` serving the viewer's test log (tests/ui_support.py), built in a
    process of its own: {"url": ..., "ids": label -> experiment id}."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must apt-get install chromium.")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("viewer")
    db_path = folder / "message_log.db"
    tests = Path(__file__).resolve().parent
    built = subprocess.run(
        [sys.executable, "-c",
         "import json, ui_support; print(json.dumps({k: e.id for k, e in "
         "ui_support.build_ui_log().items()}))"],
        env={**os.environ, "PROMPTLOG_DB": str(db_path),
             "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])},
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    ids = json.loads(built.stdout.strip().splitlines()[-1])
    server, port = _serve(db_path, folder / "ui.log")
    try:
        yield {"url": f"http://127.0.0.1:{port}", "ids": ids}
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def browser(viewer: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """A page of the viewer open at 1280 px wide, recording console errors."""

    def __init__(self, browser: Any, viewer: dict[str, Any], path: str):
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": WIDTH, "height": 900})
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else 0)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(viewer["url"] + path, timeout=30_000)
        self.page.wait_for_load_state("load")

    def check(self, screenshot: str, tmp_path: Path, *, full_page: bool = True) -> None:
        """No console error, no horizontal scroll; save the screenshot (of the
        whole page, or of its first screen)."""
        assert self.errors == []
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{width} px wide: the page scrolls sideways"
        folder = SCREENSHOTS if os.environ.get("PROMPTLOG_SCREENSHOTS") else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / screenshot), full_page=full_page)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, viewer: dict[str, Any]) -> Iterator[Callable[[str], Visit]]:
    opened: list[Visit] = []

    def open_page(path: str) -> Visit:
        opened.append(Visit(browser, viewer, path))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def _relative_times(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("time").all_inner_texts()]


def test_the_experiments_page_in_a_browser(visit, viewer, tmp_path):
    seen = visit("/-/promptlog")
    page = seen.page
    assert page.locator("h1").inner_text() == "Experiments"
    names = page.locator("table.pl-experiments a.pl-experiment-link").all_inner_texts()
    assert names == [
        "tune-qa", "tune-qa candidate 0", "tune-qa candidate 1", "tune-qa candidate 2",
        "search-x", "qa-b", "qa-a", "flaky", "exp-b", "exp-a", "demo-job-names-v2",
        "demo-job-names-v1",
    ]  # fmt: skip
    # An interval bar per metric per experiment: the demo's 3, exp-a/b's and qa-a/b's 2,
    # each candidate's 1 and the search's 1.
    assert page.locator("svg.pl-interval").count() == 3 * 2 + 2 * 2 + 2 * 2 + 3 + 1
    times = _relative_times(page)
    assert times and all(t == "just now" or t.endswith("ago") for t in times)
    seen.check("experiments.png", tmp_path)
    # Pick two, compare them: the older is A.
    page.locator("input.pl-pick").nth(8).check()
    page.locator("input.pl-pick").nth(9).check()
    page.locator("#pl-compare-button").click()
    page.wait_for_url("**/-/promptlog/compare?**")
    assert page.locator("h1").inner_text() == "exp-a vs exp-b"
    # An experiment's name goes to its page.
    page.go_back()
    page.locator("a.pl-experiment-link", has_text="demo-job-names-v1").click()
    page.wait_for_url(f"**/experiments/{viewer['ids']['v1']}")
    assert "demo-job-names-v1" in page.locator("h1").inner_text()


def test_the_experiment_page_in_a_browser(visit, viewer, tmp_path):
    seen = visit(f"/-/promptlog/experiments/{viewer['ids']['v1']}")
    page = seen.page
    assert page.locator("svg.pl-histogram").count() == 3
    headers = page.locator("table.pl-runs thead th").all_inner_texts()
    assert [h.strip() for h in headers][4:7] == ["name_length", "pitch_words", "short_name"]
    marks = page.locator("table.pl-runs .pl-pass, table.pl-runs .pl-fail").all_inner_texts()
    assert len(marks) == 10 and set(marks) <= {"✓", "✗"}
    seen.check("experiment.png", tmp_path)
    page.locator("a.pl-version-link", has_text="namer_user v1").first.click()
    page.wait_for_url("**/-/promptlog/prompts/promptlog.demo.namer_user#v1")
    assert page.locator("h1").inner_text() == "namer_user"
    page.go_back()
    run = page.locator("a.pl-run-link").first
    run_id = run.get_attribute("title")
    run.click()
    page.wait_for_url(f"**/runs/{run_id}")


def test_a_failed_run_shows_its_traceback_on_a_click(visit, viewer, tmp_path):
    seen = visit(f"/-/promptlog/experiments/{viewer['ids']['flaky']}")
    page = seen.page
    errors = page.locator("details.pl-traceback")
    assert errors.count() == 2
    first = errors.first
    assert first.locator("summary").inner_text() == "ValueError: no name for execution 3"
    assert not first.locator("pre").is_visible()
    first.locator("summary").click()
    assert "Traceback (most recent call last)" in first.locator("pre").inner_text()
    seen.check("experiment-failures.png", tmp_path)


def test_the_compare_page_in_a_browser(visit, viewer, tmp_path):
    seen = visit("/-/promptlog/compare?a=demo-job-names-v1&b=demo-job-names-v2")
    page = seen.page
    assert page.locator("svg.pl-difference").count() == 3
    assert page.locator("table.pl-compare tbody tr").count() == 3
    diff = page.locator("table.diff")
    assert diff.count() == 1 and "short, catchy" in diff.locator(".diff_add").inner_text()
    seen.check("compare.png", tmp_path)
    page.locator("a.pl-version-link", has_text="namer_user v2").click()
    page.wait_for_url("**/prompts/promptlog.demo.namer_user#v2")


def test_the_compare_page_per_example_in_a_browser(visit, viewer, tmp_path):
    from ui_support import QA_ORDER

    seen = visit("/-/promptlog/compare?a=qa-a&b=qa-b")
    page = seen.page
    rows = page.locator("table.pl-examples tbody tr")
    assert rows.count() == 5
    questions = [row.locator("td.pl-example-input").inner_text() for row in rows.all()]
    assert [q.splitlines()[1].split(" ", 1)[1] for q in questions] == QA_ORDER
    assert page.locator("tr.pl-example-flips").count() == 1
    flipped = page.locator("tr.pl-example-flips")
    assert "What is 7+7?" in flipped.inner_text()
    # exact on each repeat: A wrong twice, B right on repeat 0 only.
    assert (flipped.locator(".pl-pass").count(), flipped.locator(".pl-fail").count()) == (1, 3)
    assert page.locator("svg.pl-difference").count() == 2
    assert page.locator("table.diff").count() == 1
    seen.check("compare-examples.png", tmp_path)
    run = flipped.locator("a.pl-run-link").last
    run_id = run.get_attribute("title")
    run.click()
    page.wait_for_url(f"**/runs/{run_id}")


def test_the_prompt_page_in_a_browser(visit, viewer, tmp_path):
    seen = visit("/-/promptlog/prompts/promptlog.demo.namer_user")
    page = seen.page
    assert page.locator("section.pl-version").count() == 2
    assert page.locator("section#v2 table.diff").count() == 1
    assert page.locator("svg.pl-interval").count() == 6
    seen.check("prompt.png", tmp_path)
    page.locator("section#v1 a.pl-experiment-link").click()
    page.wait_for_url(f"**/experiments/{viewer['ids']['v1']}")
    prompts = visit("/-/promptlog/prompts")
    prompts.check("prompts.png", tmp_path)
    prompts.page.locator("a.pl-prompt-link", has_text="namer_user").click()
    prompts.page.wait_for_url("**/prompts/promptlog.demo.namer_user")


def test_the_optimisation_page_of_a_search_in_a_browser(visit, viewer, tmp_path):
    seen = visit(f"/-/promptlog/optimizations/{viewer['ids']['search']}")
    page = seen.page
    plot = page.locator("svg.pl-progress")
    assert plot.count() == 1 and plot.locator("circle.pl-point").count() == 10
    assert plot.locator("path.pl-best-line").count() == 2
    assert page.locator("table.pl-evaluations > tbody > tr").count() == 10
    assert page.locator("table.pl-evaluations > tbody > tr.pl-baseline").count() == 3
    best = page.locator("table.pl-evaluations > tbody > tr", has_text="then check the answer")
    diff = best.locator("details.pl-x-diff")
    assert not diff.locator("table.diff").is_visible()
    diff.locator("summary").click()
    changed = diff.locator("table.diff td").nth(3).locator(".diff_add, .diff_chg")
    assert "check" in " ".join(changed.all_inner_texts())
    seen.check("optimization-search.png", tmp_path)
    run = page.locator("table.pl-evaluations a.pl-run-link").first
    run_id = run.get_attribute("title")
    run.click()
    page.wait_for_url(f"**/runs/{run_id}")


def test_the_optimisation_page_of_a_compile_in_a_browser(visit, viewer, tmp_path):
    ids = viewer["ids"]
    seen = visit(f"/-/promptlog/optimizations/{ids['tune']}")
    page = seen.page
    assert page.locator("svg.pl-progress circle.pl-point").count() == 3
    rows = page.locator("table.pl-candidates tbody tr")
    assert rows.count() == 3 and page.locator("table.pl-candidates svg.pl-interval").count() == 3
    assert "best" in page.locator("tr#candidate-2").inner_text()
    changes = page.locator("details.pl-candidate-changes")
    assert changes.count() == 2 and changes.locator("table.diff").count() == 2
    # The best candidate's changes are open, the other's folded; a click elsewhere on
    # the page leaves them as they are.
    assert changes.nth(1).locator("table.diff").is_visible()
    assert not changes.nth(0).locator("table.diff").is_visible()
    page.locator("h1").click()
    assert changes.nth(1).locator("table.diff").is_visible()
    seen.check("optimization.png", tmp_path)
    page.locator("tr#candidate-2 a.pl-version-link", has_text="qa_user v3").click()
    page.wait_for_url("**/prompts/ui_support.qa_user#v3")
    page.go_back()
    page.locator("tr#candidate-2 a.pl-compare-link").click()
    page.wait_for_url("**/compare?a=*&b=*")
    assert page.locator("table.pl-examples > tbody > tr").count() == 5
    page.go_back()
    page.locator("tr#candidate-1 a.pl-experiment-link").click()
    page.wait_for_url(f"**/experiments/{ids['tune_1']}")
    assert page.locator("table.pl-runs td.pl-example-input").count() == 5
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    # A candidate's page leads back to its optimisation; the list leads to each.
    page.locator("a.pl-optimization-link", has_text="tune-qa").click()
    page.wait_for_url(f"**/optimizations/{ids['tune']}#candidate-1")
    assert seen.errors == []
    listed = visit("/-/promptlog/optimizations")
    assert listed.page.locator("table.pl-optimizations tbody tr").count() == 2
    listed.check("optimizations.png", tmp_path)
    listed.page.locator("a.pl-optimization-link", has_text="search-x").click()
    listed.page.wait_for_url(f"**/optimizations/{ids['search']}")
    # The experiments page marks optimisations and their candidates, and links them.
    experiments = visit("/-/promptlog")
    badge = experiments.page.locator("a.pl-optimization-link", has_text="InstructionSearch")
    badge.click()
    experiments.page.wait_for_url(f"**/optimizations/{ids['tune']}")


def test_the_datasette_tables_fold_descriptions_json_and_sql(visit, viewer, tmp_path):
    seen = visit("/message_log/runs")
    page = seen.page
    seen.check("table-runs.png", tmp_path, full_page=False)
    descriptions = page.locator("details.pl-fold dl.column-descriptions")
    assert descriptions.count() == 1 and not descriptions.is_visible()
    page.locator("details.pl-fold > summary").first.click()
    assert descriptions.is_visible()
    cell = page.locator("td.col-hyperparameters details.pl-cell").first
    assert cell.locator("summary").inner_text().startswith('{"bots"')
    box = page.locator("tbody tr").first.bounding_box()
    assert box is not None and box["height"] < 60  # one line a row, not 400 px
    query = visit("/message_log/leaderboard")
    sql = query.page.locator("details.pl-fold pre#sql-query")
    assert sql.count() == 1 and not sql.is_visible()
    assert query.errors == []
    versions = visit("/message_log/call_prompt_versions")
    labels = versions.page.locator("td.col-prompt_version_id a").all_inner_texts()
    assert set(labels) == {"namer_system v1", "namer_user v1", "namer_user v2"}
    versions.page.locator("td.col-prompt_version_id a", has_text="namer_user v2").first.click()
    versions.page.wait_for_url("**/prompts/promptlog.demo.namer_user#v2")
