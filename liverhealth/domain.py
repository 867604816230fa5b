"""The domain types every module passes along (see DESIGN.md, "Core types").

They are frozen dataclasses so a value handed to a worker thread or a report cannot change
under it. Arrays inside are not copied; treat them as read-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np


class Label(IntEnum):
    """The values of a label map, the same in every reader, model, measurement and file."""

    BACKGROUND = 0
    LIVER = 1
    TUMOUR = 2


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel spacing (z, y, x) in mm: the lengths of the affine's columns. The affine is the
    geometry and the spacing is derived from it (as TorchIO does), so the two never disagree."""
    lengths = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    return (float(lengths[2]), float(lengths[1]), float(lengths[0]))


@dataclass(frozen=True)
class Actor:
    """Who does a step, as the audit trail records it: a web account (with the client address), or
    the operating-system user of the window or the command line."""

    user: str
    face: str  # "web", "window", "cli"
    client: str | None = None

    @classmethod
    def local(cls, face: str = "cli") -> Actor:
        """The operating-system user running this process."""
        import getpass

        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a bare container)
            user = "unknown"
        return cls(user, face)


@dataclass(frozen=True)
class PatientInfo:
    """Patient identifiers, kept apart so they can be dropped from anything that leaves."""

    name: str = ""
    patient_id: str = ""
    sex: str = ""
    birth_date: str = ""

    def is_empty(self) -> bool:
        return not (self.name or self.patient_id or self.sex or self.birth_date)


@dataclass(frozen=True)
class StudyInfo:
    """The study's identity and how it was acquired, as the source (DICOM) states it; empty for a
    bare NIfTI, NRRD or picture unless the user types it. Identity (dates, accession, description,
    institution, referring physician) is treated like PatientInfo: kept for the clinical report and
    the database, never put in logs, URLs or the LLM request. ``phase`` is one of
    "non-contrast", "arterial", "portal venous", "delayed" or "" (not stated), read from coded
    tags and keywords only; ``contrast`` is "yes"/"no"/"" (not stated)."""

    study_date: str = ""  # YYYYMMDD
    study_time: str = ""  # HHMMSS
    accession: str = ""
    description: str = ""
    institution: str = ""
    referring_physician: str = ""
    study_uid: str = ""
    phase: str = ""
    contrast: str = ""
    slice_thickness_mm: float | None = None

    def is_empty(self) -> bool:
        return not (
            self.study_date or self.accession or self.description or self.institution or self.referring_physician
        )

    def technique(self) -> StudyInfo:
        """Only how it was acquired (phase, contrast, slice thickness): nothing that identifies."""
        return StudyInfo(phase=self.phase, contrast=self.contrast, slice_thickness_mm=self.slice_thickness_mm)

    @property
    def date_iso(self) -> str:
        """The study date as YYYY-MM-DD, or "" when unknown or malformed."""
        digits = self.study_date.strip()
        if len(digits) != 8 or not digits.isdigit():
            return ""
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


@dataclass(frozen=True)
class SourceInfo:
    """Where a volume came from, without patient identifiers."""

    format: str
    path: str
    description: str
    slice_count: int
    series_uid: str = ""
    modality: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class DicomSource:
    """A DICOM series' identity, kept so derived objects (SEG, SR) reference it.

    ``headers`` are the source slices' headers (no pixel data) in the order of the array's
    slices, one per slice; empty when the array is not one-to-one with the source slices
    (resampled or reoriented), and ``derived_refusal`` then says why no SEG can be made on it.
    The headers carry the patient module: they are for DICOM objects that go back to the PACS,
    never for logs, reports or the LLM.
    """

    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: tuple[str, ...] = ()
    headers: tuple[Any, ...] = field(default=(), repr=False, compare=False)
    derived_refusal: str = ""


@dataclass(frozen=True)
class CtVolume:
    """A CT volume (or a raster slice) with its geometry.

    ``voxels`` has axes [z, y, x] with z running feet -> head; int16 HU when ``is_hu``,
    otherwise the raster's grey levels. ``spacing`` is (z, y, x) in mm, or None for a raster
    without a known pixel size. ``affine`` maps (column, row, slice) indices to RAS mm.
    """

    voxels: np.ndarray
    spacing: tuple[float, float, float] | None
    affine: np.ndarray
    is_hu: bool
    source: SourceInfo
    patient: PatientInfo = field(default_factory=PatientInfo)
    dicom: DicomSource | None = field(default=None, repr=False, compare=False)
    study: StudyInfo = field(default_factory=StudyInfo)

    def __post_init__(self) -> None:
        """The affine is the geometry; ``spacing`` (when known) must be its column lengths, so the two
        can never disagree (a volume built otherwise is a bug, refused here)."""
        if self.spacing is None:
            return
        lengths = spacing_from_affine(self.affine)
        if not np.allclose(lengths, self.spacing, rtol=1e-4, atol=1e-6):
            raise ValueError(f"CtVolume spacing {self.spacing} disagrees with its affine's {lengths}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.voxels.shape)  # type: ignore[return-value]

    @property
    def is_2d(self) -> bool:
        return self.voxels.shape[0] == 1

    @property
    def voxel_mm3(self) -> float | None:
        """Volume of one voxel: |det| of the affine (right for tilted or sheared grids too);
        None without a known spacing or for a single slice."""
        if self.spacing is None or self.is_2d:
            return None
        return float(abs(np.linalg.det(np.asarray(self.affine, dtype=float)[:3, :3])))


@dataclass(frozen=True)
class StudyRef:
    """The CT a result lies on, without its pixels or patient identifiers: what a saved or exported
    result keeps of it (its grid, so labels can be checked and written on it, and its content hash,
    so the same scan is recognised again). ``affine`` is None only for results saved before the
    database kept grids; ``study_id`` is the database's, once saved."""

    source: SourceInfo
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float] | None
    affine: np.ndarray | None = field(compare=False)  # an array: compared with np.allclose, not ==
    is_hu: bool = True
    content_sha256: str = ""
    study_id: int | None = None
    patient_ref: int | None = None  # the database's patient row: studies of one patient share it
    study_date: str = ""  # YYYYMMDD as the database keeps it (shifted under a research pseudonym)

    @property
    def is_2d(self) -> bool:
        return self.shape[0] == 1


@dataclass(frozen=True)
class WorklistResult:
    """A saved result on a worklist study: the latest revision of one model's result."""

    result_id: int
    model_id: str
    saved_at: str  # YYYY-MM-DD HH:MM
    revision: int = 0
    author: str | None = None
    signed_by: str | None = None
    liver_volume_ml: float | None = None
    tumour_volume_ml: float | None = None
    lesion_count: int = 0
    owner: str | None = None


@dataclass(frozen=True)
class WorklistStudy:
    """One saved study of a patient: its date (ISO, "" when unknown), description, accession, the
    source as the reader names it, and its results (one per model, the latest revision). Under a
    research pseudonym ``date`` is shifted (``dates_shifted``) and the other identity is blank."""

    study_id: int
    date: str
    time: str
    description: str
    accession: str
    source: str
    results: tuple[WorklistResult, ...]
    patient_ref: int | None = None
    dates_shifted: bool = False

    def result_for(self, model_id: str | None = None) -> WorklistResult:
        """The result to read this study by: ``model_id``'s when there is one, else the newest."""
        same = [r for r in self.results if r.model_id == model_id]
        return (same or sorted(self.results, key=lambda r: (r.saved_at, r.result_id)))[-1]


@dataclass(frozen=True)
class WorklistPatient:
    """A patient of the worklist and their saved studies, newest first. ``patient_ref`` is None for
    the group of studies saved without any patient identity (each its own unknown patient)."""

    patient_ref: int | None
    name: str
    patient_id: str
    pseudonym: str
    sex: str
    birth_date: str
    studies: tuple[WorklistStudy, ...]

    @property
    def label(self) -> str:
        """How the worklist names the patient: name and ID, the pseudonym, or that none was kept."""
        if self.patient_ref is None:
            return "Saved without patient identity"
        if self.pseudonym:
            return f"Pseudonym {self.pseudonym[:12]}"
        name = self.name.replace("^", " ").strip()
        shown = " ".join(filter(None, (name, f"(ID {self.patient_id})" if self.patient_id else "")))
        return shown or f"Patient {self.patient_ref}"


@dataclass(frozen=True)
class Segmentation:
    """A label map (0 background, 1 liver, 2 tumour) on a CtVolume's grid, and the model's per-voxel
    confidence there (uint8 percent: the margin between its two most probable classes) when known."""

    labels: np.ndarray
    model_id: str
    model_sha256: str
    timings: dict[str, float]
    confidence: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Lesion:
    """One 3D connected tumour component, measured.

    Physical quantities are None when the spacing is unknown; the pixel counterparts are
    always given. Diameters follow RECIST 1.1: the longest in-plane diameter over the
    lesion's slices, and the longest extent perpendicular to it on that slice.
    """

    lesion_id: int
    voxel_count: int
    volume_ml: float | None
    largest_slice: int
    slice_range: tuple[int, int]
    largest_area_px: int
    largest_area_mm2: float | None
    longest_diameter_px: float
    longest_diameter_mm: float | None
    perpendicular_diameter_mm: float | None
    centroid_index: tuple[float, float, float]
    centroid_mm: tuple[float, float, float] | None
    mean_hu: float | None
    confidence: float | None = None  # 0..1, the model's mean margin over the lesion and its rim
    unsure: bool | None = None  # below the model's calibrated threshold; None when it has none
    edited: bool = False  # a reader drew, erased or relabelled some of it (its voxels count as certain)


@dataclass(frozen=True)
class Measurements:
    """Liver and tumour quantities measured from a Segmentation.

    For a volume with spacing, volumes are in mL. For a 2D raster, areas are in pixels and,
    when the user gave a pixel size, in mm².
    """

    is_2d: bool
    spacing: tuple[float, float, float] | None
    liver_voxels: int
    tumour_voxels: int
    liver_volume_ml: float | None
    tumour_volume_ml: float | None
    liver_area_mm2: float | None
    tumour_area_mm2: float | None
    tumour_burden_pct: float
    lesions: tuple[Lesion, ...]
    liver_confidence: float | None = None  # 0..1, the model's mean margin along the liver's edge
    liver_unsure: bool | None = None

    def check_first(self) -> tuple[Lesion, ...]:
        """The lesions in "check first" order: least confident first (by id when none is known)."""
        return tuple(sorted(self.lesions, key=lambda lesion: (lesion.confidence is None, lesion.confidence or 0.0)))


@dataclass(frozen=True)
class Report:
    """A diagnostic report: measured findings (always), and an LLM draft or why there is none."""

    findings: str
    draft: str | None
    draft_notice: str | None
    draft_model: str | None
    draft_endpoint: str | None
    created_at: str
    comparison: str | None = None  # "Comparison with prior", when the study was read against one
    impression: str | None = None  # the reader's own words (never the model's or the LLM's)
    author: str | None = None  # the reader who edited this text; None: as the machine wrote it
    signed_by: str | None = None  # the reader who signed it (then it is locked)
    signed_at: str | None = None  # when, "YYYY-MM-DD HH:MM" (UTC)
    revision: int = 0  # the result revision it was written on (0: the model's own labels)

    @property
    def is_signed(self) -> bool:
        return self.signed_by is not None


@dataclass(frozen=True)
class Revision:
    """A reader's revision of a model result: its number (1, 2, ... on top of the model's 0), who made
    it and when, and what changed (one plain dict per edit, as the editing operations describe it).
    ``base_result_id`` is the saved model result it revises, once that is saved."""

    number: int
    author: str
    created_at: str
    changes: tuple[dict[str, Any], ...]
    base_result_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "reader_edited": True,
            "author": self.author,
            "created_at": self.created_at,
            "changes": [dict(change) for change in self.changes],
            "base_result_id": self.base_result_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revision:
        return cls(
            number=int(data["number"]),
            author=str(data["author"]),
            created_at=str(data["created_at"]),
            changes=tuple(dict(change) for change in data.get("changes") or ()),
            base_result_id=int(data["base_result_id"]) if data.get("base_result_id") is not None else None,
        )

    def summary(self) -> str:
        """'lesion added, 1 lesion removed, 340 voxels painted' from the changes."""
        counts: dict[str, int] = {}
        for change in self.changes:
            kind = str(change.get("kind", "edit"))
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{n} × {kind}" for kind, n in sorted(counts.items())) or "no change"


@dataclass(frozen=True)
class ModelInfo:
    """The model a result came from, with its validation figures (what every report states)."""

    model_id: str
    name: str
    architecture: str = ""
    sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "name": self.name,
            "architecture": self.architecture,
            "sha256": self.sha256,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Read back what ``to_dict`` wrote (measurements.json, the database)."""
        return cls(
            model_id=str(data["id"]),
            name=str(data.get("name") or data["id"]),
            architecture=str(data.get("architecture") or ""),
            sha256=str(data.get("sha256") or ""),
            metrics=dict(data.get("metrics") or {}),
        )

    def validation_text(self) -> str:
        """'liver Dice 0.934 ± 0.040, ... (cross-validation: ...); protocol: ...' or 'not available'.

        The manifest's known figures read as words with their sd; any other number keeps its key."""
        values = {k: v for k, v in self.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        pieces = []
        for key, label, digits in _VALIDATION_FIGURES:
            if key in values:
                sd = values.get(f"{key}_sd")
                pieces.append(f"{label} {values[key]:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else ""))
        known = {key for key, _, _ in _VALIDATION_FIGURES} | {f"{key}_sd" for key, _, _ in _VALIDATION_FIGURES}
        known |= {"cv_folds", "cv_patients"}
        pieces += [f"{k} {v}" if isinstance(v, int) else f"{k} {v:.3f}" for k, v in values.items() if k not in known]
        figures = ", ".join(pieces)
        if "cv_folds" in values or "cv_patients" in values:
            scored = [f"{values['cv_folds']} fold(s) scored"] if "cv_folds" in values else []
            scored += [f"{values['cv_patients']} held-out patients"] if "cv_patients" in values else []
            figures += f" (cross-validation: {', '.join(scored)})"
        protocol = self.metrics.get("protocol")
        if not protocol:
            return figures or "not available"
        return f"{figures or 'no figures'}; protocol: {protocol}"


# The manifest metrics a report names in words: key, label, decimals (an entry's "KEY_sd" is its sd).
_VALIDATION_FIGURES = (
    ("liver_dice", "liver Dice", 3),
    ("tumour_dice", "tumour Dice", 3),
    ("global_liver_dice", "global liver Dice", 3),
    ("global_tumour_dice", "global tumour Dice", 3),
    ("lesion_recall", "lesion recall", 3),
    ("lesion_recall_10mm", "recall of lesions ≥ 10 mm", 3),
    ("false_positives", "false-positive lesions per case", 1),
    ("false_positives_10mm", "false positives ≥ 10 mm per case", 1),
    ("well_outlined_share", "share of true lesions outlined with lesion Dice ≥ 0.5 per case", 3),
    ("pooled_well_outlined_share", "of all true lesions", 3),
)


@dataclass(frozen=True)
class RecistAssessment:
    """A RECIST 1.1 response with the arithmetic it was decided on (``analysis/recist.py``)."""

    response: str  # CR, PR, SD, PD, or NE (no measurable target at baseline)
    response_name: str
    baseline_sum_mm: float
    nadir_sum_mm: float
    followup_sum_mm: float
    change_from_baseline_pct: float | None
    change_from_nadir_mm: float
    change_from_nadir_pct: float | None
    new_lesions: int
    arithmetic: tuple[str, ...]
    targets: tuple[int, ...] = ()  # baseline lesion ids


@dataclass(frozen=True)
class LesionChange:
    """One lesion across two studies: ``matched``, ``new``, ``gone``, ``split`` (one baseline lesion,
    several follow-up fragments: their volumes and diameters are summed, as RECIST sums
    fragments) or ``merged`` (a baseline lesion that coalesced into another's follow-up lesion)."""

    status: str
    baseline_id: int | None
    followup_ids: tuple[int, ...]
    baseline_volume_ml: float | None
    followup_volume_ml: float | None
    baseline_diameter_mm: float | None
    followup_diameter_mm: float | None
    volume_change_ml: float | None
    volume_change_pct: float | None
    diameter_change_mm: float | None
    diameter_change_pct: float | None
    distance_mm: float | None  # between the centroids, after registration
    overlap_dice: float | None  # after registration
    target: bool = False


@dataclass(frozen=True)
class Comparison:
    """A follow-up study read against a baseline: registration quality, each lesion's change, the
    liver and tumour changes, and the RECIST 1.1 response."""

    baseline_label: str
    followup_label: str
    registration: dict[str, Any]  # matrix (baseline RAS -> follow-up RAS), liver Dice before/after, seconds
    lesions: tuple[LesionChange, ...]
    liver_ml: tuple[float | None, float | None]
    tumour_ml: tuple[float | None, float | None]
    burden_pct: tuple[float, float]
    recist: RecistAssessment
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lesions"] = [asdict(change) for change in self.lesions]
        data["recist"] = asdict(self.recist)
        return data
