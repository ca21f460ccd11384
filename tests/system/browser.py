"""Headless Chromium for the tests that look at pages the way a person does (the screenshot
test, the monitoring drill): Debian's ``chromium`` and ``chromium-driver``
(scripts/install-browser.sh), driven by Selenium with an explicit driver path, so Selenium
Manager never looks for (or downloads) one."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

WIDTH, HEIGHT = 1280, 800

# Keep the browser on loopback: no proxy, and none of Chromium's own background traffic
# (updates, safe browsing, metrics, sync).
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI; the page is our own local UI
    "--disable-dev-shm-usage",
    f"--window-size={WIDTH},{HEIGHT}",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    "--lang=en-US",
    "--no-proxy-server",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-extensions",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-pings",
    "--safebrowsing-disable-auto-update",
)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium whose page is WIDTH x HEIGHT; quit afterwards."""
    binary = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if not (binary and chromedriver):
        pytest.fail(
            "chromium and chromedriver are needed: run scripts/install-browser.sh"
        )
    options = Options()
    options.binary_location = binary
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(executable_path=chromedriver), options=options
    )
    try:
        page_size(driver, HEIGHT)
        yield driver
    finally:
        driver.quit()


def page_size(driver: webdriver.Chrome, height: int) -> None:
    """The page itself WIDTH x height, whatever the window decorations take."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def full_page_png(driver: webdriver.Chrome, url: str, path: Path) -> None:
    """Opens ``url`` and saves all of the page (WIDTH wide, as tall as its content, at
    most 4000 px) as a PNG at ``path``."""
    driver.get(url)
    height = driver.execute_script(
        "return Math.ceil(document.documentElement.scrollHeight)"
    )
    page_size(driver, min(max(int(height), HEIGHT), 4000))
    time.sleep(0.5)
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    print(f"saved {path}")
