"""DICOM CT input: one file, a folder (searched recursively) or a .zip of a folder.

A folder may hold several series and stray files. We keep the CT image series with the most
slices, order its slices by ImagePositionPatient along the slice normal (never by file
name), apply RescaleSlope/Intercept and build the RAS affine. Compressed transfer syntaxes
(JPEG 2000, JPEG-LS, RLE) decode through pylibjpeg.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from liverhealth.errors import InputError
from liverhealth.imaging.geometry import dicom_affine, spacing_from_affine
from liverhealth.types import CtVolume, PatientInfo, SourceInfo

# Storage classes that carry no image to segment (SEG, RTSTRUCT, SR, presentation states...).
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO", "REG", "DOC"}
SPACING_TOLERANCE = 0.1  # relative deviation of a slice gap before we call the series irregular


@dataclass(frozen=True)
class _Instance:
    name: str
    dataset: Dataset


def _iter_folder(folder: Path) -> Iterator[tuple[str, bytes | Path]]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield str(path), path


def _iter_zip(path: Path, prefix: str = "") -> Iterator[tuple[str, bytes | Path]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path} is not a readable zip archive ({exc}). Re-create the zip or "
                         "open the unpacked DICOM folder instead.") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(f"{path}: entry {info.filename} is damaged ({exc}). "
                                 "Re-create the zip archive.") from exc
            yield f"{path}:{info.filename}", data


def _read_instance(name: str, source: bytes | Path) -> _Instance | None:
    """Parse one file as DICOM; None when it is not DICOM at all."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        dataset = pydicom.dcmread(handle)
    except InvalidDicomError:
        return None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{name} is a damaged or truncated DICOM file ({exc.__class__.__name__})."
                         " Export the series again from the PACS.") from exc
    return _Instance(name, dataset)


def _is_image(ds: Dataset) -> bool:
    return "PixelData" in ds and str(ds.get("Modality", "")).upper() not in NON_IMAGE_MODALITIES


def _is_ct(ds: Dataset) -> bool:
    # IRCADb-style binary masks are stored as 8-bit "CT" images; a real CT is never 8-bit.
    return str(ds.get("Modality", "")).upper() == "CT" and int(ds.get("BitsAllocated", 16)) >= 12


def _describe_series(groups: dict[str, list[_Instance]]) -> str:
    parts = []
    for instances in groups.values():
        ds = instances[0].dataset
        kind = str(ds.get("Modality", "unknown modality")) or "unknown modality"
        if kind.upper() == "CT" and not _is_ct(ds):
            kind = "8-bit CT (a mask or secondary capture)"
        parts.append(f"{kind} × {len(instances)}")
    return ", ".join(parts)


def _group_series(instances: list[_Instance]) -> dict[str, list[_Instance]]:
    groups: dict[str, list[_Instance]] = defaultdict(list)
    for inst in instances:
        groups[str(inst.dataset.get("SeriesInstanceUID", "unknown"))].append(inst)
    return groups


def _pick_ct_series(instances: list[_Instance], where: str) -> list[_Instance]:
    if not instances:
        raise InputError(f"No DICOM files found in {where}. Choose the folder that holds the CT "
                         "series, or a NIfTI/NRRD/PNG file.")
    groups = _group_series(instances)
    ct_groups = [g for g in groups.values() if _is_image(g[0].dataset) and _is_ct(g[0].dataset)]
    if not ct_groups:
        raise InputError(f"{where} holds no CT image series (found: {_describe_series(groups)}). "
                         "LiverHealth segments CT; choose the CT series.")
    return max(ct_groups, key=len)


def _majority_geometry(series: list[_Instance]) -> list[_Instance]:
    """Drop slices whose size or orientation differs from the majority (e.g. a localiser)."""
    def key(inst: _Instance) -> tuple:
        ds = inst.dataset
        iop = tuple(round(float(v), 3) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0]))
        return (int(ds.Rows), int(ds.Columns), iop)

    counts: dict[tuple, int] = defaultdict(int)
    for inst in series:
        counts[key(inst)] += 1
    best = max(counts, key=counts.get)  # type: ignore[arg-type]
    return [inst for inst in series if key(inst) == best]


def _head_normal(orientation: np.ndarray) -> np.ndarray:
    """The slice normal of an ImageOrientationPatient, pointing to the head (LPS +z is superior)."""
    normal = np.cross(orientation[:3], orientation[3:6])
    return -normal if normal[2] < 0 else normal


def _sort_along_normal(series: list[_Instance]) -> tuple[list[_Instance], np.ndarray, np.ndarray]:
    """Order slices feet -> head; returns the slices, their orientation and slice positions."""
    ds0 = series[0].dataset
    orientation = np.array([float(v) for v in ds0.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])])
    normal = _head_normal(orientation)
    positions = []
    for index, inst in enumerate(series):
        ipp = inst.dataset.get("ImagePositionPatient")
        if ipp is None:  # no geometry: fall back on InstanceNumber, then file order
            number = inst.dataset.get("InstanceNumber")
            positions.append(np.array([0.0, 0.0, float(number if number is not None else index)]))
        else:
            positions.append(np.array([float(v) for v in ipp]))
    distances = np.array([float(np.dot(p, normal)) for p in positions])
    order = np.argsort(distances, kind="stable")
    return [series[i] for i in order], orientation, np.array([positions[i] for i in order])


def _pixels(inst: _Instance) -> np.ndarray:
    ds = inst.dataset
    try:
        array = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for damaged or undecodable data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        reason = str(exc).split(" - ")[0][:160]
        raise InputError(f"Cannot decode the pixels of {inst.name} (transfer syntax {syntax}): "
                         f"{reason}. The file may be truncated; export the series again.") from exc
    if array.ndim != 2:
        raise InputError(f"{inst.name} is a multi-frame or colour image; LiverHealth reads "
                         "single-frame greyscale CT slices.")
    return array


def _to_hu(inst: _Instance) -> np.ndarray:
    ds = inst.dataset
    array = _pixels(inst)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    hu = array.astype(np.float32) * slope + intercept if (slope != 1 or intercept != 0) else array
    return np.clip(hu, -32768, 32767).astype(np.int16, copy=False)


def _slice_step(positions: np.ndarray, ds0: Dataset, normal: np.ndarray) -> tuple[np.ndarray, list[str]]:
    notes: list[str] = []
    if len(positions) < 2:
        thickness = float(ds0.get("SpacingBetweenSlices", ds0.get("SliceThickness", 1.0)) or 1.0)
        return normal * thickness, notes
    steps = np.diff(positions, axis=0)
    gaps = np.linalg.norm(steps, axis=1)
    median_gap = float(np.median(gaps))
    if median_gap <= 0:
        raise InputError("The DICOM slices share one position; the series is a duplicate set or "
                         "not a volume. Choose a single CT series.")
    if np.any(np.abs(gaps - median_gap) > SPACING_TOLERANCE * median_gap):
        notes.append(f"irregular slice spacing ({gaps.min():.2f}-{gaps.max():.2f} mm); "
                     f"volumes use the median {median_gap:.2f} mm")
    return np.median(steps, axis=0), notes


def _patient(ds: Dataset) -> PatientInfo:
    return PatientInfo(
        name=str(ds.get("PatientName", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        sex=str(ds.get("PatientSex", "") or ""),
        birth_date=str(ds.get("PatientBirthDate", "") or ""),
    )


def series_to_volume(series: list[_Instance], path: str, fmt: str) -> CtVolume:
    """Assemble sorted CT slices into a CtVolume."""
    series, orientation, positions = _sort_along_normal(_majority_geometry(series))
    ds0 = series[0].dataset
    step, notes = _slice_step(positions, ds0, _head_normal(orientation))
    pixel_spacing = [float(v) for v in ds0.get("PixelSpacing", [1.0, 1.0])]
    if "PixelSpacing" not in ds0:
        notes.append("no PixelSpacing: 1 mm assumed")
    voxels = np.stack([_to_hu(inst) for inst in series])
    affine = dicom_affine(positions[0], orientation, (pixel_spacing[0], pixel_spacing[1]), step)
    description = str(ds0.get("SeriesDescription", "") or ds0.get("StudyDescription", "") or "CT")
    source = SourceInfo(
        format=fmt,
        path=path,
        description=f"{description}, {len(series)} slices of {ds0.Rows}×{ds0.Columns}",
        slice_count=len(series),
        series_uid=str(ds0.get("SeriesInstanceUID", "")),
        modality=str(ds0.get("Modality", "")),
        notes=tuple(notes),
    )
    return CtVolume(voxels=voxels, spacing=spacing_from_affine(affine), affine=affine,
                    is_hu=True, source=source, patient=_patient(ds0))


def _read_all(entries: Iterator[tuple[str, bytes | Path]]) -> list[_Instance]:
    instances = []
    for name, source in entries:
        inst = _read_instance(name, source)
        if inst is not None:
            instances.append(inst)
    return instances


def load_dicom_file(path: Path) -> CtVolume:
    """Load one DICOM file as a one-slice volume."""
    inst = _read_instance(str(path), path)
    if inst is None:
        raise InputError(f"{path} is not a DICOM file (no DICM header). Open a DICOM series, "
                         "a NIfTI/NRRD volume or a PNG/JPG/BMP/TIFF image.")
    series = _pick_ct_series([inst], str(path))
    return series_to_volume(series, str(path), "DICOM file")


def load_dicom_folder(path: Path) -> CtVolume:
    """Load the CT series with the most slices found anywhere under ``path``."""
    series = _pick_ct_series(_read_all(_iter_folder(path)), str(path))
    return series_to_volume(series, str(path), "DICOM folder")


def load_dicom_zip(path: Path, prefix: str = "") -> CtVolume:
    """Load the CT series with the most slices from a zip (optionally only under ``prefix``)."""
    series = _pick_ct_series(_read_all(_iter_zip(path, prefix)), f"{path}:{prefix}" if prefix else str(path))
    return series_to_volume(series, str(path), "DICOM zip")


def read_mask_series(path: Path, prefix: str = "") -> np.ndarray:
    """Read a binary mask stored as a DICOM image series (IRCADb style) as bool [z, y, x].

    Slices are ordered feet -> head exactly like the CT, so the mask lines up with
    ``load_dicom_*`` of the matching CT series.
    """
    entries = _iter_zip(path, prefix) if path.suffix.lower() == ".zip" else _iter_folder(path / prefix)
    instances = [inst for inst in _read_all(entries) if "PixelData" in inst.dataset]
    if not instances:
        raise InputError(f"No mask slices found in {path}:{prefix}.")
    ordered, _, _ = _sort_along_normal(instances)
    return np.stack([_pixels(inst) != 0 for inst in ordered])
