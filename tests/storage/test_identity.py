"""The study's identity in the database (SQLite and MariaDB): kept as the source states it on a
clinical site, as a keyed pseudonym with shifted dates on a research site; migration 0008 up and
down on a database with rows; the follow-ups' target sums by study date."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from datetime import datetime

import numpy as np
import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, insert, inspect

from liverhealth.analysis import measure
from liverhealth.analysis.followup import nadir_sums
from liverhealth.documents import stored_measurements
from liverhealth.domain import ModelInfo
from liverhealth.imaging import load
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.storage import Repository, ResultRecord, content_hash
from liverhealth.storage.identity import date_shift_days, pseudonym, research_identity
from liverhealth.storage.migrations_runner import alembic_config
from liverhealth.storage.worklist import group_worklist

KEY = b"0123456789abcdef0123456789abcdef-test-site-key"
MODEL = ModelInfo("ground-truth", "Expert reference", sha256="f" * 64, metrics={"protocol": "reference masks"})


def record_of(volume, labels, model: ModelInfo = MODEL) -> ResultRecord:
    return ResultRecord(
        labels=labels,
        model=model,
        measurements=measure(volume, labels),
        timings={"total_s": 1.0},
        source=volume.source,
        spacing=volume.spacing,
        content_sha256=content_hash(volume.voxels, volume.spacing),
        affine=volume.affine,
        patient=volume.patient,
        study_info=volume.study,
    )


def constructed_followup(volume, study_date: str, seed: int):
    """A constructed follow-up of the same patient: the same CT with other pixels (a little noise),
    another series and study UID and a later study date. Not a real second scan."""
    noise = np.random.default_rng(seed).integers(-3, 4, volume.voxels.shape).astype(volume.voxels.dtype)
    return dataclasses.replace(
        volume,
        voxels=volume.voxels + noise,
        study=dataclasses.replace(volume.study, study_date=study_date, study_uid=f"{volume.study.study_uid}.{seed}"),
        source=dataclasses.replace(volume.source, series_uid=f"{volume.source.series_uid}.{seed}"),
    )


@pytest.fixture(scope="module")
def ircadb1_labels(data_root, ircadb1):
    return ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)


@pytest.fixture(scope="module")
def three_slice(data_root):
    volume = load(data_root / "dcmqi" / "ct-3slice")
    labels = np.zeros(volume.shape, np.uint8)
    labels[:, 200:300, 150:250] = 1
    return volume, labels


def test_a_clinical_site_keeps_the_study_identity(repo, three_slice):
    volume, labels = three_slice
    result_id = repo.save(record_of(volume, labels), store_patient=True)
    summary = repo.get(result_id).summary
    assert (summary.patient_name, summary.patient_id, summary.accession) == ("JANCT000", "99000", "03086212")
    assert (summary.study_date, summary.study_time, summary.identity) == ("20030417", "104607", "clinical")
    assert repo.get(result_id).study.study_date == "20030417"
    stored = repo.get(result_id)  # what a report header may show again (`db export --include-patient`)
    assert stored.patient_info.name == "JANCT000" and stored.study_info.accession == "03086212"
    anonymous = repo.save(dataclasses.replace(record_of(volume, labels), content_sha256="a" * 64))
    assert repo.get(anonymous).summary.accession is None and repo.get(anonymous).summary.patient_ref is None


def test_a_research_pseudonym_groups_one_patient_and_keeps_no_identifier(tmp_path, ircadb1, ircadb1_labels):
    url = f"sqlite:///{tmp_path / 'research.db'}"
    repo = Repository(url)
    repo.init()
    later = constructed_followup(ircadb1, "20091126", seed=1)
    first = repo.save(record_of(ircadb1, ircadb1_labels), store_patient=True, pseudonym_key=KEY)
    second = repo.save(record_of(later, ircadb1_labels), store_patient=True, pseudonym_key=KEY)
    a, b = repo.get(first).summary, repo.get(second).summary
    assert a.patient_ref == b.patient_ref is not None and a.pseudonym == pseudonym(ircadb1.patient, KEY)
    assert a.patient_name is None and a.birth_date is None and a.identity == "research"
    shift = date_shift_days(ircadb1.patient, KEY)
    assert 1 <= shift <= 365 and a.study_date != "20090527"
    # the interval between the two studies stays (183 days), so the order and the nadir stay right
    days = (datetime.strptime(b.study_date, "%Y%m%d") - datetime.strptime(a.study_date, "%Y%m%d")).days
    assert days == 183
    (patient,) = group_worklist(repo.list_results(latest_only=True))
    assert [s.study_id for s in patient.studies] == [b.study_id, a.study_id] and patient.studies[0].dates_shifted
    assert repo.get(first).patient_info is None and repo.get(first).study_info is None  # no header from these
    repo.close()
    stored = (tmp_path / "research.db").read_bytes()
    ids = ("liver_01", "20090527", "20091126", "IRCAD", ircadb1.study.study_uid, ircadb1.source.series_uid, "125005")
    for identifier in ids:
        assert identifier.encode() not in stored, identifier
    assert a.pseudonym.encode() in stored


def test_research_identity_without_a_patient_keeps_nothing():
    from liverhealth.domain import PatientInfo, StudyInfo

    kept = research_identity(PatientInfo(sex="F"), StudyInfo(study_date="20200101", accession="A1"), KEY)
    assert not kept.has_patient() and kept.study.study_date == "" and kept.study.accession == ""
    assert pseudonym(PatientInfo(patient_id="99000"), KEY) != pseudonym(PatientInfo(patient_id="99000"), KEY[::-1])


def _insert_at_0007(url: str, volume, labels) -> None:
    """Rows as LiverHealth at schema 0007 wrote them: a patient, a study, a result."""
    engine = create_engine(url)
    now = datetime(2026, 12, 1, 9, 0)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0007")
        meta = MetaData()
        meta.reflect(connection)
        patient = connection.execute(
            insert(meta.tables["patient"]).values(name="JANCT000", patient_id="99000", sex="M", created_at=now)
        ).inserted_primary_key[0]
        study = connection.execute(
            insert(meta.tables["study"]).values(
                patient_ref=patient,
                content_sha256=content_hash(volume.voxels, volume.spacing),
                source_format="dicom",
                description=volume.source.description,
                slice_count=volume.shape[0],
                row_count=volume.shape[1],
                column_count=volume.shape[2],
                created_at=now,
            )
        ).inserted_primary_key[0]
        raw = labels.tobytes()

        def as_json(value):  # MariaDB reflects JSON columns as LONGTEXT
            return value if connection.dialect.name == "sqlite" else json.dumps(value)

        connection.execute(
            insert(meta.tables["segmentation_result"]).values(
                study_id=study,
                model_id=MODEL.model_id,
                model_sha256=MODEL.sha256,
                labels_zlib=zlib.compress(raw),
                labels_shape=json.dumps(list(labels.shape)),
                labels_sha256=hashlib.sha256(raw).hexdigest(),
                measurements=as_json(stored_measurements(measure(volume, labels), MODEL)),
                timings=as_json({"total_s": 1.0}),
                lesion_count=0,
                created_at=now,
                revision=0,
            )
        )
    engine.dispose()


def test_migration_0008_upgrades_a_0007_database_with_rows_and_downgrades(db_url, three_slice):
    volume, labels = three_slice
    _insert_at_0007(db_url, volume, labels)
    repo = Repository(db_url)
    assert repo.init() == "0008"
    (old,) = repo.list_results()
    assert old.patient_id == "99000" and old.study_date is None and old.identity is None
    assert np.array_equal(repo.get(old.result_id).labels, labels)
    # saving the same scan again with its identity fills the study's identity in
    again = dataclasses.replace(record_of(volume, labels), model=dataclasses.replace(MODEL, sha256="e" * 64))
    repo.save(again, store_patient=True)
    assert {r.accession for r in repo.list_results()} == {"03086212"}
    repo.close()
    engine = create_engine(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0007")
        columns = {c["name"] for c in inspect(connection).get_columns("study")}
        patient_columns = {c["name"] for c in inspect(connection).get_columns("patient")}
        assert not {"study_date", "accession", "identity"} & columns and "pseudonym" not in patient_columns
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM segmentation_result").scalar() == 2
    engine.dispose()
    repo = Repository(db_url)
    assert repo.init() == "0008" and len(repo.list_results()) == 2
    repo.close()


def test_the_follow_ups_target_sums_come_by_study_date(repo, three_slice):
    """Follow-ups read against one baseline and saved out of order (the latest scan first): the
    readings come back by study date, and only the scans before the one read now set its nadir."""
    volume, labels = three_slice
    baseline = repo.save(record_of(volume, labels), store_patient=True)
    followups = {}
    for seed, day in ((3, "20031020"), (1, "20030601"), (2, "20030801")):
        later = constructed_followup(volume, day, seed)
        followups[day] = repo.save(record_of(later, labels), store_patient=True)
    for day, total in (("20031020", 30.0), ("20030601", 20.0)):  # saved out of order
        repo.save_comparison(baseline, followups[day], "SD", total, {"test": True})
    readings = repo.prior_target_readings(baseline)
    assert readings == [("20030601", 20.0), ("20031020", 30.0)]
    sums, notes = nadir_sums(readings, "20030801")
    assert sums == (20.0,) and "taken after this scan" in notes[0] and "2003" not in notes[0]
    assert repo.prior_target_sums(baseline) == [30.0, 20.0]  # the saving order, as before


def test_the_study_identity_is_scrubbed_from_text_that_leaves(data_root):
    from liverhealth.redact import scrub_identifiers

    thin = load(data_root / "dcmqi" / "ct-3slice")
    text = (
        f"CT of {thin.patient.name}, accession {thin.study.accession}, {thin.study.study_date} ({thin.study.date_iso})"
    )
    scrubbed = scrub_identifiers(text, thin.patient, thin.study)
    for identifier in (thin.patient.name, thin.study.accession, thin.study.study_date, thin.study.date_iso):
        assert identifier not in scrubbed
    assert scrubbed.startswith("CT of [removed]") and scrub_identifiers(text, None) == text
