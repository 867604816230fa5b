"""The phase stress test darkens the liver as it says, on a real patient, and nothing else."""

from __future__ import annotations

import numpy as np

from bench.bench_phase import catastrophic, darken_liver
from training.evaluate_cv import load_patient


def test_darkened_liver_reaches_its_target_and_keeps_the_rest(data_root):
    volume, reference, _ = load_patient(data_root, "lits030")
    before = float(np.median(volume.voxels[reference == 1]))
    assert before > 80  # portal-venous parenchyma, or the test shows nothing
    darker = darken_liver(volume, reference, 55.0)
    assert abs(float(np.median(darker.voxels[reference == 1])) - 55.0) <= 1.0
    tumour, parenchyma = darker.voxels[reference == 2], darker.voxels[reference == 1]
    assert np.median(tumour) < np.median(parenchyma)  # a hypodense lesion stays hypodense
    far = np.ones(reference.shape, dtype=bool)
    far[:, 1:-1, 1:-1] = False  # the image border is centimetres from any liver
    assert np.array_equal(darker.voxels[far], volume.voxels[far])
    assert darker.spacing == volume.spacing and np.array_equal(darker.affine, volume.affine)


def test_a_liver_already_darker_than_the_target_is_left_as_it_is(data_root):
    volume, reference, _ = load_patient(data_root, "lits030")
    assert darken_liver(volume, reference, 300.0) is volume


def test_catastrophic_means_a_wrong_liver_not_a_modest_one():
    assert not catastrophic({"liver_dice": 0.9, "liver_ml": 1500, "reference_liver_ml": 1400})
    assert catastrophic({"liver_dice": 0.4, "liver_ml": 1500, "reference_liver_ml": 1400})
    assert catastrophic({"liver_dice": 0.7, "liver_ml": 2200, "reference_liver_ml": 1400})
