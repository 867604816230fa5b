"""For admins: the audit trail, and logging an account out everywhere."""

from datetime import datetime

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from liverhealth.accounts import WebSession, check_user_name
from liverhealth.web.deps import AuditBody, ChangingUser, WorkstationDep
from liverhealth.web.schemas import AuditEvents, AuditRow, SessionsEnded

router = APIRouter(prefix="/api/admin", tags=["admin"])


def _admin(session: WebSession) -> WebSession:
    if not session.admin:
        raise HTTPException(403, "Only an administrator may do this.")
    return session


@router.post("/audit")
async def audit(session: ChangingUser, body: AuditBody, workstation: WorkstationDep) -> AuditEvents:
    """The newest audit events matching the filters (in the body, like every search)."""
    _admin(session)
    since = datetime.combine(body.since, datetime.min.time()) if body.since else None
    events = await run_in_threadpool(workstation.audit_trail, body.user or None, body.result_id, since, body.limit)
    return AuditEvents(events=[AuditRow.of(event) for event in events])


@router.post("/accounts/{name}/end-sessions")
async def end_sessions(name: str, session: ChangingUser, workstation: WorkstationDep) -> SessionsEnded:
    """Log an account out everywhere (its next request asks for a login)."""
    _admin(session)
    check_user_name(name)
    ended = await run_in_threadpool(workstation.end_user_sessions, name, session.actor)
    return SessionsEnded(name=name, ended=ended)
