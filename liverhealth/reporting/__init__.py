"""Reports: measured findings (always), an LLM draft (when one answers), PDF and Markdown."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from liverhealth.domain import Measurements, ModelInfo, Report
from liverhealth.presentation import COMPARISON_TITLE, DISCLAIMER, report_markdown, report_text
from liverhealth.reporting.content import KeyImage, ReportContent
from liverhealth.reporting.findings import build_findings
from liverhealth.reporting.llm import DraftResult, LlmSettings, request_draft
from liverhealth.reporting.location import LesionPlace, lesion_places

__all__ = [
    "DISCLAIMER",
    "DraftResult",
    "KeyImage",
    "LesionPlace",
    "LlmSettings",
    "ReportContent",
    "build_findings",
    "build_report",
    "lesion_places",
    "report_markdown",
    "report_text",
    "request_draft",
    "write_pdf",
]


def __getattr__(name: str) -> Any:
    """``write_pdf`` on first use: reportlab costs a tenth of a second to import."""
    if name == "write_pdf":
        from liverhealth.reporting.pdf import write_pdf

        return write_pdf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_report(
    measurements: Measurements,
    model: ModelInfo,
    study: str,
    slice_png: bytes,
    overlay_png: bytes,
    settings: LlmSettings | None = None,
    use_llm: bool = True,
    on_text: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    comparison: str | None = None,
    places: Mapping[int, LesionPlace] | None = None,
) -> Report:
    """Findings from the measurements, plus a streamed LLM draft (or the reason there is none);
    ``comparison`` (numbers only) is the "Comparison with prior" section, also sent to the LLM;
    ``places``: each lesion's measured slice and side of the liver (``lesion_places``)."""
    findings = build_findings(measurements, model, study, places)
    if use_llm:
        asked = f"{findings}\n\n{COMPARISON_TITLE}:\n{comparison}" if comparison else findings
        draft = request_draft(asked, slice_png, overlay_png, settings, on_text, cancel)
    else:
        draft = DraftResult(None, "No LLM draft: not requested.", "", "")
    return Report(
        findings=findings,
        draft=draft.text,
        draft_notice=draft.notice,
        draft_model=draft.model or None,
        draft_endpoint=draft.endpoint or None,
        created_at=datetime.now().strftime("%Y-%m-%d %H:%M"),
        comparison=comparison,
    )
