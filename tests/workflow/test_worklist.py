"""The worklist, the priors of a study and the same-scan refusal through the workflow service, on
the real DICOM series: 3Dircadb1.1 and 3Dircadb1.7 (two patients, no patient IDs: known by name
and birth date), dcmqi's ct-3slice (patient ID and accession), and a constructed follow-up of
3Dircadb1.1 (its CT with a little noise and a later study date: not a real second scan)."""

from __future__ import annotations

import dataclasses
import os
import stat

import numpy as np
import pytest

from liverhealth import config
from liverhealth.errors import InputError, LiverHealthError
from liverhealth.imaging import load
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.workflow import Workstation
from tests.storage.test_identity import constructed_followup, record_of


@pytest.fixture()
def workstation(models_dir, tmp_path):
    station = Workstation(models_dir=models_dir, db_url=f"sqlite:///{tmp_path / 'results.db'}")
    yield station
    station.close()


@pytest.fixture(scope="module")
def patient_a(data_root):
    volume = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    return volume, ircadb_labels(data_root / "3Dircadb1.1", volume.shape)


@pytest.fixture(scope="module")
def later_a(patient_a):
    return constructed_followup(patient_a[0], "20091126", seed=5)


@pytest.fixture(scope="module")
def others(data_root):
    seven = load(data_root / "3Dircadb1.7" / "PATIENT_DICOM.zip")
    thin = load(data_root / "dcmqi" / "ct-3slice")
    labels = np.zeros(thin.shape, np.uint8)
    labels[:, 200:300, 150:250] = 1
    return (seven, np.zeros(seven.shape, np.uint8)), (thin, labels)


def test_the_worklist_groups_patients_then_studies_by_date(workstation, patient_a, later_a, others):
    (ct_a, labels_a), ((ct_b, labels_b), (ct_c, labels_c)) = patient_a, others
    repository = workstation.repository
    a_later = repository.save(record_of(later_a, labels_a), store_patient=True)  # saved before its prior
    a_first = repository.save(record_of(ct_a, labels_a), store_patient=True)
    other_model = dataclasses.replace(
        record_of(ct_a, labels_a),
        model=dataclasses.replace(record_of(ct_a, labels_a).model, model_id="unet", sha256="1" * 64),
    )
    a_unet = repository.save(other_model, store_patient=True)
    newer_unet = repository.save(dataclasses.replace(other_model, labels=labels_a * 0), store_patient=True)
    b = repository.save(record_of(ct_b, labels_b), store_patient=True)
    c = repository.save(record_of(ct_c, labels_c), store_patient=True)
    anonymous = repository.save(dataclasses.replace(record_of(ct_c, labels_c), content_sha256="b" * 64))

    patients = workstation.worklist()
    assert [p.label for p in patients] == [
        "liver_01 patient",
        "liver_07 patient",
        "JANCT000 (ID 99000)",
        "Saved without patient identity",
    ]
    a = patients[0]
    assert [s.date for s in a.studies] == ["2009-11-26", "2009-05-27"]  # by study date, not saving order
    assert [r.result_id for r in a.studies[0].results] == [a_later]
    assert [(r.model_id, r.result_id) for r in a.studies[1].results] == [
        ("ground-truth", a_first),
        ("unet", newer_unet),
    ]
    assert a_unet not in {r.result_id for s in a.studies for r in s.results}  # only the newest per model
    assert patients[1].studies[0].results[0].result_id == b
    thin = patients[2].studies[0]
    assert (thin.accession, thin.date, thin.results[0].result_id) == ("03086212", "2003-04-17", c)
    assert patients[3].studies[0].results[0].result_id == anonymous and patients[3].studies[0].accession == ""
    assert a.studies[1].result_for("unet").result_id == newer_unet


def test_priors_of_a_study_newest_first_and_the_latest_reopened(workstation, patient_a, later_a, others):
    (ct_a, labels_a), ((ct_b, labels_b), _) = patient_a, others
    repository = workstation.repository
    first = repository.save(record_of(ct_a, labels_a), store_patient=True)
    repository.save(record_of(ct_b, labels_b), store_patient=True)  # another patient: never a prior
    session = workstation.session()
    session.set_volume(later_a)
    priors = session.priors()
    assert [study.date for study in priors] == ["2009-05-27"]
    assert session.latest_prior().results[0].result_id == first
    prior = session.open_prior()
    assert prior.saved.result_id == first and prior.volume.study.study_date == "20090527"
    earlier = workstation.session()
    earlier.set_volume(ct_a)
    assert earlier.priors() == ()  # nothing of this patient was taken before it
    with pytest.raises(InputError, match="No earlier study of this patient"):
        earlier.latest_prior()


def test_the_same_scan_is_refused_in_one_line(workstation, patient_a):
    ct_a, labels_a = patient_a
    saved = workstation.repository.save(record_of(ct_a, labels_a), store_patient=True)
    session = workstation.session()
    session.set_volume(ct_a)
    session.segment()
    prior = workstation.reopen(saved)
    with pytest.raises(InputError) as refused:
        session.compare_with(prior)
    message = str(refused.value)
    assert "same scan" in message and "same DICOM series" in message and "\n" not in message
    assert session.comparison is None
    moved = dataclasses.replace(ct_a, source=dataclasses.replace(ct_a.source, series_uid=""))
    again = workstation.session()
    again.set_volume(moved)
    again.segment()
    with pytest.raises(InputError, match="same pixels"):
        again.compare_with(prior)


def test_save_follows_the_site_identity_setting(workstation, patient_a, monkeypatch, tmp_path):
    ct_a, _ = patient_a
    session = workstation.session()
    session.set_volume(ct_a)
    session.segment()
    clinical = session.save()
    assert workstation.repository.get(clinical.result_id).summary.patient_name == "liver_01^patient"

    monkeypatch.setenv("LIVERHEALTH_IDENTITY", "research")
    research = Workstation(models_dir=workstation.models_dir, db_url=f"sqlite:///{tmp_path / 'research.db'}")
    try:
        other = research.session()
        other.set_volume(ct_a)
        other.segment()
        saved = research.repository.get(other.save().result_id).summary
        assert saved.patient_name is None and saved.pseudonym and saved.identity == "research"
        key_file = config.config_path()
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600  # the site key made and kept there
        assert "pseudonym_key" in key_file.read_text()
        assert research.repository.get(other.save(store_patient=False).result_id).summary.pseudonym  # no second copy
        os.chmod(key_file, 0o644)
        with pytest.raises(LiverHealthError, match="chmod 600"):
            config.pseudonym_key()
    finally:
        research.close()
    monkeypatch.setenv("LIVERHEALTH_IDENTITY", "nonsense")
    with pytest.raises(LiverHealthError, match="'clinical' or 'research'"):
        workstation.identity_kept()
