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


def test_planes_of_an_anisotropic_ct_are_head_up_with_letters_from_its_affine(ircadb1):
    """3Dircadb1.1: 1.6 mm slices of 0.57 mm pixels, stored (L, P, S)."""
    shape = ircadb1.shape
    assert display.axis_codes(ircadb1.affine) == ("S", "P", "L")
    axial = display.plane_geometry("axial", shape, ircadb1.affine, ircadb1.spacing)
    coronal = display.plane_geometry("coronal", shape, ircadb1.affine, ircadb1.spacing)
    sagittal = display.plane_geometry("sagittal", shape, ircadb1.affine, ircadb1.spacing)
    assert (axial.top, axial.bottom, axial.left, axial.right) == ("A", "P", "R", "L") and not axial.flip_rows
    assert (coronal.top, coronal.bottom, coronal.left, coronal.right) == ("S", "I", "R", "L")
    assert (sagittal.top, sagittal.bottom, sagittal.left, sagittal.right) == ("S", "I", "A", "P")
    assert coronal.aspect == pytest.approx(1.6 / 0.57, rel=1e-3) and axial.aspect == 1.0
    picture = display.plane_slice(ircadb1.voxels, coronal, 256)
    assert picture.shape == (shape[0], shape[2])
    assert np.array_equal(picture[0], ircadb1.voxels[-1, 256])  # the head end on top
    assert np.array_equal(display.plane_slice(ircadb1.voxels, sagittal, 100)[:, 7], ircadb1.voxels[::-1, 7, 100])
    voxel = (40, 256, 100)
    for geometry in (axial, coronal, sagittal):
        index, row, column = display.volume_to_picture(geometry, voxel, shape)
        assert display.picture_to_volume(geometry, index, row, column, shape) == voxel
        assert display.plane_slice(ircadb1.voxels, geometry, index)[row, column] == ircadb1.voxels[voxel]


def test_letters_follow_the_affine_not_the_habit():
    """A stack stored head first with columns to the patient's right: the letters move with it."""
    affine = np.diag([0.8, -0.8, -2.0, 1.0])  # i -> R, j -> P, k -> I
    shape = (10, 20, 30)
    assert display.axis_codes(affine) == ("I", "P", "R")
    coronal = display.plane_geometry("coronal", shape, affine, (2.0, 0.8, 0.8))
    assert not coronal.flip_rows and (coronal.top, coronal.bottom, coronal.left, coronal.right) == ("S", "I", "L", "R")
    axial = display.plane_geometry("axial", shape, affine, (2.0, 0.8, 0.8))
    assert (axial.left, axial.right) == ("L", "R")
    picture = display.plane_geometry("coronal", shape, affine, None, oriented=False)
    assert picture.top == "" and picture.row_mm is None and picture.aspect == 1.0


def test_scale_bar_is_a_round_length_that_fits():
    assert display.scale_bar_mm(0.5, 120) == 50.0
    assert display.scale_bar_mm(0.57, 100) == 50.0
    assert display.scale_bar_mm(1.6, 40) == 50.0
    assert display.scale_bar_mm(0.1, 150) == 10.0
    assert display.scale_bar_mm(3.0, 60) == 100.0
    with pytest.raises(ValueError):
        display.scale_bar_mm(0.0, 100)
