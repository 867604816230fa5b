"""The saved-results worklist in a real browser (chromium): a study uploaded and saved shows under
its patient and study date; Compare against the same scan is refused in one line, not scored SD."""

from __future__ import annotations

import zipfile

import pytest

from tests.helpers.browser import chromium
from tests.helpers.web import PASSWORDS

pytestmark = pytest.mark.browser


def test_worklist_tree_and_the_same_scan_refused(web_server, data_root, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    zipped = tmp_path / "ct-3slice.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted((data_root / "dcmqi" / "ct-3slice").iterdir()):
            archive.write(path, path.name)
    driver = chromium(tmp_path)
    try:
        driver.get(web_server[0] + "/")
        driver.find_element(By.ID, "name").send_keys("bob")
        driver.find_element(By.ID, "password").send_keys(PASSWORDS["bob"])
        driver.find_element(By.ID, "login").click()
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        driver.find_element(By.ID, "file").send_keys(str(zipped))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 120, poll_frequency=0.5).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "failed", "cancelled")
        )
        assert driver.find_element(By.ID, "status").get_attribute("data-state") == "done"
        driver.find_element(By.ID, "save").click()
        WebDriverWait(driver, 60).until(lambda d: "Saved as result" in d.find_element(By.ID, "saved").text)
        result_id = driver.find_element(By.ID, "saved").text.split("result ")[1].rstrip(".")
        driver.find_element(By.ID, "tab-results").click()
        row = f"#results tbody tr[data-result='{result_id}']"
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        kinds = [(r.get_attribute("class"), r.get_attribute("data-result"), r.text) for r in rows]
        mine = next(i for i, (_, rid, _) in enumerate(kinds) if rid == result_id)
        assert kinds[mine - 1][0] == "study" and kinds[mine - 1][2].startswith("2003-04-17 10:46"), kinds
        assert "accession 03086212" in kinds[mine - 1][2]
        patient = next(text for kind, _, text in reversed(kinds[:mine]) if kind == "patient")
        assert patient == "JANCT000 (ID 99000) (sex M)"
        driver.find_element(By.CSS_SELECTOR, f"{row} button.compare").click()
        WebDriverWait(driver, 60).until(lambda d: "same scan" in d.find_element(By.ID, "results-error").text)
        assert "RECIST" not in driver.find_element(By.ID, "comparison").text
        driver.find_element(By.ID, "compare-latest").click()
        WebDriverWait(driver, 60).until(
            lambda d: "No earlier study of this patient" in d.find_element(By.ID, "results-error").text
        )
        severe = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"] and "status of 400" not in e["message"]
        ]
        assert severe == []
    finally:
        driver.quit()
