"""Debian's chromium driven by Selenium through chromium-driver (no browser download: both come
from apt). WebGL runs on SwiftShader, chromium's software renderer, so NiiVue draws without a GPU."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.prerequisites import require

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium(download_dir: Path, width: int = 1400, height: int = 1100):
    require(
        Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file() and shutil.which("chromium") is not None,
        "chromium and chromium-driver are missing: apt-get install chromium chromium-driver "
        "(`bash scripts/test.sh` does as root)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--ignore-gpu-blocklist",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def log_in(driver, base_url: str, name: str, password: str, timeout_s: float = 30) -> None:
    """Log in through the login form and wait until the workstation page is ready."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base_url + "/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, timeout_s).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
