"""The web UI in a real browser: Debian's headless Chromium, driven by Playwright, against the service.

One user submits a tissue mask and a cell segmentation through the form, watches the bars move live
over SSE, opens the results picture and downloads an artifact; a second user then sees none of it.
The screenshot is kept in test-artifacts/web.png. A workflow with a failed, a skipped and a cancelled
job shows the percentages of GET /api/progress/{id}, while it runs and once it is over.

Every page must load all of wfsched/web's modules and log no error: a script error, a console error
or a file the page asked for and did not get fails the test. (The API's refusals the test provokes,
a 422 and a 404, are logged by the browser as "Failed to load resource"; the page shows them.)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Response, expect, sync_playwright

from tests.support.service import ROOT, Api, job_spec
from tests.support.slides import SAMPLE_CROP_SIZE_PX, sample_crop
from wfsched.api.app import WEB_DIR
from wfsched.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "test-artifacts" / "web.png"
# The crop of test_imaging.py: a few hundred nuclei; 256 px tiles make ~30 tiles, ~20 s on a CPU,
# long enough to see the bar between 0 and 100 %.
CELL_PARAMS = {"tile_size_px": 256, "halo_px": 64}
FINISH_TIMEOUT_MS = 300_000
# A sleep job that reports progress every 6 s: between reports the page and the server hold still.
SLOW_SLEEP = {"duration_s": 600, "steps": 100}
# How long the page may take to show what the server already says (events, then rendering).
CATCH_UP_S = 15

# Runs in the page before its own script: records every value each progress bar shows and every
# mode of the stream indicator, as the DOM changes, so the test sees what a person would have seen.
RECORDER_JS = """
window.__seen = {bars: {}, modes: []};
new MutationObserver(() => {
  for (const bar of document.querySelectorAll('[data-testid=job-progress]')) {
    const values = (window.__seen.bars[bar.dataset.jobId] ||= []);
    const value = Number(bar.dataset.percent);
    if (bar.dataset.percent !== undefined && values[values.length - 1] !== value) values.push(value);
  }
  const live = document.querySelector('[data-testid=stream-live]');
  const mode = live && live.dataset.mode;
  if (mode && window.__seen.modes[window.__seen.modes.length - 1] !== mode) window.__seen.modes.push(mode);
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-percent', 'data-mode']});
"""

# Pixels of the results canvas: how varied they are, and how many change when the cells layer is hidden.
CANVAS_JS = """
async (canvas) => {
  const pixels = () => canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const withCells = pixels();
  const colours = new Set();
  for (let i = 0; i < withCells.length; i += 4 * 7) {
    colours.add((withCells[i] >> 3) << 10 | (withCells[i + 1] >> 3) << 5 | (withCells[i + 2] >> 3));
  }
  const toggle = document.querySelector('[data-testid=layer-cells]');
  toggle.click();
  const withoutCells = pixels();
  toggle.click();
  let changed = 0;
  for (let i = 0; i < withCells.length; i += 4) {
    const d = Math.abs(withCells[i] - withoutCells[i]) + Math.abs(withCells[i + 1] - withoutCells[i + 1])
      + Math.abs(withCells[i + 2] - withoutCells[i + 2]);
    if (d > 30) changed++;
  }
  return {width: canvas.width, height: canvas.height, colours: colours.size, cellPixels: changed};
}
"""

# The percentages the workflow page shows, read at one moment: the overall bar and its text, each job's bar.
SHOWN_PERCENTS_JS = """
() => {
  const bar = document.querySelector('[data-testid=workflow-progress]');
  const jobs = {};
  for (const job of document.querySelectorAll('[data-testid=job-progress]')) {
    jobs[job.dataset.jobId] = {percent: job.dataset.percent, valuenow: job.getAttribute('aria-valuenow')};
  }
  return {percent: bar.dataset.percent, valuenow: bar.getAttribute('aria-valuenow'),
          text: document.querySelector('[data-testid=workflow-percent]').textContent, jobs};
}
"""


@pytest.fixture(scope="module")
def slide(service_settings: Settings) -> Path:
    return sample_crop(service_settings.data_roots[0] / "web")


@contextmanager
def chromium(profile_dir: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium with a fresh profile; a missing browser fails the test (never skips it)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser.sh (as root) to install Debian's chromium "
            "(make test does it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def watched_page(browser: BrowserContext, url: str) -> Iterator[Page]:
    """A page at `url` that must load every module of wfsched/web and log no error until the block ends."""
    page = browser.new_page()
    problems: list[str] = []
    served: dict[str, int] = {}

    def on_console(message: ConsoleMessage) -> None:
        where = urlsplit(message.location.get("url", "")).path
        refused_by_api = message.text.startswith("Failed to load resource") and where.startswith("/api/")
        if message.type == "error" and not refused_by_api:
            problems.append(f"console error at {message.location}: {message.text}")

    def on_response(response: Response) -> None:
        path = urlsplit(response.url).path
        served[path] = response.status
        if response.status >= 500 or (response.status >= 400 and not path.startswith("/api/")):
            problems.append(f"{response.status} for {response.url}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    page.on("response", on_response)
    page.add_init_script(RECORDER_JS)
    page.goto(url)
    yield page
    modules = {f"/web/{module.name}" for module in WEB_DIR.glob("*.js")}
    assert {path: served.get(path) for path in modules} == dict.fromkeys(modules, 200), served
    assert problems == [], problems


def sign_in(page: Page, user: str) -> None:
    page.get_by_test_id("user-input").fill(user)
    page.get_by_test_id("user-apply").click()
    expect(page.locator("body")).to_have_attribute("data-user", user)


def test_submit_watch_and_see_results_in_a_real_browser(
    make_user: Callable[[str], Api], slide: Path, service_settings: Settings, tmp_path: Path
) -> None:
    lab, other = make_user("web-lab"), make_user("web-other")
    home = f"http://{service_settings.host}:{service_settings.port}/"
    with chromium(tmp_path / "chromium-profile") as browser, watched_page(browser, home) as page:
        sign_in(page, lab.user)
        expect(page.get_by_test_id("workflow-list-empty")).to_be_visible()

        workflow_id = submit_through_the_form(page, slide)
        watch_the_bars_fill_live(page)
        the_page_shows_the_servers_percent(page, lab, workflow_id)
        results = {job["job_id"]: job["result"] for job in lab.workflow(workflow_id)["jobs"]}
        look_at_the_results(page, results)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Another user sees none of it: not the workflow page, not the list.
        sign_in(page, other.user)
        expect(page.get_by_test_id("not-found")).to_contain_text("not found")
        expect(page.get_by_test_id("result-canvas")).to_have_count(0)
        page.get_by_test_id("home-link").click()
        expect(page.get_by_test_id("workflow-list-empty")).to_be_visible()
        expect(page.get_by_test_id("workflow-row")).to_have_count(0)

        sign_in(page, lab.user)
        expect(page.locator(f"[data-testid=workflow-row][data-workflow-id='{workflow_id}']")).to_be_visible()


def submit_through_the_form(page: Page, slide: Path) -> str:
    """A refused submission first (its problems named per job), then the real one; its workflow id."""
    page.get_by_test_id("wf-image").fill("/etc/passwd")
    page.get_by_test_id("submit-button").click()
    problems = page.get_by_test_id("submit-problems")
    expect(problems).to_contain_text("tissue")
    expect(problems).to_contain_text("outside the data roots")

    page.get_by_test_id("wf-name").fill("Browser test: tissue and cells")
    page.get_by_test_id("wf-image").fill(str(slide))
    page.get_by_test_id("wf-tissue").check()
    page.get_by_test_id("wf-cells").check()
    page.get_by_test_id("wf-tile-size").fill(str(CELL_PARAMS["tile_size_px"]))
    page.get_by_test_id("wf-halo").fill(str(CELL_PARAMS["halo_px"]))
    page.get_by_test_id("submit-button").click()
    page.wait_for_url("**/#/workflows/*")
    workflow_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("workflow-id")).to_have_text(workflow_id)
    return workflow_id


def watch_the_bars_fill_live(page: Page) -> None:
    expect(page.get_by_test_id("lane")).to_have_count(1)
    expect(page.get_by_test_id("job-progress")).to_have_count(2)
    cells = page.locator("[data-testid=job][data-job-id=cells]")
    expect(cells.get_by_test_id("job-stats")).to_contain_text("ETA", timeout=FINISH_TIMEOUT_MS)
    status = page.get_by_test_id("workflow-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=FINISH_TIMEOUT_MS)

    seen: dict[str, Any] = page.evaluate("window.__seen")
    cells_seen = seen["bars"]["cells"]
    assert any(0 < value < 100 for value in cells_seen), f"no intermediate progress was shown: {cells_seen}"
    assert cells_seen[-1] == 100, cells_seen
    assert seen["bars"]["tissue"][-1] == 100, seen
    # Live over the SSE stream, not the polling fallback.
    assert "live" in seen["modes"] and "polling" not in seen["modes"], seen["modes"]
    for job_id in ("tissue", "cells"):
        bar = page.locator(f"[data-testid=job-progress][data-job-id={job_id}]")
        expect(bar).to_have_attribute("aria-valuenow", "100")


def look_at_the_results(page: Page, results: dict[str, Any]) -> None:
    """The picture (thumbnail, tissue outline, cells) and a download link for every artifact."""
    cell_count = results["cells"]["cell_count"]
    canvas = page.get_by_test_id("result-canvas")
    expect(canvas).to_have_attribute("data-ready", "true", timeout=30_000)
    canvas.scroll_into_view_if_needed()
    expect(canvas).to_have_attribute("data-cells-drawn", str(cell_count))
    pixels = canvas.evaluate(CANVAS_JS)
    assert (pixels["width"], pixels["height"]) == SAMPLE_CROP_SIZE_PX, (
        pixels
    )  # the thumbnail of a small slide is itself
    assert pixels["colours"] > 200, f"the canvas looks blank: {pixels}"
    assert pixels["cellPixels"] > 20 * cell_count, f"the cells were not drawn: {pixels}"

    links = page.get_by_test_id("artifact-link")
    expect(links).to_have_count(sum(len(result["artifacts"]) for result in results.values()))
    with page.expect_download() as download_info:
        page.locator("[data-testid=artifact-link][data-job-id=cells][data-name='summary.json']").click()
    summary = json.loads(Path(download_info.value.path()).read_text())
    assert summary["cell_count"] == cell_count


def test_the_page_shows_the_servers_percent_also_of_failed_skipped_and_cancelled_jobs(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings, tmp_path: Path
) -> None:
    """Finished jobs count 100 whatever the outcome, running ones done/total; the workflow their mean."""
    lab = make_user("web-percent")
    jobs = [
        job_spec("fails", data_dir, "a", fail=True),
        job_spec("skipped", data_dir, "a", ["fails"]),
        job_spec("slow", data_dir, "b", **SLOW_SLEEP),
        job_spec("waits", data_dir, "c", job_type="wait_signal", signal_path=str(data_dir / f"never-{lab.user}")),
    ]
    workflow_id = lab.submit(jobs, name="Browser test: percentages")["workflow_id"]

    def under_way(workflow: dict[str, Any]) -> bool:
        by_id = {job["job_id"]: job for job in workflow["jobs"]}
        return (
            by_id["skipped"]["status"] == "skipped"
            and by_id["waits"]["status"] == "running"
            and bool(by_id["slow"]["progress_done"])
        )

    lab.wait(workflow_id, under_way, timeout_s=60)
    url = f"http://{service_settings.host}:{service_settings.port}/#/workflows/{workflow_id}"
    with chromium(tmp_path / "chromium-profile") as browser, watched_page(browser, url) as page:
        sign_in(page, lab.user)
        expect(page.get_by_test_id("workflow-id")).to_have_text(workflow_id)
        running = the_page_shows_the_servers_percent(page, lab, workflow_id)
        by_id = {job["job_id"]: job for job in running["jobs"]}
        assert {job_id: job["status"] for job_id, job in by_id.items()} == {
            "fails": "failed",
            "skipped": "skipped",
            "slow": "running",
            "waits": "running",
        }, running
        assert 0 < by_id["slow"]["percent"] < 100 and 50 < running["percent"] < 75, running

        page.get_by_test_id("cancel-button").click()
        expect(page.get_by_test_id("workflow-status")).to_have_attribute("data-status", "cancelled")
        over = the_page_shows_the_servers_percent(page, lab, workflow_id)
        by_id = {job["job_id"]: job for job in over["jobs"]}
        assert {job_id: (job["status"], job["percent"]) for job_id, job in by_id.items()} == {
            "fails": ("failed", 100),
            "skipped": ("skipped", 100),
            "slow": ("cancelled", 100),
            "waits": ("cancelled", 100),
        }, over
        assert by_id["slow"]["done"] < by_id["slow"]["total"], over  # cancelled partway, and still 100
        expect(page.get_by_test_id("workflow-percent")).to_have_text("100 %")


def the_page_shows_the_servers_percent(page: Page, api: Api, workflow_id: str) -> dict[str, Any]:
    """Waits until the page shows GET /api/progress/{id}'s percentages, formatted as the page formats
    them: the overall bar's and each job's `data-percent` (a JavaScript number), `aria-valuenow` and
    the overall text (rounded halves up, then " %"). Returns the snapshot."""
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        snapshot: dict[str, Any] = api.request("GET", f"/api/progress/{workflow_id}").json()
        shown = page.evaluate(SHOWN_PERCENTS_JS)
        percent = snapshot["percent"]
        expected = {
            "percent": js_number(percent),
            "valuenow": str(js_round(percent)),
            "text": f"{js_round(percent)} %",
            "jobs": {job["job_id"]: shown_job(job) for job in snapshot["jobs"]},
        }
        if shown == expected:
            return snapshot
        if time.monotonic() > deadline:
            assert shown == expected, snapshot
        time.sleep(0.2)


def shown_job(job: dict[str, Any]) -> dict[str, str | None]:
    # A running job whose tile count is not known yet has an indeterminate bar: no aria-valuenow.
    indeterminate = job["status"] == "running" and not job["total"]
    return {"percent": js_number(job["percent"]), "valuenow": None if indeterminate else str(js_round(job["percent"]))}


def js_round(value: float) -> int:
    """JavaScript's Math.round: halves up (Python's round takes them to the even neighbour)."""
    return math.floor(value + 0.5)


def js_number(value: float) -> str:
    """JavaScript's String(value): the shortest repr that reads back the same, without a trailing ".0"."""
    return str(int(value)) if value.is_integer() else repr(value)
