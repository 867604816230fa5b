"""The repository API on SQLite and on a real MariaDB server (every test runs on both)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pytest

from liverhealth.domain import Report
from liverhealth.errors import StorageError
from liverhealth.storage import Repository, StoredReport
from tests.helpers.databases import small_record

REPORT = StoredReport(
    Report(
        findings="Liver 1489.4 mL; 7 lesions.",
        draft="Draft: hypodense lesions…",
        draft_notice=None,
        draft_model="qwen-vl-max",
        draft_endpoint="http://127.0.0.1:9/v1",
        created_at="2026-12-07 10:00",
    ),
    pdf=b"%PDF-1.4 test",
)


def test_init_is_idempotent(repo):
    assert repo.init() == "0008"
    assert repo.init() == "0008"
    assert repo.counts() == {"patient": 0, "study": 0, "segmentation_result": 0, "report": 0}


def test_real_label_map_round_trips_bit_for_bit(repo, ircadb1_record):
    result_id = repo.save(ircadb1_record, REPORT)
    stored = repo.get(result_id)
    assert stored.labels.dtype == np.uint8
    assert np.array_equal(stored.labels, ircadb1_record.labels)
    assert stored.measurements == ircadb1_record.measurements  # typed, through the JSON column and back
    assert stored.overlay_png == ircadb1_record.overlay_png
    assert stored.summary.lesion_count == 7
    assert stored.summary.liver_volume_ml == pytest.approx(1489.4, abs=0.1)
    assert stored.study.shape == (129, 512, 512)
    assert np.allclose(stored.study.affine, ircadb1_record.affine)
    assert stored.reports[0].pdf == REPORT.pdf and stored.reports[0].report.draft_model == "qwen-vl-max"
    assert stored.reports[0].report.findings == REPORT.report.findings and stored.reports[0].report_id is not None
    assert stored.model == ircadb1_record.model  # name and validation figures travel with the result
    assert stored.summary.patient_name is None  # identifiers are left out unless asked for


def test_patient_kept_only_when_asked(repo):
    first = repo.save(small_record(1), store_patient=True)
    second = repo.save(small_record(2))
    assert repo.get(first).summary.patient_name == "Patient^1"
    assert repo.get(second).summary.patient_id is None
    assert repo.counts()["patient"] == 1


def test_search_by_patient_model_and_date(repo):
    for seed in range(4):
        repo.save(small_record(seed), store_patient=True)
    assert [r.patient_id for r in repo.list_results(patient="ID2")] == ["ID2"]
    assert len(repo.list_results(patient="Patient^")) == 4
    assert {r.model_id for r in repo.list_results(model_id="model-1")} == {"model-1"}
    assert len(repo.list_results(model_id="model-1")) == 2
    today = date.today()
    assert len(repo.list_results(since=today, until=today)) == 4
    assert repo.list_results(since=today + timedelta(days=1)) == []
    ids = [r.result_id for r in repo.list_results()]
    assert ids == sorted(ids, reverse=True)  # newest first


def test_same_scan_is_one_study(repo):
    record = small_record(5)
    repo.save(record)
    repo.save(dataclasses.replace(record, model=dataclasses.replace(record.model, sha256="1" * 64)))  # same scan
    counts = repo.counts()
    assert counts["study"] == 1 and counts["segmentation_result"] == 2


def test_delete_cascades(repo):
    record = small_record(6)
    first = repo.save(record, REPORT)
    second = repo.save(record, REPORT)
    repo.delete_result(first)
    assert repo.counts() == {"patient": 0, "study": 1, "segmentation_result": 1, "report": 1}
    study_id = repo.get(second).summary.study_id
    repo.delete_study(study_id)
    assert repo.counts() == {"patient": 0, "study": 0, "segmentation_result": 0, "report": 0}
    with pytest.raises(StorageError, match="No saved result"):
        repo.get(second)


def test_failed_save_leaves_no_partial_rows(repo):
    repo.save(small_record(7))
    before = repo.counts()
    broken = StoredReport(dataclasses.replace(REPORT.report, findings=None))  # type: ignore[arg-type] - NOT NULL
    with pytest.raises(StorageError, match="Could not save the result"):
        repo.save(small_record(8), broken)
    assert repo.counts() == before


def test_add_report_later(repo):
    result_id = repo.save(small_record(9))
    repo.add_report(result_id, REPORT)
    assert repo.get(result_id).summary.report_count == 1
    with pytest.raises(StorageError):
        repo.add_report(result_id + 100, REPORT)


def test_tables_missing_message(db_url):
    repository = Repository(db_url)  # no init
    with pytest.raises(StorageError, match="liverhealth db init"):
        repository.list_results()
