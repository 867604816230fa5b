"""The reader's review of a finished job's result: edits (paint, erase, add, remove or relabel a
lesion, fill between slices), undo and redo, saving the revision and signing the report. Every edit
is made and re-measured by the job's workflow session; each answer carries the new findings and
the label map's new URL. Only the account that opened the study reviews it (``deps.reviewable_job``)."""

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from liverhealth.errors import InputError
from liverhealth.web.deps import EditBody, ReviewableJob, SaveBody, SignBody
from liverhealth.web.jobs import Job, rewrite_outputs
from liverhealth.web.schemas import BrushEdit, FillEdit, LesionEdit, ReviewState
from liverhealth.workflow import Session

router = APIRouter(prefix="/api/jobs/{job_id}/review", tags=["review"])


def apply_edit(session: Session, edit: BrushEdit | LesionEdit | FillEdit) -> None:
    """Hand the edit to the workflow session, which makes and re-measures it."""
    if isinstance(edit, BrushEdit):
        brush = session.paint if edit.op == "paint" else session.erase
        brush(edit.slice, (edit.row, edit.col), edit.radius_mm, edit.label)
    elif isinstance(edit, FillEdit):
        session.fill_between_slices(edit.label, edit.slice_a, edit.slice_b)
    elif edit.op == "add_lesion":
        session.add_lesion(lesion_seed(session, edit), edit.method)
    elif edit.op == "remove_lesion":
        session.remove_lesion(lesion_seed(session, edit))
    else:
        session.relabel_lesion(lesion_seed(session, edit), edit.to)


def lesion_seed(session: Session, edit: LesionEdit) -> tuple[int, int, int]:
    """The voxel (z, y, x) clicked, or one inside the lesion named by its number in the findings."""
    if edit.voxel is not None:
        return edit.voxel
    if edit.lesion is not None:
        return session.lesion_seed(edit.lesion)
    raise InputError("Click on the image, or name the lesion by its number in the findings.")


def review_state(job: Job, started_s: float, message: str = "", last_edit: dict[str, Any] | None = None) -> ReviewState:
    """The answer after a review step: where the review stands and the findings (the job's summary,
    just rewritten)."""
    session = job.session
    result = session.result
    revision = result.revision.number if result.revision is not None else None
    report = session.report.report if session.report is not None else None
    signed_by = report.signed_by if report is not None and report.is_signed else None
    saved_id = session.saved.result_id if session.saved is not None else None
    edits = len(result.revision.changes) if session.edited and result.revision is not None else 0
    findings = {key: job.summary.get(key) for key in FINDINGS}
    return ReviewState(
        job_id=job.job_id,
        state=state_text(revision, saved_id, signed_by),
        revision=revision,
        saved_result_id=saved_id,
        edits=edits,
        can_undo=session.can_undo,
        can_redo=session.can_redo,
        last_edit=last_edit,
        signed_by=signed_by,
        signed_at=report.signed_at if signed_by else None,
        findings=findings,
        labels_url=job.summary["labels_url"],
        files=job.summary["files"],
        report_text=job.summary.get("report_text"),
        message=message,
        server_ms=round((time.perf_counter() - started_s) * 1000, 1),
    )


FINDINGS = (
    "size",
    "liver_volume_ml",
    "tumour_volume_ml",
    "tumour_burden_pct",
    "lesions",
    "liver_confidence",
    "recist_targets",
    "recist_sum_mm",
    "model",
    "key_slice",
    "key_slice_text",
    "slice_count",
    "key_ras_mm",
    "calipers",
    "uncertainty_url",
)


def state_text(revision: int | None, saved_id: int | None, signed_by: str | None) -> str:
    """'the model's result', 'revision 2 (unsaved)', 'revision 2, saved as result 7', '..., signed by X'."""
    text = f"revision {revision}" if revision is not None else "the model's result"
    if saved_id is None:
        text += " (unsaved)" if revision is not None else ""
    else:
        text += f", saved as result {saved_id}"
    return f"{text}, signed by {signed_by}" if signed_by else text


Step = Callable[[Session], tuple[str, dict[str, Any] | None]]  # (the page's line, the edit's record)


async def reviewed(job: Job, step: Step, with_dicom: bool = False) -> ReviewState:
    """Run one review step on the job's session (one at a time per job), write the job's files
    again and answer where the review stands."""

    def work() -> ReviewState:
        with job.review_lock:
            started = time.perf_counter()
            message, last_edit = step(job.session)
            rewrite_outputs(job, with_dicom)
            return review_state(job, started, message, last_edit)

    return await run_in_threadpool(work)


@router.post("/edit")
async def edit(job: ReviewableJob, body: EditBody) -> ReviewState:
    """Apply one edit; the findings re-measured, the edit's record in ``last_edit``."""

    def step(session: Session) -> tuple[str, dict[str, Any]]:
        apply_edit(session, body)
        change = session.result.revision.changes[-1]
        return last_edit_text(change), change

    return await reviewed(job, step)


def last_edit_text(change: dict[str, Any]) -> str:
    """'paint: 340 voxels changed, 1 lesion added.' for the page's status line."""
    parts = [f"{str(change['kind']).replace('_', ' ')}: {change['voxels_changed']} voxels changed"]
    for key, word in (("lesions_added", "added"), ("lesions_removed", "removed"), ("lesions_relabelled", "relabelled")):
        if change.get(key):
            parts.append(f"{change[key]} lesion{'s' if change[key] > 1 else ''} {word}")
    return ", ".join(parts) + "."


def undo_step(session: Session) -> tuple[str, None]:
    session.undo()
    return "Undone.", None


def redo_step(session: Session) -> tuple[str, None]:
    session.redo()
    return "Redone.", None


@router.post("/undo")
async def undo(job: ReviewableJob) -> ReviewState:
    """Step back one edit."""
    return await reviewed(job, undo_step)


@router.post("/redo")
async def redo(job: ReviewableJob) -> ReviewState:
    """Step forward one undone edit."""
    return await reviewed(job, redo_step)


@router.post("/save")
async def save(job: ReviewableJob, body: SaveBody) -> ReviewState:
    """Save the reviewed result: an edited one as a new revision (the model's result stays as it was)."""

    def step(session: Session) -> tuple[str, None]:
        saved = session.save(body.store_patient, job.owner)
        revision = session.result.revision
        what = f"Revision {revision.number}" if revision is not None else "The model's result"
        return f"{what} saved as result {saved.result_id}.", None

    return await reviewed(job, step, with_dicom=True)


@router.post("/sign")
async def sign(job: ReviewableJob, body: SignBody) -> ReviewState:
    """Sign the report as this reader with their impression and edited draft, and save it (then locked)."""

    def step(session: Session) -> tuple[str, None]:
        report = session.sign(body.impression, body.draft).report
        saved = session.save(owner=job.owner)
        return f"Signed by {report.signed_by} on {report.signed_at} UTC; saved as result {saved.result_id}.", None

    return await reviewed(job, step, with_dicom=True)
