"""PNG/JPG/BMP/TIFF slices: 8-bit, 16-bit and colour become one-slice grey volumes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liverhealth.errors import InputError
from liverhealth.imaging import load, with_pixel_size
from liverhealth.imaging.display import apply_preset


@pytest.fixture(scope="module")
def ct_slice(ircadb1) -> np.ndarray:
    return apply_preset(ircadb1.voxels[60], "abdomen")


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_8bit_grey_lossless(tmp_path, ct_slice, suffix):
    path = tmp_path / f"slice{suffix}"
    assert cv2.imwrite(str(path), ct_slice)
    volume = load(path)
    assert volume.shape == (1, 512, 512)
    assert not volume.is_hu and volume.spacing is None
    np.testing.assert_array_equal(volume.voxels[0], ct_slice)


def test_rgb_jpeg_becomes_grey(tmp_path, ct_slice):
    rgb = cv2.cvtColor(ct_slice, cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(tmp_path / "slice.jpg"), rgb, [cv2.IMWRITE_JPEG_QUALITY, 95])
    volume = load(tmp_path / "slice.jpg")
    assert volume.voxels.shape == (1, 512, 512) and volume.voxels.dtype == np.uint8
    assert float(np.abs(volume.voxels[0].astype(int) - ct_slice).mean()) < 3
    assert "colour" in volume.source.description


def test_16bit_png(tmp_path, ircadb1):
    sixteen = (ircadb1.voxels[60].astype(np.int32) + 1024).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "slice16.png"), sixteen)
    volume = load(tmp_path / "slice16.png")
    assert volume.voxels.dtype == np.uint16
    np.testing.assert_array_equal(volume.voxels[0], sixteen)


def test_pixel_size_gives_mm(tmp_path, ct_slice):
    cv2.imwrite(str(tmp_path / "s.png"), ct_slice)
    volume = with_pixel_size(load(tmp_path / "s.png"), 0.7)
    assert volume.spacing == (1.0, 0.7, 0.7)
    with pytest.raises(InputError):
        with_pixel_size(volume, 0)


def test_corrupt_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(InputError, match="not a readable image"):
        load(tmp_path / "bad.png")
