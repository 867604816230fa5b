"""What a report shows, as one value; the PDF is rendered from it on first use (reportlab is
imported only then, so a command that makes no PDF does not pay for it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from liverhealth.domain import Measurements, ModelInfo, PatientInfo, Report, StudyInfo


@dataclass(frozen=True)
class ReportContent:
    """Everything the PDF shows (the PDF itself is made once, on first use)."""

    report: Report
    measurements: Measurements
    model: ModelInfo
    study: str
    slice_png: bytes
    overlay_png: bytes
    key_slices: list[tuple[int, bytes]] = field(default_factory=list)
    patient: PatientInfo | None = None
    # the study: identity only with include_patient (else only the technique: phase, contrast, thickness)
    study_info: StudyInfo | None = None

    @cached_property
    def pdf(self) -> bytes:
        """The report as PDF bytes, rendered once however many places need it."""
        from liverhealth.reporting.pdf import write_pdf

        return write_pdf(self)
