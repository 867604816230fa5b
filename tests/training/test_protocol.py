"""The protocol's folds never let a model see the case it is tested on."""

from __future__ import annotations

import pytest

from training.protocol import EXTRA_LIVER_CASES, FOLDS


@pytest.mark.parametrize("fold", [name for name, fold in FOLDS.items() if fold["test_case"]])
def test_held_out_case_is_nowhere_in_training_or_validation(fold):
    spec = FOLDS[fold]
    seen = {case.split("+")[0] for case in spec["train"] + spec["val"]}
    assert spec["test_case"] not in seen
    assert spec["test_case"] in spec["protocol"]


def test_extended_folds_add_only_the_liver_only_cases():
    for base, extended in (("A", "A2"), ("B", "B2")):
        base_cases = {case.split("+")[0] for case in FOLDS[base]["train"]}
        extra = {case.split("+")[0] for case in FOLDS[extended]["train"]} - base_cases
        assert extra == set(EXTRA_LIVER_CASES)
        assert FOLDS[extended]["val"] == FOLDS[base]["val"] and FOLDS[extended]["test_case"] == FOLDS[base]["test_case"]
