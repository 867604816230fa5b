"""Size limits checked on what a file declares, before anything is read into memory.

A small file can declare a huge image (a 389 kB PNG of 20000 × 20000 pixels, a 10 MB zip holding
one 10 GB entry, a NIfTI header claiming 30000³ voxels). Each reader checks the declared sizes
against these limits first and refuses with one line. The limits are far above any clinical CT
(a 512 × 512 × 2000 whole-body scan is 524 M voxels) and are stated in the README.
"""

from __future__ import annotations

from liverhealth.errors import InputError

MAX_VOXELS = 600_000_000  # about 1.2 GB as int16
MAX_RASTER_PIXELS = 100_000_000  # 10000 × 10000
MAX_SLICE_PIXELS = 4096 * 4096
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_ENTRY_BYTES = 1 << 30  # 1 GiB uncompressed
MAX_ZIP_TOTAL_BYTES = 4 << 30  # 4 GiB uncompressed


def _size(count: float) -> str:
    return f"{count / 1e6:,.0f} million" if count >= 1e6 else f"{count:,.0f}"


def check_voxels(shape: tuple[int, ...], where: str) -> None:
    """Refuse a volume whose declared shape is over ``MAX_VOXELS`` (or not a shape at all)."""
    if any(int(n) < 0 for n in shape):
        raise InputError(f"{where} declares a negative size {tuple(shape)}; the file is damaged.")
    count = 1
    for n in shape:
        count *= int(n)
    if count > MAX_VOXELS:
        raise InputError(
            f"{where} declares {_size(count)} voxels {tuple(int(n) for n in shape)}, over LiverHealth's "
            f"limit of {_size(MAX_VOXELS)}; it is not a CT LiverHealth can read (or the header is "
            "damaged)."
        )


def check_raster(width: int, height: int, where: str) -> None:
    if width * height > MAX_RASTER_PIXELS:
        raise InputError(
            f"{where} is a {width} × {height} image ({_size(width * height)} pixels), over the limit of "
            f"{_size(MAX_RASTER_PIXELS)} pixels. Export the CT slice at its own size."
        )


def check_slice(rows: int, columns: int, where: str) -> None:
    if rows * columns > MAX_SLICE_PIXELS or rows <= 0 or columns <= 0:
        raise InputError(f"{where} declares slices of {rows} × {columns} pixels, outside the limit of 4096 × 4096.")


def check_zip(entries: list, where: str) -> None:
    """Refuse a zip by its directory (entry count, declared uncompressed sizes) before extracting anything."""
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InputError(f"{where} holds {len(entries):,} entries, over the limit of {MAX_ZIP_ENTRIES:,}.")
    biggest = max((info.file_size for info in entries), default=0)
    total = sum(info.file_size for info in entries)
    if biggest > MAX_ZIP_ENTRY_BYTES or total > MAX_ZIP_TOTAL_BYTES:
        raise InputError(
            f"{where} would unpack to {total / 2**30:.1f} GiB (largest entry {biggest / 2**30:.1f} GiB), "
            f"over the limits of {MAX_ZIP_TOTAL_BYTES >> 30} GiB in all and {MAX_ZIP_ENTRY_BYTES >> 30} "
            "GiB per file; it is not a CT series zip (or a zip bomb)."
        )
