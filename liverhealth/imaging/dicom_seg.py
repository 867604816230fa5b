"""DICOM Segmentation (SEG) out and in: our label map as a BINARY SEG on the source CT slices
(highdicom), and any SEG read back as a label map on a CT's grid, frames placed by position.

Out: two segments, 1 liver (SCT 10200004, liver and tumour: the whole organ) and 2 liver
tumour (SCT 108369006 Neoplasm, category Morphologically abnormal structure), algorithm type
AUTOMATIC named by the model id and LiverHealth's version; one frame per source slice, empty
frames kept (``omit_empty_frames=False``, which OHIF needs). ``labels = liver + tumour`` gives
the label map back. In: each frame's ImagePositionPatient is mapped through the CT's affine to
its slice, so a SEG fits the CT whatever order its frames or the CT's files are in.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from liverhealth import __version__
from liverhealth.domain import CtVolume, Label, ModelInfo
from liverhealth.errors import InputError, OutputError
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.imaging.writers import atomic_target
from liverhealth.redact import scrub_identifiers
from liverhealth.text import one_line

LIVER = hd.sr.CodedConcept("10200004", "SCT", "Liver")
LIVER_CODES = {"10200004", "T-62000"}  # SNOMED CT, and SNOMED RT in older SEGs (dcmqi's)
NEOPLASM = hd.sr.CodedConcept("108369006", "SCT", "Neoplasm")
ORGAN = hd.sr.CodedConcept("123037004", "SCT", "Anatomical Structure")
ABNORMAL = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Abnormal Structure")
# neoplasm, malignant neoplasm, mass, liver neoplasm (SNOMED CT; M-80003 SNOMED RT): tumour in a reference SEG
TUMOUR_CODES = {"108369006", "86049000", "4147007", "126851005", "M-80003"}
SEG_SERIES_NUMBER = 900
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
POSITION_TOLERANCE_MM = 0.05


def source_headers(volume: CtVolume) -> tuple[Dataset, ...]:
    """The CT's slice headers in array order, or a one-line refusal: a SEG must lie on them."""
    dicom = volume.dicom
    if dicom is None:
        raise InputError(
            f"A DICOM SEG/SR needs a DICOM CT input; {volume.source.format} has no DICOM slices to refer to. "
            "Use labels.nii.gz instead."
        )
    if dicom.derived_refusal or len(dicom.headers) != volume.shape[0]:
        raise InputError(
            f"No DICOM SEG/SR can be made on this series: {dicom.derived_refusal or 'its slices are not the array'}, "
            "so its slices are not the ones segmented. Use labels.nii.gz (on the corrected grid) instead."
        )
    return dicom.headers


def frame_of_reference(volume: CtVolume) -> tuple[str, bool]:
    """(FrameOfReferenceUID, derived?) A series without one (some anonymised sets) gets one derived
    from its SeriesInstanceUID, the same every time, and the notes say so."""
    dicom = volume.dicom
    if dicom is not None and dicom.frame_of_reference_uid:
        return dicom.frame_of_reference_uid, False
    series = dicom.series_uid if dicom is not None else ""
    return generate_uid(entropy_srcs=["liverhealth frame of reference", series]), True


def _completed(headers: tuple[Dataset, ...], frame_of_reference_uid: str) -> list[Dataset]:
    """Source headers with what a derived object needs and some exports leave out: a frame of
    reference, study or series UID derived the same way every time when the series has none (see
    ``frame_of_reference``); the SOP UIDs are the reader's (from the file meta when missing)."""
    needed = ("FrameOfReferenceUID", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    if all(h.get(keyword) for h in headers for keyword in needed) and all(
        h.get("SpecificCharacterSet", "ISO_IR 100") for h in headers
    ):
        return list(headers)
    series = next((str(h.SeriesInstanceUID) for h in headers if h.get("SeriesInstanceUID")), "")
    study = next((str(h.StudyInstanceUID) for h in headers if h.get("StudyInstanceUID")), "")
    completed = []
    for header in headers:
        copy = Dataset(header)
        copy.file_meta = header.file_meta
        if not copy.get("FrameOfReferenceUID"):
            copy.FrameOfReferenceUID = frame_of_reference_uid
        if not copy.get("SOPClassUID"):
            copy.SOPClassUID = CT_IMAGE_STORAGE
        if not copy.get("SOPInstanceUID"):
            raise InputError("A slice of this series has no SOP Instance UID: a DICOM SEG cannot refer to it.")
        if not copy.get("SeriesInstanceUID"):
            copy.SeriesInstanceUID = series or generate_uid(entropy_srcs=["liverhealth series", frame_of_reference_uid])
        if not copy.get("StudyInstanceUID"):
            copy.StudyInstanceUID = study or generate_uid(entropy_srcs=["liverhealth study", copy.SeriesInstanceUID])
        if "SpecificCharacterSet" in copy and not copy.SpecificCharacterSet:
            del copy.SpecificCharacterSet  # empty means the default repertoire
        completed.append(copy)
    return completed


def build_seg(
    volume: CtVolume,
    labels: np.ndarray,
    model: ModelInfo,
    edit: SegEdit | None = None,
) -> Dataset:
    """The SEG of a label map on ``volume`` (a DICOM CT read one-to-one). With ``edit`` (a reader's
    revision), a new series in the same study and frame of reference: a segment the reader changed is
    SEMIAUTOMATIC (MANUAL when the reader drew all of it), and the model's SEG is referenced."""
    headers = source_headers(volume)
    if labels.shape != volume.shape:
        raise OutputError(f"The label map {labels.shape} is not on the CT's grid {volume.shape}.")
    uid, _ = frame_of_reference(volume)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.model_id[:64], version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    masks = np.stack([labels >= Label.LIVER, labels == Label.TUMOUR], axis=-1)
    kinds = [_algorithm_type(masks[..., i], edit) for i in range(2)]
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=kinds[number - 1],
            algorithm_identification=None if kinds[number - 1] == MANUAL else algorithm,
            tracking_uid=generate_uid(),
            tracking_id=label,
            anatomic_regions=regions,
        )
        for number, label, category, kind, regions in (
            (1, "liver", ORGAN, LIVER, None),
            (2, "liver tumour", ABNORMAL, NEOPLASM, [LIVER]),
        )
    ]
    with derived_object_errors(volume, "SEG"):
        seg = _segmentation(headers, uid, masks, segments, model, edit)
    if edit is not None and edit.model_seg is not None:
        _reference(seg, edit.model_seg)
    return seg


MANUAL = hd.seg.SegmentAlgorithmTypeValues.MANUAL


@dataclass(frozen=True)
class SegEdit:
    """What a reader's revision adds to its SEG: the revision number, the reader, the voxels the reader
    drew, and the model's SEG it revises (when written beside it)."""

    revision: int
    reader: str
    reader_drawn: np.ndarray
    model_seg: Dataset | None = None


def _algorithm_type(mask: np.ndarray, edit: SegEdit | None) -> hd.seg.SegmentAlgorithmTypeValues:
    """AUTOMATIC for the model's own segment; for a revision, SEMIAUTOMATIC where the reader changed it
    (a drawn voxel inside it, or one taken out of it), MANUAL where every voxel is the reader's."""
    if edit is None or not edit.reader_drawn.any():
        return hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    drawn_inside = edit.reader_drawn & mask
    if mask.any() and drawn_inside.sum() == mask.sum():
        return MANUAL
    return hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC


def _reference(seg: Dataset, model_seg: Dataset) -> None:
    """Name the model's SEG among the instances this SEG references (Common Instance Reference)."""
    item = Dataset()
    item.SeriesInstanceUID = model_seg.SeriesInstanceUID
    instance = Dataset()
    instance.ReferencedSOPClassUID = model_seg.SOPClassUID
    instance.ReferencedSOPInstanceUID = model_seg.SOPInstanceUID
    item.ReferencedInstanceSequence = [instance]
    seg.ReferencedSeriesSequence.append(item)


@contextmanager
def derived_object_errors(volume: CtVolume, kind: str) -> Iterator[None]:
    """highdicom's checks of the source headers as one line, and its warnings (which quote header
    values such as the patient's name) kept off the terminal and the logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            reason = scrub_identifiers(one_line(exc, 160), volume.patient)
            raise OutputError(
                f"The DICOM {kind} cannot be made: the source series lacks or mis-states an attribute it needs "
                f"({type(exc).__name__}: {reason}). labels.nii.gz and measurements.json are written."
            ) from exc


def _segmentation(
    headers, uid: str, masks: np.ndarray, segments: list, model: ModelInfo, edit: SegEdit | None
) -> Dataset:
    if edit is None:
        description = "LiverHealth segmentation (draft, not reviewed)"
        content = f"Automatic segmentation, {model.model_id}: draft"
    else:
        description = f"LiverHealth segmentation, revision {edit.revision} (reader-edited)"
        content = f"{model.model_id} edited by the reader, revision {edit.revision}"
    seg = hd.seg.Segmentation(
        source_images=_completed(headers, uid),
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER + (edit.revision if edit else 0),
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="LiverHealth",
        manufacturer_model_name="LiverHealth",
        software_versions=__version__,
        device_serial_number="0",
        series_description=description,
        content_label="LIVER",
        content_description=content[:64],
        content_creator_name=person_name(edit.reader) if edit else None,
        omit_empty_frames=False,
    )
    return seg


def person_name(name: str) -> str:
    """A reader's name as a DICOM PN value (no component separators, at most 64 characters)."""
    return name.replace("^", " ").replace("=", " ").replace("\\", " ")[:64]


def save_dataset(dataset: Dataset, path: Path) -> None:
    """Write a DICOM object whole or not at all."""
    with atomic_target(path) as temporary:
        dataset.save_as(str(temporary), enforce_file_format=True)


def read_seg_labels(path: Path, volume: CtVolume) -> np.ndarray:
    """A DICOM SEG as a 0/1/2 label map on ``volume``'s grid: each frame placed by its position
    through the CT's affine; liver segments give 1, tumour segments 2 (tumour wins)."""
    try:
        seg = pydicom.dcmread(str(path))
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise InputError(f"{path} is not a readable DICOM file ({exc}).") from exc
    if seg.get("Modality") != "SEG" or "SegmentSequence" not in seg:
        raise InputError(f"{path} is not a DICOM Segmentation (Modality {seg.get('Modality', '?')}).")
    roles = {}
    for item in seg.SegmentSequence:
        code = item.SegmentedPropertyTypeCodeSequence[0].CodeValue
        role = Label.LIVER if code in LIVER_CODES else Label.TUMOUR if code in TUMOUR_CODES else Label.BACKGROUND
        roles[int(item.SegmentNumber)] = role
    if not any(roles.values()):
        names = ", ".join(str(item.get("SegmentLabel", "?")) for item in seg.SegmentSequence)
        raise InputError(f"{path} holds no liver or liver tumour segment (segments: {names}).")
    frames = seg.pixel_array.reshape(int(seg.get("NumberOfFrames", 1)), seg.Rows, seg.Columns)
    if seg.get("SegmentationType") == "FRACTIONAL":
        frames = frames >= (int(seg.get("MaximumFractionalValue", 255)) + 1) // 2
    labels = np.zeros(volume.shape, dtype=np.uint8)
    to_index = np.linalg.inv(np.asarray(volume.affine, dtype=float))
    shared = seg.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    for number, (frame, group) in enumerate(zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True), 1):
        segment = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        role = roles.get(segment, 0)
        if not role:
            continue
        position = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        orientation = (group.get("PlaneOrientationSequence") or shared.get("PlaneOrientationSequence"))[0]
        _check_orientation(orientation.ImageOrientationPatient, volume, path, number)
        column, row, z = (to_index @ np.append(LPS_TO_RAS[:3, :3] @ position, 1.0))[:3]
        k = round(z)
        if abs(z - k) > POSITION_TOLERANCE_MM or not 0 <= k < volume.shape[0] or abs(column) > 0.5 or abs(row) > 0.5:
            raise InputError(
                f"{path}: frame {number} lies at {position.round(2).tolist()} mm, not on a slice of this CT; "
                "the SEG belongs to another series."
            )
        if frame.shape != volume.shape[1:]:
            raise InputError(f"{path}: frames of {frame.shape} do not match the CT's slices {volume.shape[1:]}.")
        target = labels[k]
        mask = frame.astype(bool)
        target[mask & (target < role)] = role
    return labels


def _check_orientation(orientation, volume: CtVolume, path: Path, number: int) -> None:
    rows_cols = np.asarray(orientation, dtype=float).reshape(2, 3)
    axes = LPS_TO_RAS[:3, :3] @ np.asarray(volume.affine, dtype=float)[:3, :2]
    axes = axes / np.linalg.norm(axes, axis=0)
    if not np.allclose(rows_cols, axes.T, atol=1e-3):
        raise InputError(f"{path}: frame {number} is not in the plane of this CT's slices; refusing to guess.")
