"""The workflow service: open -> segment -> findings -> report -> save -> export -> reopen.

The command line, the desktop window and the web app only call this module; none of them
holds a step of its own. A ``Workstation`` lives once per process and owns what is shared and
costly (the model manifest, one results repository initialised once, the LLM settings); a
``Session`` is one user's current study, result and report on it. Nothing here imports Qt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverhealth import config, editing, imaging, review
from liverhealth.analysis import key_slice, measure
from liverhealth.analysis.caliper import Caliper, lesion_calipers
from liverhealth.analysis.confidence import ConfidenceFlags
from liverhealth.domain import (
    Actor,
    CtVolume,
    ModelInfo,
    PatientInfo,
    Revision,
    Segmentation,
    WorklistPatient,
    WorklistStudy,
)
from liverhealth.editing import EditHistory, EditResult
from liverhealth.errors import InputError, LiverHealthError, NotFound
from liverhealth.inference import Manifest, Segmenter, load_manifest
from liverhealth.inference.engine import CancelCheck, Progress
from liverhealth.reporting import LlmSettings, ReportContent, report_text
from liverhealth.results import (
    SegmentResult,
    add_report,
    export_saved,
    findings_text,
    make_report,
    record_from_outputs,
    reference_dice,
    report_record,
    reports_from_outputs,
    result_record,
    write_dicom,
    write_outputs,
    write_report,
)
from liverhealth.storage import ResultSummary, StoredReport, StoredResult, content_hash

if TYPE_CHECKING:
    from liverhealth.accounts import WebSession
    from liverhealth.comparison import ComparisonResult
    from liverhealth.inference.manifest import ModelSpec
    from liverhealth.storage.backup import BackupSummary
    from liverhealth.storage.records import AuditEntry
    from liverhealth.storage.repository import Repository

PACS_SCHEME = "pacs://"  # `liverhealth segment pacs://STUDY_UID`: the study's CT series from the PACS


def pacs_cache() -> Path:
    """Where retrieved studies are kept (LIVERHEALTH_PACS_CACHE, else the user cache folder)."""
    import platformdirs

    return Path(
        config.setting("pacs_cache", "LIVERHEALTH_PACS_CACHE")
        or Path(platformdirs.user_cache_dir("liverhealth")) / "pacs"
    )


@dataclass(frozen=True)
class SavedResult:
    """Where a save put a result."""

    result_id: int
    where: str


class Workstation:
    """What one process shares between its sessions: manifest, repository, LLM settings."""

    def __init__(
        self,
        models_dir: Path | None = None,
        db_url: str | None = None,
        llm: LlmSettings | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.actor = actor or Actor.local()  # who the audit trail names when a step gives no one else
        self.models_dir = Path(models_dir) if models_dir else None
        self.db_url = db_url
        self.llm = llm  # None: read the environment/config file when a report is made (Settings may change it)
        self._manifest: Manifest | None = None
        self._repository: Repository | None = None
        self._pacs = None
        self._lock = threading.Lock()
        self._login_lock = threading.Lock()  # logins one at a time: parallel guesses cannot pass the back-off

    # shared resources -------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        """The model manifest, read once (``reload_models`` reads it again)."""
        with self._lock:
            if self._manifest is None:
                self._manifest = load_manifest(self.models_dir or config.models_dir())
            return self._manifest

    def model_statuses(self) -> list[tuple[ModelSpec, str]]:
        """Each manifest model with "ok" or why its file cannot be used (missing, wrong hash)."""
        from liverhealth.inference.manifest import verify_model_file

        statuses = []
        for spec in self.manifest.models:
            try:
                verify_model_file(spec)
                statuses.append((spec, "ok"))
            except LiverHealthError as exc:
                statuses.append((spec, f"unusable: {exc}"))
        return statuses

    def reload_models(self) -> Manifest:
        with self._lock:
            self._manifest = None
        return self.manifest

    def model_info(self, model_id: str | None = None) -> ModelInfo:
        """A manifest model as the reports state it (name, file hash, validation figures)."""
        spec = self.manifest.get(model_id)
        return ModelInfo(spec.model_id, spec.name, spec.architecture, spec.sha256, dict(spec.metrics))

    def confidence_flags(self, model: ModelInfo) -> ConfidenceFlags:
        """The "check first" thresholds of the manifest model that made a result (the very same
        file); none for other models or a model without a calibration."""
        try:
            spec = self.manifest.get(model.model_id)
        except LiverHealthError:
            return ConfidenceFlags()
        if spec.sha256 != model.sha256:
            return ConfidenceFlags()
        return ConfidenceFlags.from_calibration(spec.confidence)

    @property
    def repository(self) -> Repository:
        """The results database, created/upgraded once per process on first use (a failed first
        use is tried again on the next call)."""
        with self._lock:
            if self._repository is None:
                from liverhealth.storage.repository import Repository  # SQLAlchemy loads on first use only

                repository = Repository(self.db_url)
                try:
                    repository.init()
                except BaseException:
                    repository.close()
                    raise
                self._repository = repository
            return self._repository

    def session(self, actor: Actor | None = None) -> Session:
        """A new session for ``actor`` (default: this process's user)."""
        return Session(self, actor)

    # accounts and the audit trail -----------------------------------------------------------
    def audit(
        self,
        action: str,
        actor: Actor | None = None,
        result_id: int | None = None,
        study_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one event to the audit trail (ids only: never a patient name, a password or a path).
        A step that cannot be audited does not happen: the error stops it."""
        self.repository.add_audit(self.audit_entry(action, actor, result_id, study_id, detail))

    def audit_entry(
        self,
        action: str,
        actor: Actor | None = None,
        result_id: int | None = None,
        study_id: int | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        """One audit event, for a step that writes it in its own transaction (a save)."""
        from liverhealth.storage.records import AuditEntry

        who = actor or self.actor
        return AuditEntry(who.user, who.face, action, result_id, study_id, who.client, detail)

    def audit_trail(
        self, user: str | None = None, result_id: int | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """The newest ``limit`` audit events matching the filters, oldest first."""
        return self.repository.audit(user=user, result_id=result_id, since=since, limit=limit)

    def add_user(self, name: str, password: str, admin: bool = False) -> str:
        """Create (or reset) a web account; says where it was saved."""
        from liverhealth.accounts import add_user

        role = "admin" if admin else "user"
        add_user(self.repository, name, password, role)
        self.audit("account-saved", detail=f"{name} ({role})")
        return f"Account {name} ({role}) saved in the {self.repository.where}."

    def set_password(self, name: str, password: str, actor: Actor | None = None) -> str:
        """Change an account's password; its sessions end."""
        from liverhealth.accounts import set_password

        set_password(self.repository, name, password)
        self.audit("password-changed", actor, detail=name)
        return f"The password of {name} was changed; its sessions were ended."

    def end_user_sessions(self, name: str, actor: Actor | None = None) -> int:
        """End every session of an account (an admin's "log them out everywhere")."""
        ended = self.repository.end_sessions(name=name)
        self.audit("sessions-ended", actor, detail=f"{name}: {ended}")
        return ended

    def login(self, name: str, password: str, client: str) -> tuple[str, WebSession]:
        """Check a web login: (the cookie key, the session) on success. Refuses at once (LoginRefused,
        whose message says how long to wait) while the account or the client is backed off; a wrong
        name or password raises InputError. Every failure and lock is in the audit trail."""

        with self._login_lock:
            return self._login(name, password, client)

    def _login(self, name: str, password: str, client: str) -> tuple[str, WebSession]:
        from liverhealth import accounts

        now = datetime.now().replace(microsecond=0)
        # the audit trail names only real accounts: a password typed into the name field stays out
        known = bool(accounts.USER_NAME.match(name or "")) and self.repository.get_user(name) is not None
        actor = Actor(name if known else "?", "web", client)
        try:
            accounts.check_not_locked(self.repository, name, client, now)
        except accounts.LoginRefused:
            self.audit("login-refused", actor)
            raise
        role = accounts.verify_user(self.repository, name, password)
        if role is None:  # counted by the hashed name, so a locked name does not tell whether it exists
            accounts.record_failure(self.repository, name, client, now)
            self.audit("login-failed", actor)
            raise InputError("Wrong user name or password.")
        accounts.clear_failures(self.repository, name)
        key, session = accounts.start_session(self.repository, name, role, now)
        self.audit("login", actor)
        return key, session

    def record_web_job(self, job_id: str, owner: str, state: str, message: str) -> None:
        """Keep a web job's state, so that a restart can tell what it interrupted."""
        self.repository.set_job_state(job_id, owner, state, message, datetime.now().replace(microsecond=0))

    def web_job_state(self, job_id: str, owner: str | None = None) -> tuple[str, str] | None:
        """(state, message) of a job kept from an earlier server run (``owner``'s only, when given)."""
        row = self.repository.job_state(job_id)
        if row is None or (owner is not None and row[0] != owner):
            return None
        return row[1], row[2]

    def interrupt_web_jobs(self, unfinished: list[str], message: str) -> list[str]:
        """At server start: jobs an earlier run left unfinished are marked interrupted (old rows go)."""
        now = datetime.now().replace(microsecond=0)
        self.repository.forget_jobs(now - timedelta(days=2))
        return self.repository.interrupt_jobs(tuple(unfinished), message, now)

    def web_session(self, key: str | None) -> WebSession | None:
        """The live web session named by a cookie key (sessions outlive a server restart)."""
        from liverhealth.accounts import find_session

        return find_session(self.repository, key, datetime.now().replace(microsecond=0))

    def logout(self, key: str | None, actor: Actor) -> None:
        from liverhealth.accounts import end_session

        end_session(self.repository, key)
        self.audit("logout", actor)

    # the PACS -----------------------------------------------------------------------------------
    @property
    def pacs(self):
        """The configured PACS (settings read on first use)."""
        from liverhealth.pacs import connect

        with self._lock:
            if self._pacs is None:
                self._pacs = connect()
            return self._pacs

    def find_studies(self, actor: Actor | None = None, **query: str):
        """Studies on the PACS matching patient_id / accession / study_date / modality (the search is
        audited, never its terms)."""
        self.audit("pacs-search", actor)
        return self.pacs.find(**query)

    def retrieve(
        self,
        study_uid: str,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
        actor: Actor | None = None,
    ) -> Path:
        """A study's CT series from the PACS into the local cache (reused when complete)."""
        from liverhealth.pacs import retrieve_study

        self.audit("pacs-retrieve", actor)
        return retrieve_study(self.pacs, study_uid, pacs_cache(), progress, cancel)

    def store_to_pacs(
        self, paths: list[Path], actor: Actor | None = None, result_id: int | None = None
    ) -> tuple[int, int]:
        """Send DICOM results to the PACS, skipping what it already holds: (sent, already there)."""
        from liverhealth.pacs.client import store_new

        self.audit("pacs-send", actor, result_id, detail=f"{len(paths)} file(s)")
        return store_new(self.pacs, paths)

    def close(self) -> None:
        with self._lock:
            if self._repository is not None:
                self._repository.close()
                self._repository = None

    # patient identity and the worklist ------------------------------------------------------------
    @staticmethod
    def identity_mode() -> str:
        """The site's identity setting: "clinical" (keep who and which study) or "research" (a keyed
        pseudonym and shifted dates); see ``config.identity_mode``."""
        return config.identity_mode()

    def identity_kept(self, store_patient: bool | None = None) -> tuple[bool, bytes | None]:
        """What a save keeps: (keep identity at all, the research site key or None for clinical).
        ``store_patient`` None follows the site setting (both modes keep something); False keeps none."""
        if store_patient is False:
            return False, None
        return True, config.pseudonym_key() if self.identity_mode() == "research" else None

    def find_patient(self, patient: PatientInfo) -> int | None:
        """The saved patient this volume's patient is, by the site's identity setting (patient ID,
        or name and birth date; under research, their pseudonym)."""
        from liverhealth.storage.identity import kept_identity

        _, key = self.identity_kept(None)
        return self.repository.find_patient(kept_identity(patient, None, key))

    def kept_study_date(self, volume: CtVolume) -> str:
        """The study date as this site's database keeps it (YYYYMMDD, shifted under a research
        pseudonym; "" when none would be kept), so it orders against saved studies."""
        from liverhealth.storage.identity import kept_identity

        keep, key = self.identity_kept(None)
        return kept_identity(volume.patient, volume.study, key).study.study_date if keep else ""

    def worklist(
        self,
        owner: str | None = None,
        actor: Actor | None = None,
        patient: str | None = None,
        model_id: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> tuple[WorklistPatient, ...]:
        """Saved results as a worklist: patients (newest study first), their studies by date
        (newest first), each study's latest result revision per model; ``owner`` keeps one web
        account's results, the other filters as ``list_results``. The studies saved without
        patient identity come last, as one group (the search is audited, never its terms)."""
        from liverhealth.storage.worklist import group_worklist

        self.audit("search", actor, detail="worklist by patient" if patient else "worklist")
        rows = self.repository.list_results(
            patient=patient, model_id=model_id, since=since, until=until, owner=owner, latest_only=True, limit=100_000
        )
        return group_worklist(rows)

    def patient_studies(self, patient_ref: int, owner: str | None = None) -> list[WorklistStudy]:
        """One saved patient's studies, newest first (``owner``: that account's results only)."""
        from liverhealth.storage.worklist import group_studies

        rows = self.repository.list_results(owner=owner, latest_only=True, limit=100_000, patient_ref=patient_ref)
        return group_studies(rows)

    # saved results ----------------------------------------------------------------------------
    def list_results(
        self,
        patient: str | None = None,
        model_id: str | None = None,
        since: date | None = None,
        until: date | None = None,
        owner: str | None = None,
        actor: Actor | None = None,
    ) -> list[ResultSummary]:
        """Saved results matching the filters, a result readers revised as its latest revision (the
        search itself is audited, never its terms)."""
        self.audit("search", actor, detail="by patient" if patient else None)
        return self.repository.list_results(
            patient=patient, model_id=model_id, since=since, until=until, owner=owner, latest_only=True
        )

    def history(self, result_id: int, actor: Actor | None = None, owner: str | None = None) -> list[ResultSummary]:
        """The model's result and every reader's revision of it, oldest first (with ``owner``: only
        when that account saved the one asked for)."""
        history = self.repository.revisions(result_id)
        if owner is not None and not any(r.result_id == result_id and r.owner == owner for r in history):
            raise NotFound(f"No saved result {result_id} for this account.")
        self.audit("view-history", actor, result_id)
        return history

    def get(self, result_id: int, actor: Actor | None = None, owner: str | None = None) -> StoredResult:
        """A saved result with its labels and reports (audited as viewed); with ``owner``, only when
        that account saved it (else NotFound, and nothing is audited as seen)."""
        stored = self.repository.get(result_id)
        if owner is not None and stored.summary.owner != owner:
            raise NotFound(f"No saved result {result_id} for this account.")
        self.audit("view", actor, result_id, stored.study.study_id)
        return stored

    def delete(self, result_id: int, actor: Actor | None = None) -> None:
        self.repository.delete_result(result_id)
        self.audit("delete", actor, result_id)

    def delete_study(self, study_id: int, actor: Actor | None = None) -> None:
        self.repository.delete_study(study_id)
        self.audit("delete-study", actor, study_id=study_id)

    def save_folder(self, folder: Path, actor: Actor | None = None) -> SavedResult:
        """Save a `segment` (or `db export`) output folder with the reports it holds (to retry a failed
        save, or to move a result to another database)."""
        record, reports = record_from_outputs(folder), reports_from_outputs(folder)
        audit = self.audit_entry("save", actor, detail=f"from a folder, {len(reports)} report(s)")
        result_id = self.repository.save(record, reports[0] if reports else None, audit=audit)
        for report in reports[1:]:
            self.repository.add_report(result_id, report)
        return SavedResult(result_id, self.repository.where)

    def export_saved(
        self, result_id: int, out_dir: Path, actor: Actor | None = None, include_patient: bool = False
    ) -> dict[str, Path]:
        """A saved result's files (labels, measurements.json, overlay, reports) in ``out_dir``, as
        `segment` writes them: `db save` takes the folder back. ``include_patient``: the reports'
        Markdown header carries the patient and study the database kept (else blanks)."""
        stored = self.repository.get(result_id)
        self.audit("export", actor, result_id, stored.study.study_id)
        return export_saved(stored, out_dir, include_patient)

    def export_training(self, out_dir: Path, actor: Actor | None = None) -> tuple[list[str], list[str]]:
        """Each reader-edited result (its latest revision) as a training case: ``NAME/ct.nii.gz`` and
        ``NAME/labels.nii.gz`` (0 background, 1 liver, 2 tumour; no patient identifiers), and
        ``preprocess_args.txt`` with the ``--labelled`` arguments `training.preprocess` takes, so a
        site can retrain on its own corrections. The folder appears complete or not at all.
        Returns (cases written, results skipped with why)."""
        from liverhealth.imaging.writers import new_folder, save_labels_nifti, save_volume_nifti

        revised = [r for r in self.repository.list_results(latest_only=True, limit=1_000_000) if r.revision]
        out_dir = Path(out_dir).absolute()
        cases, skipped, lines = [], [], []
        with new_folder(out_dir) as partial:
            for row in revised:
                stored = self.repository.get(row.result_id)
                try:
                    volume = self._reload_ct(
                        stored.study.source.path,
                        stored.study.content_sha256,
                        f"result {row.result_id} was saved",
                        f"result {row.result_id}: its CT is no longer at {stored.study.source.path or 'a known place'}",
                    )
                except LiverHealthError as exc:
                    skipped.append(str(exc))
                    continue
                name = f"result-{row.revision_of}-revision-{row.revision}"
                (partial / name).mkdir()
                save_volume_nifti(volume, partial / name / "ct.nii.gz")
                save_labels_nifti(stored.labels, volume, partial / name / "labels.nii.gz")
                lines.append(
                    f"--labelled {name} {out_dir / name / 'ct.nii.gz'} {out_dir / name / 'labels.nii.gz'} "
                    "liver=1;tumour=2"
                )
                cases.append(name)
            (partial / "preprocess_args.txt").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        self.audit("export-training", actor, detail=f"{len(cases)} case(s)")
        return cases, skipped

    def init_database(self) -> tuple[str, str]:
        """Create or upgrade the results database: (where it is, its schema revision)."""
        from liverhealth.storage.repository import Repository

        repository = Repository(self.db_url)
        try:
            return repository.where, repository.init()
        finally:
            repository.close()

    def backup_database(self, path: Path, actor: Actor | None = None) -> BackupSummary:
        """The whole results database in one portable file (audited first: a backup nobody can
        account for does not happen)."""
        from liverhealth.storage.backup import backup

        self.audit("backup", actor)
        return backup(self.db_url, Path(path))

    def restore_database(self, path: Path, actor: Actor | None = None) -> BackupSummary:
        """A backup into this empty results database (refused when it holds rows); audited in the
        restored database."""
        from liverhealth.storage.backup import restore

        self.close()
        summary = restore(self.db_url, Path(path))
        self.audit("restore", actor, detail=f"backup of {summary.created_at}")
        return summary

    def database_where_quietly(self) -> str | None:
        """The database as messages name it, without opening it (None before first use)."""
        with self._lock:
            return self._repository.where if self._repository is not None else None

    @property
    def database_where(self) -> str:
        """The results database as a message names it (no password)."""
        return self.repository.where

    def open_folder(self, folder: Path, actor: Actor | None = None) -> Session:
        """A `segment` (or `liverhealth edit`) output folder back in a session, to edit or sign it:
        its CT reloaded and checked, its labels, the reader's revision it is and the reports it holds
        (the newest becomes the current one)."""
        record = record_from_outputs(folder)
        volume = self._reload_ct(
            record.source.path,
            record.content_sha256,
            f"{folder} was written",
            f"The CT of {folder} is no longer at {record.source.path or 'a known place'}: it is needed to "
            "edit or sign the result.",
        )
        result = self._restored(volume, record, record.revision, record.reader_drawn)
        session = Session(self, actor)
        session.volume = volume
        session._set_base(result, None, record.revision.base_result_id if record.revision else None)
        reports = reports_from_outputs(folder)
        if reports:
            session.report = replace(make_report(result, use_llm=False), report=reports[-1].report)
        return session

    def reopen(self, result_id: int, actor: Actor | None = None) -> Session:
        """A saved result back in a session: its CT reloaded from where it was read, checked to be
        the same scan, with the saved labels and the model it was made with."""
        stored = self.repository.get(result_id)
        self.audit("open", actor, result_id, stored.study.study_id)
        path = stored.study.source.path
        volume = self._reload_ct(
            path,
            stored.study.content_sha256,
            f"result {result_id} was saved",
            f"The CT of saved result {result_id} is no longer at {path or 'a known place'}; its labels, "
            "measurements and reports are still in the database (`liverhealth db export`).",
        )
        result = self._restored(volume, stored, stored.revision, stored.reader_drawn)
        session = Session(self, actor)
        session.volume = volume
        model_result_id = stored.revision.base_result_id if stored.revision else result_id
        session._set_base(result, SavedResult(result_id, self.repository.where), model_result_id)
        return session

    @staticmethod
    def _reload_ct(path: str, content_sha256: str, since: str, missing: str) -> CtVolume:
        """The CT a result was made on, read again from ``path`` and checked to be the same scan."""
        if not path or not Path(path).exists():
            raise InputError(missing)
        volume = load_input(path)
        if content_hash(volume.voxels, volume.spacing) != content_sha256:
            raise InputError(f"The CT at {path} has changed since {since}; the saved labels do not belong to it.")
        return volume

    def _restored(
        self, volume: CtVolume, kept: Any, revision: Revision | None, reader_drawn: np.ndarray | None
    ) -> SegmentResult:
        """A result back from what a folder or the database kept of it (labels, confidence,
        measurements, timings, model)."""
        model = kept.model if kept.model.metrics else self._known_model(kept.model)
        segmentation = Segmentation(kept.labels, model.model_id, model.sha256, kept.timings, kept.confidence)
        return SegmentResult(
            volume, segmentation, kept.measurements, key_slice(kept.labels), kept.timings, model, revision, reader_drawn
        )

    def study(
        self,
        side: str | int | Path,
        model_id: str | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
        segment_progress: Progress | None = None,
        actor: Actor | None = None,
    ) -> Session:
        """One side of a comparison: a saved result id (an int, or digits that name no file) reopened,
        or a CT input opened and segmented with ``model_id`` (``segment_progress`` defaults to ``progress``)."""
        if isinstance(side, int) or (str(side).isdigit() and not Path(side).exists()):
            return self.reopen(int(side), actor)
        session = self.session(actor)
        session.open(side, progress=progress, cancel=cancel)
        session.segment(model_id, progress=segment_progress or progress, cancel=cancel)
        return session

    def _known_model(self, model: ModelInfo) -> ModelInfo:
        """For results saved before models travelled with them: the manifest's entry when it is the
        very same file (same sha256), else what was stored."""
        try:
            spec = self.manifest.get(model.model_id)
        except LiverHealthError:  # no manifest or no such model: keep what was stored
            return model
        return self.model_info(spec.model_id) if spec.sha256 == model.sha256 else model


def load_input(path: str | Path, pixel_size_mm: float | None = None) -> CtVolume:
    """Load a CT or image; a user-given pixel size applies to rasters only."""
    volume = imaging.load(path)
    if pixel_size_mm is not None:
        if volume.is_hu:
            raise InputError("--pixel-size applies to PNG/JPG/BMP/TIFF images; this input carries its own spacing.")
        volume = imaging.with_pixel_size(volume, pixel_size_mm)
    return volume


class Session:
    """One user's current study, result and report. Steps run in order; each replaces what
    depends on it (a new study drops the result, a new result drops the report)."""

    def __init__(self, workstation: Workstation, actor: Actor | None = None) -> None:
        self.workstation = workstation
        self.actor = actor or workstation.actor  # whom the audit trail names for this session's steps
        self.volume: CtVolume | None = None
        self.result: SegmentResult | None = None
        self.report: ReportContent | None = None
        self.saved: SavedResult | None = None  # where the current result is saved (None: not, or edited since)
        self.comparison: ComparisonResult | None = None
        self.prior: Session | None = None  # the study the comparison read this one against
        self.load_s = 0.0
        self._base: SegmentResult | None = None  # the result as segmented, last saved or opened
        self._base_saved: SavedResult | None = None
        self._model_result_id: int | None = None  # the saved model result that revisions revise
        self._history: EditHistory | None = None  # the reader's edits since _base (undo/redo)
        self._saved_report: ReportContent | None = None  # the report this session last saved
        self._calipers: tuple[SegmentResult, tuple[Caliper, ...]] | None = None

    def open(
        self,
        path: str | Path,
        pixel_size_mm: float | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
    ) -> CtVolume:
        """Load a CT or image; ``pacs://STUDY_UID`` retrieves the study's CT series first."""
        started = time.perf_counter()
        if str(path).startswith(PACS_SCHEME):
            path = self.workstation.retrieve(str(path)[len(PACS_SCHEME) :], progress, cancel, self.actor)
        elif self.actor.client is not None:  # a study sent over the network (a web upload)
            self.workstation.audit("upload", self.actor)
        volume = load_input(path, pixel_size_mm)
        self.set_volume(volume, time.perf_counter() - started)
        return volume

    def set_volume(self, volume: CtVolume, load_s: float = 0.0) -> None:
        """Make ``volume`` the current study: the one place a new study drops what was made on the
        last one (result, report, saved id, comparison). The web app loads uploads itself."""
        self.volume, self.load_s = volume, load_s
        self._drop_result()

    def _drop_result(self) -> None:
        """Forget what depends on the segmentation: report, saved id, comparison, edits."""
        self.result, self.report, self.saved, self.comparison = None, None, None, None
        self._base, self._base_saved, self._model_result_id, self._history = None, None, None, None
        self._saved_report = None

    def _set_base(self, result: SegmentResult, saved: SavedResult | None, model_result_id: int | None) -> None:
        """``result`` is now the current result as saved (or made): edits start from it."""
        self.result, self._base, self.saved, self._base_saved = result, result, saved, saved
        self._model_result_id, self._history = model_result_id, None

    def segment(
        self, model_id: str | None = None, progress: Progress | None = None, cancel: CancelCheck | None = None
    ) -> SegmentResult:
        volume = self._need_volume()
        manifest = self.workstation.manifest
        started = time.perf_counter()
        segmentation = Segmenter(manifest).segment(volume, model_id, progress=progress, cancel=cancel)
        model = self.workstation.model_info(segmentation.model_id)
        flags = self.workstation.confidence_flags(model)
        measurements = measure(volume, segmentation.labels, segmentation.confidence, flags)
        timings = {
            "load_s": round(self.load_s, 4),
            **segmentation.timings,
            "measure_s": round(time.perf_counter() - started - segmentation.timings["inference_s"], 4),
        }
        timings["total_s"] = round(self.load_s + time.perf_counter() - started, 4)
        self._drop_result()
        result = SegmentResult(volume, segmentation, measurements, key_slice(segmentation.labels), timings, model)
        self._set_base(result, None, None)
        return result

    def calipers(self) -> tuple[Caliper, ...]:
        """Each lesion's outline and RECIST axes on its measured slice (numbered as the findings),
        for the faces to draw; computed once per result."""
        result = self._need_result()
        if self._calipers is None or self._calipers[0] is not result:
            self._calipers = (result, lesion_calipers(result.segmentation.labels, result.volume.spacing))
        return self._calipers[1]

    def findings(self) -> str:
        """The measured findings (no LLM), as every report starts."""
        result = self._need_result()
        return findings_text(result)

    def make_report(
        self,
        use_llm: bool = True,
        on_text: Callable[[str], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        include_patient: bool = False,
    ) -> ReportContent:
        """Findings + the LLM draft (streamed to ``on_text``) or the reason there is none."""
        result = self._need_result()
        settings = self.workstation.llm
        comparison = None
        if self.comparison is not None:
            from liverhealth.comparison import comparison_lines

            comparison = "\n".join(comparison_lines(self.comparison.comparison))
        content = make_report(result, settings, use_llm, on_text, cancel, include_patient, comparison)
        if result.revision is not None:
            content = replace(content, report=replace(content.report, revision=result.revision.number))
        self.report = content
        return self.report

    def report_text(self) -> str:
        """The current report as the window and the web page show it."""
        if self.report is None:
            raise InputError("No report yet: generate the report first.")
        return report_text(self.report.report, self.report.model)

    def save(self, store_patient: bool | None = None, owner: str | None = None) -> SavedResult:
        """Save the result (with the current report, if any) in the results database; ``owner`` is
        the web account saving it. ``store_patient`` None follows the site's identity setting
        (clinical: who and which study; research: a keyed pseudonym and shifted dates), False keeps
        no identity. A result already saved there gets the report added instead of a
        second copy. An edited result is saved as a new revision (the model's result first, if it
        was never saved); the model's result and earlier revisions stay as they were."""
        result = self._need_result()
        if result.revision is not None and self.saved is None:
            return self._save_revision(store_patient, owner)
        repository = self.workstation.repository
        record = self._unsaved_report()
        if self.saved is not None and self.saved.where == repository.where:  # saved or reopened: no copy
            if record is not None:
                repository.add_report(self.saved.result_id, record)
                self._saved_report = self.report
                self.workstation.audit("report-saved", self.actor, self.saved.result_id)
                self._audit_signature(self.saved.result_id)
            return self.saved
        keep, key = self.workstation.identity_kept(store_patient)
        detail = ("with a pseudonym" if key is not None else "with patient identifiers") if keep else None
        audit = self.workstation.audit_entry("save", self.actor, detail=detail)
        saved_id = repository.save(result_record(result, owner), record, keep, audit, key)
        self._set_base(result, SavedResult(saved_id, repository.where), saved_id)
        self._saved_report = self.report if record is not None else None
        self._audit_signature(saved_id)
        return self.saved

    def _save_revision(self, store_patient: bool | None, owner: str | None) -> SavedResult:
        repository = self.workstation.repository
        keep, key = self.workstation.identity_kept(store_patient)
        if self._base_saved is None or self._base_saved.where != repository.where:
            if self._base is None or self._base.revision is not None:
                raise InputError("The revision this edit started from is not in this database; save it there first.")
            audit = self.workstation.audit_entry("save", self.actor, detail="the model's result, before its revision")
            base_id = repository.save(result_record(self._base, owner), None, keep, audit, key)
            self._base_saved, self._model_result_id = SavedResult(base_id, repository.where), base_id
        result = review.on_saved_base(self._need_result(), self._model_result_id)
        record = self._unsaved_report()
        audit = self.workstation.audit_entry(
            "revision-saved",
            self.actor,
            detail=f"revision {result.revision.number} of result {self._model_result_id}: {result.revision.summary()}",
        )
        saved_id = repository.save(result_record(result, owner), record, keep, audit, key)
        self._set_base(result, SavedResult(saved_id, repository.where), self._model_result_id)
        self._saved_report = self.report if record is not None else None
        self._audit_signature(saved_id)
        return self.saved

    # the reader's review ------------------------------------------------------------------------
    @property
    def edited(self) -> bool:
        """Whether the current result has edits not saved yet."""
        return self._history is not None and bool(self._history.edits)

    @property
    def can_undo(self) -> bool:
        return self._history is not None and self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history is not None and self._history.can_redo

    def edit(self, change: EditResult) -> SegmentResult:
        """Apply a reader's edit (an ``liverhealth.editing`` operation's result, made on the current
        labels): the result re-measured at once, as the next revision; the report made before no
        longer applies. The model's result and the saved revisions are never changed."""
        current = self._need_result()
        if self._history is None:
            self._history = EditHistory(current.segmentation.labels)
        return self._revised(self._history.apply(change))

    def undo(self) -> SegmentResult:
        """Step back one edit (Ctrl+Z): the labels and measurements before it."""
        if self._history is None:
            raise InputError("Nothing to undo.")
        return self._revised(self._history.undo())

    def redo(self) -> SegmentResult:
        """Step forward one undone edit (Ctrl+Shift+Z)."""
        if self._history is None:
            raise InputError("Nothing to redo.")
        return self._revised(self._history.redo())

    def paint(self, slice_index: int, centre: tuple[int, int], radius_mm: float, label: int) -> SegmentResult:
        """Paint ``label`` (liver or tumour) with a disc brush of ``radius_mm`` at (row, column) of a slice."""
        result = self._need_result()
        return self.edit(
            editing.paint(result.segmentation.labels, result.volume.spacing, slice_index, centre, radius_mm, label)
        )

    def erase(self, slice_index: int, centre: tuple[int, int], radius_mm: float, label: int) -> SegmentResult:
        """Erase ``label`` with a disc brush (tumour becomes liver; liver becomes background)."""
        result = self._need_result()
        return self.edit(
            editing.erase(result.segmentation.labels, result.volume.spacing, slice_index, centre, radius_mm, label)
        )

    def add_lesion(self, seed: tuple[int, int, int], method: str | None = None) -> SegmentResult:
        """Outline in 3D the missed lesion at a click (z, y, x) and add it as tumour."""
        result = self._need_result()
        return self.edit(
            editing.add_lesion(
                result.volume,
                result.segmentation.labels,
                seed,
                method or editing.DEFAULT_ADD_METHOD,
                manifest=self.workstation.manifest,
                model_id=result.model.model_id,
            )
        )

    def remove_lesion(self, seed: tuple[int, int, int]) -> SegmentResult:
        """The tumour component at (or nearest) a click becomes liver."""
        result = self._need_result()
        return self.edit(editing.remove_lesion(result.segmentation.labels, seed, result.volume.spacing))

    def relabel_lesion(self, seed: tuple[int, int, int], to: int) -> SegmentResult:
        """The lesion at a click becomes liver (a cyst, a vessel), or the liver region there tumour."""
        result = self._need_result()
        return self.edit(editing.relabel_lesion(result.segmentation.labels, seed, to, result.volume))

    def lesion_seed(self, lesion_id: int) -> tuple[int, int, int]:
        """A voxel inside lesion ``lesion_id`` of the current findings (to remove or relabel it by number)."""
        return review.lesion_voxel(self._need_result().segmentation.labels, lesion_id)

    def fill_between_slices(self, label: int, slice_a: int, slice_b: int) -> SegmentResult:
        """Interpolate ``label`` drawn on two slices into the slices between them."""
        result = self._need_result()
        return self.edit(
            editing.fill_between_slices(result.segmentation.labels, label, slice_a, slice_b, result.volume.spacing)
        )

    def _revised(self, labels: np.ndarray) -> SegmentResult:
        """The current result with ``labels`` from the edit history, re-measured."""
        base = self._base or self._need_result()
        changes = tuple(edit.to_dict() for edit in self._history.edits)
        drawn = labels != base.segmentation.labels
        if base.reader_drawn is not None:
            drawn |= base.reader_drawn
        self.result = review.revise(
            base,
            self._need_result(),
            labels,
            drawn,
            changes,
            self.actor.user,
            self.workstation.confidence_flags(base.model),
        )
        self.report, self.comparison = None, None
        self.saved = self._base_saved if not changes else None
        return self.result

    def sign(self, impression: str | None = None, draft: str | None = None) -> ReportContent:
        """Sign the current report as this session's reader (a findings-only report is made when
        there is none), with the reader's impression and edited draft text; save it next."""
        result = self._need_result()
        content = self.report if self.report is not None else self.make_report(use_llm=False)
        number = result.revision.number if result.revision is not None else 0
        self.report = review.sign(content, self.actor.user, number, impression, draft)
        return self.report

    def _unsaved_report(self) -> StoredReport | None:
        """The current report as the database keeps it, unless this session saved it already (a
        second Save adds no copy)."""
        if self.report is None or self.report is self._saved_report:
            return None
        return report_record(self.report)

    def _audit_signature(self, result_id: int) -> None:
        if self.report is not None and self.report.report.is_signed:
            self.workstation.audit("sign", self.actor, result_id, detail=f"revision {self.report.report.revision}")

    def export(self, out_dir: Path) -> dict[str, Path]:
        """Write the result's files (labels, overlay, measurements.json) and the report's, if any."""
        written = write_outputs(self._need_result(), out_dir)
        if self.report is not None:
            written.update(self.export_report(out_dir))
        return written

    def export_new_folder(self, out_dir: Path) -> dict[str, Path]:
        """``export`` into a folder that must not exist yet, which appears complete or not at all (a
        revision is written beside the folder it was edited from, never over it)."""
        from liverhealth.imaging.writers import new_folder

        with new_folder(out_dir) as partial:
            written = self.export(partial)
        return {key: Path(out_dir) / path.name for key, path in written.items()}

    def add_report_to_folder(self, out_dir: Path) -> dict[str, Path]:
        """The current report written beside the reports a result folder holds (none replaced)."""
        if self.report is None:
            raise InputError("No report yet: generate the report first.")
        return add_report(self.report, out_dir)

    def export_viewer_volume(self, out_dir: Path) -> dict[str, Any]:
        """The CT as NIfTI for a viewer (``ct.nii.gz``) and its grid as the page states it."""
        from liverhealth import viewer

        volume = self._need_volume()
        viewer.write_volume(volume, out_dir)
        return viewer.volume_view(volume)

    def export_viewer(self, out_dir: Path) -> dict[str, Any]:
        """The result's files, the viewer's layers (labels as NIfTI, uncertainty) beside them, and
        the numbers the viewer shows (volumes, lesions with where they are, RECIST targets, model,
        each lesion's caliper: outline and RECIST axes on its measured slice)."""
        from liverhealth import viewer

        result = self._need_result()
        self.export(out_dir)
        viewer.write_layers(result, out_dir)
        return viewer.result_view(result, self.calipers())

    def check_dicom_export(self) -> None:
        """Refuse, before the slow work, a study that cannot carry a DICOM SEG/SR (no DICOM source)."""
        from liverhealth.imaging.dicom_seg import source_headers

        source_headers(self._need_volume())

    def export_dicom(self, out_dir: Path) -> dict[str, Path]:
        """Write the result as a DICOM SEG and a TID 1500 SR on the source series (seg.dcm, sr.dcm) and,
        when a report was made, the PDF as an Encapsulated PDF instance (report.dcm). A reader's revision
        is its own SEG series, with the model's SEG (model_seg.dcm) beside it when the model's labels
        are at hand (in this session, or saved)."""
        return write_dicom(self._need_result(), out_dir, self.report, self._model_labels())

    def _model_labels(self) -> np.ndarray | None:
        """The model's own labels under a revision: the session's, else the saved model result's."""
        result = self._need_result()
        if result.revision is None:
            return None
        if self._base is not None and self._base.revision is None:
            return self._base.segmentation.labels
        if self._model_result_id is not None:
            return self.workstation.repository.get(self._model_result_id).labels
        return None

    def send_to_pacs(self, folder: Path) -> tuple[int, int]:
        """Write the DICOM SEG and SR into ``folder`` and send them to the PACS: (sent, already there)."""
        saved_id = self.saved.result_id if self.saved is not None else None
        return self.workstation.store_to_pacs(list(self.export_dicom(folder).values()), self.actor, saved_id)

    def compare_reference(self, reference_seg: Path) -> dict[str, float | None]:
        """Dice per class against a reference DICOM SEG of the same CT."""
        return reference_dice(self._need_result(), reference_seg)

    def priors(self, owner: str | None = None) -> tuple[WorklistStudy, ...]:
        """The saved studies of this study's patient taken before it, newest first (then those
        without a date); none when the patient or this study's identity was never saved."""
        volume = self._need_volume()
        workstation = self.workstation
        patient_ref = workstation.find_patient(volume.patient)
        if patient_ref is None:
            return ()
        own_date = workstation.kept_study_date(volume)
        own_iso = f"{own_date[:4]}-{own_date[4:6]}-{own_date[6:]}" if own_date else ""
        scan = content_hash(volume.voxels, volume.spacing) if self.result is None else self.result.content_sha256
        own_study = workstation.repository.study_id(scan)
        return tuple(
            study
            for study in workstation.patient_studies(patient_ref, owner)
            if study.study_id != own_study and (not own_iso or not study.date or study.date < own_iso)
        )

    def latest_prior(self, owner: str | None = None) -> WorklistStudy:
        """The latest earlier study of this patient (by study date) among the saved ones."""
        dated = [study for study in self.priors(owner) if study.date]
        if not dated:
            raise InputError(
                "No earlier study of this patient is saved with a study date: save the prior study first, or "
                "name the prior result."
            )
        return dated[0]

    def open_prior(
        self, study: WorklistStudy | None = None, model_id: str | None = None, owner: str | None = None
    ) -> Session:
        """A prior study's saved result reopened (``study`` None: the latest earlier study), the
        result made by ``model_id`` (default: this session's model) when the study has one."""
        study = study or self.latest_prior(owner)
        model = model_id or (self.result.model.model_id if self.result is not None else None)
        return self.workstation.reopen(study.result_for(model).result_id, self.actor)

    def compare_with(self, prior: Session) -> ComparisonResult:
        """This study read against ``prior`` (both segmented): registration, lesion changes, RECIST
        1.1; kept so that the next report has its "Comparison with prior" section."""
        from liverhealth.comparison import check_not_same_scan, compare_results

        check_not_same_scan(prior._need_result(), self._need_result())
        earlier: list[tuple[str, float]] = []
        followup_date = ""
        if prior.saved is not None:  # the follow-ups taken before this one and read against the baseline
            scan = self._need_result().content_sha256
            earlier = self.workstation.repository.prior_target_readings(prior.saved.result_id, scan)
            followup_date = self.workstation.kept_study_date(self._need_volume()) if earlier else ""
        self.comparison = compare_results(prior._need_result(), self._need_result(), earlier, followup_date)
        if prior.saved is not None or self.saved is not None:
            ids = [f"result {s.saved.result_id}" if s.saved else "an unsaved study" for s in (prior, self)]
            self.workstation.audit("compare", self.actor, detail=" against ".join(ids[::-1]))
        self.prior = prior  # the current report stays until the next one, which has the comparison
        return self.comparison

    def save_comparison(self) -> int:
        """Save the comparison linked to both results (both must be saved first); returns its id."""
        from liverhealth.comparison import comparison_document

        if self.comparison is None or self.prior is None:
            raise InputError("No comparison yet: compare the study with a prior one first.")
        if self.prior.saved is None or self.saved is None:
            raise InputError("Save both studies before their comparison.")
        recist = self.comparison.comparison.recist
        comparison_id = self.workstation.repository.save_comparison(
            self.prior.saved.result_id,
            self.saved.result_id,
            recist.response,
            recist.followup_sum_mm,
            comparison_document(self.comparison),
        )
        self.workstation.audit(
            "comparison-saved", self.actor, self.saved.result_id, detail=f"prior result {self.prior.saved.result_id}"
        )
        return comparison_id

    def comparison_views(self) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
        """What a side-by-side view of the comparison shows: the follow-up's CT and labels on the
        baseline grid, and each lesion change (caption, baseline slice), targets first."""
        from liverhealth.comparison import lesion_caption, lesion_centres, registered_followup

        if self.comparison is None:
            raise InputError("No comparison yet: compare the study with a prior one first.")
        followup_ct, followup_labels = registered_followup(self.comparison)
        rows = [(lesion_caption(c), round(centre[0])) for c, centre in lesion_centres(self.comparison)]
        return followup_ct, followup_labels, rows

    def comparison_summary(self) -> str:
        """The comparison's lines as every face shows them."""
        from liverhealth.comparison import comparison_lines

        if self.comparison is None:
            raise InputError("No comparison yet: compare the study with a prior one first.")
        return "\n".join(comparison_lines(self.comparison.comparison))

    def export_comparison(self, out_dir: Path) -> dict[str, Path]:
        """comparison.json and comparison.png."""
        from liverhealth.comparison import write_comparison

        if self.comparison is None:
            raise InputError("No comparison yet: compare the study with a prior one first.")
        return write_comparison(self.comparison, out_dir)

    def export_report(self, out_dir: Path) -> dict[str, Path]:
        if self.report is None:
            raise InputError("No report yet: generate the report first.")
        return write_report(self.report, out_dir)

    def _need_volume(self) -> CtVolume:
        if self.volume is None:
            raise InputError("No study is open: open a CT first.")
        return self.volume

    def _need_result(self) -> SegmentResult:
        if self.result is None:
            raise InputError("No segmentation yet: segment the study first.")
        return self.result
