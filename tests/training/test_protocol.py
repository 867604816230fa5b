"""The protocol's folds never let a model see the case it is tested on."""

from __future__ import annotations

import pytest

from training.protocol import CV_K, CV_PATIENTS, EXTRA_LIVER_CASES, FOLDS, cv_folds


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


def test_cross_validation_is_by_patient_and_stratified():
    folds = cv_folds()
    tests = [set(folds[f"cv{i}"]["test"]) for i in range(CV_K)]
    assert set().union(*tests) == set(CV_PATIENTS) and sum(map(len, tests)) == len(CV_PATIENTS)
    for i, test in enumerate(tests):
        fold = folds[f"cv{i}"]
        seen = set(fold["train"]) | set(fold["val"])
        assert not test & seen, "a held-out patient is trained or validated on"
        assert not set(fold["val"]) & set(fold["train"]), "an inner-validation patient is trained on"
        assert set(EXTRA_LIVER_CASES) <= set(fold["train"]) and not set(EXTRA_LIVER_CASES) & test
        assert {CV_PATIENTS[p][0] for p in test} == {"LiTS", "3D-IRCADb"}
        assert sum(CV_PATIENTS[p][1] for p in test) >= 7  # tumour patients in every fold
        assert len(test) in (9, 10)
    assert cv_folds() == folds  # fixed by its seed


def test_cv_patients_match_the_data(data_root):
    """Every lits_jpg volume is a CV patient, with the tumour flag its labels give."""
    import csv

    with open(data_root / "lits_jpg" / "volumes.csv", newline="") as handle:
        rows = {f"lits{int(r['volume']):03d}": r for r in csv.DictReader(handle)}
    assert set(rows) | {"3Dircadb1.1", "3Dircadb1.7"} == set(CV_PATIENTS)
    for name, row in rows.items():
        source = "LiTS" if row["source"] == "LiTS" else "3D-IRCADb"
        assert CV_PATIENTS[name] == (source, int(row["tumour_slices"]) > 0)
