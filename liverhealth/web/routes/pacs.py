"""The PACS: find studies, open one as a job (retrieved first), send a job's SEG and SR back."""

from dataclasses import asdict

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from liverhealth.errors import InputError
from liverhealth.pacs.client import is_uid
from liverhealth.web.deps import (
    ChangeableJob,
    ChangingUser,
    JobsDep,
    PacsOpenBody,
    PacsQueryBody,
    WorkstationDep,
    known_model,
)
from liverhealth.web.jobs import JobRequest
from liverhealth.web.schemas import JobStarted, PacsSent, PacsStudies
from liverhealth.workflow import PACS_SCHEME

router = APIRouter(tags=["pacs"])


@router.post("/api/pacs/find")
async def pacs_find(session: ChangingUser, query: PacsQueryBody, workstation: WorkstationDep) -> PacsStudies:
    """Studies matching the query (in the body: patient details stay out of URLs and logs)."""
    hits = await run_in_threadpool(lambda: workstation.find_studies(session.actor, **query.model_dump()))
    return PacsStudies(studies=[asdict(hit) for hit in hits])


@router.post("/api/pacs/open")
async def pacs_open(
    session: ChangingUser, body: PacsOpenBody, workstation: WorkstationDep, jobs: JobsDep
) -> JobStarted:
    """A job on a PACS study: retrieved, then segmented like an upload."""
    if not is_uid(body.study_uid):
        raise InputError("Choose a study from the PACS list (its study UID is missing or malformed).")
    model_id = known_model(workstation, body.model)
    job_id, _ = jobs.new_folder()
    job = jobs.submit_upload(job_id, session.actor, f"{PACS_SCHEME}{body.study_uid}", JobRequest(model_id=model_id))
    return JobStarted(job_id=job.job_id)


@router.post("/api/jobs/{job_id}/send")
async def pacs_send(job: ChangeableJob, session: ChangingUser, workstation: WorkstationDep) -> PacsSent:
    """Store the job's DICOM SEG and SR on the PACS, skipping what it already holds."""
    files = [job.out / "seg.dcm", job.out / "sr.dcm"]
    if job.state != "done" or not all(f.is_file() for f in files):
        raise InputError("Only a finished result of a DICOM CT has a SEG and SR to send.")
    saved = job.session.saved if job.session is not None else None
    sent, present = await run_in_threadpool(
        workstation.store_to_pacs, files, session.actor, saved.result_id if saved else None
    )
    return PacsSent(sent=sent, already_there=present)
