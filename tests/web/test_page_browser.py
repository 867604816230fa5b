"""The web page's fixes in a real browser (chromium, software WebGL), on a server whose model is a
cascade: a double click starts one job, the progress line names each step, the lesion table counts
slices from 1, the window presets are the library's, a lesion's caliper is drawn over the viewer,
the uncertainty tint is not the crosshair's colour, Cancel leaves a clean page, and the viewer fits
1366×768, 1600×900 and 1600×1000 without scrolling."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from liverhealth.imaging.display import WINDOW_PRESETS
from tests.helpers.browser import chromium, log_in
from tests.helpers.web import PASSWORDS

pytestmark = pytest.mark.browser  # drives chromium through tests.helpers.browser (no fixture says so)

CT_SLICES = 30  # example_ct_sm.nii.gz: 30 x 101 x 122 at 3 mm

WATCH_STATUS = """
window.seenStatus = [];
new MutationObserver(() => window.seenStatus.push(document.getElementById("status").textContent))
  .observe(document.getElementById("status"), {childList: true, characterData: true, subtree: true});
"""

CALIPER_PIXELS = """
const layer = document.getElementById("caliper-layer");
const data = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height).data;
let n = 0;
for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
return n;
"""

JOB_SUMMARY = """
const done = arguments[arguments.length - 1];
fetch(`/api/jobs/${state.job}`).then((r) => r.json()).then((job) => done(job.summary));
"""


def job_folders(server) -> set[str]:
    return {p.name for p in server[1].glob("liverhealth-web-*/jobs/*") if p.is_dir()}


def finished(driver, timeout_s: float = 240) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ends = ("done", "failed", "cancelled", "interrupted")
    WebDriverWait(driver, timeout_s, poll_frequency=0.3).until(
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ends
    )
    return driver.find_element(By.ID, "status").get_attribute("data-state")


def labels_shown(driver, timeout_s: float = 120) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    shown = "return document.getElementById('viewer').dataset.loaded === 'labels' && !state.labelsLoading"
    WebDriverWait(driver, timeout_s, poll_frequency=0.3).until(lambda d: d.execute_script(shown))


def screenshot(element) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")).astype(int)


def test_double_click_one_job_steps_slices_presets_caliper_and_tint(cascade_server, data_root, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ct = data_root / "totalsegmentator" / "example_ct_sm.nii.gz"
    driver = chromium(tmp_path)
    try:
        log_in(driver, cascade_server[0], "alice", PASSWORDS["alice"])
        presets = [
            (b.get_attribute("data-preset"), b.text, b.get_attribute("data-window"))
            for b in driver.find_elements(By.CSS_SELECTOR, "#window-presets button")
        ]
        assert presets == [(key, w.name, f"{w.width:g},{w.center:g}") for key, w in WINDOW_PRESETS.items()]
        assert ("liver", "Liver", "150,90") in presets

        driver.execute_script(WATCH_STATUS)
        before = job_folders(cascade_server)
        driver.find_element(By.ID, "file").send_keys(str(ct))
        button = driver.find_element(By.ID, "upload")
        ActionChains(driver).double_click(button).perform()
        assert not button.is_enabled()  # disabled while the submission is in flight
        assert finished(driver) == "done", driver.find_element(By.ID, "error").text
        labels_shown(driver)
        assert button.is_enabled()
        assert len(job_folders(cascade_server) - before) == 1  # one job for the double click

        seen = driver.execute_script("return window.seenStatus")
        expected = (
            "Reading the CT.",
            "Finding the liver: slice ",
            "Segmenting: slice ",
            "Measuring the liver",
            "Sending the labels to the viewer.",
        )
        firsts = [next((i for i, text in enumerate(seen) if text.startswith(e)), None) for e in expected]
        assert None not in firsts and firsts == sorted(firsts), seen
        assert f"Segmenting: slice {CT_SLICES} of {CT_SLICES}." in seen
        assert all(f" of {CT_SLICES}." in text for text in seen if ": slice " in text), seen

        # the lesion table's slice is the measurements' index + 1
        summary = driver.execute_async_script(JOB_SUMMARY)
        rows = driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr")
        assert rows and len(rows) == len(summary["lesions"])
        for row, lesion in zip(rows, summary["lesions"], strict=True):
            cells = row.find_elements(By.TAG_NAME, "td")
            assert int(cells[0].text.split()[0]) == lesion["lesion_id"]
            assert int(cells[3].text.split()[0]) == lesion["largest_slice"] + 1
        key_slice = f"slice {summary['key_slice'] + 1} of {CT_SLICES}"
        assert key_slice in driver.find_element(By.ID, "measurements").text

        # a click on a row outlines the lesion and draws its RECIST axes on its measured slice
        assert driver.execute_script(CALIPER_PIXELS) == 0
        rows[0].click()
        lesion = summary["lesions"][0]
        viewer = driver.find_element(By.ID, "viewer")
        assert viewer.get_attribute("data-slice") == str(lesion["measured_slice"])
        assert driver.find_element(By.ID, "caliper-layer").get_attribute("data-drawn") == str(lesion["lesion_id"])
        assert driver.execute_script(CALIPER_PIXELS) > 20
        assert "selected" in rows[0].get_attribute("class")
        cursor = driver.execute_script("return document.getElementById('cursor').textContent")
        assert cursor.startswith(f"slice {lesion['measured_slice'] + 1} of {CT_SLICES},"), cursor

        # the uncertainty tint: new pixels, none of them the crosshair's yellow
        blank = screenshot(viewer)
        driver.find_element(By.ID, "uncertainty").click()
        shown = "return document.getElementById('viewer').dataset.uncertainty === 'shown'"
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(shown))
        driver.execute_script("state.nv.drawScene()")
        tinted = screenshot(viewer)
        changed = np.abs(tinted - blank).sum(axis=-1) > 30
        r, g, b = tinted[..., 0], tinted[..., 1], tinted[..., 2]
        yellow = (r > 150) & (g > 150) & (b < 100)
        assert changed.sum() > 50 and (changed & yellow).sum() < 0.01 * changed.sum(), (
            changed.sum(),
            (changed & yellow).sum(),
        )
        severe = [
            e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
        ]
        assert severe == []
    finally:
        driver.quit()


def test_cancel_leaves_a_clean_page(cascade_server, data_root, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium(tmp_path)
    try:
        log_in(driver, cascade_server[0], "alice", PASSWORDS["alice"])
        driver.find_element(By.ID, "file").send_keys(str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"))
        driver.find_element(By.ID, "upload").click()
        assert finished(driver) == "done"
        labels_shown(driver)
        assert "mL" in driver.find_element(By.ID, "measurements").text  # the first study's findings

        driver.find_element(By.ID, "file").clear()
        driver.find_element(By.ID, "file").send_keys(str(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 120, poll_frequency=0.2).until(lambda d: d.find_element(By.ID, "cancel").is_displayed())
        driver.find_element(By.ID, "cancel").click()
        assert finished(driver) == "cancelled"
        time.sleep(2)  # anything the page was still loading has arrived by now
        assert driver.find_element(By.ID, "measurements").text == ""
        assert driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr") == []
        assert driver.find_element(By.ID, "error").text == ""
        assert driver.find_element(By.ID, "status").text == "Cancelled; nothing was kept."
        assert driver.execute_script("return state.nv.volumes.length") == 0
        assert driver.find_element(By.ID, "viewer").get_attribute("data-loaded") is None
        assert driver.find_element(By.ID, "upload").is_enabled()
        assert driver.find_element(By.ID, "downloads").text == ""
    finally:
        driver.quit()


@pytest.mark.parametrize("size", [(1366, 768), (1600, 900), (1600, 1000)])
def test_the_viewer_fits_the_window(cascade_server, tmp_path, size):
    driver = chromium(tmp_path, *size)
    try:
        log_in(driver, cascade_server[0], "alice", PASSWORDS["alice"])
        box = driver.execute_script(
            "const c = document.getElementById('viewer').getBoundingClientRect();"
            "const s = document.querySelector('.side').getBoundingClientRect();"
            "const t = document.getElementById('opacity').getBoundingClientRect();"
            "return {c: [c.left, c.top, c.right, c.bottom], s: [s.left, s.top, s.right, s.bottom],"
            " opacity: t.bottom, w: innerWidth, h: innerHeight, scrolled: scrollY}"
        )
        left, top, right, bottom = box["c"]
        assert box["scrolled"] == 0 and left >= 0 and top >= 0 and right <= box["w"] and bottom <= box["h"], box
        assert bottom - top >= 320 and right - left >= 500, box  # a canvas one reads from
        assert box["opacity"] <= box["h"], box  # the controls under the viewer too
        side_left, side_top = box["s"][0], box["s"][1]
        assert side_left >= right or side_top >= bottom, box  # the findings beside (or below) the viewer
        assert side_top < box["h"], box
    finally:
        driver.quit()
