"""Display operations: windows, CLAHE, denoising, edges, tissue map, overlay."""

from __future__ import annotations

import numpy as np
import pytest

from liverhealth.imaging import display


def test_window_presets_map_hu_as_specified():
    hu = np.array([-160, 40, 240, -1000, 1000], dtype=np.int16)
    out = display.apply_preset(hu, "abdomen")
    assert out[0] == 0 and out[2] == 255 and out[1] in (127, 128)
    assert out[3] == 0 and out[4] == 255
    liver = display.WINDOW_PRESETS["liver"]
    assert (liver.center, liver.width) == (90, 150)
    training = display.WINDOW_PRESETS["training"]
    assert (training.low, training.high) == (-200, 200)
    custom = display.apply_window(np.array([0, 50, 100]), center=50, width=100)
    assert list(custom) == [0, 127, 255]
    with pytest.raises(ValueError):
        display.apply_window(hu, 0, 0)


def test_clahe_raises_local_contrast(ircadb1):
    grey = display.apply_preset(ircadb1.voxels[60], "bone")  # a flat, low-contrast view
    enhanced = display.clahe(grey)
    assert enhanced.shape == grey.shape and enhanced.dtype == np.uint8
    assert enhanced.std() > grey.std()


def test_denoisers_reduce_noise():
    rng = np.random.default_rng(0)
    clean = np.full((128, 128), 120, np.uint8)
    clean[32:96, 32:96] = 180
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    error = float(np.abs(noisy.astype(int) - clean).mean())
    for op in (display.denoise_gaussian, display.denoise_median, display.denoise_bilateral):
        out = op(noisy)
        assert out.shape == noisy.shape
        assert float(np.abs(out.astype(int) - clean).mean()) < 0.7 * error, op.__name__
    salt = clean.copy()
    salt[::7, ::5] = 255
    assert np.array_equal(display.denoise_median(salt, 3)[40:90, 40:90], clean[40:90, 40:90])


def test_edges_follow_a_square():
    image = np.zeros((64, 64), np.uint8)
    image[16:48, 16:48] = 200
    canny = display.edges_canny(image)
    assert canny[16:48, 15:18].any() and not canny[25:40, 25:40].any()
    sobel = display.edges_sobel(image)
    assert sobel[32, 16] > 100 and sobel[32, 32] == 0


def test_tissue_colour_map():
    hu = np.array([[-1000, -100, 50], [250, 800, 0]], dtype=np.int16)
    rgb = display.tissue_colour_map(hu)
    colours = {name: colour for name, _, _, colour in display.TISSUE_CLASSES}
    assert tuple(rgb[0, 0]) == colours["air / lung"]
    assert tuple(rgb[0, 1]) == colours["fat"]
    assert tuple(rgb[0, 2]) == colours["soft tissue"] == tuple(rgb[1, 2])
    assert tuple(rgb[1, 0]) == colours["contrast-enhanced vessels"]
    assert tuple(rgb[1, 1]) == colours["bone"]


def test_overlay_colours_labels():
    grey = np.full((32, 32), 100, np.uint8)
    labels = np.zeros((32, 32), np.uint8)
    labels[5:15, 5:15] = 1
    labels[20:25, 20:25] = 2
    rgb = display.overlay_labels(grey, labels, alpha=0.5, outline=False)
    assert rgb[10, 10, 1] > rgb[10, 10, 0]  # liver green
    assert rgb[22, 22, 0] > rgb[22, 22, 1]  # tumour red
    assert tuple(rgb[0, 0]) == (100, 100, 100)


def test_raster_grey_scaling():
    assert display.grey_to_unit(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    sixteen = np.array([1000, 3000], np.uint16)
    assert display.grey_to_unit(sixteen).tolist() == [0.0, 1.0]
