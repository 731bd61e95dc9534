"""Every page in a real headless Chromium, in English and in Spanish, against `recsys ui` and `recsys serve` on the
local stack: the page loads at its own URL (and the default page at `/`), shows its title and a chart, no error box,
no "Page not found" dialog, no developer toolbar, no truncated metric, every time axis carries readable labels, and
the Spanish pages have no English left. Screenshots (`<language>-<page>.png`) go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.i18n import LANGUAGES, Language, translations
from stack.scratch import free_port
from stack.system import wait_http
from tests.integration.conftest import Published
from tests.integration.streamkit import RECSYS
from tests.integration.ui.english import english_left

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
PAGES = {"live": "Live stream", "customer": "Customer", "segments": "Customer segments (RFM)",
         "rules": "Association rules", "model": "Model", "ab": "A/B test", "data": "Data quality and exploration"}
LOAD_TIMEOUT_MS = 45_000
# A readable time label: a date, a time of day, a month or day name, an hour or a year, as Vega writes them;
# never a bare fraction of a second (".900").
READABLE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2})?|\d{1,2} ?[AP]M|[A-Z][a-z]+( \d{1,2})?|\d{4})$")


@pytest.fixture(scope="module")
def ui_url(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        message = (f"CHROMIUM IS NOT INSTALLED ({CHROMIUM}): the real-browser UI test is SKIPPED. "
                   "Install it with `apt-get install -y chromium` (.ci/run does).")
        pytest.skip(message)  # listed in the run's summary (-ra)
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    with log.open("wb") as out:
        server = subprocess.Popen([RECSYS, "ui", "--port", str(port), "--api-url", api_url], stdout=out,
                                  stderr=subprocess.STDOUT, env=os.environ | {"RECSYS_UI_REFRESH_S": "2"})
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_http(f"{url}/_stcore/health", 60, alive=lambda: server.poll() is None), (
            f"recsys ui did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_page_renders_in_chromium_in_both_languages(ui_url: str, published: Published) -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    customer = str(published.lines["customer_id"].iloc[-1])
    for language in LANGUAGES:
        check_pages(ui_url, customer, SCREENSHOTS, language)
    assert sorted(p.stem for p in SCREENSHOTS.glob("*.png")) == sorted(
        f"{language}-{page}" for language in LANGUAGES for page in PAGES)


def check_pages(ui_url: str, customer: str, screenshots: Path, language: Language) -> None:
    """Every page in `language` (a new browser session opened at `?lang=`): its title, a visible chart, no error
    box, no "Page not found", no developer toolbar, no truncated metric, readable time-axis labels, and in Spanish
    no English word; a full-page screenshot each. The default page is also opened at `/`."""
    from playwright.sync_api import sync_playwright

    gettext = translations(language).gettext
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, english_title in [*PAGES.items(), ("", PAGES["live"])]:
                title = gettext(english_title)
                query = f"?lang={language}" + (f"&customer_id={customer}" if path == "customer" else "")
                page.goto(f"{ui_url}/{path}{query}")
                page.get_by_role("heading", name=title, exact=True).wait_for(timeout=LOAD_TIMEOUT_MS)
                page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(state="visible",
                                                                             timeout=LOAD_TIMEOUT_MS)
                page.wait_for_timeout(2500 if path in ("live", "") else 500)  # a few refreshes / finished drawing
                if path:
                    page.screenshot(path=str(screenshots / f"{language}-{path}.png"), full_page=True)
                errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
                assert errors.count() == 0, f"{path}: {errors.first.inner_text()}"
                assert page.get_by_text("Page not found").count() == 0, f"/{path}: a 'Page not found' dialog"
                assert page.locator('[data-testid="stAppDeployButton"]').count() == 0, f"/{path}: a Deploy button"
                assert truncated_metrics(page) == [], f"/{path} ({language}): truncated metrics"
                if language != "en":
                    assert english_left(page_text(page)) == [], f"/{path}: English on the {language} page"
                for axis, labels in time_axis_labels(page):
                    assert labels and all(READABLE_TIME.match(label) for label in labels), (
                        f"/{path}: unreadable time labels on {axis}: {labels}")
        finally:
            browser.close()


def truncated_metrics(page: Any) -> list[str]:
    """The metrics whose value or label the page cuts (an ellipsis: the text is wider than its box)."""
    cut: list[str] = page.eval_on_selector_all(
        '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]',
        "elements => elements.filter(e => [e, ...e.querySelectorAll('*')].some("
        "  n => n.scrollWidth > n.clientWidth + 1)).map(e => e.innerText)")
    return cut


def page_text(page: Any) -> list[str]:
    """The lines a person reads: the main area's and the sidebar's text, and every chart's SVG text (titles, axis
    titles and labels, legends)."""
    text = page.locator('[data-testid="stMain"]').inner_text() + "\n" + page.locator(
        '[data-testid="stSidebar"]').inner_text()
    svg = page.locator('[data-testid="stVegaLiteChart"] svg text').all_text_contents()
    return [line.strip() for line in [*text.splitlines(), *svg] if line.strip()]


def time_axis_labels(page: Any) -> list[tuple[str, list[str]]]:
    """(the axis' description, its tick labels) for every time axis drawn on the page. Streamlit draws Vega
    charts as SVG, and Vega describes each axis in its aria-label ("X-axis titled ... for a time scale ...")."""
    found = []
    axes = page.locator('[data-testid="stVegaLiteChart"] g[aria-label*="time scale"]')
    for i in range(axes.count()):
        axis = axes.nth(i)
        labels = axis.locator("g.role-axis-label text").all_text_contents()
        found.append((str(axis.get_attribute("aria-label")), [label.strip() for label in labels if label.strip()]))
    return found
