"""The PDF report parsed back (pypdf) and rendered (poppler's pdftoppm)."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader

from liverhealth.reporting import LlmSettings, write_pdf
from liverhealth.results import make_report
from tests.helpers.cli import run_cli
from tests.helpers.prerequisites import require


def _text(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


@pytest.fixture()
def content(chat_server, gt_result):
    return make_report(gt_result, LlmSettings(base_url=chat_server.base_url, api_key="k", timeout_s=5))


def test_pdf_has_numbers_lesions_draft_and_notice(content, gt_result):
    pdf = write_pdf(content)
    text, pages = _text(pdf)
    assert "1489.4 mL" in text
    for lesion in gt_result.measurements.lesions:  # one row per lesion, with its diameter
        assert f"{lesion.longest_diameter_mm:.1f}" in text
    assert "RECIST 1.1 target lesions" in text
    flat = " ".join(text.split())
    assert "not a medical device" in flat and "Draft for radiologist review" in flat
    assert "Machine-written draft (qwen-vl-max)" in text
    assert "Seven hypodense lesions" in text
    assert "肝脏" in text  # Chinese in the CID font
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "liver_01" not in text  # no patient block unless asked


def test_pdf_without_draft_says_why(gt_result):
    content = make_report(gt_result, use_llm=False)
    text, _ = _text(write_pdf(content))
    assert "No LLM draft: not requested" in text and "1489.4 mL" in text


def test_patient_block_only_when_asked(chat_server, gt_result):
    content = make_report(gt_result, LlmSettings(base_url=chat_server.base_url, api_key="k"), include_patient=True)
    assert "liver_01" in _text(write_pdf(content))[0]


def test_pdf_renders_with_poppler(content, tmp_path):
    require(
        shutil.which("pdftoppm") is not None,
        "pdftoppm is missing: apt-get install poppler-utils poppler-data (`bash scripts/test.sh` does as root).",
    )
    (tmp_path / "report.pdf").write_bytes(write_pdf(content))
    done = subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "page")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "Error" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.glob("page*.png"))


@pytest.mark.slow
def test_cli_report_with_and_without_llm(chat_server, data_root, models_dir, tmp_path):
    series = str(data_root / "dcmqi" / "ct-3slice")
    env = {"LIVERHEALTH_LLM_BASE_URL": chat_server.base_url, "LIVERHEALTH_LLM_API_KEY": "k"}
    done = run_cli("segment", series, "--out", str(tmp_path / "a"), "--report", env_extra=env)
    assert done.returncode == 0, done.stderr
    assert "with an LLM draft" in done.stdout
    assert (tmp_path / "a" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert "Measured findings" in (tmp_path / "a" / "report.md").read_text()
    env["LIVERHEALTH_LLM_BASE_URL"] = "http://127.0.0.1:9/v1"
    env["LIVERHEALTH_LLM_TIMEOUT"] = "2"
    done = run_cli("segment", series, "--out", str(tmp_path / "b"), "--report", env_extra=env)
    assert done.returncode == 0 and "No LLM draft: cannot reach" in done.stdout
    text, _ = _text((tmp_path / "b" / "report.pdf").read_bytes())
    assert "No LLM draft" in text and "not a medical device" in text
