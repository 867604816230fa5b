"""The shipped models themselves (models/): every file verifies, and the default cascade's input
contract holds on the real CT: a CT exported already windowed to the model's HU window gives the
same labels as the full-HU CT, and the air in front of the body is never liver."""

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


@pytest.mark.slow
def test_default_sees_a_windowed_ct_as_the_full_hu_ct(shipped, data_root):
    volume = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    low, high = shipped.get().input.hu_window
    windowed = replace(volume, voxels=np.clip(volume.voxels, low, high).astype(np.int16))
    segmenter = Segmenter(shipped)
    full, clipped = segmenter.segment(volume), segmenter.segment(windowed)
    assert np.array_equal(full.labels, clipped.labels)
    liver = full.labels > 0
    assert liver.sum() * np.prod(volume.spacing) / 1000 > 500  # mL: a liver, not a speck
    assert np.count_nonzero(liver & (volume.voxels < -500)) < 0.001 * liver.sum()  # no air called liver
