"""Database helpers: the MariaDB the tests use, a private MariaDB that tests may stop and start,
and small synthetic result records."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pymysql

from liverhealth.storage import ResultRecord
from tests.helpers.prerequisites import require

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", int(os.environ.get("LIVERHEALTH_TEST_MYSQL_PORT", "3306"))


def mysql_root(database: str | None = None, port: int = MYSQL_PORT) -> pymysql.Connection:
    try:
        return pymysql.connect(
            host=MYSQL_HOST, port=port, user="root", password="", database=database, connect_timeout=5, autocommit=True
        )
    except pymysql.err.OperationalError as exc:
        require(
            False,
            f"No MariaDB/MySQL server answers on {MYSQL_HOST}:{port} as root without a password "
            f"({exc}). Start one (`bash scripts/test.sh` does, as root) to run the database tests.",
        )
        raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMariaDB:
    """A MariaDB server in a temporary folder, on its own port, that a test can stop and start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        require(
            Path(server).exists(),
            "mariadbd is not installed (apt-get install mariadb-server; `bash scripts/test.sh` does as root).",
        )
        self.server = server
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={folder / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server writes to it
        self.process = subprocess.Popen(
            [
                self.server,
                "--no-defaults",
                f"--datadir={self.folder / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.folder / 'mysql.sock'}",
                "--user=root",
                f"--pid-file={self.folder / 'mysql.pid'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise RuntimeError(f"private MariaDB did not start: {(self.folder / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def root(self) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", autocommit=True)


def small_record(seed: int = 0, shape=(4, 32, 32)) -> ResultRecord:
    from liverhealth.domain import Measurements, ModelInfo, PatientInfo, SourceInfo

    labels = np.random.default_rng(seed).integers(0, 3, shape).astype(np.uint8)
    return ResultRecord(
        labels=labels,
        model=ModelInfo(f"model-{seed % 2}", f"Model {seed % 2}", "unet", "0" * 64, {"liver_dice": 0.9}),
        measurements=Measurements(
            is_2d=False,
            spacing=(1.0, 1.0, 1.0),
            liver_voxels=int(np.count_nonzero(labels)),
            tumour_voxels=int(np.count_nonzero(labels == 2)),
            liver_volume_ml=10.0 + seed,
            tumour_volume_ml=1.0,
            liver_area_mm2=None,
            tumour_area_mm2=None,
            tumour_burden_pct=10.0,
            lesions=(),
        ),
        timings={"total_s": 0.1},
        source=SourceInfo("test", "memory", f"synthetic {seed}", shape[0]),
        spacing=(1.0, 1.0, 1.0),
        content_sha256=f"{seed:064x}",
        affine=np.eye(4),
        patient=PatientInfo(f"Patient^{seed}", f"ID{seed}", "F", "19600101"),
    )
