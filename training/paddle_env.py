"""Process set-up for the Paddle side of training (train, export).

paddle2onnx 1.3.1 ships its own zlib, and once it is loaded, scipy's and paddleseg's imports
crash in ``inflateReset2`` or fail with "inconsistent stream state". Preloading the system
zlib avoids it, so the Paddle entry points re-execute themselves once with LD_PRELOAD set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SYSTEM_ZLIB = (
    "/lib/x86_64-linux-gnu/libz.so.1",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/lib64/libz.so.1",
    "/usr/lib64/libz.so.1",
)


def ensure_system_zlib() -> None:
    """Re-execute this process with the system zlib preloaded (once; no-op where none is found)."""
    if "libz.so" in os.environ.get("LD_PRELOAD", "") or os.environ.get("LIVERHEALTH_ZLIB_DONE"):
        return
    zlib = next((path for path in SYSTEM_ZLIB if Path(path).exists()), None)
    if zlib is None:
        return
    env = {
        **os.environ,
        "LD_PRELOAD": f"{zlib} {os.environ.get('LD_PRELOAD', '')}".strip(),
        "LIVERHEALTH_ZLIB_DONE": "1",
    }
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def set_threads(threads: int | None = None) -> None:
    """Use the machine's cores for Paddle's CPU kernels."""
    count = str(threads or os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", count)
    os.environ.setdefault("MKL_NUM_THREADS", count)
