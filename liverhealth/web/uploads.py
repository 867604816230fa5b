"""Upload validation for the web interface, before any work: type, size, zip entries.

An upload is one file (a DICOM zip, a DICOM file, NIfTI, NRRD or a PNG/JPG/BMP/TIFF slice) or
several DICOM files (a folder picked in the browser). Each file is streamed to the job's folder
under a name we choose (the browser's names and paths are never used as paths), counted
against the size limit as it arrives, and its first bytes must say what its name says. A zip is
refused by its directory alone: too many entries, a path that leaves the folder, a link, or an
uncompressed size or compression ratio no CT series has (a zip bomb). An image's or volume's
dimensions are checked on what its header declares; DICOM slices are checked the same way by
the DICOM reader, before pixels are read.
"""

from __future__ import annotations

import errno
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from liverhealth.errors import InputError
from liverhealth.imaging import check_declared_size
from liverhealth.imaging.limits import check_zip

CHUNK = 1 << 20
MAX_ZIP_RATIO = 200  # a CT series compresses 2-10x; 200x is a bomb
DISK_FULL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over a quota, over a file size limit
SINGLE_FILE_TYPES = {  # suffix -> (kind, magic checker)
    ".zip": "DICOM zip",
    ".dcm": "DICOM file",
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
    ".nrrd": "NRRD",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


class UploadError(InputError):
    """An upload refused before any work (the message says what to send instead)."""


def not_stored_message(exc: OSError) -> str:
    """What a user reads when the server could not write an upload (its disk is full, or another
    write error): never the path or the server's own words, which go to its log."""
    if exc.errno in DISK_FULL_ERRORS:
        return (
            "The server's disk is full: the upload could not be stored, and nothing of it was kept. Try again "
            "later; if it happens again, tell the administrator (the server needs free disk space)."
        )
    return (
        "The server could not write the upload to its disk; nothing of it was kept. Try again; if it happens "
        "again, tell the administrator."
    )


@dataclass(frozen=True)
class StoredUpload:
    """Where an accepted upload lies (a file, or a folder of DICOM files) and what it is."""

    path: Path
    kind: str
    size_bytes: int


def suffix_of(name: str) -> str:
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else PurePosixPath(lower).suffix


def _magic_ok(kind: str, head: bytes) -> bool:
    if kind == "DICOM zip":
        return head[:4] == b"PK\x03\x04"
    if kind == "DICOM file":
        return head[128:132] == b"DICM"
    if kind == "NIfTI":
        return head[:2] == b"\x1f\x8b" or head[344:348] in (b"n+1\x00", b"ni1\x00")
    if kind == "NRRD":
        return head[:4] == b"NRRD"
    if kind == "PNG":
        return head[:8] == b"\x89PNG\r\n\x1a\n"
    if kind == "JPEG":
        return head[:3] == b"\xff\xd8\xff"
    if kind == "BMP":
        return head[:2] == b"BM"
    if kind == "TIFF":
        return head[:4] in (b"II*\x00", b"MM\x00*")
    return False


def _copy_limited(source: BinaryIO, target: Path, used: int, limit: int) -> int:
    """Copy ``source`` to ``target``; refuse once ``used`` + what was copied passes ``limit``."""
    with open(target, "wb") as handle:
        while chunk := source.read(CHUNK):
            used += len(chunk)
            if used > limit:
                raise UploadError(
                    f"The upload is larger than the limit of {limit / 2**20:,.0f} MB. Send one CT series "
                    "(a zip of one series, or one NIfTI/NRRD file)."
                )
            handle.write(chunk)
    return used


def store_upload(files: list[tuple[str, BinaryIO]], folder: Path, limit_bytes: int) -> StoredUpload:
    """Validate and store (name, stream) pairs under ``folder`` (created here); on refusal nothing
    is kept. Returns the path to load."""
    if not files:
        raise UploadError("No file was uploaded. Choose a CT (DICOM zip or folder, NIfTI, NRRD) or an image.")
    folder.mkdir(parents=True, exist_ok=False)
    try:
        if len(files) == 1 and suffix_of(files[0][0]) in SINGLE_FILE_TYPES:
            return _store_single(files[0], folder, limit_bytes)
        return _store_dicom_files(files, folder, limit_bytes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _store_single(item: tuple[str, BinaryIO], folder: Path, limit: int) -> StoredUpload:
    name, stream = item
    suffix = suffix_of(name)
    kind = SINGLE_FILE_TYPES[suffix]
    target = folder / f"upload{suffix}"
    size = _copy_limited(stream, target, 0, limit)
    with open(target, "rb") as handle:
        head = handle.read(512)
    if not _magic_ok(kind, head):
        raise UploadError(
            f"The file is named like a {kind} ({suffix}) but its content is not one. Upload the CT itself."
        )
    if kind == "DICOM zip":
        check_upload_zip(target)
    else:
        check_declared_size(target)
    return StoredUpload(target, kind, size)


def _store_dicom_files(files: list[tuple[str, BinaryIO]], folder: Path, limit: int) -> StoredUpload:
    series = folder / "series"
    series.mkdir()
    used, kept = 0, 0
    for index, (name, stream) in enumerate(files):
        base = PurePosixPath(name.replace("\\", "/")).name
        if base.startswith(".") or base.upper() == "DICOMDIR":
            continue  # folder clutter (.DS_Store) and the DICOMDIR index are not slices
        target = series / f"{index:06d}.dcm"
        used = _copy_limited(stream, target, used, limit)
        with open(target, "rb") as handle:
            head = handle.read(132)
        if not _magic_ok("DICOM file", head):
            raise UploadError(
                f"{base[:80]!r} is not a DICOM file. Several files are read as one DICOM series: upload only the "
                "series' files, or one NIfTI/NRRD/zip file."
            )
        kept += 1
    if not kept:
        raise UploadError("The upload holds no DICOM file. Choose the folder of one CT series.")
    return StoredUpload(series, f"DICOM folder ({kept} files)", used)


def check_upload_zip(path: Path) -> None:
    """Refuse a zip by its directory: entry count and sizes (the readers' limits), paths that leave
    the folder, links, and compression ratios of a zip bomb."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadError(f"The zip cannot be read ({exc}). Re-create it from the CT series folder.") from exc
    check_zip(entries, "The zip")
    for info in entries:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise UploadError(f"The zip holds an entry outside its folder ({info.filename[:80]!r}); it is refused.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadError(f"The zip holds a link ({info.filename[:80]!r}); a CT series zip holds files only.")
        if info.file_size > 1 << 20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise UploadError(
                f"The zip entry {info.filename[:80]!r} expands {info.file_size / max(info.compress_size, 1):,.0f} "
                "times; no CT compresses like that (a zip bomb). It is refused."
            )
