"""The README's picture of the web page: the shipped default model on 3Dircadb1.1 in chromium.

python -m bench.web_screenshot [--out docs/images/web.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.bench_web import PASSWORD, running_server
from liverhealth import config


def main() -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.helpers.browser import chromium

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=config.REPO_ROOT / "docs" / "images" / "web.png")
    args = parser.parse_args()
    ct = config.data_dir() / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    with running_server(None) as (url, _):
        driver = chromium(args.out.parent, 1500, 1150)
        try:
            driver.get(url + "/")
            driver.find_element(By.ID, "name").send_keys("bench")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "login").click()
            WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
            driver.find_element(By.ID, "file").send_keys(str(ct))
            driver.find_element(By.ID, "upload").click()
            WebDriverWait(driver, 600, poll_frequency=1).until(
                lambda d: (
                    d.find_element(By.ID, "viewer").get_attribute("data-loaded") == "labels"
                    and d.find_element(By.ID, "status").get_attribute("data-state") == "done"
                )
            )
            driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr")[0].click()
            time.sleep(2)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
            print(f"wrote {args.out}")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
