"""The report as PDF (reportlab), laid out as a radiology report: header, technique, findings with
the lesion table, impression, the LLM's suggestion, the signature block, key images, small print.

Every font is a TrueType face embedded in the file, switched per run of characters
(``fonts.markup``), so ≥, ±, ², µ and a Chinese draft each print with a real glyph.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

import liverhealth.reporting.fonts as fonts
from liverhealth.domain import Measurements, StudyInfo
from liverhealth.presentation import (
    COMPARISON_TITLE,
    FINDINGS_TITLE,
    HEADER_TITLE,
    IMPRESSION_TITLE,
    KEY_IMAGES_TITLE,
    MODEL_TITLE,
    NOTES_TITLE,
    SIGNATURE_TITLE,
    TECHNIQUE_TITLE,
    confidence_text,
    draft_section_title,
    header_fields,
    impression_text,
    model_text,
    mostly_unsure,
    notes_text,
    report_banner,
    report_title,
    signature_text,
    slice_number,
    slice_text,
    split_findings,
    technique_text,
)
from liverhealth.reporting.findings import LIMITS, slice_span
from liverhealth.reporting.location import LesionPlace

if TYPE_CHECKING:  # content.py imports this module when it makes its PDF
    from liverhealth.reporting.content import ReportContent

PARAGRAPH_CHARS = 1500
PAGE_WIDTH_MM = 180
KEY_IMAGE_COLUMNS = 4  # the key slice (CT, segmentation) and two target lesions: one row


class _NumberedCanvas(pdf_canvas.Canvas):
    """Writes the footer (what the report is, 'Page N of M') on every page once the count is known."""

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **(kwargs | {"initialFontName": fonts.SANS}))  # no unembedded Helvetica at all
        self._pages: list[dict] = []
        self._footer = footer

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(fonts.SANS, 8)
            self.setFillColor(colors.grey)
            self.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
            self.drawString(15 * mm, 10 * mm, self._footer)
            super().showPage()
        super().save()


class _Styles:
    """The report's paragraph styles, all in the embedded faces."""

    def __init__(self) -> None:
        fonts.faces()
        sheet = getSampleStyleSheet()
        self.body = ParagraphStyle("lh-body", parent=sheet["BodyText"], fontName=fonts.SANS, fontSize=9.5, leading=12.5)
        self.small = ParagraphStyle("lh-small", parent=self.body, fontSize=7.5, leading=9.5)
        self.cell = ParagraphStyle("lh-cell", parent=self.body, fontSize=8, leading=10)
        self.cell_head = ParagraphStyle("lh-cell-head", parent=self.cell, fontName=fonts.SANS_BOLD)
        self.title = ParagraphStyle("lh-title", parent=sheet["Title"], fontName=fonts.SANS_BOLD, fontSize=16)
        self.heading = ParagraphStyle(
            "lh-heading", parent=sheet["Heading2"], fontName=fonts.SANS_BOLD, fontSize=11.5, spaceBefore=8, spaceAfter=3
        )
        self.notice = ParagraphStyle(
            "lh-notice",
            parent=self.body,
            textColor=colors.HexColor("#8a1c1c"),
            borderColor=colors.red,
            borderWidth=0.8,
            borderPadding=4,
            spaceBefore=4,
            spaceAfter=8,
        )


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text: each run of characters in the embedded face that has its glyphs."""
    primary = style.fontName if style.fontName in (fonts.SANS, fonts.SANS_BOLD) else fonts.SANS
    if fonts.is_cjk_text(text):
        style = ParagraphStyle(f"{style.name}-cjk", parent=style, wordWrap="CJK")
    return Paragraph(fonts.markup(text, primary), style)


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


def _table(rows: list[list[str]], widths: list[float], styles: _Styles, header: bool = True) -> Table:
    cells = [
        [_para(cell, styles.cell_head if header and i == 0 else styles.cell) for cell in row]
        for i, row in enumerate(rows)
    ]
    table = Table(cells, colWidths=[w * mm for w in widths], repeatRows=1 if header else 0)
    commands = [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4ecf4")))
    table.setStyle(TableStyle(commands))
    return table


def _header(content: ReportContent, styles: _Styles) -> Table:
    """Institution, patient, study date, accession, referring physician: two fields a row."""
    cells = [
        Paragraph(f'<font name="{fonts.SANS_BOLD}">{escape(label)}:</font> {fonts.markup(value)}', styles.cell)
        for label, value in header_fields(content.patient, content.study_info)
    ]
    rows = [cells[i : i + 2] + [""] * (2 - len(cells[i : i + 2])) for i in range(0, len(cells), 2)]
    table = Table(rows, colWidths=[(PAGE_WIDTH_MM / 2) * mm] * 2)
    table.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.6, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _mm(value: float | None, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if value is not None else "n/a"


def _lesion_rows(m: Measurements, places: dict[int, LesionPlace]) -> list[list[str]]:
    unit = "mm" if m.spacing else "px"
    rows = [
        [
            "#",
            f"Long × short ({unit})",
            "Volume (mL)",
            "Mean HU",
            "RECIST slice",
            "Slices",
            "Side of liver (approx.)",
            "Centre RAS (mm)",
            "Confidence",
        ]
    ]
    tag = not mostly_unsure(m)
    for lesion in m.lesions:
        place = places.get(lesion.lesion_id)
        if lesion.longest_diameter_mm is not None:
            size = f"{lesion.longest_diameter_mm:.1f} × {_mm(lesion.perpendicular_diameter_mm)}"
        else:
            size = f"{lesion.longest_diameter_px:.0f} px"
        centre = ", ".join(f"{v:.0f}" for v in lesion.centroid_mm) if lesion.centroid_mm else "n/a"
        rows.append(
            [
                str(lesion.lesion_id),
                size,
                _mm(lesion.volume_ml, 2),
                _mm(lesion.mean_hu, 0),
                str(slice_number(place.measured_slice)) if place else "n/a",
                slice_span(*lesion.slice_range).split(" ", 1)[1],
                place.side if place and place.side else "n/a",
                centre,
                confidence_text(lesion.confidence, lesion.unsure if tag else False) or "–",
            ]
        )
    return rows


def _findings(content: ReportContent, findings: str, styles: _Styles) -> list[Any]:
    """The findings text with its per-lesion lines set as one table (same figures, easier to read);
    the method limits go to the small print."""
    story: list[Any] = [Paragraph(FINDINGS_TITLE, styles.heading)]
    lesions_at = None
    for line in findings.splitlines():
        if line.startswith("Lesion ") and content.measurements.lesions:
            lesions_at = len(story) if lesions_at is None else lesions_at
            continue
        if line == LIMITS:
            continue
        story.append(_para(line, styles.body))
    if lesions_at is not None:
        table = _table(_lesion_rows(content.measurements, content.places), [8, 26, 17, 14, 17, 18, 19, 35, 26], styles)
        story[lesions_at:lesions_at] = [Spacer(1, 3), table, Spacer(1, 4)]
    return story


def _key_images(content: ReportContent, styles: _Styles) -> list[Any]:
    """The key slice (CT and segmentation) and each target lesion with its caliper, kept on one page."""
    where = f", {slice_text(content.key_slice, content.slice_count)}" if content.key_slice is not None else ""
    cells = [
        (content.slice_png, f"CT{where} (abdomen window)"),
        (content.overlay_png, "Segmentation: liver green, tumour red"),
        *(
            (image.png, image.caption + " (outline yellow, long axis cyan, short axis white)")
            for image in content.key_images
        ),
    ]
    cells = [(png, caption) for png, caption in cells if png]
    if not cells:
        return []
    columns = KEY_IMAGE_COLUMNS
    width = PAGE_WIDTH_MM / columns - 2
    grid = []
    for i in range(0, len(cells), columns):
        row = cells[i : i + columns]
        grid.append([_image(png, width) for png, _ in row] + [""] * (columns - len(row)))
        grid.append([_para(caption, styles.small) for _, caption in row] + [""] * (columns - len(row)))
    table = Table(grid, colWidths=[(width + 2) * mm] * columns)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    return [KeepTogether([Paragraph(KEY_IMAGES_TITLE, styles.heading), table])]


def _story(content: ReportContent, styles: _Styles) -> list[Any]:
    report = content.report
    technique, findings = split_findings(report.findings)
    if not technique:  # a report written before the findings carried the technique
        technique = technique_text(content.study_info or StudyInfo(), content.measurements.spacing, content.study)
    story: list[Any] = [
        Paragraph(fonts.markup(report_title(report), fonts.SANS_BOLD), styles.title),
        _para(f"Created {report.created_at}.", styles.small),
        _para(report_banner(report), styles.notice),
        Paragraph(HEADER_TITLE, styles.heading),
        _header(content, styles),
        Paragraph(TECHNIQUE_TITLE, styles.heading),
        _para(technique, styles.body),
        *_findings(content, findings, styles),
    ]
    if report.comparison:
        story += [Paragraph(COMPARISON_TITLE, styles.heading), *_paragraphs(report.comparison, styles.body)]
    story += [Paragraph(IMPRESSION_TITLE, styles.heading), *_paragraphs(impression_text(report), styles.body)]
    draft = _paragraphs(
        report.draft if report.draft else (report.draft_notice or "No draft."),
        styles.body if report.draft else styles.notice,
    )
    story += [KeepTogether([_para(draft_section_title(report), styles.heading), draft[0]]), *draft[1:]]
    if report.draft and report.draft_notice:
        story.append(_para(report.draft_notice, styles.notice))
    signature = _table([[signature_text(report)]], [PAGE_WIDTH_MM], styles, header=False)
    story += [KeepTogether([Paragraph(SIGNATURE_TITLE, styles.heading), signature])]
    story += _key_images(content, styles)
    story += [
        KeepTogether(
            [
                Paragraph(MODEL_TITLE, styles.heading),
                _para(model_text(content.model), styles.body),
                Paragraph(NOTES_TITLE, styles.heading),
                *_paragraphs(f"{notes_text(content.model)}\n{LIMITS}", styles.small),
                _para(report_banner(report), styles.notice),
            ]
        )
    ]
    return story


def write_pdf(content: ReportContent) -> bytes:
    """Render the report to PDF bytes."""
    styles = _Styles()
    report = content.report
    footer = (
        "LiverHealth liver CT report, signed - not a medical device"
        if report.is_signed
        else "LiverHealth draft report - not a medical device"
    )
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=18 * mm,
        title=report_title(report),
        author="LiverHealth",
    )
    document.build(_story(content, styles), canvasmaker=lambda *a, **k: _NumberedCanvas(*a, footer=footer, **k))
    return buffer.getvalue()
