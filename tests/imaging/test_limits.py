"""Files that declare more than they hold: refused from their headers, before any decoding."""

from __future__ import annotations

import struct
import zipfile
import zlib

import cv2
import nibabel as nib
import numpy as np
import pytest

from liverhealth.errors import InputError
from liverhealth.imaging import load


def test_zip_entry_declaring_gigabytes(tmp_path, data_root):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(data_root / "dcmqi" / "ct-3slice" / "01.dcm", "series/01.dcm")
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", 0xF0000000)  # uncompressed size: 3.75 GiB
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"would unpack to 3\.8 GiB"):
        load(path)


def test_png_declaring_20000_by_20000(tmp_path):
    _ok, buffer = cv2.imencode(".png", np.zeros((16, 16), np.uint8))
    raw = bytearray(buffer.tobytes())
    raw[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width and height
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))  # a valid IHDR checksum
    path = tmp_path / "huge.png"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="20000 × 20000 image"):
        load(path)


def test_nifti_header_declaring_30000_cubed(tmp_path, data_root):
    small = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    path = tmp_path / "huge.nii"
    nib.save(small, str(path))
    raw = bytearray(path.read_bytes())
    raw[40:48] = struct.pack("<4h", 3, 30000, 30000, 30000)  # dim[0..3]
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"declares 27,000,000 million voxels"):
        load(path)
