"""The LLM draft against a real local chat-completions server: content of the request, streaming,
and every failure mode ending in a report with findings and a one-line notice."""

from __future__ import annotations

import base64
import json

import pytest

from liverhealth.reporting import LlmSettings
from liverhealth.results import make_report
from tests.helpers.chat_server import DRAFT_PIECES

KEY = "sk-test-1234567890abcdef"


def settings(server, **changes) -> LlmSettings:
    values = {"base_url": server.base_url, "model": "qwen-vl-max", "api_key": KEY, "timeout_s": 5.0, "max_retries": 1}
    values.update(changes)
    return LlmSettings(**values)


def test_request_carries_images_and_findings_not_the_patient(chat_server, gt_result):
    pieces: list[str] = []
    content = make_report(gt_result, settings(chat_server), on_text=pieces.append)
    report = content.report
    assert report.draft == "".join(DRAFT_PIECES).strip() and report.draft_notice is None
    assert len(pieces) == len(DRAFT_PIECES)  # streamed piece by piece
    request = chat_server.requests[0]
    assert request["model"] == "qwen-vl-max" and request["stream"] is True
    assert "never invent" in request["messages"][0]["content"]
    parts = request["messages"][1]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 2
    for url in images:
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(p["text"] for p in parts if p["type"] == "text")
    assert "Liver volume: 1489.4 mL" in text and "Lesion 7" in text
    raw = json.dumps(request)
    assert gt_result.volume.patient.name and gt_result.volume.patient.name not in raw
    assert "liver_01" not in raw
    headers = {k.lower(): v for k, v in chat_server.headers_seen[0].items()}
    assert headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("500", "HTTP 500"),
        ("401", "refused the API key"),
        ("slow", "did not answer within"),
        ("garbage", "could not be read"),
        ("empty", "empty answer"),
    ],
)
def test_failures_give_findings_and_a_notice(chat_server, gt_result, mode, reason):
    chat_server.mode = mode
    report = make_report(gt_result, settings(chat_server, timeout_s=1.0)).report
    assert report.draft is None
    assert report.draft_notice.startswith("No LLM draft:") and reason in report.draft_notice
    assert "\n" not in report.draft_notice and KEY not in report.draft_notice
    assert "Liver volume: 1489.4 mL" in report.findings


def test_no_key_means_no_request(chat_server, gt_result):
    remote = settings(chat_server, base_url="https://llm.invalid/v1", api_key=None)
    report = make_report(gt_result, remote).report
    assert report.draft is None and "no API key" in report.draft_notice
    local = settings(chat_server, api_key=None)  # a local server (Ollama, vLLM) needs no key
    assert make_report(gt_result, local).report.draft is not None


def test_unreachable_endpoint(gt_result):
    dead = LlmSettings(base_url="http://127.0.0.1:9/v1", api_key=KEY, timeout_s=2, max_retries=0)
    report = make_report(gt_result, dead).report
    assert report.draft is None and "cannot reach" in report.draft_notice


def test_cancel_stops_the_stream(chat_server, gt_result):
    seen: list[str] = []
    report = make_report(gt_result, settings(chat_server), on_text=seen.append, cancel=lambda: len(seen) >= 1).report
    assert report.draft is None and "cancelled" in report.draft_notice
    assert len(seen) == 1


def test_settings_from_environment_hide_the_key(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.delenv("LIVERHEALTH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    found = LlmSettings.from_environment()
    assert found.api_key == KEY and found.model == "qwen-vl-max" and "dashscope" in found.base_url
    assert KEY not in repr(found)
    monkeypatch.setenv("LIVERHEALTH_LLM_MODEL", "llava")
    assert LlmSettings.from_environment().model == "llava"
