"""The fixed evaluation protocol (nnU-Net style: written once, named by every result).

We have two labelled cases. Liver is evaluated leave-one-case-out; tumour on 3Dircadb1.1's
seven real tumours by a model that never saw 3Dircadb1.1 (it learns tumours only from
synthetic lesions painted into 3Dircadb1.7). Validation during training uses a held-out
synthetic copy of the training case(s): same patient, other lesions. It only draws the
curve and never selects the test case's model; the final checkpoint is the one exported.
"""

from __future__ import annotations

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
    "all": {
        "train": ["3Dircadb1.1", "3Dircadb1.1+synth0", "3Dircadb1.1+synth1",
                  "3Dircadb1.7", "3Dircadb1.7+synth0", "3Dircadb1.7+synth1"],
        "val": ["3Dircadb1.1+synth2", "3Dircadb1.7+synth2"],
        "test_case": None,
        "protocol": "trained on both labelled cases: no held-out case left; see the fold A/B models' metrics",
    },
}
