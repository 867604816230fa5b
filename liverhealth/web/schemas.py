"""The web API's request bodies and JSON answers (pydantic). Request fields coerce what the page
sends the way the API always has (a missing or odd value is empty, never a 422), so only the
messages of the workflow and of the routes refuse a request."""

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, ValidationError
from starlette.datastructures import FormData

from liverhealth.domain import Label, PatientInfo, WorklistPatient
from liverhealth.errors import InputError
from liverhealth.presentation import worklist_state
from liverhealth.storage.records import AuditEntry, ResultSummary
from liverhealth.web.jobs import Job, JobRequest, available_files


def _text(value: Any) -> str:
    return str(value or "")


def _optional_text(value: Any) -> str | None:
    return str(value or "") or None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _clipped(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda value: str(value or "")[:limit])


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{str(value)[:20]!r} is not a date; use YYYY-MM-DD.") from None


Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
Truthy = Annotated[bool, BeforeValidator(bool)]


# requests ---------------------------------------------------------------------------------------
class UploadOptions(BaseModel):
    """The upload form's fields besides its files."""

    model: OptionalText = None
    patient_name: Annotated[str, _clipped(128)] = ""
    patient_id: Annotated[str, _clipped(64)] = ""
    include_patient: Annotated[bool, BeforeValidator(lambda value: str(value or "") == "on")] = False

    @classmethod
    def from_form(cls, form: FormData) -> "UploadOptions":
        return cls.model_validate({name: form.get(name) for name in cls.model_fields})

    def job_request(self) -> JobRequest:
        """What the job is asked for: the patient typed in the form goes into the PDF only."""
        patient = PatientInfo(name=self.patient_name, patient_id=self.patient_id)
        return JobRequest(
            model_id=self.model,
            patient=patient if not patient.is_empty() else None,
            include_patient=self.include_patient,
        )


class SaveRequest(BaseModel):
    """``store_patient`` left out: the site's identity setting decides (clinical keeps the patient and
    study identity, research a keyed pseudonym); false keeps none."""

    store_patient: Annotated[bool | None, BeforeValidator(lambda value: None if value is None else bool(value))] = None


class CompareRequest(BaseModel):
    """The prior study: another finished job of this account, or else a saved result of it, or
    (``prior_auto``) the latest earlier saved study of the same patient, by study date."""

    prior_job_id: OptionalText = None
    prior_result_id: Annotated[int | None, BeforeValidator(_int_or_none)] = None
    prior_auto: Truthy = False


class PacsQuery(BaseModel):
    patient_id: Annotated[str, _clipped(64)] = ""
    accession: Annotated[str, _clipped(64)] = ""
    study_date: Annotated[str, _clipped(64)] = ""
    modality: Annotated[str, _clipped(64)] = ""


class PacsOpenRequest(BaseModel):
    study_uid: Text = ""
    model: OptionalText = None


class ResultSearch(BaseModel):
    """Filters of the saved results list; in the body, so patient details stay out of URLs."""

    patient: OptionalText = None
    model: OptionalText = None
    since: Annotated[date | None, BeforeValidator(_iso_date)] = None
    until: Annotated[date | None, BeforeValidator(_iso_date)] = None


class AuditSearch(BaseModel):
    """Filters of the audit trail (admins)."""

    user: OptionalText = None
    result_id: Annotated[int | None, BeforeValidator(_int_or_none)] = None
    since: Annotated[date | None, BeforeValidator(_iso_date)] = None
    limit: Annotated[int, BeforeValidator(lambda v: min(max(_int_or_none(v) or 500, 1), 5000))] = 500


class BrushEdit(BaseModel):
    """Paint or erase a disc of ``radius_mm`` on axial slice ``slice`` at (``row``, ``col``) of the label map."""

    op: Literal["paint", "erase"]
    slice: int
    row: int
    col: int
    radius_mm: float = 5.0
    label: int = Label.TUMOUR


class LesionEdit(BaseModel):
    """A lesion edit at a click (``voxel`` as z, y, x) or on a lesion of the findings by its number:
    add the lesion there (outlined on the server by ``method``), remove it, or relabel it ``to``."""

    op: Literal["add_lesion", "remove_lesion", "relabel"]
    voxel: tuple[int, int, int] | None = None
    lesion: int | None = None
    to: int = Label.LIVER
    method: str | None = None


class FillEdit(BaseModel):
    """Interpolate ``label`` drawn on slices ``slice_a`` and ``slice_b`` into the slices between."""

    op: Literal["fill_between"]
    label: int = Label.TUMOUR
    slice_a: int
    slice_b: int


EditRequest = Annotated[BrushEdit | LesionEdit | FillEdit, Field(discriminator="op")]
_EDIT = TypeAdapter(EditRequest)


def parse_edit(body: dict[str, Any]) -> BrushEdit | LesionEdit | FillEdit:
    """An edit request from the page's JSON; a malformed one is refused on one line (400), never a 422."""
    try:
        return _EDIT.validate_python(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "op"
        raise InputError(f"The edit was not understood ({where}: {error['msg']}).") from None


class SignRequest(BaseModel):
    """The reader's impression and edited draft; the report is signed with them, then saved."""

    impression: Text = ""
    draft: Annotated[str | None, BeforeValidator(_text_or_none)] = None  # None: the draft as it stands


# answers ----------------------------------------------------------------------------------------
class ModelChoice(BaseModel):
    id: str
    name: str
    validation: str
    default: bool
    caution: str = ""  # "not recommended: …" with the figures, or ""


class WindowPreset(BaseModel):
    """One of ``imaging.display.WINDOW_PRESETS``: the window every face offers under this name."""

    key: str
    name: str
    center: float
    width: float


class Me(BaseModel):
    """Who is logged in and what the page offers them."""

    pacs: bool
    user: str
    role: str
    csrf: str
    models: list[ModelChoice]
    max_upload_mb: int
    niivue: str
    window_presets: list[WindowPreset]


class LoggedOut(BaseModel):
    ok: bool = True


class UploadAccepted(BaseModel):
    job_id: str
    kind: str
    size_bytes: int
    repeated: bool = False  # the upload repeated an earlier one's idempotency key: its job, not a new one


class JobStarted(BaseModel):
    job_id: str


class JobStatus(BaseModel):
    """A job's state; ``summary`` is the job's own result summary (jobs.py), passed through."""

    job_id: str
    state: str
    message: str
    summary: dict[str, Any] | None
    files: list[str]

    @classmethod
    def of(cls, job: Job) -> "JobStatus":
        return cls(
            job_id=job.job_id, state=job.state, message=job.message, summary=job.summary, files=available_files(job)
        )


class JobCancelled(BaseModel):
    job_id: str
    state: str


class AuditRow(BaseModel):
    at: str
    user: str
    face: str
    client: str | None
    action: str
    result_id: int | None
    study_id: int | None
    detail: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> "AuditRow":
        return cls(
            at=f"{entry.at:%Y-%m-%d %H:%M:%S}" if entry.at else "",
            user=entry.user,
            face=entry.face,
            client=entry.client,
            action=entry.action,
            result_id=entry.result_id,
            study_id=entry.study_id,
            detail=entry.detail,
        )


class AuditEvents(BaseModel):
    events: list[AuditRow]


class SessionsEnded(BaseModel):
    name: str
    ended: int


class Saved(BaseModel):
    result_id: int
    where: str


class ComparisonAnswer(BaseModel):
    """The comparison's lines for the page; ``lesions`` are the lesion changes as the analysis
    writes them."""

    lines: list[str]
    response: str
    response_name: str
    lesions: list[dict[str, Any]]
    files: list[str]


class PacsStudies(BaseModel):
    studies: list[dict[str, Any]]  # the PACS's study hits as the client returns them


class PacsSent(BaseModel):
    sent: int
    already_there: int


class ResultRow(BaseModel):
    """One saved result in the list."""

    result_id: int
    saved: str
    model: str
    description: str
    liver_volume_ml: float | None
    tumour_volume_ml: float | None
    lesions: int
    reports: int
    owner: str | None
    patient: str | None

    @classmethod
    def of(cls, row: ResultSummary) -> "ResultRow":
        return cls(
            result_id=row.result_id,
            saved=f"{row.created_at:%Y-%m-%d %H:%M}",
            model=row.model_id,
            description=row.description,
            liver_volume_ml=row.liver_volume_ml,
            tumour_volume_ml=row.tumour_volume_ml,
            lesions=row.lesion_count,
            reports=row.report_count,
            owner=row.owner,
            patient=" ".join(filter(None, (row.patient_name, row.patient_id))) or None,
        )


class ResultList(BaseModel):
    results: list[ResultRow]


class WorklistResultRow(BaseModel):
    """A study's result on the worklist (the latest revision of one model's result)."""

    result_id: int
    saved: str
    model: str
    state: str  # "model draft", "revision 2 (dr.x)", "signed by dr.x"
    liver_volume_ml: float | None
    tumour_volume_ml: float | None
    lesions: int
    owner: str | None


class WorklistStudyRow(BaseModel):
    study_id: int
    date: str  # ISO; "" when unknown
    time: str
    description: str
    accession: str
    source: str
    dates_shifted: bool
    results: list[WorklistResultRow]


class WorklistPatientRow(BaseModel):
    label: str
    sex: str
    birth_date: str
    studies: list[WorklistStudyRow]


class Worklist(BaseModel):
    """Saved results by patient, then study date (newest first), in the body of a POST: patient
    details stay out of URLs."""

    patients: list[WorklistPatientRow]

    @classmethod
    def of(cls, patients: "tuple[WorklistPatient, ...]") -> "Worklist":
        return cls(patients=[_patient_row(patient) for patient in patients])


def _patient_row(patient: "WorklistPatient") -> WorklistPatientRow:
    studies = [
        WorklistStudyRow(
            study_id=study.study_id,
            date=study.date,
            time=study.time,
            description=study.description,
            accession=study.accession,
            source=study.source,
            dates_shifted=study.dates_shifted,
            results=[
                WorklistResultRow(
                    result_id=r.result_id,
                    saved=r.saved_at,
                    model=r.model_id,
                    state=worklist_state(r),
                    liver_volume_ml=r.liver_volume_ml,
                    tumour_volume_ml=r.tumour_volume_ml,
                    lesions=r.lesion_count,
                    owner=r.owner,
                )
                for r in study.results
            ],
        )
        for study in patient.studies
    ]
    return WorklistPatientRow(label=patient.label, sex=patient.sex, birth_date=patient.birth_date, studies=studies)


class Deleted(BaseModel):
    deleted: int


class ReviewState(BaseModel):
    """Where the reader's review of a job's result stands after an edit, an undo, a save or a
    signature: the findings re-measured on the server (the numbers beside the viewer, each lesion
    marked ``edited`` where the reader changed it) and the label map to show."""

    job_id: str
    state: str  # "the model's result", "revision 1 (unsaved)", "revision 1, saved as result 7", ...
    revision: int | None  # the revision the findings are (None: the model's own result)
    saved_result_id: int | None  # where the findings are saved (None: not yet, or edited since)
    edits: int  # edits since the result was last saved or opened
    can_undo: bool
    can_redo: bool
    last_edit: dict[str, Any] | None  # what the edit just made changed (kind, voxels, lesions)
    signed_by: str | None
    signed_at: str | None
    findings: dict[str, Any]
    labels_url: str
    files: list[str]
    report_text: str | None
    message: str
    server_ms: float
