"""The reader's review in a real browser (chromium): paint with a click in NiiVue, see the lesion
list and the overlay change where the click was (the page's voxel is the server's (z, y, x)), undo
and redo with the keyboard, sign the report."""

from __future__ import annotations

import gzip
import io

import httpx
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.helpers.browser import chromium, log_in
from tests.helpers.web import PASSWORDS

pytestmark = pytest.mark.browser  # drives chromium through tests.helpers.browser (no fixture says so)

CLICK = (0.06, 0.30)  # where on the image (fraction of its width, height) the reader paints: air, beside the body


IMAGE_RECT = """
const nv = state.nv, canvas = document.getElementById("viewer");
const inside = (x, y) => nv.canvasPos2frac([x, y])[0] >= 0;
const xs = [...Array(canvas.width).keys()].filter((x) => inside(x, canvas.height / 2));
const ys = [...Array(canvas.height).keys()].filter((y) => inside(canvas.width / 2, y));
return [xs[0], ys[0], xs[xs.length - 1] - xs[0] + 1, ys[ys.length - 1] - ys[0] + 1];
"""  # the slice's rectangle on the canvas as NiiVue maps it (device pixels = CSS pixels here)


def red_pixels(png: bytes, box: tuple[int, int, int, int]) -> int:
    """Tumour-coloured pixels of a screenshot inside ``box`` (left, top, right, bottom)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)[box[1] : box[3], box[0] : box[2]]
    return int(np.count_nonzero((rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60)))


def served_labels(driver, base_url: str, url: str) -> np.ndarray:
    """The label map the page was given, fetched with the browser's session, as [z, y, x]."""
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    content = httpx.get(base_url + url, cookies=cookies, timeout=60).content
    return np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(content)).dataobj).transpose(2, 1, 0)


def test_paint_by_a_click_in_the_viewer_then_undo_redo_and_sign(web_server, data_root, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    # not the DICOM series the API tests revise: a saved scan's model result takes one revision 1 only
    ct = data_root / "totalsegmentator" / "example_ct_sm.nii.gz"  # 30 x 101 x 122, 3 mm
    base = web_server[0]
    driver = chromium(tmp_path)
    viewer = "document.getElementById('viewer')"
    try:
        log_in(driver, base, "alice", PASSWORDS["alice"])
        driver.find_element(By.ID, "file").send_keys(str(ct))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 120, poll_frequency=0.3).until(
            lambda d: (
                d.execute_script(f"return {viewer}.dataset.loaded") == "labels"
                and d.find_element(By.ID, "status").get_attribute("data-state") == "done"
            )
        )
        summary = driver.execute_script("return state.summary")
        before = served_labels(driver, base, summary["labels_url"])
        rows_before = len(driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr"))
        assert rows_before == len(summary["lesions"]) and not driver.find_elements(By.CSS_SELECTOR, "tr.edited")

        driver.find_element(By.ID, "tool-paint").click()
        radius = driver.find_element(By.ID, "brush-radius")
        radius.clear()
        radius.send_keys("10")
        left, top, width, height = driver.execute_script(IMAGE_RECT)
        canvas = driver.find_element(By.ID, "viewer")
        x, y = left + CLICK[0] * width, top + CLICK[1] * height
        screenshot_before = canvas.screenshot_as_png
        ActionChains(driver).move_to_element_with_offset(
            canvas, int(x - canvas.size["width"] / 2), int(y - canvas.size["height"] / 2)
        ).click().perform()
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(f"return {viewer}.dataset.reviewed") == "1")
        assert driver.find_element(By.ID, "error").text == ""

        # the voxel the page sent is the one under the click: the key slice, rows down, columns right
        z, row, col = (int(v) for v in driver.execute_script(f"return {viewer}.dataset.clickVoxel").split(","))
        shape = before.shape
        assert z == summary["key_slice"]
        assert abs(row - CLICK[1] * shape[1]) <= 1 and abs(col - CLICK[0] * shape[2]) <= 1, (row, col)
        assert before[z, row, col] == 0  # air: the paint makes a lesion of its own
        after = served_labels(driver, base, driver.execute_script("return state.summary.labels_url"))
        assert after[z, row, col] == 2 and set(np.argwhere(after != before)[:, 0]) == {z}
        assert driver.find_element(By.ID, "review-state").text == "revision 1 (unsaved)"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr")) == rows_before + 1
        assert len(driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr.edited")) == 1
        box = (int(x) - 12, int(y) - 12, int(x) + 12, int(y) + 12)
        assert red_pixels(screenshot_before, box) == 0 and red_pixels(canvas.screenshot_as_png, box) > 100
        shown_ms = int(driver.execute_script(f"return {viewer}.dataset.shownMs"))
        print(f"click to updated findings and overlay in the browser: {shown_ms} ms")

        ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(f"return {viewer}.dataset.reviewed") == "2")
        assert driver.find_element(By.ID, "review-state").text == "the model's result"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr")) == rows_before
        assert not driver.find_elements(By.CSS_SELECTOR, "tr.edited") and red_pixels(canvas.screenshot_as_png, box) == 0
        chord = ActionChains(driver).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z")
        chord.key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(f"return {viewer}.dataset.reviewed") == "3")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#lesions tbody tr.edited")) == 1

        driver.find_element(By.ID, "impression").send_keys("A new lesion in the left flank, drawn by the reader.")
        driver.find_element(By.ID, "sign").click()
        WebDriverWait(driver, 60).until(
            lambda d: "Signed by alice" in d.find_element(By.ID, "signed").text or d.find_element(By.ID, "error").text
        )
        assert driver.find_element(By.ID, "error").text == ""
        assert driver.find_element(By.ID, "review-state").text.endswith("signed by alice")
        assert "signed by alice" in driver.find_element(By.ID, "report").text.lower()
        severe = [
            e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
        ]
        assert severe == []
    finally:
        driver.quit()
