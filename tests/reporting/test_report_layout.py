"""The report a radiologist signs, parsed back from real PDFs (pypdf) and Markdown: its sections, the
header from the study or blanks, 1-based slice numbers matching the measurements, no developer
details, the "check first" sentences, embedded fonts with a glyph for every character, pages that
are not mostly empty (rendered with poppler). The shipped model runs on TotalSegmentator's small
example CT through the workflow; 3Dircadb1.1's expert masks give a DICOM study with 7 lesions."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace

import cv2
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from liverhealth import config
from liverhealth.analysis.caliper import lesion_calipers
from liverhealth.analysis.recist import target_lesions
from liverhealth.presentation import (
    SIDE_RULE,
    check_first_note,
    report_markdown,
    report_text,
    slice_number,
)
from liverhealth.reporting import LlmSettings, build_findings, fonts
from liverhealth.results import make_report, result_places, study_line, write_report
from liverhealth.workflow import Workstation
from tests.helpers.prerequisites import require

SECTIONS = (
    "Patient and study",
    "Technique",
    "Measured findings",
    "Impression",
    "Suggested impression",
    "Signature",
    "Key images",
    "Segmentation model",
    "Notes",
)


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def shipped_result(data_root, tmp_path_factory):
    """The shipped default model run through the workflow on TotalSegmentator's 30-slice example CT."""
    folder = tmp_path_factory.mktemp("shipped")
    station = Workstation(models_dir=config.REPO_ROOT / "models", db_url=f"sqlite:///{folder / 'r.db'}")
    session = station.session()
    session.open(data_root / "totalsegmentator" / "example_ct_sm.nii.gz")
    result = session.segment()
    station.close()
    assert len(result.measurements.lesions) >= 3, "the shipped model should find lesions on this CT"
    return result


@pytest.fixture(scope="module")
def chinese_content(gt_result):
    """3Dircadb1.1 (DICOM, expert labels) with the LLM's draft (English and Chinese), identity included."""
    from tests.helpers.chat_server import running_chat_server

    with running_chat_server() as server:
        settings = LlmSettings(base_url=server.base_url, api_key="k", timeout_s=10)
        return make_report(gt_result, settings, include_patient=True)


def test_sections_header_and_key_images(chinese_content, gt_result, tmp_path):
    text = _pdf_text(chinese_content.pdf)
    for title in SECTIONS:
        assert title in text, title
    study = gt_result.volume.study
    assert study.institution and f"Institution: {study.institution}" in text
    assert f"Study date: {study.date_iso}" in text and "liver_01" in text  # the patient, asked for
    assert "Reviewed and signed by: ____" in text and "(the reading radiologist's impression)" in text
    assert "Suggested impression: Machine-written draft (qwen-vl-max)" in text and "肝脏" in text
    assert f"slice thickness {study.slice_thickness_mm:g} mm (DICOM header)" in _flat(text)
    assert "phase not stated" in text or f"phase {study.phase}" in text
    calipers = {c.lesion_id: c for c in lesion_calipers(gt_result.segmentation.labels, gt_result.volume.spacing)}
    targets = target_lesions(gt_result.measurements.lesions)
    assert len(chinese_content.key_images) == len(targets) == 2
    for lesion, image in zip(targets, chinese_content.key_images, strict=True):
        caliper = calipers[lesion.lesion_id]
        caption = (
            f"Lesion {lesion.lesion_id}, slice {caliper.slice_index + 1}: "
            f"{caliper.long_length:.1f} × {caliper.short_length:.1f} mm"
        )
        assert image.caption.startswith(caption) and caption in _flat(text)
        picture = cv2.imdecode(np.frombuffer(image.png, np.uint8), cv2.IMREAD_COLOR)
        yellow = (picture[..., 2] > 200) & (picture[..., 1] > 180) & (picture[..., 0] < 80)
        cyan = (picture[..., 0] > 200) & (picture[..., 1] > 150) & (picture[..., 2] < 80)
        assert yellow.sum() > 20 and cyan.sum() > 20  # the outline and the long axis are drawn
    write_report(chinese_content, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert f"Institution: {study.institution}" in markdown and "## Signature" in markdown


def test_header_is_blank_without_the_patient(gt_result):
    content = make_report(gt_result, use_llm=False)
    text = _pdf_text(content.pdf)
    assert "Patient: ______" in text and "Accession: ______" in text and "Institution: ______" in text
    assert "liver_01" not in text and f"Institution: {gt_result.volume.study.institution}" not in text
    plain = report_text(content.report, content.model)
    assert "Patient: ______" in plain and "Reviewed and signed by: ____" in plain


def test_slice_numbers_are_one_based_everywhere(shipped_result, tmp_path):
    content = make_report(shipped_result, use_llm=False)
    findings = content.report.findings
    count = shipped_result.volume.shape[0]
    calipers = {
        c.lesion_id: c for c in lesion_calipers(shipped_result.segmentation.labels, shipped_result.volume.spacing)
    }
    text = _flat(_pdf_text(content.pdf))
    write_report(content, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    for lesion in shipped_result.measurements.lesions:
        measured = calipers[lesion.lesion_id].slice_index
        first, last = lesion.slice_range
        span = f"slice {first + 1}" if first == last else f"slices {first + 1}–{last + 1}"
        line = next(line for line in findings.splitlines() if line.startswith(f"Lesion {lesion.lesion_id}:"))
        assert f"on slice {measured + 1} of {count})" in line and f"; {span};" in line, line
        assert line in markdown
        row = f"{lesion.lesion_id} {lesion.longest_diameter_mm:.1f} × {lesion.perpendicular_diameter_mm:.1f}"
        assert row in text  # the PDF's lesion table, its slices 1-based
        assert f"{measured + 1} {span.split(' ', 1)[1]}" in text
    assert slice_number(0) == 1
    assert f"CT, slice {shipped_result.key_slice + 1} of {count}" in text


def test_no_paths_hashes_or_protocol_paragraph(chinese_content, shipped_result):
    model = shipped_result.model
    protocol = model.metrics["protocol"]
    assert "../shared" in protocol  # what must not reach the report
    content = make_report(shipped_result, use_llm=False)
    for text in (
        _pdf_text(content.pdf),
        report_text(content.report, content.model),
        report_markdown(content.report, content.model),
    ):
        flat = _flat(text)
        assert "../shared" not in flat and "sha256" not in flat.lower() and model.sha256[:12] not in flat
        assert protocol not in flat and protocol[:200] not in flat
        assert (
            f"cross-validated liver Dice {model.metrics['liver_dice']:.2f}, tumour {model.metrics['tumour_dice']:.2f}; "
            "see the model card" in flat
        )
        assert "Validation protocol: patient-level 3-fold cross-validation over the 28 fully labelled patients;" in flat
        assert _flat(SIDE_RULE) in flat


def test_a_flagged_target_says_so(shipped_result):
    m = shipped_result.measurements
    target = target_lesions(m.lesions)[-1]
    flags = replace(m, lesions=tuple(replace(x, unsure=x.lesion_id == target.lesion_id) for x in m.lesions))
    findings = build_findings(flags, shipped_result.model, study_line(shipped_result), result_places(shipped_result))
    assert f'Target lesion {target.lesion_id} is flagged "check first" (low model confidence)' in findings
    assert f"lesions to check first (low confidence): {target.lesion_id}." in findings
    line = next(line for line in findings.splitlines() if line.startswith(f"Lesion {target.lesion_id}:"))
    assert line.endswith(", check first.")
    calm = replace(m, lesions=tuple(replace(x, unsure=False) for x in m.lesions))
    assert "is flagged" not in build_findings(calm, shipped_result.model)


def test_most_lesions_flagged_is_said_once(shipped_result):
    m = shipped_result.measurements
    flags = replace(m, lesions=tuple(replace(x, unsure=x.lesion_id != 1) for x in m.lesions))
    n = len(m.lesions)
    result = replace(shipped_result, measurements=flags)
    content = make_report(result, use_llm=False)
    sentence = f"the model is unsure of {n - 1} of {n} lesions: check all of them"
    findings = content.report.findings
    assert sentence in findings and "check first" not in "\n".join(
        line for line in findings.splitlines() if line.startswith("Lesion ")
    )
    assert "lesions to check first" not in findings
    text = _flat(_pdf_text(content.pdf))
    assert sentence in text and "%, check first" not in text
    assert check_first_note(flags) == f"; {sentence}"
    assert check_first_note(replace(m, lesions=tuple(replace(x, unsure=x.lesion_id == 2) for x in m.lesions))) == (
        "; check first (low model confidence): lesion(s) 2"
    )


def _to_unicode(font) -> dict[str, int]:
    """The font's ToUnicode map reversed: character -> code."""
    data = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    mapping = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for code, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            if int(uni, 16):
                mapping[bytes.fromhex(uni).decode("utf-16-be")] = int(code, 16)
    return mapping


def _glyph_problems(pdf: bytes) -> tuple[list[str], set[str]]:
    """Each character drawn in a font that is not embedded or has no glyph for it; and the fonts used."""
    problems, used = [], set()
    reader = PdfReader(io.BytesIO(pdf))
    for number, page in enumerate(reader.pages, start=1):
        runs: list[tuple[str, object]] = []

        def visit(text, cm, tm, font, size, runs=runs):
            runs.append((text, font))

        page.extract_text(visitor_text=visit)
        for text, font in runs:
            if not text.strip():
                continue
            if font is None:
                problems.append(f"page {number}: {text!r} in no font")
                continue
            name = str(font["/BaseFont"])
            used.add(name)
            descriptor = font.get("/FontDescriptor")
            if font.get("/Subtype") != "/TrueType" or descriptor is None or "/FontFile2" not in descriptor:
                problems.append(f"page {number}: {text!r} in {name}, not an embedded TrueType font")
                continue
            face = TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data()))
            cmap = face["cmap"].getcmap(1, 0).cmap
            codes = _to_unicode(font)
            for character in set(text) - set(" \n\t"):
                code = codes.get(character)
                glyph = cmap.get(code) if code is not None else None
                if glyph is None or glyph == ".notdef" or face["glyf"][glyph].numberOfContours == 0:
                    problems.append(f"page {number}: {character!r} (U+{ord(character):04X}) has no glyph in {name}")
    return problems, used


def test_every_character_has_a_glyph_in_an_embedded_font(chinese_content):
    require(fonts.has_cjk_face(), "no CJK TrueType font: apt-get install fonts-droid-fallback (scripts/setup.sh does)")
    report = replace(
        chinese_content.report,
        impression="Liver 1489 mL ± 2 %; lesion ≥ 10 mm; area 120 mm²; dose 5 µg; 32.1 × 20.4 mm. 肝脏多发病灶。",
    )
    content = replace(chinese_content, report=report)
    text = _pdf_text(content.pdf)
    for character in "≥±²µ×肝":
        assert character in text
    problems, used = _glyph_problems(content.pdf)
    assert not problems, problems[:10]
    assert any("BitstreamVeraSans" in name for name in used) and len(used) >= 3  # Latin, bold, CJK runs
    assert not any("STSong" in name or "Helvetica" in name for name in used)


def test_a_signed_report_fills_the_signature_block(gt_result):
    content = make_report(gt_result, use_llm=False)
    signed = replace(
        content.report,
        impression="Seven liver lesions, the largest in the right liver.",
        signed_by="dr.smith",
        signed_at="2026-12-07 10:40",
        revision=1,
    )
    text = _flat(_pdf_text(replace(content, report=signed).pdf))
    assert "Reviewed and signed by dr.smith on 2026-12-07 10:40 UTC (result revision 1, reader-edited)." in text
    assert "Reviewed and signed by: ____" not in text and "Seven liver lesions, the largest" in text
    assert "signed - not a medical device" in text and "draft report" not in text


def _content_bottoms(pdf: bytes, folder) -> list[float]:
    """Per rendered page, how far down (0..1 of the page) its content reaches, the footer left out."""
    (folder / "report.pdf").write_bytes(pdf)
    done = subprocess.run(
        ["pdftoppm", "-r", "40", "-gray", "-png", str(folder / "report.pdf"), str(folder / "page")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    bottoms = []
    for path in sorted(folder.glob("page*.png")):
        page = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        body = page[: int(page.shape[0] * 0.92)]  # above the footer line
        rows = np.flatnonzero((body < 200).any(axis=1))
        bottoms.append(rows[-1] / page.shape[0] if rows.size else 0.0)
    return bottoms


def test_pages_are_not_mostly_empty(chinese_content, shipped_result, tmp_path):
    require(shutil.which("pdftoppm") is not None, "pdftoppm is missing: apt-get install poppler-utils poppler-data")
    for name, content in (("ircadb", chinese_content), ("shipped", make_report(shipped_result, use_llm=False))):
        folder = tmp_path / name
        folder.mkdir()
        bottoms = _content_bottoms(content.pdf, folder)
        assert len(bottoms) <= 3, (name, bottoms)
        assert all(bottom > 0.6 for bottom in bottoms[:-1]), (name, bottoms)  # a page breaks only when full
        assert bottoms[-1] > 0.3, (name, bottoms)  # no last page of three lines
