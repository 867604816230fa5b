"""The web page in a real browser (chromium): log in, upload 3Dircadb1.1, see NiiVue draw the CT
with the liver and tumour overlay, click a lesion, download the PDF."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from liverhealth.presentation import DISCLAIMER
from tests.helpers.browser import chromium
from tests.helpers.web import PASSWORDS

pytestmark = pytest.mark.browser  # drives chromium through tests.helpers.browser (no fixture says so)


def overlay_pixels(png: bytes) -> tuple[int, int]:
    """(green, red) pixel counts of a screenshot: the liver and tumour overlay colours."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    green = int(np.count_nonzero((g > r + 40) & (g > b + 40)))
    red = int(np.count_nonzero((r > g + 60) & (r > b + 60)))
    return green, red


def test_upload_view_click_lesion_download_pdf_then_compare(web_server, data_root, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(downloads)
    try:
        driver.get(web_server[0] + "/")
        driver.find_element(By.ID, "name").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(PASSWORDS["alice"])
        driver.find_element(By.ID, "login").click()
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        assert driver.find_element(By.ID, "disclaimer").text == DISCLAIMER  # the one disclaimer of every face
        blank = overlay_pixels(driver.find_element(By.ID, "viewer").screenshot_as_png)
        driver.find_element(By.ID, "file").send_keys(str(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 300, poll_frequency=0.5).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "failed", "cancelled")
        )
        assert driver.find_element(By.ID, "status").get_attribute("data-state") == "done", driver.find_element(
            By.ID, "error"
        ).text
        WebDriverWait(driver, 120).until(
            lambda d: d.find_element(By.ID, "viewer").get_attribute("data-loaded") == "labels"
        )
        time.sleep(1)
        green, red = overlay_pixels(driver.find_element(By.ID, "viewer").screenshot_as_png)
        assert blank == (0, 0) and green > 2000 and red > 200, (blank, green, red)
        assert "mL" in driver.find_element(By.ID, "measurements").text
        assert "not a medical device" in driver.find_element(By.ID, "report").text

        rows = driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr")
        assert rows
        target = rows[-1]
        target.click()
        assert driver.find_element(By.ID, "viewer").get_attribute("data-slice") == target.get_attribute("data-slice")
        # "check first": least confident at the top; the uncertainty overlay shows and hides
        Select(driver.find_element(By.ID, "lesion-order")).select_by_value("check")
        cells = driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr td:last-child")
        shown = [float(cell.text.split(" %")[0]) for cell in cells]
        assert shown == sorted(shown), shown
        before = np.asarray(Image.open(io.BytesIO(driver.find_element(By.ID, "viewer").screenshot_as_png)))
        driver.find_element(By.ID, "uncertainty").click()
        shown_attr = 'return document.getElementById("viewer").dataset.uncertainty'
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(shown_attr) == "shown")
        time.sleep(1)
        after = np.asarray(Image.open(io.BytesIO(driver.find_element(By.ID, "viewer").screenshot_as_png)))
        assert int((np.abs(after.astype(int) - before.astype(int)).sum(axis=-1) > 30).sum()) > 100
        driver.find_element(By.ID, "uncertainty").click()
        assert driver.find_element(By.ID, "viewer").get_attribute("data-uncertainty") == "hidden"

        driver.find_element(By.ID, "download-report-pdf").click()
        deadline = time.monotonic() + 60
        while not (downloads / "report.pdf").is_file() and time.monotonic() < deadline:
            time.sleep(0.3)
        pdf = PdfReader(downloads / "report.pdf")
        assert "Measured findings" in "".join(page.extract_text() for page in pdf.pages)

        driver.find_element(By.ID, "save").click()  # then the worklist, and the open study against its saved copy
        WebDriverWait(driver, 60).until(lambda d: "Saved as result" in d.find_element(By.ID, "saved").text)
        result_id = driver.find_element(By.ID, "saved").text.split("result ")[1].rstrip(".")
        driver.find_element(By.ID, "tab-results").click()
        compare = f"#results tbody tr[data-result='{result_id}'] button.compare"
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, compare))
        groups = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr.patient")]
        assert "liver_01 patient (sex M, born 2009-05-27)" in groups, groups
        studies = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr.study")]
        assert any(text.startswith("2009-05-27 12:50") for text in studies), studies
        driver.find_element(By.CSS_SELECTOR, compare).click()  # the same scan: refused in one line, not SD
        WebDriverWait(driver, 120).until(lambda d: "same scan" in d.find_element(By.ID, "results-error").text)
        assert "RECIST" not in driver.find_element(By.ID, "comparison").text
        severe = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE"
            and "favicon" not in e["message"]
            and not ("/compare" in e["message"] and "status of 400" in e["message"])  # the refusal asked for above
        ]
        assert severe == []
    finally:
        driver.quit()
