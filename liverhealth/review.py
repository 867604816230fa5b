"""The reader's review of a result: a revision of the labels, re-measured, and a signed report.

Plain functions of values: the workflow service keeps the session's state and calls them. The
model's result is never changed; an edit gives a new ``SegmentResult`` carrying a ``Revision`` (who,
when, what changed) and the mask of the voxels a reader drew, which count as certain in the
confidence and mark the lesions they touch as edited.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from liverhealth.analysis import key_slice, measure
from liverhealth.analysis.confidence import ConfidenceFlags
from liverhealth.analysis.measure import find_lesions
from liverhealth.domain import Label, Revision, Segmentation
from liverhealth.errors import InputError
from liverhealth.reporting import ReportContent
from liverhealth.results import SegmentResult
from liverhealth.text import one_line

MAX_IMPRESSION_CHARS = 20_000


def utc_minute() -> str:
    """Now, as revisions and signatures state it: 'YYYY-MM-DD HH:MM' (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def revise(
    base: SegmentResult,
    current: SegmentResult,
    labels: np.ndarray,
    reader_drawn: np.ndarray,
    changes: tuple[dict[str, Any], ...],
    author: str,
    flags: ConfidenceFlags,
) -> SegmentResult:
    """``current`` with new ``labels``: re-measured (``reader_drawn`` voxels count as certain), as the
    revision after ``base`` (the result as last saved or opened) made by ``author`` with ``changes``
    since ``base``. Back at ``base``'s labels with no changes, it is ``base`` again."""
    volume = base.volume
    if labels.shape != volume.shape:
        raise InputError(f"The edited labels {labels.shape} are not on the CT's grid {volume.shape}.")
    if not changes:
        return base
    segmentation = Segmentation(
        labels,
        base.segmentation.model_id,
        base.segmentation.model_sha256,
        base.segmentation.timings,
        base.segmentation.confidence,
    )
    number = (base.revision.number if base.revision else 0) + 1
    base_id = base.revision.base_result_id if base.revision else None
    revision = Revision(number, author, utc_minute(), tuple(changes), base_id)
    measurements = measure(volume, labels, segmentation.confidence, flags, reader_drawn)
    return replace(
        current,
        segmentation=segmentation,
        measurements=measurements,
        key_slice=key_slice(labels),
        revision=revision,
        reader_drawn=reader_drawn,
    )


def lesion_voxel(labels: np.ndarray, lesion_id: int) -> tuple[int, int, int]:
    """A voxel inside lesion ``lesion_id`` as ``measure`` numbers them (largest first), to click on."""
    found = find_lesions(labels == Label.TUMOUR)
    if not 1 <= lesion_id <= len(found):
        raise InputError(f"There is no lesion {lesion_id}: the findings list {len(found)} lesion(s).")
    crop, offset = found[lesion_id - 1]
    inside = np.argwhere(crop)[len(np.argwhere(crop)) // 2]
    return tuple(int(i + o) for i, o in zip(inside, offset, strict=True))  # type: ignore[return-value]


def on_saved_base(result: SegmentResult, base_result_id: int) -> SegmentResult:
    """``result`` with its revision naming the saved model result it revises."""
    if result.revision is None or result.revision.base_result_id == base_result_id:
        return result
    return replace(result, revision=replace(result.revision, base_result_id=base_result_id))


def numbered(result: SegmentResult, number: int) -> SegmentResult:
    """``result`` as revision ``number`` (the database's next one when it is saved)."""
    if result.revision is None or result.revision.number == number:
        return result
    return replace(result, revision=replace(result.revision, number=number))


def sign(
    content: ReportContent,
    reader: str,
    revision: int,
    impression: str | None = None,
    draft: str | None = None,
) -> ReportContent:
    """The report signed by ``reader`` on result revision ``revision``: the reader's impression and
    edited draft text (kept as the reader's, the machine's draft stays in its own report), the time
    in UTC, and a new PDF that says who signed it."""
    report = content.report
    if report.is_signed:
        raise InputError(
            f"This report was signed by {report.signed_by} on {report.signed_at}: it is locked. "
            "Edit the result to make a new revision, and sign a report on that."
        )
    if not reader.strip():
        raise InputError("A report is signed by a named reader: log in or give the reader's name.")
    impression = impression.strip() if impression else None
    if impression and len(impression) > MAX_IMPRESSION_CHARS:
        raise InputError(f"The impression is longer than {MAX_IMPRESSION_CHARS} characters; shorten it.")
    edited_draft = draft.strip() if draft is not None else None
    author = reader if impression or (edited_draft is not None and edited_draft != (report.draft or "")) else None
    signed = replace(
        report,
        impression=impression or report.impression,
        draft=edited_draft if edited_draft is not None else report.draft,
        author=author or report.author,
        signed_by=one_line(reader)[:255],
        signed_at=utc_minute(),
        revision=revision,
    )
    return replace(content, report=signed)
