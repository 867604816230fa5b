"""Save, find, load and delete results: the one API the GUI and the CLI use for storage.

Every write is one transaction: a failure rolls back everything it wrote, so a database never
holds half a result. Label maps are stored zlib-compressed with their shape and a sha256 of
the raw bytes, and come back bit for bit.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, selectinload, sessionmaker

from liverhealth.documents import read_stored_measurements, stored_measurements
from liverhealth.domain import PatientInfo, Revision, SourceInfo, StudyInfo, StudyRef
from liverhealth.domain import Report as DomainReport
from liverhealth.errors import StorageError
from liverhealth.storage.database import database_url, describe, make_engine, parse_url, translate
from liverhealth.storage.identity import KeptIdentity, kept_identity
from liverhealth.storage.migrations_runner import missing_tables, schema_lock, upgrade_to_head
from liverhealth.storage.models import (
    AuditEvent,
    LoginFailure,
    Patient,
    Report,
    SegmentationResult,
    Study,
    StudyComparison,
    WebJob,
    WebSessionRow,
    WebUser,
)
from liverhealth.storage.records import (
    AuditEntry,
    ResultRecord,
    ResultSummary,
    StoredReport,
    StoredResult,
    StoredSession,
)

T = TypeVar("T")


def _birth_year(birth_date: str) -> int | None:
    digits = birth_date[:4]
    return int(digits) if digits.isdigit() and 1850 < int(digits) < 2200 else None


def _keep_study_identity(study: Study, identity: KeptIdentity) -> None:
    """The study's identity columns from what the save keeps (blank values as NULL)."""
    info = identity.study
    study.identity = identity.mode
    for column, value, length in (
        ("study_date", info.study_date, 8),
        ("study_time", info.study_time, 16),
        ("accession", info.accession, 64),
        ("study_description", info.description, 255),
        ("institution", info.institution, 255),
        ("referring_physician", info.referring_physician, 255),
        ("study_uid", info.study_uid, 128),
    ):
        setattr(study, column, value.strip()[:length] or None)


def _patient_query(identity: KeptIdentity) -> Any:
    """The patient rows of ``identity``: its pseudonym (research), else its patient ID, else (a
    source without IDs) its name and birth date; clinical rows never match a pseudonym's."""
    if identity.pseudonym:
        return select(Patient).where(Patient.pseudonym == identity.pseudonym).order_by(Patient.id)
    info = identity.patient
    query = select(Patient).where(Patient.pseudonym.is_(None)).order_by(Patient.id)
    if info.patient_id.strip():
        return query.where(Patient.patient_id == info.patient_id.strip()[:64])
    birth = info.birth_date.strip()
    return query.where(
        Patient.patient_id.is_(None),
        Patient.name == info.name[:255],
        Patient.birth_date.is_(None) if not birth else Patient.birth_date == birth[:8],
    )


def _summary(result: SegmentationResult) -> ResultSummary:
    study = result.study
    patient = study.patient
    return ResultSummary(
        result_id=result.id,
        study_id=result.study_id,
        created_at=result.created_at,
        model_id=result.model_id,
        description=result.study.description,
        patient_name=patient.name if patient else None,
        patient_id=patient.patient_id if patient else None,
        liver_volume_ml=result.liver_volume_ml,
        tumour_volume_ml=result.tumour_volume_ml,
        lesion_count=result.lesion_count,
        report_count=len(result.reports),
        owner=result.owner,
        revision=result.revision or 0,
        revision_of=result.revision_of_id,
        author=result.author,
        signed_by=next((r.signed_by for r in result.reports if r.signed_by), None),
        patient_ref=study.patient_ref,
        pseudonym=patient.pseudonym if patient else None,
        patient_sex=patient.sex if patient else None,
        birth_date=patient.birth_date if patient else None,
        identity=study.identity,
        study_date=study.study_date,
        study_time=study.study_time,
        accession=study.accession,
        study_description=study.study_description,
    )


def _revision(result: SegmentationResult) -> Revision | None:
    """A revision row's Revision (None for the model's own result)."""
    if not result.revision:
        return None
    return Revision(
        number=result.revision,
        author=result.author or "unknown",
        created_at=f"{result.created_at:%Y-%m-%d %H:%M}",
        changes=tuple(result.changes or ()),
        base_result_id=result.revision_of_id,
    )


def _zlib_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> bytes | None:
    if mask is None or tuple(mask.shape) != tuple(shape) or not mask.any():
        return None
    return zlib.compress(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes(), 6)


def _unzlib_mask(data: bytes | None, shape: tuple[int, ...], result_id: int) -> np.ndarray | None:
    if data is None:
        return None
    size = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
    if bits.size < size:
        raise StorageError(f"Saved result {result_id} is damaged (its reader-edit mask has the wrong size).")
    return bits[:size].astype(bool).reshape(shape)


def _with_retries(
    work: Callable[[], T], retryable: Callable[[Exception], bool], pause_s: float, attempts: int = 3
) -> T:
    """``work()``, tried again (after a growing pause) while it fails with a ``retryable`` error."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception as exc:
            if attempt == attempts - 1 or not retryable(exc):
                raise
            time.sleep(pause_s * (attempt + 1))
    raise AssertionError("unreachable")


class Repository:
    """Results storage on one database URL (see ``database.database_url``)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self._parsed = parse_url(self.url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def where(self) -> str:
        """Human description of the database, without the password."""
        return describe(self._parsed)

    def _run(self, action: str, work: Callable[[Session], T], writing: bool = False, conflicts: bool = False) -> T:
        """Run ``work`` in one transaction; roll back and translate any database failure (a unique-key
        conflict is passed on as IntegrityError when the caller retries on ``conflicts``)."""
        try:
            with self._sessions.begin() as session:
                return work(session)
        except StorageError:
            raise
        except IntegrityError as exc:
            if conflicts:
                raise
            raise translate(exc, self._parsed, action, writing) from exc
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            raise translate(exc, self._parsed, action, writing) from exc

    @contextmanager
    def _connection(self, action: str) -> Iterator[Any]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except StorageError:
            raise
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            raise translate(exc, self._parsed, action) from exc

    def init(self) -> str:
        """Create or upgrade the schema (Alembic) and return the revision now in place.

        On MySQL a missing database is created first, when the user may create it.
        """
        try:
            revision = self._upgrade()
        except StorageError as exc:
            if getattr(exc, "code", None) != 1049:
                raise
            self._create_mysql_database_if_missing()
            revision = self._upgrade()
        with self._connection("check the tables") as connection:
            missing = missing_tables(connection)
        if missing:
            raise StorageError(
                f"The {self.where} is at schema revision {revision} but lacks the table(s) "
                f"{', '.join(missing)}: it was changed by hand. Restore it from a backup, or point "
                "LiverHealth at a new database."
            )
        return revision

    def _upgrade(self) -> str:
        def once() -> str:
            try:
                with schema_lock(self.engine):
                    with self._connection("create the tables") as connection:
                        revision = upgrade_to_head(connection)
                    return revision  # committed above, before the lock is released
            except (DBAPIError, SQLAlchemyError, OSError) as exc:
                raise translate(exc, self._parsed, "create the tables") from exc

        # SQLite: a concurrent first-time creation shows up as 'already exists'; the second try finds it made
        return _with_retries(
            once,
            lambda exc: isinstance(exc, StorageError) and "already exists" in str(exc.__cause__ or ""),
            pause_s=0.5,
        )

    def _create_mysql_database_if_missing(self) -> None:
        name = self._parsed.database
        if not name:
            raise StorageError(f"The database URL names no database ({self.where}).")
        server = make_engine(self._parsed.set(database="").render_as_string(hide_password=False))
        try:
            with server.begin() as connection:
                quoted = "`" + name.replace("`", "``") + "`"
                connection.execute(text(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4"))
        except (DBAPIError, SQLAlchemyError) as exc:
            raise translate(exc, self._parsed, "create the database") from exc
        finally:
            server.dispose()

    def save(
        self,
        record: ResultRecord,
        report: StoredReport | None = None,
        store_patient: bool = False,
        audit: AuditEntry | None = None,
        pseudonym_key: bytes | None = None,
    ) -> int:
        """Save a result (and a report, and its audit event with the new ids) in one transaction;
        returns the result id. With ``store_patient`` the patient and the study's identity are kept:
        as the source states them, or (a research site's ``pseudonym_key``) as a keyed pseudonym and
        shifted dates only (``identity.py``).

        The same scan is one study even when two workstations save it at once (a unique content
        hash; the loser of the race retries and finds the study). Saving the same result again
        (same scan, model and label map) returns the id it already has instead of a copy.
        """
        identity = kept_identity(record.patient, record.study_info, pseudonym_key) if store_patient else None
        try:
            return _with_retries(
                lambda: self._save_once(record, report, identity, audit),
                lambda exc: isinstance(exc, IntegrityError),
                pause_s=0.2,
            )
        except IntegrityError as exc:
            raise translate(exc, self._parsed, "save the result", writing=True) from exc

    def _save_once(
        self, record: ResultRecord, report: StoredReport | None, identity: KeptIdentity | None, audit: AuditEntry | None
    ) -> int:
        now = datetime.now().replace(microsecond=0)
        raw = np.ascontiguousarray(record.labels, dtype=np.uint8).tobytes()
        labels_sha256 = hashlib.sha256(raw).hexdigest()

        def work(session: Session) -> int:
            base = self._revision_base(session, record) if record.revision is not None else None
            study = base.study if base is not None else self._study(session, record, now, identity)
            if study.id is not None and base is None:
                existing = session.scalars(
                    select(SegmentationResult.id).where(
                        SegmentationResult.study_id == study.id,
                        SegmentationResult.model_sha256 == record.model.sha256,
                        SegmentationResult.labels_sha256 == labels_sha256,
                        SegmentationResult.revision_of_id.is_(None),
                        SegmentationResult.owner.is_(None)
                        if record.owner is None
                        else SegmentationResult.owner == record.owner,
                    )
                ).first()
                if existing is not None and report is None:
                    if audit is not None:
                        session.add(_audit_row(replace(audit, result_id=int(existing), study_id=study.id)))
                    return int(existing)
            m = record.measurements
            result = SegmentationResult(
                study=study,
                model_id=record.model.model_id,
                model_sha256=record.model.sha256,
                labels_zlib=b"",  # the large columns follow one statement each (below)
                labels_shape=json.dumps(list(record.labels.shape)),
                labels_sha256=labels_sha256,
                measurements=stored_measurements(record.measurements, record.model),
                timings=record.timings,
                liver_volume_ml=m.liver_volume_ml,
                tumour_volume_ml=m.tumour_volume_ml,
                lesion_count=len(m.lesions),
                workstation=socket.gethostname()[:255],
                user_name=getpass.getuser()[:255],
                owner=record.owner,
                created_at=now,
                revision_of_id=base.id if base is not None else None,
                revision=record.revision.number if record.revision is not None else 0,
                author=record.revision.author[:255] if record.revision is not None else None,
                changes=[dict(c) for c in record.revision.changes] if record.revision is not None else None,
            )
            session.add(result)
            if report is not None:
                session.add(self._report(result, report, now))
            session.flush()
            self._write_blobs(
                session,
                result.id,
                {
                    "labels_zlib": zlib.compress(raw, 6),
                    "confidence_zlib": _compress_confidence(record.confidence, record.labels.shape),
                    "overlay_png": record.overlay_png,
                    "reader_drawn_zlib": _zlib_mask(record.reader_drawn, record.labels.shape),
                },
            )
            if audit is not None:
                session.add(_audit_row(replace(audit, result_id=result.id, study_id=result.study_id)))
            return result.id

        return self._run("save the result", work, writing=True, conflicts=True)

    def _write_blobs(self, session: Session, result_id: int, blobs: dict[str, bytes | None]) -> None:
        """A result's large columns, one UPDATE each in the save's transaction, so a result twice the
        size of MySQL's max_allowed_packet still fits when each column does (the driver sends binary
        as hex, twice its size); a column that cannot is refused with what to raise."""
        limit = None
        if self._parsed.get_backend_name() != "sqlite":
            limit = int(session.execute(text("SELECT @@max_allowed_packet")).scalar() or 0)
        for name, blob in blobs.items():
            if blob is None:
                continue
            if limit and 2 * len(blob) + 65536 > limit:
                raise StorageError(
                    f"This result is too large for the results database server to take in one statement "
                    f"({len(blob) / 2**20:.1f} MB of {name.split('_')[0]} data; its max_allowed_packet is "
                    f"{limit / 2**20:.0f} MB). Ask its administrator to raise max_allowed_packet to 256M; "
                    "nothing was saved."
                )
            session.execute(update(SegmentationResult).where(SegmentationResult.id == result_id).values({name: blob}))

    def _revision_base(self, session: Session, record: ResultRecord) -> SegmentationResult:
        """The model's saved result a revision revises, checked: it exists, is the model's own, lies on
        the same scan, and this is its next revision number (else someone saved one meanwhile)."""
        revision = record.revision
        base = session.get(SegmentationResult, revision.base_result_id) if revision.base_result_id else None
        if base is None or base.revision_of_id is not None:
            raise StorageError(
                f"Result {revision.base_result_id} is not a model result in {self.where}: save the model's "
                "result first, then its revisions."
            )
        if base.study.content_sha256 != record.content_sha256:
            raise StorageError(f"The revision is not on the scan of result {base.id}; nothing was saved.")
        latest = session.scalar(
            select(func.max(SegmentationResult.revision)).where(SegmentationResult.revision_of_id == base.id)
        )
        if revision.number != (latest or 0) + 1:
            raise StorageError(
                f"Result {base.id} got revision {latest} from another reader since this edit began; open the "
                "latest revision and edit it again (nothing was saved)."
            )
        return base

    def _study(self, session: Session, record: ResultRecord, now: datetime, identity: KeptIdentity | None) -> Study:
        study = session.scalars(
            select(Study).where(Study.content_sha256 == record.content_sha256).order_by(Study.id)
        ).first()
        if study is None:
            shape = record.labels.shape
            spacing = record.spacing or (None, None, None)
            study = Study(
                content_sha256=record.content_sha256,
                source_format=record.source.format[:32],
                description=record.source.description[:512],
                source_path=record.source.path[:1024] or None,
                modality=record.source.modality or None,
                # a research site keeps no DICOM UID (they identify the study at its source)
                series_uid=(record.source.series_uid or None)
                if identity is None or identity.mode != "research"
                else None,
                slice_count=shape[0],
                row_count=shape[1],
                column_count=shape[2],
                spacing_z_mm=spacing[0],
                spacing_y_mm=spacing[1],
                spacing_x_mm=spacing[2],
                affine=np.asarray(record.affine).tolist() if record.affine is not None else None,
                created_at=now,
            )
            session.add(study)
        if identity is not None and study.identity is None:  # a study saved without identity gets it now
            _keep_study_identity(study, identity)
        if identity is not None and identity.has_patient() and study.patient is None:
            study.patient = self._patient(session, identity, now)
        return study

    @staticmethod
    def _patient(session: Session, identity: KeptIdentity, now: datetime) -> Patient:
        """The patient row of ``identity`` (``_patient_query``), or a new one."""
        patient = session.scalars(_patient_query(identity)).first()
        if patient is None:
            info = identity.patient
            birth = info.birth_date.strip()
            patient = Patient(
                name=info.name[:255] or None,
                patient_id=info.patient_id.strip()[:64] or None,
                sex=info.sex[:16] or None,
                birth_year=_birth_year(birth),
                birth_date=birth[:8] if len(birth) == 8 and birth.isdigit() else None,
                pseudonym=identity.pseudonym or None,
                created_at=now,
            )
            session.add(patient)
        return patient

    @staticmethod
    def _report(result: SegmentationResult, stored: StoredReport, now: datetime) -> Report:
        report = stored.report
        return Report(
            result=result,
            findings_text=report.findings,
            draft_text=report.draft,
            draft_notice=report.draft_notice,
            llm_endpoint=report.draft_endpoint,
            llm_model=report.draft_model,
            pdf=stored.pdf,
            created_at=now,
            comparison_text=report.comparison,
            impression_text=report.impression,
            author=report.author[:255] if report.author else None,
            signed_by=report.signed_by[:255] if report.signed_by else None,
            signed_at=datetime.strptime(report.signed_at, "%Y-%m-%d %H:%M") if report.signed_at else None,
        )

    def add_report(self, result_id: int, report: StoredReport) -> int:
        """Attach a report to a saved result; returns the report id."""

        def work(session: Session) -> int:
            result = session.get(SegmentationResult, result_id, options=[selectinload(SegmentationResult.reports)])
            if result is None:
                raise StorageError(f"No saved result {result_id} in {self.where}.")
            signed = next((r for r in result.reports if r.signed_by), None)
            if signed is not None:
                raise StorageError(
                    f"Result {result_id} was signed by {signed.signed_by} on {signed.signed_at:%Y-%m-%d %H:%M}: "
                    "it is locked. Edit it to make a new revision, and report on that."
                )
            if (report.report.revision or 0) != (result.revision or 0):
                raise StorageError(
                    f"The report was written on revision {report.report.revision}, not on result {result_id} "
                    f"(revision {result.revision}); nothing was saved."
                )
            row = self._report(result, report, datetime.now().replace(microsecond=0))
            session.add(row)
            session.flush()
            return row.id

        return self._run("save the report", work, writing=True)

    def list_results(
        self,
        patient: str | None = None,
        model_id: str | None = None,
        since: date | None = None,
        until: date | None = None,
        limit: int = 500,
        owner: str | None = None,
        latest_only: bool = False,
        patient_ref: int | None = None,
    ) -> list[ResultSummary]:
        """Saved results, newest first; ``patient`` matches name or ID (substring); ``owner`` keeps
        one web account's results only; ``latest_only`` lists each revised result once, as its
        latest revision; ``patient_ref`` keeps one patient's studies."""

        def work(session: Session) -> list[ResultSummary]:
            query = (
                select(SegmentationResult)
                .join(Study)
                .outerjoin(Patient)
                .options(
                    selectinload(SegmentationResult.study).selectinload(Study.patient),
                    selectinload(SegmentationResult.reports).load_only(Report.id, Report.signed_by),
                )
                .order_by(SegmentationResult.created_at.desc(), SegmentationResult.id.desc())
                .limit(limit)
            )
            if patient:
                pattern = f"%{patient}%"
                query = query.where(
                    Patient.name.like(pattern) | Patient.patient_id.like(pattern) | Patient.pseudonym.like(pattern)
                )
            if patient_ref is not None:
                query = query.where(Study.patient_ref == patient_ref)
            if latest_only:  # a result a reader revised is listed as its latest revision
                later = aliased(SegmentationResult)
                root = func.coalesce(SegmentationResult.revision_of_id, SegmentationResult.id)
                query = query.where(
                    ~select(later.id)
                    .where(
                        func.coalesce(later.revision_of_id, later.id) == root,
                        later.revision > SegmentationResult.revision,
                    )
                    .exists()
                )
            if model_id:
                query = query.where(SegmentationResult.model_id == model_id)
            if owner is not None:
                query = query.where(SegmentationResult.owner == owner)
            if since:
                query = query.where(SegmentationResult.created_at >= datetime.combine(since, datetime.min.time()))
            if until:
                end = datetime.combine(until, datetime.min.time()) + timedelta(days=1)
                query = query.where(SegmentationResult.created_at < end)
            return [_summary(r) for r in session.scalars(query).unique()]

        return self._run("list the saved results", work)

    def get(self, result_id: int) -> StoredResult:
        """Load one result in full (labels decompressed and checked against their sha256)."""

        def work(session: Session) -> StoredResult:
            result = session.get(
                SegmentationResult,
                result_id,
                options=[
                    selectinload(SegmentationResult.reports),
                    selectinload(SegmentationResult.study).selectinload(Study.patient),
                ],
            )
            if result is None:
                raise StorageError(f"No saved result {result_id} in {self.where}. `liverhealth db list` shows them.")
            raw = zlib.decompress(result.labels_zlib)
            if hashlib.sha256(raw).hexdigest() != result.labels_sha256:
                raise StorageError(f"Saved result {result_id} is damaged (its label map does not match its checksum).")
            labels = np.frombuffer(raw, dtype=np.uint8).reshape(json.loads(result.labels_shape)).copy()
            confidence = None
            if result.confidence_zlib is not None:
                confidence = np.frombuffer(zlib.decompress(result.confidence_zlib), dtype=np.uint8)
                if confidence.size != labels.size:
                    raise StorageError(f"Saved result {result_id} is damaged (its confidence map has the wrong size).")
                confidence = confidence.reshape(labels.shape).copy()
            measurements, model = read_stored_measurements(result.measurements, result.model_id, result.model_sha256)
            reader_drawn = _unzlib_mask(result.reader_drawn_zlib, labels.shape, result_id)
            return StoredResult(
                revision=_revision(result),
                reader_drawn=reader_drawn,
                summary=_summary(result),
                labels=labels,
                model=model,
                measurements=measurements,
                timings=result.timings,
                overlay_png=result.overlay_png,
                confidence=confidence,
                workstation=result.workstation,
                user_name=result.user_name,
                study=_study_ref(result.study),
                reports=tuple(_stored_report(r, result.revision or 0) for r in result.reports),
                **_kept_identity_of(result.study),
            )

        return self._run("load the result", work)

    def revisions(self, result_id: int) -> list[ResultSummary]:
        """The model's result ``result_id`` belongs to and every reader's revision of it, oldest first
        (the history the saved-results pages show)."""

        def work(session: Session) -> list[ResultSummary]:
            result = session.get(SegmentationResult, result_id)
            if result is None:
                raise StorageError(f"No saved result {result_id} in {self.where}.")
            root = result.revision_of_id or result.id
            rows = session.scalars(
                select(SegmentationResult)
                .where((SegmentationResult.id == root) | (SegmentationResult.revision_of_id == root))
                .options(
                    selectinload(SegmentationResult.study).selectinload(Study.patient),
                    selectinload(SegmentationResult.reports).load_only(Report.id, Report.signed_by),
                )
                .order_by(SegmentationResult.revision)
            )
            return [_summary(r) for r in rows]

        return self._run("read the result's revisions", work)

    def delete_result(self, result_id: int) -> None:
        """Delete a result and its reports; its study goes too when nothing else uses it."""

        def work(session: Session) -> None:
            result = session.get(SegmentationResult, result_id)
            if result is None:
                raise StorageError(f"No saved result {result_id} in {self.where}.")
            study_id = result.study_id
            session.delete(result)
            session.flush()
            remaining = session.scalar(
                select(func.count()).select_from(SegmentationResult).where(SegmentationResult.study_id == study_id)
            )
            if not remaining:
                session.delete(session.get(Study, study_id))

        self._run("delete the result", work, writing=True)

    def delete_study(self, study_id: int) -> None:
        """Delete a study with all its results and reports."""

        def work(session: Session) -> None:
            study = session.get(Study, study_id)
            if study is None:
                raise StorageError(f"No saved study {study_id} in {self.where}.")
            session.delete(study)

        self._run("delete the study", work, writing=True)

    def study_id(self, content_sha256: str) -> int | None:
        """The saved study of this scan (by its content hash), if any."""
        query = select(Study.id).where(Study.content_sha256 == content_sha256)
        return self._run("find the study", lambda session: session.scalars(query).first())

    def counts(self) -> dict[str, int]:
        """Rows per table (for checks and the status bar)."""

        def work(session: Session) -> dict[str, int]:
            return {
                model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Patient, Study, SegmentationResult, Report)
            }

        return self._run("count the saved results", work)

    def add_user(self, name: str, password_hash: str, role: str) -> None:
        """Create a web account, or replace the password and role of an existing one."""

        def work(session: Session) -> None:
            user = session.scalars(select(WebUser).where(WebUser.name == name)).first()
            if user is None:
                session.add(
                    WebUser(
                        name=name,
                        password_hash=password_hash,
                        role=role,
                        created_at=datetime.now().replace(microsecond=0),
                    )
                )
            else:
                user.password_hash, user.role = password_hash, role

        self._run("save the account", work, writing=True)

    def get_user(self, name: str) -> tuple[str, str] | None:
        """(password hash, role) of a web account, or None."""

        def work(session: Session) -> tuple[str, str] | None:
            user = session.scalars(select(WebUser).where(WebUser.name == name)).first()
            return (user.password_hash, user.role) if user else None

        return self._run("read the account", work)

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace an existing account's password hash; False when there is no such account."""

        def work(session: Session) -> bool:
            user = session.scalars(select(WebUser).where(WebUser.name == name)).first()
            if user is not None:
                user.password_hash = password_hash
            return user is not None

        return self._run("change the password", work, writing=True)

    # failed logins ----------------------------------------------------------------------------
    def add_login_failure(self, name: str, client: str, at: datetime) -> None:
        """Record a failed login (and forget those over a day old)."""

        def work(session: Session) -> None:
            session.execute(delete(LoginFailure).where(LoginFailure.at < at - timedelta(days=1)))
            session.add(LoginFailure(user_name=name[:64], client=client[:64], at=at))

        self._run("record the failed login", work, writing=True)

    def login_failures(self, since: datetime, name: str | None = None, client: str | None = None) -> list[datetime]:
        """When the failed logins since ``since`` for an account name or a client happened, oldest first."""
        column, value = (LoginFailure.user_name, name) if name is not None else (LoginFailure.client, client)

        def work(session: Session) -> list[datetime]:
            query = select(LoginFailure.at).where(column == value, LoginFailure.at >= since).order_by(LoginFailure.at)
            return list(session.scalars(query))

        return self._run("read the failed logins", work)

    def clear_login_failures(self, name: str) -> None:
        self._run(
            "clear the failed logins",
            lambda session: session.execute(delete(LoginFailure).where(LoginFailure.user_name == name)),
            writing=True,
        )

    # web sessions -----------------------------------------------------------------------------
    def add_session(self, key_sha256: str, name: str, role: str, csrf: str, now: datetime) -> None:
        row = WebSessionRow(
            key_sha256=key_sha256, user_name=name, role=role, csrf=csrf, created_at=now, last_seen_at=now
        )
        self._run("start the session", lambda session: session.add(row), writing=True)

    def get_session(self, key_sha256: str) -> StoredSession | None:
        def work(session: Session) -> StoredSession | None:
            row = session.scalars(select(WebSessionRow).where(WebSessionRow.key_sha256 == key_sha256)).first()
            if row is None:
                return None
            return StoredSession(row.user_name, row.role, row.csrf, row.created_at, row.last_seen_at)

        return self._run("read the session", work)

    def touch_session(self, key_sha256: str, now: datetime) -> None:
        query = update(WebSessionRow).where(WebSessionRow.key_sha256 == key_sha256).values(last_seen_at=now)
        self._run("keep the session", lambda session: session.execute(query), writing=True)

    def end_sessions(
        self, key_sha256: str | None = None, name: str | None = None, before: datetime | None = None
    ) -> int:
        """End one session (by key hash), every session of an account, or those last seen before ``before``."""
        query = delete(WebSessionRow)
        if key_sha256 is not None:
            query = query.where(WebSessionRow.key_sha256 == key_sha256)
        if name is not None:
            query = query.where(WebSessionRow.user_name == name)
        if before is not None:
            query = query.where(WebSessionRow.last_seen_at < before)
        return self._run("end the sessions", lambda session: session.execute(query).rowcount or 0, writing=True)

    # the audit trail --------------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> None:
        """Append one event (the table is only ever appended to)."""
        row = _audit_row(entry)
        self._run("write the audit trail", lambda session: session.add(row), writing=True)

    def audit(
        self,
        user: str | None = None,
        result_id: int | None = None,
        since: datetime | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """The newest ``limit`` events matching every filter given, oldest first."""
        query = select(AuditEvent)
        for column, value in (
            (AuditEvent.user_name, user),
            (AuditEvent.result_id, result_id),
            (AuditEvent.action, action),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditEvent.at >= since)

        def work(session: Session) -> list[AuditEntry]:
            rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
            entries = [
                AuditEntry(r.user_name, r.face, r.action, r.result_id, r.study_id, r.client, r.detail, r.at)
                for r in rows
            ]
            return entries[::-1]

        return self._run("read the audit trail", work)

    # web jobs ---------------------------------------------------------------------------------
    def set_job_state(self, job_id: str, owner: str, state: str, message: str, now: datetime) -> None:
        def work(session: Session) -> None:
            row = session.get(WebJob, job_id)
            if row is None:
                session.add(
                    WebJob(
                        job_id=job_id, owner=owner, state=state, message=message[:255], created_at=now, updated_at=now
                    )
                )
            else:
                row.state, row.message, row.updated_at = state, message[:255], now

        self._run("record the job's state", work, writing=True)

    def job_state(self, job_id: str) -> tuple[str, str, str] | None:
        """(owner, state, message) of a web job, or None."""

        def work(session: Session) -> tuple[str, str, str] | None:
            row = session.get(WebJob, job_id)
            return (row.owner, row.state, row.message) if row else None

        return self._run("read the job's state", work)

    def interrupt_jobs(self, unfinished: tuple[str, ...], message: str, now: datetime) -> list[str]:
        """Mark every job still in an ``unfinished`` state as interrupted; their ids."""

        def work(session: Session) -> list[str]:
            rows = list(session.scalars(select(WebJob).where(WebJob.state.in_(unfinished))))
            for row in rows:
                row.state, row.message, row.updated_at = "interrupted", message[:255], now
            return [row.job_id for row in rows]

        return self._run("mark interrupted jobs", work, writing=True)

    def forget_jobs(self, before: datetime) -> None:
        self._run(
            "forget old jobs",
            lambda session: session.execute(delete(WebJob).where(WebJob.updated_at < before)),
            writing=True,
        )

    def save_comparison(
        self, baseline_id: int, followup_id: int, response: str, followup_sum_mm: float, document: dict
    ) -> int:
        """Save a follow-up comparison linked to both results; returns its id."""

        def work(session: Session) -> int:
            for result_id in (baseline_id, followup_id):
                if session.get(SegmentationResult, result_id) is None:
                    raise StorageError(f"No saved result {result_id}: save both studies before their comparison.")
            row = StudyComparison(
                baseline_result_id=baseline_id,
                followup_result_id=followup_id,
                response=response,
                followup_sum_mm=followup_sum_mm,
                document=document,
                created_at=datetime.now().replace(microsecond=0),
            )
            session.add(row)
            session.flush()
            return int(row.id)

        return self._run("save the comparison", work, writing=True)

    def prior_target_sums(self, baseline_id: int, exclude_content_sha256: str | None = None) -> list[float]:
        """The target sums of the follow-ups already read against ``baseline_id`` (in the order they
        were saved), leaving out any of the scan ``exclude_content_sha256`` (the one read now): with
        the baseline's own sum, they make the nadir of the next response."""

        def work(session: Session) -> list[float]:
            query = (
                select(StudyComparison.followup_sum_mm, Study.content_sha256)
                .join(SegmentationResult, SegmentationResult.id == StudyComparison.followup_result_id)
                .join(Study, Study.id == SegmentationResult.study_id)
                .where(StudyComparison.baseline_result_id == baseline_id)
                .order_by(StudyComparison.created_at, StudyComparison.id)
            )
            return [float(total) for total, sha in session.execute(query) if sha != exclude_content_sha256]

        return self._run("read the earlier comparisons", work)

    def prior_target_readings(
        self, baseline_id: int, exclude_content_sha256: str | None = None
    ) -> list[tuple[str, float]]:
        """(study date YYYYMMDD or "", target sum) of the follow-ups already read against
        ``baseline_id``, oldest study first (undated ones last), leaving out the scan
        ``exclude_content_sha256``: those taken before the one read now set its nadir."""

        def work(session: Session) -> list[tuple[str, float]]:
            query = (
                select(StudyComparison.followup_sum_mm, Study.content_sha256, Study.study_date)
                .join(SegmentationResult, SegmentationResult.id == StudyComparison.followup_result_id)
                .join(Study, Study.id == SegmentationResult.study_id)
                .where(StudyComparison.baseline_result_id == baseline_id)
                .order_by(StudyComparison.created_at, StudyComparison.id)
            )
            readings = [
                (day or "", float(total)) for total, sha, day in session.execute(query) if sha != exclude_content_sha256
            ]
            return sorted(readings, key=lambda reading: (not reading[0], reading[0]))

        return self._run("read the earlier comparisons", work)

    def find_patient(self, identity: KeptIdentity) -> int | None:
        """The saved patient row of this identity (by pseudonym, patient ID, or name and birth date)."""
        if not identity.has_patient():
            return None
        query = _patient_query(identity).with_only_columns(Patient.id)
        return self._run("find the patient", lambda session: session.scalars(query).first())

    def comparisons(self, result_id: int) -> list[tuple[int, int, int, str]]:
        """(comparison id, baseline result, follow-up result, response) involving ``result_id``."""

        def work(session: Session) -> list[tuple[int, int, int, str]]:
            query = select(StudyComparison).where(
                (StudyComparison.baseline_result_id == result_id) | (StudyComparison.followup_result_id == result_id)
            )
            return [
                (r.id, r.baseline_result_id, r.followup_result_id, r.response)
                for r in session.scalars(query.order_by(StudyComparison.id))
            ]

        return self._run("read the comparisons", work)

    def close(self) -> None:
        self.engine.dispose()


def _audit_row(entry: AuditEntry) -> AuditEvent:
    return AuditEvent(
        at=entry.at or datetime.now().replace(microsecond=0),
        user_name=entry.user[:64],
        face=entry.face[:8],
        client=entry.client[:64] if entry.client else None,
        action=entry.action[:32],
        result_id=entry.result_id,
        study_id=entry.study_id,
        detail=entry.detail[:255] if entry.detail else None,
    )


def _compress_confidence(confidence: np.ndarray | None, shape: tuple[int, ...]) -> bytes | None:
    """The confidence map, zlib-compressed, when it belongs to these labels (same shape)."""
    if confidence is None or tuple(confidence.shape) != tuple(shape):
        return None
    return zlib.compress(np.ascontiguousarray(confidence, dtype=np.uint8).tobytes(), 6)


def _stored_report(row: Report, revision: int) -> StoredReport:
    """A report row as the domain's Report, with its PDF, id and save time."""
    report = DomainReport(
        findings=row.findings_text,
        draft=row.draft_text,
        draft_notice=row.draft_notice,
        draft_model=row.llm_model,
        draft_endpoint=row.llm_endpoint,
        created_at=f"{row.created_at:%Y-%m-%d %H:%M}",
        comparison=row.comparison_text,
        impression=row.impression_text,
        author=row.author,
        signed_by=row.signed_by,
        signed_at=f"{row.signed_at:%Y-%m-%d %H:%M}" if row.signed_at else None,
        revision=revision,
    )
    return StoredReport(report=report, pdf=row.pdf, report_id=row.id, saved_at=row.created_at)


def _kept_identity_of(study: Study) -> dict[str, Any]:
    """``patient_info``/``study_info`` of a study saved with clinical identity (a research site's
    rows hold a pseudonym and shifted dates, which no report header may show as the patient's)."""
    if study.identity != "clinical":
        return {}
    patient = study.patient
    patient_info = (
        PatientInfo(
            name=patient.name or "",
            patient_id=patient.patient_id or "",
            sex=patient.sex or "",
            birth_date=patient.birth_date or "",
        )
        if patient is not None and not patient.pseudonym
        else None
    )
    study_info = StudyInfo(
        study_date=study.study_date or "",
        study_time=study.study_time or "",
        accession=study.accession or "",
        description=study.study_description or "",
        institution=study.institution or "",
        referring_physician=study.referring_physician or "",
        study_uid=study.study_uid or "",
    )
    return {"patient_info": patient_info, "study_info": study_info}


def _study_ref(study: Study) -> StudyRef:
    """A study row as the domain's StudyRef (the grid it was saved with, no patient)."""
    spacing = (study.spacing_z_mm, study.spacing_y_mm, study.spacing_x_mm)
    source = SourceInfo(
        format=study.source_format,
        path=study.source_path or "",
        description=study.description,
        slice_count=study.slice_count,
        series_uid=study.series_uid or "",
        modality=study.modality or "",
    )
    return StudyRef(
        source=source,
        shape=(study.slice_count, study.row_count, study.column_count),
        spacing=None if None in spacing else spacing,
        affine=np.asarray(study.affine, dtype=float) if study.affine is not None else None,
        is_hu=study.source_format != "raster",
        content_sha256=study.content_sha256,
        study_id=study.id,
        patient_ref=study.patient_ref,
        study_date=study.study_date or "",
    )
