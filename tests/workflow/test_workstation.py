"""The workflow service in-process (no subprocess, no Qt) on the real CT: every method, and the
defects of the copies it replaced (one precision, one layout, one repository init, the report
kept by `db save DIR`, one overlay and one PDF per run, the config file kept whole)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from pypdf import PdfReader

from liverhealth import cli, config, results
from liverhealth.errors import InputError
from liverhealth.presentation import DISCLAIMER, report_markdown, report_text, tumour_ml
from liverhealth.reporting import pdf as pdf_module
from liverhealth.storage import migrations_runner, repository
from liverhealth.workflow import Workstation


@pytest.fixture()
def workstation(models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LIVERHEALTH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    station = Workstation(models_dir=models_dir, db_url=f"sqlite:///{tmp_path / 'results.db'}")
    yield station
    station.close()


@pytest.fixture()
def upgrades(monkeypatch):
    """Counts Alembic upgrades (the real ones run)."""
    calls = []
    real = migrations_runner.upgrade_to_head

    def counting(connection):
        calls.append(1)
        return real(connection)

    monkeypatch.setattr(repository, "upgrade_to_head", counting)
    return calls


def test_every_step_on_the_real_ct(workstation, data_root, tmp_path, upgrades):
    ct = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    session = workstation.session()
    with pytest.raises(InputError, match="open a CT first"):
        session.segment()
    volume = session.open(ct)
    assert volume.shape == (129, 512, 512)
    seen = []
    result = session.segment(progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert result.model.model_id == "threshold" and result.model.metrics["protocol"].startswith("test model")
    findings = session.findings()
    assert f"Liver volume: {result.measurements.liver_volume_ml:.1f} mL" in findings
    content = session.make_report(use_llm=False)
    assert content.report.findings == findings and "No LLM draft" in session.report_text()
    saved = session.save()
    assert saved.result_id >= 1 and "SQLite" in saved.where
    written = session.export(tmp_path / "out")
    assert {"labels", "overlay", "measurements", "pdf", "markdown", "report", "confidence"} <= set(written)
    assert PdfReader(written["pdf"]).pages
    view = session.export_viewer(tmp_path / "viewer")  # the web page's numbers carry the calipers
    assert [c["lesion_id"] for c in view["calipers"]] == [c.lesion_id for c in session.calipers()]
    assert len(view["calipers"]) == len(result.measurements.lesions) > 0
    assert result.segmentation.confidence.shape == volume.shape
    assert result.measurements.liver_confidence is not None
    record = results.record_from_outputs(tmp_path / "out")  # `db save DIR` keeps the map too
    assert np.array_equal(record.confidence, result.segmentation.confidence)
    assert "confidence is not calibrated, so no lesion is flagged" in findings or not result.measurements.lesions

    rows = workstation.list_results()
    assert [r.result_id for r in rows] == [saved.result_id]
    stored = workstation.get(saved.result_id)
    assert np.array_equal(stored.labels, result.segmentation.labels)
    assert np.array_equal(stored.confidence, result.segmentation.confidence)
    assert stored.reports[0].pdf == content.pdf

    reopened = workstation.reopen(saved.result_id)
    assert reopened.result.model == result.model  # name and validation figures, not "not available"
    assert reopened.result.measurements == result.measurements
    reopened.make_report(use_llm=False)
    assert "protocol: test model" in reopened.report_text() and "not available" not in reopened.report_text()

    workstation.delete(saved.result_id)
    assert workstation.list_results() == []
    assert len(upgrades) == 1  # one repository, initialised once for the whole process


def test_calibrated_model_flags_lesions_in_findings_and_pdf(models_dir, data_root, tmp_path):
    """A manifest entry with a calibration flags lesions below its threshold; a result whose model file
    is not that entry's (another sha256) gets no flag."""
    import json

    manifest = json.loads((models_dir / "manifest.json").read_text())
    manifest["models"][0]["confidence"] = {"lesion_flag_below": 1.0, "protocol": "test: every lesion below 1.0"}
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    station = Workstation(models_dir=models_dir, db_url=f"sqlite:///{tmp_path / 'r.db'}")
    session = station.session()
    session.open(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    result = session.segment()
    lesions = result.measurements.lesions
    assert lesions and all(lesion.unsure for lesion in lesions)
    order = [lesion.confidence for lesion in result.measurements.check_first()]
    assert order == sorted(order)
    findings = session.findings()
    n = len(lesions)
    if n >= 3:  # most lesions flagged: said once, not as a list
        assert f"the model is unsure of {n} of {n} lesions: check all of them" in findings
    else:
        assert "lesions to check first (low confidence): " + ", ".join(str(x.lesion_id) for x in lesions) in findings
    content = session.make_report(use_llm=False)
    pdf_text = " ".join("".join(page.extract_text() for page in PdfReader(_bytes_io(content.pdf)).pages).split())
    assert "Confidence" in pdf_text and f"{100 * lesions[0].confidence:.0f} %" in pdf_text
    assert n < 3 or f"the model is unsure of {n} of {n} lesions: check all of them" in pdf_text
    other = station.confidence_flags(replace(result.model, sha256="f" * 64))
    assert other.lesion_below is None
    station.close()


def test_a_new_study_drops_the_old_result(workstation, data_root):
    session = workstation.session()
    session.open(data_root / "dcmqi" / "ct-3slice")
    session.segment()
    session.make_report(use_llm=False)
    session.open(data_root / "dcmqi" / "ct-3slice")
    assert session.result is None and session.report is None
    with pytest.raises(InputError, match="segment the study first"):
        session.findings()


def test_one_layout_for_text_markdown_and_pdf(workstation, data_root):
    session = workstation.session()
    session.open(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    session.segment()
    content = session.make_report(use_llm=False)
    text, markdown = report_text(content.report, content.model), report_markdown(content.report, content.model)
    pdf_text = " ".join("".join(page.extract_text() for page in PdfReader(_bytes_io(content.pdf)).pages).split())
    for piece in (DISCLAIMER, content.report.findings.splitlines()[1], "Validation protocol: test model"):
        assert piece in text and piece in markdown
    assert " ".join(DISCLAIMER.split()) in pdf_text
    assert "Measured findings" in pdf_text and "Segmentation model" in pdf_text


def test_cli_line_and_findings_agree_on_precision(workstation, data_root, tmp_path, capsys, models_dir):
    assert cli.main(["--models-dir", str(models_dir), "segment", str(data_root / "dcmqi" / "ct-3slice"),
                     "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    line = capsys.readouterr().out
    session = workstation.session()
    session.open(data_root / "dcmqi" / "ct-3slice")
    m = session.segment().measurements
    assert m.tumour_volume_ml and f"tumour {tumour_ml(m.tumour_volume_ml)}" in line
    assert f"total {tumour_ml(m.tumour_volume_ml)}" in session.findings()


def test_one_overlay_and_one_pdf_per_cli_run(data_root, tmp_path, models_dir, monkeypatch):
    overlays, pdfs = [], []
    real_overlay, real_pdf = results.overlay_image, pdf_module.write_pdf

    def overlay(result, z=None, alpha=0.4):
        if z is None:
            overlays.append(1)
        return real_overlay(result, z, alpha)

    monkeypatch.setattr(results, "overlay_image", overlay)
    monkeypatch.setattr(pdf_module, "write_pdf", lambda content: pdfs.append(1) or real_pdf(content))
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    status = cli.main([
        "segment", str(data_root / "dcmqi" / "ct-3slice"), "--out", str(tmp_path / "o"), "--report",
        "--save-db", "--db-url", f"sqlite:///{tmp_path / 'r.db'}",
    ])  # fmt: skip
    assert status == 0
    assert len(overlays) == 1 and len(pdfs) == 1


def test_db_save_of_a_folder_keeps_its_report(data_root, tmp_path, models_dir, monkeypatch, capsys):
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    out, url = tmp_path / "o", f"sqlite:///{tmp_path / 'r.db'}"
    assert cli.main(["segment", str(data_root / "dcmqi" / "ct-3slice"), "--out", str(out), "--report"]) == 0
    assert cli.main(["db", "--db-url", url, "save", str(out)]) == 0
    station = Workstation(db_url=url)
    stored = station.get(station.list_results()[0].result_id)
    assert len(stored.reports) == 1 and stored.reports[0].pdf == (out / "report.pdf").read_bytes()
    assert stored.model.metrics["protocol"].startswith("test model")
    (out / "report.pdf").write_bytes(b"%PDF-1.4 another file")
    assert cli.main(["db", "--db-url", url, "save", str(out)]) == 2
    assert "not the PDF report.json describes" in capsys.readouterr().err
    station.close()


def test_settings_update_keeps_other_keys_and_is_private_from_creation(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("LIVERHEALTH_CONFIG", str(path))
    path.parent.mkdir()
    path.write_text('models_dir = "/opt/models"\nllm_timeout_s = 45\nllm_model = "old"\n')
    old_umask = os.umask(0)
    try:
        config.update_config_file({"llm_api_key": "sk-secret", "llm_model": "qwen-vl-max", "db_url": ""})
    finally:
        os.umask(old_umask)
    values = tomllib.loads(path.read_text())
    assert values == {
        "models_dir": "/opt/models",
        "llm_timeout_s": 45,
        "llm_model": "qwen-vl-max",
        "llm_api_key": "sk-secret",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("liverhealth.workflow", ("PyQt5",)),
        ("liverhealth.gui.view_model", ("onnxruntime", "sqlalchemy", "reportlab")),
    ],
)
def test_import_weight(module, forbidden):
    code = f"import sys, {module}; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_reopen_refuses_a_changed_ct(workstation, data_root, tmp_path):
    import shutil

    folder = tmp_path / "ct"
    shutil.copytree(data_root / "dcmqi" / "ct-3slice", folder)
    session = workstation.session()
    session.open(folder)
    session.segment()
    saved = session.save()
    first = sorted(folder.iterdir())[0]
    first.write_bytes(hashlib.sha256(b"x").digest())  # a slice replaced by garbage: another scan now
    with pytest.raises(InputError):
        workstation.reopen(saved.result_id)


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def test_db_export_folder_saves_back_the_same_result(workstation, data_root, tmp_path, models_dir):
    """`db export` writes the one result document `db save` reads: the folder moves a result to another
    database whole (labels, confidence, measurements, model, every report, bit for bit)."""
    session = workstation.session()
    session.open(data_root / "dcmqi" / "ct-3slice")
    session.segment()
    first = session.make_report(use_llm=False)
    saved = session.save()
    second = session.make_report(use_llm=False)
    session.save()  # the second report goes onto the same result
    out = tmp_path / "exported"
    written = workstation.export_saved(saved.result_id, out)
    assert {"measurements", "labels", "report", "report_2", "pdf", "pdf_2"} <= set(written)
    assert "03086212" not in written["markdown"].read_text()  # the header is left blank unless asked
    named = workstation.export_saved(saved.result_id, tmp_path / "named", include_patient=True)
    header = named["markdown"].read_text()
    assert "Accession: 03086212" in header and "Patient: JANCT000" in header and "Study date: 2003-04-17" in header
    other = Workstation(models_dir=models_dir, db_url=f"sqlite:///{tmp_path / 'other.db'}")
    try:
        again = other.get(other.save_folder(out).result_id)
    finally:
        other.close()
    original = workstation.get(saved.result_id)
    assert np.array_equal(again.labels, original.labels)
    assert np.array_equal(again.confidence, original.confidence)
    assert again.measurements == original.measurements == session.result.measurements
    assert again.model == original.model and again.timings == original.timings
    assert again.study.content_sha256 == original.study.content_sha256
    np.testing.assert_allclose(again.study.affine, original.study.affine)
    assert [r.pdf for r in again.reports] == [first.pdf, second.pdf]
    assert [r.report.findings for r in again.reports] == [first.report.findings, second.report.findings]
    (out / "labels.nii.gz").unlink()
    with pytest.raises(InputError, match="not a complete, readable"):
        workstation.save_folder(out)


def test_a_report_kept_without_a_pdf_goes_through_db_export_and_db_save(workstation, data_root, tmp_path):
    from liverhealth.storage.records import StoredReport

    session = workstation.session()
    session.open(data_root / "dcmqi" / "ct-3slice")
    session.segment()
    text_only = StoredReport(session.make_report(use_llm=False).report, None)
    saved = session.save()
    workstation.repository.add_report(saved.result_id, text_only)
    out = tmp_path / "exported"
    written = workstation.export_saved(saved.result_id, out)
    assert (out / "report_2.json").is_file() and not (out / "report_2.pdf").exists()
    other = Workstation(db_url=f"sqlite:///{tmp_path / 'other.db'}")
    again = other.get(other.save_folder(out).result_id)
    assert [r.pdf is None for r in again.reports] == [False, True]
    assert again.reports[1].report.findings == text_only.report.findings
    assert set(written) >= {"report", "report_2"}
    other.close()
