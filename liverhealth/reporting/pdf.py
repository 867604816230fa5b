"""The report as PDF (reportlab): images, tables, findings, the marked LLM draft, the notice.

Text outside Latin-1 (Chinese, ≥) is set in reportlab's CID font STSong-Light, which viewers
supply themselves (it is not embedded).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from liverhealth.domain import Lesion, Measurements
from liverhealth.presentation import (
    COMPARISON_TITLE,
    FINDINGS_TITLE,
    IMPRESSION_TITLE,
    MODEL_TITLE,
    confidence_text,
    draft_title,
    model_text,
    report_banner,
    report_title,
)

if TYPE_CHECKING:  # content.py imports this module when it makes its PDF
    from liverhealth.reporting.content import ReportContent

CJK_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


class _NumberedCanvas(pdf_canvas.Canvas):
    """Writes 'Page N of M' on every page once the page count is known."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.grey)
            self.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
            self.drawString(15 * mm, 10 * mm, "LiverHealth draft report - not a medical device")
            super().showPage()
        super().save()


def _needs_cjk(text: str) -> bool:
    try:
        text.encode("cp1252")
        return False
    except UnicodeEncodeError:
        return True


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    if _needs_cjk(text):
        style = ParagraphStyle(f"{style.name}-cjk", parent=style, fontName=CJK_FONT, wordWrap="CJK")
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


PARAGRAPH_CHARS = 1500


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    """One short Paragraph per line (long lines cut into pieces): reportlab re-wraps a paragraph
    that spans pages on every page, so one huge paragraph costs time quadratic in its length."""
    pieces = [
        line[i : i + PARAGRAPH_CHARS]
        for line in text.splitlines() or [""]
        for i in range(0, max(len(line), 1), PARAGRAPH_CHARS)
    ]
    return [_para(piece, style) for piece in pieces]


def _image(png: bytes, width_mm: float) -> Image:
    image = Image(io.BytesIO(png))
    scale = width_mm * mm / image.imageWidth
    image.drawWidth, image.drawHeight = image.imageWidth * scale, image.imageHeight * scale
    return image


def _table(rows: list[list[str]], widths: list[float], style: ParagraphStyle) -> Table:
    table = Table(
        [[_para(cell, style) for cell in row] for row in rows], colWidths=[w * mm for w in widths], repeatRows=1
    )
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4ecf4")),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if isinstance(value, int | float) else "n/a"


def _measurement_rows(m: Measurements) -> list[list[str]]:
    rows = [["Quantity", "Value"]]
    if m.liver_volume_ml is not None:
        rows += [
            ["Liver volume (tumour included)", _fmt(m.liver_volume_ml, 1, " mL")],
            ["Tumour volume", _fmt(m.tumour_volume_ml, 2, " mL")],
        ]
    elif m.liver_area_mm2 is not None:
        rows += [
            ["Liver area", _fmt(m.liver_area_mm2, 0, " mm²")],
            ["Tumour area", _fmt(m.tumour_area_mm2, 0, " mm²")],
        ]
    else:
        rows += [["Liver area", f"{m.liver_voxels} px"], ["Tumour area", f"{m.tumour_voxels} px"]]
    rows += [["Tumour burden", _fmt(m.tumour_burden_pct, 1, " % of liver")], ["Lesions", str(len(m.lesions))]]
    return rows


def _lesion_rows(lesions: tuple[Lesion, ...]) -> list[list[str]]:
    rows = [["#", "Volume (mL)", "Longest axial (mm)", "Perpendicular (mm)", "Slices", "Mean HU", "Confidence"]]
    for lesion in lesions:
        first, last = lesion.slice_range
        rows.append(
            [
                str(lesion.lesion_id),
                _fmt(lesion.volume_ml, 2),
                _fmt(lesion.longest_diameter_mm),
                _fmt(lesion.perpendicular_diameter_mm),
                f"{first}–{last}",
                _fmt(lesion.mean_hu, 0),
                confidence_text(lesion.confidence, lesion.unsure) or "–",
            ]
        )
    return rows


def write_pdf(content: ReportContent) -> bytes:
    """Render the report to PDF bytes."""
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], ParagraphStyle("small", parent=styles["BodyText"], fontSize=8, leading=10)
    heading = styles["Heading2"]
    notice = ParagraphStyle(
        "notice",
        parent=body,
        textColor=colors.HexColor("#8a1c1c"),
        borderColor=colors.red,
        borderWidth=0.8,
        borderPadding=4,
        spaceBefore=6,
        spaceAfter=6,
    )
    report = content.report
    story: list[Any] = [
        Paragraph(report_title(report), styles["Title"]),
        _para(f"Created {report.created_at}. {content.study}", body),
        _para(report_banner(report), notice),
    ]
    patient = content.patient
    if patient is not None and not patient.is_empty():
        story += [
            Paragraph("Patient", heading),
            _table(
                [
                    ["Name", "ID", "Sex", "Birth date"],
                    [patient.name, patient.patient_id, patient.sex, patient.birth_date],
                ],
                [60, 40, 20, 40],
                body,
            ),
        ]
    story += [
        Paragraph("Images", heading),
        Table(
            [
                [_image(content.slice_png, 85), _image(content.overlay_png, 85)],
                [_para("CT slice (abdomen window)", small), _para("Segmentation: liver green, tumour red", small)],
            ]
        ),
    ]
    if content.key_slices:
        width = 180 / max(len(content.key_slices), 1) - 2
        story.append(
            Table(
                [
                    [_image(png, width) for _, png in content.key_slices],
                    [_para(f"slice {z}", small) for z, _ in content.key_slices],
                ]
            )
        )
    story += [Paragraph("Measurements", heading), _table(_measurement_rows(content.measurements), [90, 70], body)]
    lesions = content.measurements.lesions
    if lesions:
        story += [Spacer(1, 4), _table(_lesion_rows(lesions), [8, 24, 30, 30, 20, 18, 32], body)]
    story += [Paragraph(FINDINGS_TITLE, heading)]
    story += [_para(line, body) for line in report.findings.splitlines()]
    if report.comparison:
        story += [Paragraph(COMPARISON_TITLE, heading), *(_para(line, body) for line in report.comparison.splitlines())]
    if report.impression:
        story += [Paragraph(IMPRESSION_TITLE, heading), *(_para(line, body) for line in report.impression.splitlines())]
    draft = _paragraphs(
        report.draft if report.draft else (report.draft_notice or "No draft."), body if report.draft else notice
    )
    story += [KeepTogether([Paragraph(escape(draft_title(report)), heading), draft[0]]), *draft[1:]]
    if report.draft and report.draft_notice:
        story.append(_para(report.draft_notice, notice))
    story += [
        Paragraph(MODEL_TITLE, heading),
        _para(model_text(content.model), body),
        _para(report_banner(report), notice),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=report_title(report),
        author="LiverHealth",
    )
    document.build(story, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
