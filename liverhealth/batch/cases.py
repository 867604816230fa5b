"""The cases of a batch: files, folders (each DICOM series folder or NIfTI/NRRD/image file inside
is one case) or a CSV (path, optional case_id), with unique, file-system-safe case ids, and the
content hash a rerun compares."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from liverhealth.errors import InputError
from liverhealth.imaging import RASTER_SUFFIXES, VOLUME_SUFFIXES


@dataclass(frozen=True)
class Case:
    """One CT of the batch: its id (the output folder's name) and its absolute input path."""

    case_id: str
    path: str


def discover(inputs: Iterable[str | Path]) -> list[Case]:
    """The cases named by files, folders and CSV lists, with unique, file-system-safe case ids."""
    found: list[tuple[str | None, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == ".csv" and path.is_file():
            found += _from_csv(path)
        elif path.is_dir():
            found += [(None, p) for p in _cases_in_folder(_absolute(path))]
        elif path.exists():
            found.append((None, _absolute(path)))
        else:
            raise InputError(f"{path} does not exist. Check the batch's inputs.")
    cases, seen = [], set()
    for (_, path), base in zip(found, _names(found), strict=True):
        case_id, n = base, 2
        while case_id in seen:
            case_id, n = f"{base}-{n}", n + 1
        seen.add(case_id)
        cases.append(Case(case_id, str(path)))
    if not cases:
        raise InputError("The batch's inputs hold no case (no DICOM series, NIfTI, NRRD or image found).")
    return cases


def _names(found: list[tuple[str | None, Path]]) -> list[str]:
    """Each case's name: the CSV's case_id, else the file's stem; where stems repeat (every IRCADb
    case is a PATIENT_DICOM.zip), the parent folder's name, and where that repeats too, both. Names
    come from paths only: reading an accession or patient ID into a folder name would put an
    identifier in the file system."""
    stems = [_safe_id(given or _stem(path)) for given, path in found]
    names = list(stems)
    for i, (given, path) in enumerate(found):
        if given or stems.count(stems[i]) == 1:
            continue
        parent = _safe_id(path.parent.name) if path.parent.name else stems[i]
        same_parent = sum(
            1 for j, (_, other) in enumerate(found) if stems[j] == stems[i] and other.parent.name == path.parent.name
        )
        names[i] = parent if same_parent == 1 else f"{parent}_{stems[i]}"
    return names


def _from_csv(path: Path) -> list[tuple[str | None, Path]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
        rows = list(csv.DictReader(handle))
    if rows and "path" not in rows[0]:
        raise InputError(f"{path}: a batch CSV needs a 'path' column (and optionally 'case_id').")
    return [(row.get("case_id") or None, _absolute(path.parent / row["path"])) for row in rows if row.get("path")]


def _absolute(path: Path) -> Path:
    """Absolute and without ``..`` (workers on other nodes see the same shared path)."""
    return Path(os.path.abspath(path))


def _cases_in_folder(folder: Path) -> list[Path]:
    """Volume and image files are cases; a folder holding DICOM files (and no sub-case) is one case."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    singles = [p for p in files if p.name.lower().endswith((*VOLUME_SUFFIXES, *RASTER_SUFFIXES, ".zip"))]
    others = [p for p in files if p not in singles]
    cases = list(singles)
    if others and any(_is_dicom(p) for p in others[:5]):
        cases.append(folder)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cases += _cases_in_folder(sub)
    return cases


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *VOLUME_SUFFIXES, ".zip", *RASTER_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _safe_id(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return cleaned[:80] or "case"


def input_sha256(path: Path) -> str:
    """sha256 over the input's bytes (a folder: every file, in name order, with its relative name)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
