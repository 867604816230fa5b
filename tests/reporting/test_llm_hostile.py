"""Hostile LLM endpoints against the real local server: a key in the URL, a redirect to another
origin, an endless slow stream and a 10 MB answer. Findings always come back, bounded in time."""

from __future__ import annotations

import json
import threading
import time

from liverhealth.reporting import LlmSettings
from liverhealth.reporting.llm import MAX_DRAFT_CHARS
from liverhealth.results import make_report
from tests.helpers.chat_server import ChatServer

KEY = "sk-in-the-url-0123456789"


def test_a_key_in_the_url_is_used_but_never_shown_or_stored(chat_server, gt_result):
    url = chat_server.base_url.replace("http://", f"http://someone:{KEY}@")
    content = make_report(gt_result, LlmSettings(base_url=url, api_key=None, timeout_s=10))
    report = content.report
    assert report.draft is not None
    headers = {k.lower(): v for k, v in chat_server.headers_seen[0].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert report.draft_endpoint == chat_server.base_url
    assert KEY not in json.dumps([report.draft_endpoint, report.draft_notice, report.findings])
    assert KEY not in repr(LlmSettings(base_url=url))
    chat_server.mode = "500"
    failed = make_report(gt_result, LlmSettings(base_url=url, timeout_s=5, max_retries=0)).report
    assert failed.draft is None and KEY not in failed.draft_notice and "someone" not in failed.draft_notice


def test_a_redirect_to_another_origin_is_not_followed(chat_server, gt_result):
    other = ChatServer()
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        chat_server.mode = "redirect"
        chat_server.redirect_to = other.base_url
        report = make_report(gt_result, LlmSettings(base_url=chat_server.base_url, api_key="k", timeout_s=10)).report
        assert report.draft is None and "redirected to another server" in report.draft_notice
        assert other.requests == [], "the findings and images were re-sent to the other host"
    finally:
        other.shutdown()
        other.server_close()


def test_an_endless_slow_stream_meets_one_deadline(chat_server, gt_result):
    chat_server.mode = "trickle"
    started = time.monotonic()
    report = make_report(
        gt_result, LlmSettings(base_url=chat_server.base_url, api_key="k", timeout_s=2, max_retries=2)
    ).report
    elapsed = time.monotonic() - started
    assert report.draft is None and "did not finish within 2 s" in report.draft_notice
    assert "Liver volume: 1489.4 mL" in report.findings
    assert elapsed < 30  # far below "for ever"; the bound itself is 2 s plus building the images


def test_a_huge_answer_is_cut(chat_server, gt_result):
    chat_server.mode = "huge"
    content = make_report(gt_result, LlmSettings(base_url=chat_server.base_url, api_key="k", timeout_s=30))
    report = content.report
    assert report.draft is not None and len(report.draft) == MAX_DRAFT_CHARS
    assert "cut at" in report.draft_notice


def test_free_dicom_text_never_reaches_the_llm(chat_server, data_root, tmp_path):
    """SeriesDescription/StudyDescription/ProtocolName holding the patient's name and ID stay home."""
    import io
    import zipfile

    import numpy as np
    import pydicom

    from liverhealth.analysis import key_slice, measure
    from liverhealth.domain import ModelInfo, Segmentation
    from liverhealth.imaging import load
    from liverhealth.results import SegmentResult

    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        for n in range(60, 70):
            ds = pydicom.dcmread(io.BytesIO(archive.read(f"PATIENT_DICOM/image_{n}")))
            ds.PatientID = "HOSP-778899"
            ds.SeriesDescription = "Abdomen liver_01 patient HOSP-778899"
            ds.StudyDescription = "CT for liver_01^patient"
            ds.ProtocolName = "liver_01 HOSP-778899 protocol"
            ds.save_as(tmp_path / f"s{n}.dcm", enforce_file_format=True)
    volume = load(tmp_path)
    assert "HOSP" not in volume.source.description and "liver_01" not in volume.source.description
    labels = (volume.voxels > 100).astype(np.uint8)
    result = SegmentResult(
        volume,
        Segmentation(labels, "t", "f" * 64, {}),
        measure(volume, labels),
        key_slice(labels),
        {"total_s": 0.0},
        ModelInfo("t", "t"),
    )
    make_report(result, LlmSettings(base_url=chat_server.base_url, api_key="k", timeout_s=10))
    sent = json.dumps(chat_server.requests[0])
    assert "HOSP-778899" not in sent and "liver_01" not in sent.lower() and "Abdomen" not in sent
