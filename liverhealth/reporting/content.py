"""What a report shows, as one value; the PDF is rendered from it on first use (reportlab is
imported only then, so a command that makes no PDF does not pay for it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from liverhealth.domain import Measurements, ModelInfo, PatientInfo, Report, StudyInfo
from liverhealth.reporting.location import LesionPlace


@dataclass(frozen=True)
class KeyImage:
    """A key image of the report: a lesion outlined with its RECIST caliper on its measured slice,
    captioned "Lesion 1, slice 66: 32.1 × 20.4 mm"."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class ReportContent:
    """Everything the PDF shows (the PDF itself is made once, on first use)."""

    report: Report
    measurements: Measurements
    model: ModelInfo
    study: str
    slice_png: bytes
    overlay_png: bytes
    key_images: list[KeyImage] = field(default_factory=list)
    places: dict[int, LesionPlace] = field(default_factory=dict)  # lesion id -> measured slice, side
    key_slice: int | None = None  # 0-based index of the slice the two overview pictures show
    slice_count: int | None = None
    patient: PatientInfo | None = None
    # the study: identity only with include_patient (else only the technique: phase, contrast, thickness)
    study_info: StudyInfo | None = None

    @cached_property
    def pdf(self) -> bytes:
        """The report as PDF bytes, rendered once however many places need it."""
        from liverhealth.reporting.pdf import write_pdf

        return write_pdf(self)
