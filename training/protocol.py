"""The fixed evaluation protocol (nnU-Net style: written once, named by every result).

We have two fully labelled cases (3D-IRCADb 1.1 and 1.7) and three with liver labels only.
Liver is evaluated leave-one-IRCADb-case-out; tumour on 3Dircadb1.1's seven real tumours by a
model that never saw 3Dircadb1.1 (it learns tumours only from synthetic lesions painted into
the other livers). Folds A2/B2 add the liver-only cases to the training side of A/B.
Validation during training uses a held-out synthetic copy of the training case(s): same
patient, other lesions. It only draws the curve and never selects the test case's model;
the final checkpoint is the one exported.
"""

from __future__ import annotations

import numpy as np

# Label of tissue the reference does not settle (no loss, no validation score): see preprocess --ignore.
LABEL_IGNORE = 255

# Three more patients with liver labels (no tumour labels) in ../shared/data: TotalSegmentator's two
# example CTs, labelled by TotalSegmentator itself (model output, not manual), and dcmqi's 3-slice CT.
EXTRA_LIVER_CASES = ("ts-dicom", "ts-sm", "dcmqi")
# Folds A2/B2 also train on more synthetic copies (preprocess --synthetic-copies 6; copy 2 stays validation).
_COPIES = ("", "+synth0", "+synth1", "+synth3", "+synth4", "+synth5")
_EXTRA_TRAIN = [f"{case}{copy}" for case in EXTRA_LIVER_CASES for copy in _COPIES]

FOLDS: dict[str, dict] = {
    "A": {
        "train": ["3Dircadb1.7", "3Dircadb1.7+synth0", "3Dircadb1.7+synth1"],
        "val": ["3Dircadb1.7+synth2"],
        "test_case": "3Dircadb1.1",
        "protocol": "trained on 3Dircadb1.7 (+ synthetic tumours only), tested on held-out 3Dircadb1.1 "
        "(liver and its 7 real tumours), 3D per-case metrics after post-processing",
    },
    "B": {
        "train": ["3Dircadb1.1", "3Dircadb1.1+synth0", "3Dircadb1.1+synth1"],
        "val": ["3Dircadb1.1+synth2"],
        "test_case": "3Dircadb1.7",
        "protocol": "trained on 3Dircadb1.1 (+ synthetic tumours), tested on held-out 3Dircadb1.7 (liver; its "
        "large extra-hepatic mass is a hard negative), 3D per-case metrics after post-processing",
    },
    "A2": {
        "train": [f"3Dircadb1.7{copy}" for copy in _COPIES] + _EXTRA_TRAIN,
        "val": ["3Dircadb1.7+synth2"],
        "test_case": "3Dircadb1.1",
        "protocol": "trained on 3Dircadb1.7 and three liver-only cases (TotalSegmentator's two example CTs with "
        "TotalSegmentator's own liver output as label, dcmqi's 3-slice CT), each + 5 synthetic-tumour "
        "copies; tested on held-out 3Dircadb1.1 (liver and its 7 real tumours), 3D per-case metrics after "
        "post-processing",
    },
    "B2": {
        "train": [f"3Dircadb1.1{copy}" for copy in _COPIES] + _EXTRA_TRAIN,
        "val": ["3Dircadb1.1+synth2"],
        "test_case": "3Dircadb1.7",
        "protocol": "trained on 3Dircadb1.1 and the three liver-only cases of fold A2 (+ synthetic tumours), tested "
        "on held-out 3Dircadb1.7 (liver; its large extra-hepatic mass is a hard negative), 3D per-case "
        "metrics after post-processing",
    },
    "all": {
        "train": [f"{case}{copy}" for case in ("3Dircadb1.1", "3Dircadb1.7") for copy in _COPIES] + _EXTRA_TRAIN,
        "val": ["3Dircadb1.1+synth2", "3Dircadb1.7+synth2"],
        "test_case": None,
        "protocol": "trained on both labelled IRCADb cases and the three liver-only cases: no held-out case left; "
        "see the fold A/B models' metrics",
    },
}


# --- Cross-validation over patients (the protocol of the cascade models, issue-tracked as v3) ---
#
# Every fully labelled patient in ../shared/data: the 26 lits_jpg volumes (15 LiTS, 11 3D-IRCADb-01,
# data README section 4) and the two full-HU IRCADb CTs (LiTS volumes 28 and 34, not in lits_jpg).
# A patient is one patient whichever folder it comes from. Values: (source, has liver tumour label).
CV_PATIENTS: dict[str, tuple[str, bool]] = {
    **{f"lits{v:03d}": ("LiTS", True) for v in (0, 3, 4, 5, 7, 9, 10, 11, 12, 14, 15, 18, 22, 23, 50)},
    **{f"lits{v:03d}": ("3D-IRCADb", True) for v in (29, 30, 35, 36, 37, 39, 42, 43)},
    **{f"lits{v:03d}": ("3D-IRCADb", False) for v in (32, 41, 47)},
    "3Dircadb1.1": ("3D-IRCADb", True),
    "3Dircadb1.7": ("3D-IRCADb", False),  # its extra-hepatic mass is 'ignore' in training, background in scoring
}
CV_K = 3
CV_SEED = 20261201
CV_INNER_VAL = 2  # training patients per fold kept out of training: the curve and every choice are made on them

CV_PROTOCOL = (
    "patient-level {k}-fold cross-validation over the 28 fully labelled patients in ../shared/data "
    "(26 lits_jpg volumes: 15 LiTS + 11 3D-IRCADb-01, every 2nd slice, HU rebuilt from the [-40, 160] "
    "window; 3Dircadb1.1 and 3Dircadb1.7 full-HU DICOM), stratified by source and tumour; this model "
    "{what}; 2 training patients per fold held out as inner validation (curve, choices); the liver-only "
    "cases (TotalSegmentator's example CTs with its own liver output, dcmqi's 3-slice CT) train only, "
    "never scored; 3D per-case metrics on the held-out patients through liverhealth.inference"
)


def cv_folds(k: int = CV_K, seed: int = CV_SEED) -> dict[str, dict]:
    """The cross-validation folds ``cv0``..``cv{k-1}``: test patients, inner-validation and training cases.

    Stratified: patients are grouped by (source, tumour), each group shuffled with ``seed`` and
    dealt round-robin, the dealing carrying on from group to group so the folds stay even.
    """
    rng = np.random.default_rng(seed)
    tests: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for group in sorted({value for value in CV_PATIENTS.values()}):
        members = sorted(name for name, value in CV_PATIENTS.items() if value == group)
        for name in rng.permutation(members):
            tests[position % k].append(str(name))
            position += 1
    folds = {}
    for index, test in enumerate(tests):
        rest = [name for name in sorted(CV_PATIENTS) if name not in test]
        by_source = {source: [n for n in rest if CV_PATIENTS[n] == (source, True)] for source in ("3D-IRCADb", "LiTS")}
        inner = [
            str(np.random.default_rng([seed, index, i]).choice(by_source[src]))
            for i, src in enumerate(("3D-IRCADb", "LiTS")[:CV_INNER_VAL])
        ]
        train = [n for n in rest if n not in inner]
        folds[f"cv{index}"] = {
            "test": sorted(test),
            "val": inner,
            "train_patients": train,
            "train": train + list(EXTRA_LIVER_CASES),
            "test_case": None,
            "protocol": CV_PROTOCOL.format(
                k=k,
                what=f"was trained on fold cv{index}'s training patients and is "
                f"scored on its held-out patients {', '.join(sorted(test))}",
            ),
        }
    folds["cvall"] = {
        "test": [],
        "val": folds["cv0"]["val"],
        "train_patients": sorted(CV_PATIENTS),
        "train": sorted(CV_PATIENTS) + list(EXTRA_LIVER_CASES),
        "test_case": None,
        "protocol": CV_PROTOCOL.format(
            k=k,
            what="was trained on all 28 patients (no held-out patient left); its "
            "figures are the cross-validation means of the same recipe",
        ),
    }
    return folds


FOLDS.update(cv_folds())


def main() -> int:
    """Print the cross-validation folds (``python -m training.protocol``)."""
    for name, fold in cv_folds().items():
        print(
            f"{name}: test {' '.join(fold['test']) or '-'} | inner val {' '.join(fold['val'])} | "
            f"{len(fold['train_patients'])} training patients"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
