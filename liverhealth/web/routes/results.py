"""Saved results: search this account's (an admin: everyone's) as a list or a worklist, reopen one as a
job, delete one."""

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from liverhealth.web.deps import ChangeableResult, ChangingUser, JobsDep, SearchBody, WorkstationDep
from liverhealth.web.schemas import Deleted, JobStarted, ResultList, ResultRow, Worklist

router = APIRouter(prefix="/api/results", tags=["results"])


@router.post("/search")
async def search(session: ChangingUser, body: SearchBody, workstation: WorkstationDep) -> ResultList:
    """The saved results matching the filters (in the body: patient details stay out of URLs)."""
    rows = await run_in_threadpool(
        workstation.list_results,
        body.patient,
        body.model,
        body.since,
        body.until,
        None if session.admin else session.user,
        session.actor,
    )
    return ResultList(results=[ResultRow.of(row) for row in rows])


@router.post("/worklist")
async def worklist(session: ChangingUser, body: SearchBody, workstation: WorkstationDep) -> Worklist:
    """The matching saved results as a worklist: by patient, then study date, newest first."""
    patients = await run_in_threadpool(
        workstation.worklist,
        None if session.admin else session.user,
        session.actor,
        body.patient,
        body.model,
        body.since,
        body.until,
    )
    return Worklist.of(patients)


@router.post("/{result_id}/open")
async def reopen(stored: ChangeableResult, session: ChangingUser, jobs: JobsDep) -> JobStarted:
    """A job on a saved result: its CT reloaded, its labels and latest report back on the page."""
    pdf = stored.reports[-1].pdf if stored.reports else None
    job = jobs.submit_reopen(session.actor, stored.summary.result_id, pdf)
    return JobStarted(job_id=job.job_id)


@router.delete("/{result_id}")
async def delete(stored: ChangeableResult, session: ChangingUser, workstation: WorkstationDep) -> Deleted:
    """Delete a saved result of this account (an admin: anyone's)."""
    await run_in_threadpool(workstation.delete, stored.summary.result_id, session.actor)
    return Deleted(deleted=stored.summary.result_id)
