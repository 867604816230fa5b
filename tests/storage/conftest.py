"""Database fixtures: a fresh SQLite file or a fresh MariaDB database per test, and a private
MariaDB server that tests may stop and start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pymysql
import pytest

from liverhealth.analysis import measure
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.storage import Repository, ResultRecord, content_hash

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", int(os.environ.get("LIVERHEALTH_TEST_MYSQL_PORT", "3306"))


def mysql_root(database: str | None = None, port: int = MYSQL_PORT) -> pymysql.Connection:
    try:
        return pymysql.connect(host=MYSQL_HOST, port=port, user="root", password="", database=database,
                               connect_timeout=5, autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"No MariaDB/MySQL server answers on {MYSQL_HOST}:{port} as root without a password "
                    f"({exc}). Start one (`.ci/run` does) to run the database tests.", pytrace=False)


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request, tmp_path):
    """A URL to an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    name = f"lh_test_{uuid.uuid4().hex[:10]}"
    with mysql_root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    with mysql_root() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture()
def repo(db_url):
    repository = Repository(db_url)
    repository.init()
    yield repository
    repository.close()


@pytest.fixture(scope="session")
def ircadb1_record(data_root, ircadb1) -> ResultRecord:
    """A record holding the real 3Dircadb1.1 ground-truth label map and its measurements."""
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    return ResultRecord(
        labels=labels, model_id="ground-truth", model_sha256="f" * 64,
        measurements=measure(ircadb1, labels).to_dict(), timings={"total_s": 1.5},
        source=ircadb1.source, spacing=ircadb1.spacing, content_sha256=content_hash(ircadb1.voxels, ircadb1.spacing),
        affine=ircadb1.affine, overlay_png=b"\x89PNG fake overlay bytes", patient=ircadb1.patient)


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
        if not Path(server).exists():
            pytest.fail("mariadbd is not installed (apt-get install mariadb-server; `.ci/run` does).", pytrace=False)
        self.server = server
        subprocess.run([install, "--no-defaults", f"--datadir={folder / 'data'}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server writes to it
        self.process = subprocess.Popen(
            [self.server, "--no-defaults", f"--datadir={self.folder / 'data'}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.folder / 'mysql.sock'}", "--user=root",
             f"--pid-file={self.folder / 'mysql.pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=32M"],
            stdout=log, stderr=log)
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


@pytest.fixture(scope="module")
def private_mariadb(tmp_path_factory):
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()
    yield server
    server.stop()


def small_record(seed: int = 0, shape=(4, 32, 32)) -> ResultRecord:
    from liverhealth.types import PatientInfo, SourceInfo

    labels = np.random.default_rng(seed).integers(0, 3, shape).astype(np.uint8)
    return ResultRecord(labels=labels, model_id=f"model-{seed % 2}", model_sha256="0" * 64,
                        measurements={"liver_volume_ml": 10.0 + seed, "tumour_volume_ml": 1.0, "lesions": []},
                        timings={"total_s": 0.1}, source=SourceInfo("test", "memory", f"synthetic {seed}", shape[0]),
                        spacing=(1.0, 1.0, 1.0), content_sha256=f"{seed:064x}", affine=np.eye(4),
                        patient=PatientInfo(f"Patient^{seed}", f"ID{seed}", "F", "19600101"))
