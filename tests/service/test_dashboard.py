"""The dashboard in a real headless browser (Debian's chromium through chromedriver):
the job list shows a running job whose progress advances, the pause button pauses it,
the review list shows a low-confidence page beside its text. Skips where no chromium
is found (.ci/run installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.service.server import Service, fake_job, service

__all__ = ["service"]

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1000",
    ):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(executable_path=DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _text(browser: Any, css: str) -> str:
    """An element's text; "" while the page's refresh is replacing it."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(browser.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _login(browser: Any, token: str) -> None:
    from selenium.webdriver.common.by import By

    wait_until(lambda: browser.find_elements(By.ID, "token"), 30, "the login form")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "login").click()
    wait_until(lambda: browser.find_elements(By.ID, "jobs"), 30, "the jobs list after login")


def test_dashboard_follows_a_running_job_pauses_it_and_shows_the_review_list(
    service: Service, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    svc = service
    folder = svc.pages("book", 60, text="Dashboard page")
    # The fake engine's pages have confidence 0.9: all are under 0.95, to review.
    job = fake_job(svc, folder, engine_options={"delay": 0.4}, min_confidence=0.95)["job"]

    browser.get(svc.url + "/")
    assert "/login" in browser.current_url
    _login(browser, svc.read)
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-job='{job}']"), 30, "row")

    row = f"tr[data-job='{job}']"

    def done() -> int:
        shown = _text(browser, f"{row} td.pages").split("/")[0]
        return int(shown) if shown.isdigit() else -1

    wait_until(lambda: _text(browser, f"{row} td.status") == "running", 60, "running in the list")
    first = max(done(), 0)
    wait_until(lambda: done() > first, 60, "progress advancing in the list")
    shot = os.environ.get("OCRBATCH_SCREENSHOT_LIST")
    if shot:
        browser.save_screenshot(shot)

    # The job page: a read token sees it but cannot pause; log in with the write token.
    browser.get(svc.url + "/logout")
    _login(browser, svc.write)
    browser.get(f"{svc.url}/jobs/{job}")
    wait_until(lambda: _text(browser, "#status") == "running", 30, "running on the job page")
    wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#review .review-item img"), 30, "review"
    )
    item = browser.find_element(By.CSS_SELECTOR, "#review .review-item")
    assert "confidence 0.900" in item.text and "fake text of" in item.text
    img = item.find_element(By.TAG_NAME, "img")
    wait_until(
        lambda: browser.execute_script("return arguments[0].naturalWidth", img) > 0, 30, "image"
    )
    wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr"), 30, "documents"
    )
    shot = os.environ.get("OCRBATCH_SCREENSHOT")
    browser.save_screenshot(shot or str(tmp_path / "job.png"))

    browser.find_element(By.ID, "btn-pause").click()
    wait_until(lambda: _text(browser, "#status") == "paused", 30, "paused on the page")
    assert svc.status(job)["status"] == "paused"
