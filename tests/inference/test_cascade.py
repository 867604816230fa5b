"""A cascade manifest on real CT: stage 1 finds the box, the model only labels inside it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverhealth.errors import ModelError
from liverhealth.imaging import load
from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.postprocess import largest_component
from liverhealth.inference.preprocess import roi_box
from tests.helpers.onnx_models import make_conv_model, make_threshold_model, manifest_entry, threshold_reference

MARGIN_MM = 10.0


def _write(folder, models, stages):
    (folder / "manifest.json").write_text(
        json.dumps({"schema": 1, "default": models[0]["id"], "models": models, "stages": stages})
    )
    return load_manifest(folder)


@pytest.fixture(scope="module")
def ts_volume(data_root):
    return load(data_root / "totalsegmentator" / "example_ct_dicom")


@pytest.fixture()
def cascade(tmp_path):
    """A coarse threshold locator (64² at 6 mm per pixel) and a threshold model on its box."""
    make_threshold_model(tmp_path / "locator.onnx", (64, 64))
    make_threshold_model(tmp_path / "fine.onnx", (96, 96))
    locator = manifest_entry("locator", tmp_path / "locator.onnx", size=(64, 64))
    locator["input"]["pixel_mm"] = 6.0
    fine = manifest_entry("fine", tmp_path / "fine.onnx", size=(96, 96))
    fine["input"]["roi"] = {"stage": "locator", "margin_mm": MARGIN_MM, "min_pixel_mm": 0.5}
    return tmp_path, locator, fine


def test_labels_only_inside_the_box_of_stage_one(cascade, ts_volume):
    folder, locator, fine = cascade
    manifest = _write(folder, [fine, {**locator, "id": "locator-alone"}], [locator])
    segmenter = Segmenter(manifest)
    first = segmenter.segment(ts_volume, "locator-alone", clean=False).labels
    box = roi_box(largest_component(first > 0), ts_volume.spacing, MARGIN_MM)
    progress: list[tuple[int, int]] = []
    result = segmenter.segment(ts_volume, "fine", clean=False, progress=lambda d, t: progress.append((d, t)))
    inside = np.zeros(ts_volume.shape, bool)
    inside[box.z, box.y, box.x] = True
    assert result.labels.any() and not result.labels[~inside].any()
    # inside the box the second stage applies its rule at its own, finer scale than stage 1's
    expected = threshold_reference(ts_volume.voxels)[box.z, box.y, box.x]
    fine_agreement = float((result.labels[box.z, box.y, box.x] == expected).mean())
    coarse_agreement = float((first[box.z, box.y, box.x] == expected).mean())
    assert fine_agreement > coarse_agreement + 0.03
    assert inside.sum() < 0.9 * inside.size  # the box is a real crop on this CT
    done = [d for d, _ in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1]
    assert "stage1_s" in result.timings and result.model_id == "fine"


def test_stage_one_finding_nothing_gives_background(tmp_path, ts_volume):
    make_conv_model(tmp_path / "blind.onnx", np.zeros((3, 1), np.float32), np.array([0.0, -9.0, -9.0]), (64, 64))
    make_threshold_model(tmp_path / "fine.onnx", (96, 96))
    blind = manifest_entry("blind", tmp_path / "blind.onnx", size=(64, 64))
    fine = manifest_entry("fine", tmp_path / "fine.onnx", size=(96, 96))
    fine["input"]["roi"] = {"stage": "blind"}
    result = Segmenter(_write(tmp_path, [fine], [blind])).segment(ts_volume)
    assert not result.labels.any() and result.labels.shape == ts_volume.shape


def test_a_stage_is_not_a_selectable_model(cascade):
    folder, locator, fine = cascade
    manifest = _write(folder, [fine], [locator])
    assert [m.model_id for m in manifest.models] == ["fine"]
    assert manifest.stage("locator").input.pixel_mm == 6.0
    with pytest.raises(ModelError, match="No model 'locator'"):
        manifest.get("locator")


def test_a_stage_cannot_itself_be_a_cascade(cascade):
    folder, locator, fine = cascade
    locator["input"]["roi"] = {"stage": "fine"}
    with pytest.raises(ModelError, match="itself a cascade"):
        _write(folder, [fine], [locator])
