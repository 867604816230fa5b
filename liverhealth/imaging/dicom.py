"""DICOM CT input: one file, a folder (searched recursively) or a .zip of a folder.

A folder may hold several series and stray files. We keep the CT image series with the most
slices, order its slices by ImagePositionPatient along the slice normal (never by file
name), apply RescaleSlope/Intercept and build the RAS affine. Compressed transfer syntaxes
(JPEG 2000, JPEG-LS, RLE) decode through pylibjpeg.
"""

from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from nibabel import orientations
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from liverhealth.domain import CtVolume, DicomSource, PatientInfo, SourceInfo, StudyInfo, spacing_from_affine
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import check_affine, dicom_affine, reorient
from liverhealth.imaging.limits import check_slice, check_voxels, check_zip

# Storage classes that carry no image to segment (SEG, RTSTRUCT, SR, presentation states...).
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO", "REG", "DOC"}
SPACING_TOLERANCE = 0.1  # relative deviation of a slice gap before we call the series irregular
MAX_GAP_STEPS = 2.05  # a gap up to this many steps (one missing slice) is resampled; a wider one is refused


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
        raise InputError(
            f"{path} is not a readable zip archive ({exc}). Re-create the zip or "
            "open the unpacked DICOM folder instead."
        ) from exc
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir() and info.filename.startswith(prefix)]
        check_zip(entries, str(path))

        def read(info: zipfile.ZipInfo) -> bytes:
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(
                    f"{path}: entry {info.filename} is damaged ({exc}). Re-create the zip archive."
                ) from exc

        # zlib inflates without the GIL, so two readers halve the wait on a two-core machine.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for info, data in zip(entries, pool.map(read, entries), strict=True):
                yield f"{path}:{info.filename}", data


def _read_instance(name: str, source: bytes | Path) -> _Instance | None:
    """Parse one file as DICOM; None when it is not DICOM at all.

    pydicom's reading warnings (a damaged file's VR guessed, and the like) are not printed: they
    would break the one-line message a refused file gets, and a file that does read is checked
    by what follows."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dataset = pydicom.dcmread(handle)
    except InvalidDicomError:
        return None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{name} is a damaged or truncated DICOM file ({exc.__class__.__name__})."
            " Export the series again from the PACS."
        ) from exc
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
        raise InputError(
            f"No DICOM files found in {where}. Choose the folder that holds the CT series, or a NIfTI/NRRD/PNG file."
        )
    groups = _group_series(instances)
    ct_groups = [g for g in groups.values() if _is_image(g[0].dataset) and _is_ct(g[0].dataset)]
    if not ct_groups:
        raise InputError(
            f"{where} holds no CT image series (found: {_describe_series(groups)}). "
            "LiverHealth segments CT; choose the CT series."
        )
    return max(ct_groups, key=len)


def _floats(ds: Dataset, keyword: str, count: int, where: str) -> np.ndarray | None:
    """A numeric multi-value attribute as floats (None when absent); refuse NaN, wrong length or text."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        numbers = np.array(
            [float(v) for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value])],
            dtype=float,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {keyword} is not numeric ({str(value)[:40]}). Export the series again.") from exc
    if len(numbers) != count or not np.isfinite(numbers).all():
        raise InputError(f"{where}: {keyword} is invalid ({str(value)[:60]}). Export the series again.")
    return numbers


def _orientation(ds: Dataset, where: str) -> np.ndarray:
    """ImageOrientationPatient as two unit vectors, refused when degenerate; axial when absent."""
    iop = _floats(ds, "ImageOrientationPatient", 6, where)
    if iop is None:
        return np.array([1.0, 0, 0, 0, 1.0, 0])
    row, col = iop[:3], iop[3:]
    if min(np.linalg.norm(row), np.linalg.norm(col)) < 0.5 or abs(float(np.dot(row, col))) > 0.05 * (
        np.linalg.norm(row) * np.linalg.norm(col)
    ):
        raise InputError(
            f"{where}: ImageOrientationPatient ({', '.join(f'{v:g}' for v in iop)}) does not describe "
            "an image plane "
            "(zero or non-perpendicular directions). Export the series again."
        )
    return np.concatenate([row / np.linalg.norm(row), col / np.linalg.norm(col)])


def _pixel_spacing(ds: Dataset, where: str, notes: list[str]) -> tuple[float, float]:
    spacing = _floats(ds, "PixelSpacing", 2, where)
    if spacing is None:
        notes.append("no PixelSpacing: 1 mm assumed")
        return (1.0, 1.0)
    if spacing.min() <= 0 or spacing.max() > 50:
        raise InputError(
            f"{where}: PixelSpacing ({', '.join(f'{v:g}' for v in spacing)}) mm is not a pixel size. "
            "Export the series again."
        )
    return (float(spacing[0]), float(spacing[1]))


def _geometry_key(inst: _Instance) -> tuple:
    ds = inst.dataset
    iop = tuple(round(float(v), 3) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0]))
    spacing = tuple(round(float(v), 4) for v in ds.get("PixelSpacing", [1.0, 1.0]))
    return (int(ds.Rows), int(ds.Columns), iop, spacing)


def _one_acquisition(series: list[_Instance], notes: list[str]) -> list[_Instance]:
    """The largest set of slices sharing size, orientation and pixel spacing; others are left out,
    and said so (a localiser, or a second acquisition under the same SeriesInstanceUID)."""
    groups: dict[tuple, list[_Instance]] = defaultdict(list)
    for inst in series:
        groups[_geometry_key(inst)].append(inst)
    best = max(groups.values(), key=len)
    left_out = len(series) - len(best)
    if left_out:
        notes.append(
            f"{left_out} slice(s) of another acquisition in the same series (other size, orientation "
            "or pixel spacing) were left out"
        )
    return best


def _head_normal(orientation: np.ndarray) -> np.ndarray:
    """The slice normal of an ImageOrientationPatient, pointing to the head (LPS +z is superior)."""
    normal = np.cross(orientation[:3], orientation[3:6])
    return -normal if normal[2] < 0 else normal


def _sort_along_normal(series: list[_Instance]) -> tuple[list[_Instance], np.ndarray, np.ndarray]:
    """Order slices feet -> head by position (masks; CT goes through ``_place_slices``)."""
    ds0 = series[0].dataset
    orientation = np.array([float(v) for v in ds0.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])])
    normal = _head_normal(orientation)
    positions = []
    for index, inst in enumerate(series):
        ipp = inst.dataset.get("ImagePositionPatient")
        if ipp is None:
            number = inst.dataset.get("InstanceNumber")
            positions.append(np.array([0.0, 0.0, float(number if number is not None else index)]))
        else:
            positions.append(np.array([float(v) for v in ipp]))
    distances = np.array([float(np.dot(p, normal)) for p in positions])
    order = np.argsort(distances, kind="stable")
    return [series[i] for i in order], orientation, np.array([positions[i] for i in order])


@dataclass(frozen=True)
class _Placed:
    """CT slices in order with where each one lies: positions (LPS mm) and distances along the normal."""

    slices: list[_Instance]
    positions: np.ndarray
    distances: np.ndarray


def _slice_thickness(ds0: Dataset, where: str) -> float | None:
    """SpacingBetweenSlices, else SliceThickness (mm), when either is a positive number."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _floats(ds0, keyword, 1, where)
        if value is not None and value[0] > 0:
            return float(value[0])
    return None


def _spacing_without_positions(ds0: Dataset, where: str) -> float:
    thickness = _slice_thickness(ds0, where)
    if thickness is None:
        raise InputError(
            f"{where}: the slices have no ImagePositionPatient and no SliceThickness or "
            "SpacingBetweenSlices, so their spacing is unknown and no volume can be measured. Export "
            "the series with its geometry."
        )
    return thickness


def _place_slices(series: list[_Instance], normal: np.ndarray, where: str, notes: list[str]) -> _Placed:
    """Order the slices feet -> head and give each its position; without ImagePositionPatient, by
    InstanceNumber and SpacingBetweenSlices/SliceThickness (said so in the notes)."""
    ipps = [_floats(inst.dataset, "ImagePositionPatient", 3, where) for inst in series]
    if all(ipp is not None for ipp in ipps):
        positions = np.array(ipps)
    else:
        numbers = [inst.dataset.get("InstanceNumber") for inst in series]
        if any(n is None for n in numbers) or len(set(int(n) for n in numbers)) != len(numbers):
            raise InputError(
                f"{where}: the slices have no ImagePositionPatient and no distinct InstanceNumber, "
                "so their order is unknown. Export the series with its geometry."
            )
        step = _spacing_without_positions(series[0].dataset, where)
        order = np.argsort([int(n) for n in numbers])
        series = [series[i] for i in order]
        positions = np.array([normal * step * k for k in range(len(series))])
        notes.append(
            f"no ImagePositionPatient: slices ordered by InstanceNumber, {step:g} mm apart from "
            "SliceThickness/SpacingBetweenSlices; their position in the patient is unknown"
        )
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    return _Placed([series[i] for i in order], positions[order], distances[order])


def _drop_duplicates(placed: _Placed, where: str, notes: list[str]) -> _Placed:
    """Drop repeated slices (same position, same pixels); refuse different pixels at one position
    (two acquisitions mixed in one series)."""
    keep = [0]
    dropped = 0
    for i in range(1, len(placed.slices)):
        if abs(placed.distances[i] - placed.distances[keep[-1]]) > 1e-3:
            keep.append(i)
            continue
        same_uid = placed.slices[i].dataset.get("SOPInstanceUID") == placed.slices[keep[-1]].dataset.get(
            "SOPInstanceUID"
        )
        if not (same_uid or np.array_equal(_pixels(placed.slices[i]), _pixels(placed.slices[keep[-1]]))):
            raise InputError(
                f"{where}: two different slices lie at the same position "
                f"({placed.distances[i]:.2f} mm): the series mixes two acquisitions. Export each "
                "acquisition as its own series, or choose one."
            )
        dropped += 1
    if dropped:
        notes.append(f"{dropped} duplicated slice(s) dropped")
    return _Placed([placed.slices[i] for i in keep], placed.positions[keep], placed.distances[keep])


def _regular_grid(placed: _Placed, where: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The slice step vector (LPS) of a regular grid, and the target distances when the slices must be
    resampled onto it (None when they already are regular). A gap of more than two steps is refused."""
    if len(placed.slices) < 2:
        return np.zeros(3), None
    gaps = np.diff(placed.distances)
    median = float(np.median(gaps))
    if np.all(np.abs(gaps - median) <= SPACING_TOLERANCE * median):
        return (placed.positions[-1] - placed.positions[0]) / (len(placed.slices) - 1), None
    worst = int(np.argmax(gaps))
    if gaps[worst] > MAX_GAP_STEPS * median:
        raise InputError(
            f"{where}: slices are missing between {placed.distances[worst]:.1f} and "
            f"{placed.distances[worst + 1]:.1f} mm (a {gaps[worst]:.1f} mm gap; the other slices are "
            f"{median:.2f} mm apart). Export the complete series."
        )
    count = round(float(placed.distances[-1] - placed.distances[0]) / median) + 1
    step_mm = (placed.distances[-1] - placed.distances[0]) / (count - 1)
    direction = (placed.positions[-1] - placed.positions[0]) / (placed.distances[-1] - placed.distances[0])
    notes.append(
        f"irregular slice spacing ({gaps.min():.2f}-{gaps.max():.2f} mm): resampled onto a regular "
        f"{step_mm:.2f} mm grid of {count} slices"
    )
    return direction * step_mm, placed.distances[0] + step_mm * np.arange(count)


def _resample_slices(voxels: np.ndarray, distances: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation of [z, y, x] slices at ``distances`` onto ``targets`` (mm along the normal)."""
    upper = np.clip(np.searchsorted(distances, targets, side="right"), 1, len(distances) - 1)
    lower = upper - 1
    weight = np.clip((targets - distances[lower]) / (distances[upper] - distances[lower]), 0.0, 1.0)
    out = np.empty((len(targets), *voxels.shape[1:]), dtype=np.int16)
    for k, (i, j, w) in enumerate(zip(lower, upper, weight, strict=True)):
        out[k] = np.rint(voxels[i] * (1.0 - w) + voxels[j] * w).astype(np.int16)
    return out


def _pixels(inst: _Instance) -> np.ndarray:
    ds = inst.dataset
    try:
        array = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for damaged or undecodable data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        reason = str(exc).split(" - ")[0][:160]
        raise InputError(
            f"Cannot decode the pixels of {inst.name} (transfer syntax {syntax}): "
            f"{reason}. The file may be truncated; export the series again."
        ) from exc
    if array.ndim != 2:
        raise InputError(
            f"{inst.name} is a multi-frame or colour image; LiverHealth reads single-frame greyscale CT slices."
        )
    return array


def _to_hu(inst: _Instance) -> np.ndarray:
    ds = inst.dataset
    array = _pixels(inst)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope != 1 or intercept != 0:
        array = array.astype(np.float32) * slope + intercept
    elif array.dtype == np.int16:  # stored HU already: nothing to convert or clip
        return array
    return np.clip(array, -32768, 32767).astype(np.int16, copy=False)


def _patient(ds: Dataset) -> PatientInfo:
    return PatientInfo(
        name=str(ds.get("PatientName", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        sex=str(ds.get("PatientSex", "") or ""),
        birth_date=str(ds.get("PatientBirthDate", "") or ""),
    )


_PHASE_WORDS = (  # phase and its keywords (whole words), most specific first
    ("non-contrast", r"NON[- ]?CONTRAST|NATIVE?|UNENHANCED|PLAIN|W/O|WITHOUT CONTRAST"),
    ("arterial", r"(LATE )?ARTERIAL|ART|HAP"),
    ("portal venous", r"PORTAL|PORTAL[- ]VENOUS|VENOUS|PVP|PV"),
    ("delayed", r"DELAYED|EQUILIBRIUM|LATE PHASE"),
)


def contrast_phase(ds: Dataset) -> str:
    """The contrast phase a series states, from whole-word keywords of its descriptions ("" when
    none says). Only the phase is kept, never the free text (it can hold the patient's name)."""
    text = " ".join(
        str(ds.get(keyword, "") or "") for keyword in ("SeriesDescription", "ProtocolName", "ContrastBolusRoute")
    ).upper()
    for phase, words in _PHASE_WORDS:
        if re.search(rf"(?<![A-Z0-9])({words})(?![A-Z0-9])", text):
            return phase
    return ""


def _study(ds: Dataset, where: str) -> StudyInfo:
    """The study's identity and technique as the first slice states them."""
    phase = contrast_phase(ds)
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip()
    contrast = "yes" if agent or phase in ("arterial", "portal venous", "delayed") else ""
    if phase == "non-contrast" and not agent:
        contrast = "no"
    try:
        thickness = _floats(ds, "SliceThickness", 1, where)
    except InputError:  # a malformed thickness is "not stated" here; the geometry checks it apart
        thickness = None
    return StudyInfo(
        study_date=str(ds.get("StudyDate", "") or "").strip(),
        study_time=str(ds.get("StudyTime", "") or "").strip(),
        accession=str(ds.get("AccessionNumber", "") or "").strip(),
        description=str(ds.get("StudyDescription", "") or "").strip(),
        institution=str(ds.get("InstitutionName", "") or "").strip(),
        referring_physician=str(ds.get("ReferringPhysicianName", "") or "").strip(),
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        phase=phase,
        contrast=contrast,
        slice_thickness_mm=float(thickness[0]) if thickness is not None and thickness[0] > 0 else None,
    )


def series_to_volume(series: list[_Instance], path: str, fmt: str) -> CtVolume:
    """Assemble CT slices into an axial CtVolume whose geometry can be trusted.

    One acquisition only; slices ordered and placed by position (or, said so, by InstanceNumber
    and slice thickness); repeated slices dropped; irregular spacing resampled onto a regular
    grid (a gap of more than two steps is refused); sagittal and coronal series reoriented to
    axial like NIfTI; degenerate geometry refused before any pixel is decoded.
    """
    notes: list[str] = []
    series = _one_acquisition(series, notes)
    ds0 = series[0].dataset
    orientation = _orientation(ds0, path)
    pixel_spacing = _pixel_spacing(ds0, path, notes)
    placed = _drop_duplicates(_place_slices(series, _head_normal(orientation), path, notes), path, notes)
    step, targets = _regular_grid(placed, path, notes)
    if len(placed.slices) < 2:
        step = _head_normal(orientation) * (_slice_thickness(ds0, path) or 1.0)
    affine = dicom_affine(placed.positions[0], orientation, pixel_spacing, step)
    check_affine(affine, path)
    check_slice(int(ds0.Rows), int(ds0.Columns), path)
    check_voxels((len(placed.slices), int(ds0.Rows), int(ds0.Columns)), path)
    voxels = np.stack([_to_hu(inst) for inst in placed.slices])
    if targets is not None:
        voxels = _resample_slices(voxels, placed.distances, targets)
    reoriented = "".join(orientations.aff2axcodes(affine)) != "LPS"
    voxels, affine = _axial(voxels, affine, notes)
    # No free text (SeriesDescription, StudyDescription, ProtocolName): it can hold the patient's name.
    description = f"{ds0.get('Modality', '') or 'CT'!s} series"
    z, rows, columns = voxels.shape
    source = SourceInfo(
        format=fmt,
        path=path,
        description=f"{description}, {z} slices of {rows}×{columns}",
        slice_count=z,
        series_uid=str(ds0.get("SeriesInstanceUID", "")),
        modality=str(ds0.get("Modality", "")),
        notes=tuple(notes),
    )
    refusal = (
        "its slices were resampled onto a regular grid"
        if targets is not None
        else "it was reoriented to axial"
        if reoriented
        else ""
    )
    return CtVolume(
        voxels=voxels,
        spacing=spacing_from_affine(affine),
        affine=affine,
        is_hu=True,
        source=source,
        patient=_patient(ds0),
        dicom=_dicom_source(ds0, placed.slices, refusal),
        study=_study(ds0, path),
    )


def _dicom_source(ds0: Dataset, slices: list[_Instance], refusal: str) -> DicomSource:
    """The series' UIDs and, when the array is one-to-one with the slices, their headers in array order."""
    headers: tuple[Dataset, ...] = ()
    if not refusal:
        headers = tuple(_header(inst.dataset) for inst in slices)
    return DicomSource(
        study_uid=str(ds0.get("StudyInstanceUID", "")),
        series_uid=str(ds0.get("SeriesInstanceUID", "")),
        frame_of_reference_uid=str(ds0.get("FrameOfReferenceUID", "")),
        sop_instance_uids=tuple(str(h.get("SOPInstanceUID", "")) for h in headers),
        headers=headers,
        derived_refusal=refusal,
    )


def _header(dataset: Dataset) -> Dataset:
    """A slice's header without its pixel data (what a derived object copies and references); SOP
    Class and Instance UIDs that some exports leave out of the dataset are taken from the file meta."""
    header = Dataset(dataset)  # a shallow copy: elements stay unparsed until a writer reads them
    header.pop(0x7FE00010, None)
    meta = getattr(dataset, "file_meta", Dataset())
    header.file_meta = meta
    for keyword, meta_keyword in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):
        if not header.get(keyword) and meta.get(meta_keyword):
            setattr(header, keyword, meta.get(meta_keyword))
    return header


def _axial(voxels: np.ndarray, affine: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sagittal/coronal slices reoriented to axial [z, y, x] (L, P, S), as the NIfTI reader does;
    a tilted or sheared grid is noted (volumes use |det| of the affine)."""
    codes = "".join(orientations.aff2axcodes(affine))
    if codes != "LPS":
        voxels, affine = reorient(voxels.transpose(2, 1, 0), affine)
        plane = {"S": "axial", "L": "sagittal", "R": "sagittal", "P": "coronal", "A": "coronal"}[codes[2]]
        notes.append(f"{plane} series ({codes}) reoriented to axial")
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    shear = max(abs(float(axes[:, 2] @ axes[:, 0])), abs(float(axes[:, 2] @ axes[:, 1])))
    if shear > 1e-3:
        notes.append(
            f"slices tilted or sheared by {np.degrees(np.arcsin(min(shear, 1.0))):.1f}°: volumes use "
            "the true voxel volume"
        )
    return voxels, affine


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
        raise InputError(
            f"{path} is not a DICOM file (no DICM header). Open a DICOM series, "
            "a NIfTI/NRRD volume or a PNG/JPG/BMP/TIFF image."
        )
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
