"""Comparisons: a finished job's study read against a prior one (another finished job of this
account, one of its saved results, or the latest earlier saved study of the same patient); the same
scan is refused; comparison.json/png join the job's downloads."""

from dataclasses import asdict

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from liverhealth.accounts import WebSession
from liverhealth.errors import InputError
from liverhealth.web.deps import (
    ChangingUser,
    ComparableJob,
    CompareBody,
    JobsDep,
    WorkstationDep,
    has_result,
    own_job,
    own_result,
)
from liverhealth.web.jobs import Job, JobManager
from liverhealth.web.schemas import CompareRequest, ComparisonAnswer
from liverhealth.workflow import Session, Workstation

COMPARISON_FILES = ["comparison.png", "comparison.json"]

router = APIRouter(prefix="/api/jobs", tags=["comparisons"])


@router.post("/{job_id}/compare")
async def compare(
    job: ComparableJob, body: CompareBody, session: ChangingUser, jobs: JobsDep, workstation: WorkstationDep
) -> ComparisonAnswer:
    """Compare the job's study with the prior one; the lines the page shows and the lesion changes."""
    from liverhealth.comparison import comparison_lines

    prior = await _prior_session(job, body, session, jobs, workstation)
    result = await run_in_threadpool(job.session.compare_with, prior)
    await run_in_threadpool(job.session.export_comparison, job.out)
    recist = result.comparison.recist
    return ComparisonAnswer(
        lines=comparison_lines(result.comparison),
        response=recist.response,
        response_name=recist.response_name,
        lesions=[asdict(change) for change in result.comparison.lesions],
        files=COMPARISON_FILES,
    )


async def _prior_session(
    job: Job, body: CompareRequest, session: WebSession, jobs: JobManager, workstation: Workstation
) -> Session:
    """The prior study's workflow session: the other job's, or the saved result reopened."""
    if body.prior_job_id:
        other = own_job(jobs, body.prior_job_id, session)
        if other is job or not has_result(other):
            raise InputError("Choose another finished study as the prior one.")
        return other.session
    if body.prior_auto and body.prior_result_id is None:  # the latest earlier study of this patient
        owner = None if session.admin else session.user
        return await run_in_threadpool(job.session.open_prior, None, None, owner)
    if body.prior_result_id is None:
        raise InputError("Choose the prior study: a saved result or another finished study.")
    await run_in_threadpool(own_result, workstation, body.prior_result_id, session)
    return await run_in_threadpool(workstation.reopen, body.prior_result_id, session.actor)
