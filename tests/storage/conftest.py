"""Database fixtures: a fresh SQLite file or a fresh MariaDB database per test, and a private
MariaDB server that tests may stop and start."""

from __future__ import annotations

import uuid

import pytest

from liverhealth.analysis import measure
from liverhealth.domain import ModelInfo
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.storage import Repository, ResultRecord, content_hash
from tests.helpers.databases import MYSQL_HOST, MYSQL_PORT, PrivateMariaDB, mysql_root


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
        labels=labels,
        model=ModelInfo("ground-truth", "IRCADb reference", sha256="f" * 64, metrics={"protocol": "reference masks"}),
        measurements=measure(ircadb1, labels),
        timings={"total_s": 1.5},
        source=ircadb1.source,
        spacing=ircadb1.spacing,
        content_sha256=content_hash(ircadb1.voxels, ircadb1.spacing),
        affine=ircadb1.affine,
        overlay_png=b"\x89PNG fake overlay bytes",
        patient=ircadb1.patient,
    )


@pytest.fixture(scope="module")
def private_mariadb(tmp_path_factory):
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()
    yield server
    server.stop()
