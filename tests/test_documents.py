"""The versioned documents: typed values through JSON and back, every older version still read,
a newer one refused with a message that says to update."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverhealth import documents
from liverhealth.analysis import measure
from liverhealth.domain import ModelInfo, Segmentation
from liverhealth.errors import InputError, StorageError
from liverhealth.imaging import load
from liverhealth.results import SegmentResult, measurements_document


@pytest.fixture(scope="module")
def result(data_root):
    ct = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    labels = np.zeros(ct.shape, dtype=np.uint8)
    labels[40:80, 150:350, 150:350] = 1
    labels[50:60, 200:230, 200:240] = 2
    labels[70:74, 300:310, 300:306] = 2
    segmentation = Segmentation(labels, "m", "0" * 64, {})
    model = ModelInfo("m", "Model", "unet", "0" * 64, {"liver_dice": 0.9})
    return SegmentResult(ct, segmentation, measure(ct, labels), 55, {"total_s": 1.0}, model)


def test_measurements_round_trip_through_json(result):
    text = json.dumps(documents.measurements_dict(result.measurements))
    back = documents.read_measurements(json.loads(text))
    assert back == result.measurements and len(back.lesions) == 2
    assert isinstance(back.lesions[0].slice_range, tuple) and isinstance(back.spacing, tuple)


def test_result_document_reads_back_and_old_export_still_reads(result):
    document = json.loads(json.dumps(measurements_document(result)))
    study, model, measurements, timings = documents.read_result_document(document)
    assert study == result.study  # source, grid, HU and content hash (the affine is checked below)
    assert study.shape == result.volume.shape and study.spacing == result.volume.spacing
    np.testing.assert_allclose(study.affine, result.volume.affine)
    assert model == result.model and measurements == result.measurements and timings == {"total_s": 1.0}
    old = {  # what `db export` wrote before the documents were one
        "schema": 2,
        "result_id": 3,
        "model": document["model"],
        "study": {
            "study_id": 1,
            "description": study.source.description,
            "format": study.source.format,
            "source_path": study.source.path,
            "modality": "CT",
            "series_uid": study.source.series_uid,
            "shape": list(study.shape),
            "spacing_mm": list(study.spacing),
            "content_sha256": study.content_sha256,
            "affine": document["input"]["affine"],
        },
        "measurements": document["measurements"],
        "timings": document["timings"],
    }
    old_study, _, old_measurements, _ = documents.read_result_document(old)
    assert old_measurements == result.measurements
    assert old_study.shape == study.shape and old_study.content_sha256 == study.content_sha256


def test_newer_or_foreign_documents_are_refused(result):
    document = measurements_document(result)
    with pytest.raises(InputError, match="Update LiverHealth"):
        documents.read_result_document(document | {"liverhealth_measurements": 99})
    with pytest.raises(InputError, match="not a LiverHealth document"):
        documents.read_result_document({"measurements": {}})
    with pytest.raises(StorageError, match="Update LiverHealth"):
        documents.read_stored_measurements({"schema": 9}, "m", "")
    bare = documents.measurements_dict(result.measurements)  # schema 1 column: bare measurements
    measurements, model = documents.read_stored_measurements(bare, "m", "abc")
    assert measurements == result.measurements and model.model_id == "m" and model.sha256 == "abc"
