"""A real chat-completions HTTP server on 127.0.0.1 (plain JSON and SSE streaming) with failure
modes, and a segmentation result built from the IRCADb ground truth."""

from __future__ import annotations

import pytest

from liverhealth.analysis import key_slice, measure
from liverhealth.domain import ModelInfo, Segmentation
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.results import SegmentResult
from tests.helpers.chat_server import running_chat_server


@pytest.fixture()
def chat_server():
    with running_chat_server() as server:
        yield server


@pytest.fixture(scope="session")
def gt_result(data_root, ircadb1) -> SegmentResult:
    """3Dircadb1.1 with its ground-truth labels standing in for a segmentation (7 real lesions)."""
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    segmentation = Segmentation(labels=labels, model_id="ground-truth", model_sha256="f" * 64, timings={})
    model = ModelInfo(
        model_id="ground-truth",
        name="IRCADb reference",
        sha256="f" * 64,
        metrics={"protocol": "reference masks, not a model", "liver_dice": 1.0},
    )
    return SegmentResult(ircadb1, segmentation, measure(ircadb1, labels), key_slice(labels), {"total_s": 0.0}, model)
