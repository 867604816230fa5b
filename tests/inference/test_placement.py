"""Fixed-pixel-size placement: slices resampled to the manifest's pixel_mm, centred, padded or cropped."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from liverhealth.errors import ModelError
from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.manifest import InputSpec
from liverhealth.inference.preprocess import place_stack, placement, scores_to_labels
from tests.helpers.onnx_models import make_threshold_model, manifest_entry

SPEC = InputSpec(context_slices=1, size=(192, 192), hu_window=(-200.0, 200.0), mean=0.5, std=0.5, pixel_mm=2.0)


def test_placement_keeps_millimetres():
    small_fov = placement((512, 512), (0.57, 0.57), SPEC)  # 292 mm field of view: padded
    assert small_fov.scaled == (146, 146) and small_fov.offset == (23, 23)
    large_fov = placement((512, 512), (0.78, 0.78), SPEC)  # 399 mm: cropped by 4 pixels each side
    assert large_fov.scaled == (200, 200) and large_fov.offset == (-4, -4)
    unknown = placement((300, 400), None, SPEC)  # a raster without a pixel size: plain resize
    assert unknown.is_plain_resize
    without = placement((512, 512), (0.57, 0.57), InputSpec(1, (192, 192), (-200.0, 200.0), 0.5, 0.5))
    assert without.is_plain_resize


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.uint8)


@pytest.mark.parametrize("pixel", [0.57, 0.78, 1.2])
def test_round_trip_returns_labels_to_the_slice(pixel):
    labels = _disc((512, 512), (250, 260), 120) + _disc((512, 512), (250, 260), 30)  # liver with a tumour
    where = placement(labels.shape, (pixel, pixel), SPEC)
    placed = place_stack(labels[None], where, fill=0, nearest=True)[0]
    assert placed.shape == SPEC.size
    area_mm2 = float((labels > 0).sum()) * pixel * pixel
    assert abs(float((placed > 0).sum()) * 4.0 - area_mm2) < 0.03 * area_mm2  # 2 mm pixels: 4 mm² each
    scores = np.stack([placed == k for k in range(3)]).astype(np.float32)[None] * 10.0
    back = scores_to_labels(scores, labels.shape, where)[0]
    for k in (1, 2):
        overlap = 2 * ((back == k) & (labels == k)).sum() / ((back == k).sum() + (labels == k).sum())
        assert overlap > (0.95 if k == 1 else 0.9), (pixel, k, overlap)  # a 34 mm tumour is 17 px wide


def test_parts_outside_the_field_of_view_are_background():
    where = placement((512, 512), (1.2, 1.2), SPEC)  # 614 mm of slice, 384 mm seen
    scores = np.zeros((1, 3, 192, 192), np.float32)
    scores[:, 1] = 5.0  # the model calls everything it sees liver
    back = scores_to_labels(scores, (512, 512), where)[0]
    seen = 384 / 1.2
    lo, hi = int(256 - seen / 2) + 2, int(256 + seen / 2) - 2
    assert (back[lo:hi, lo:hi] == 1).all()
    assert (back[: lo - 4] == 0).all() and (back[:, hi + 4 :] == 0).all()


def test_engine_with_pixel_mm_on_real_ct(tmp_path, ircadb1):
    volume = ircadb1
    make_threshold_model(tmp_path / "t.onnx", size=(192, 192))
    entry = manifest_entry("t", tmp_path / "t.onnx", size=(192, 192))
    entry["input"]["pixel_mm"] = 2.0
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "default": "t", "models": [entry]}))
    part = volume.voxels[60:64]
    labels = Segmenter(load_manifest(tmp_path)).segment(replace(volume, voxels=part), clean=False).labels
    s = np.clip(part.astype(np.float64), -200, 200) / 200.0
    reference = np.argmax(np.stack([np.zeros_like(s), 40 * s - 9, 20 * s - 2.05]), axis=0)
    assert float((labels == reference).mean()) > 0.9  # edges blur at 2 mm


def test_manifest_refuses_an_absurd_pixel_size(tmp_path):
    make_threshold_model(tmp_path / "t.onnx", size=(192, 192))
    entry = manifest_entry("t", tmp_path / "t.onnx", size=(192, 192))
    entry["input"]["pixel_mm"] = 0.0
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "default": "t", "models": [entry]}))
    with pytest.raises(ModelError, match="pixel_mm"):
        load_manifest(tmp_path)
