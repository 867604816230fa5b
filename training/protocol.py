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
