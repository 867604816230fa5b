"""The shipped models themselves (models/): every file verifies, every selectable model is a cascade
behind the shared liver locator, and each one's input contract holds on the real CT: a CT exported
already windowed to the model's HU window gives the same labels as the full-HU CT, and the air in
front of the body is never liver."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from liverhealth import config
from liverhealth.imaging import load
from liverhealth.inference import Segmenter, get_session, load_manifest


@pytest.fixture(scope="module")
def shipped():
    return load_manifest(config.REPO_ROOT / "models")


def test_every_shipped_model_and_stage_loads(shipped):
    for spec in (*shipped.models, *shipped.stages):
        assert get_session(spec) is not None
    default = shipped.get()
    assert default.input.roi is not None, "the default is a cascade"
    assert shipped.stage(default.input.roi.stage).input.pixel_mm
    assert "cross-validation" in default.metrics["protocol"] and default.metrics["cv_patients"] == 28
    assert 0 < default.confidence["lesion_flag_below"] < 1 and "held-out" in default.confidence["protocol"]


def test_every_model_is_a_cross_validated_cascade_in_the_data_window(shipped):
    """A window inside [-40, 160] HU is what the training slices hold, so a full-HU DICOM and they agree."""
    for spec in shipped.models:
        assert spec.input.roi is not None and spec.input.roi.stage == shipped.get().input.roi.stage, spec.model_id
        low, high = spec.input.hu_window
        assert -40 <= low < high <= 160, spec.model_id
        assert "cross-validation" in spec.metrics["protocol"] and spec.metrics["cv_patients"] >= 9, spec.model_id


def test_every_shipped_model_and_stage_learned_from_all_patients(shipped):
    """The protocol's last step: what ships is its recipe trained once more on every patient (fold cvall),
    and its figures say they are the recipe's cross-validation figures, not the shipped weights'."""
    for spec in (*shipped.models, *shipped.stages):
        assert spec.trained.get("fold") == "cvall", spec.model_id
    for spec in shipped.models:
        assert "trained on all 28 patients" in spec.metrics["protocol"], spec.model_id


@pytest.fixture(scope="module")
def ircadb1(data_root):
    return load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["unet", "unetpp", "unet3p", "segformer"])
def test_each_model_sees_a_windowed_ct_as_the_full_hu_ct(shipped, ircadb1, model_id):
    volume = ircadb1
    low, high = shipped.get(model_id).input.hu_window
    windowed = replace(volume, voxels=np.clip(volume.voxels, low, high).astype(np.int16))
    segmenter = Segmenter(shipped, confidence=False)
    full, clipped = segmenter.segment(volume, model_id), segmenter.segment(windowed, model_id)
    assert np.array_equal(full.labels, clipped.labels)
    liver = full.labels > 0
    assert liver.sum() * np.prod(volume.spacing) / 1000 > 500  # mL: a liver, not a speck
    assert np.count_nonzero(liver & (volume.voxels < -500)) < 0.001 * liver.sum()  # no air called liver
