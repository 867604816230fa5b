"""Database failures: clear messages naming the server (never the password), no partial rows,
and a retry that works once the problem is gone."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import event, text

from liverhealth.errors import StorageError
from liverhealth.storage import Repository
from tests.helpers.databases import MYSQL_HOST, MYSQL_PORT, free_port, mysql_root, small_record

PASSWORD = f"Pw-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def secret_user(private_mariadb):
    with private_mariadb.root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER 'lh'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute("GRANT ALL ON `lh_%`.* TO 'lh'@'127.0.0.1'")
    return f"mysql+pymysql://lh:{PASSWORD}@127.0.0.1:{private_mariadb.port}"


def test_server_stopped_mid_session_then_retry(private_mariadb, secret_user, caplog):
    caplog.set_level(logging.DEBUG)
    repo = Repository(f"{secret_user}/lh_restart")
    repo.init()
    first = repo.save(small_record(1))
    before = repo.counts()
    private_mariadb.stop()
    try:
        with pytest.raises(StorageError) as info:
            repo.save(small_record(2))
        message = str(info.value)
        assert f"127.0.0.1:{private_mariadb.port}" in message and "lh@" in message
        assert "cannot reach the server" in message or "lost" in message or "closed" in message
        assert "can be saved again" in message
        assert PASSWORD not in message
    finally:
        private_mariadb.start()
    second = repo.save(small_record(2))  # the same repository object retries on a fresh connection
    assert second > first
    assert repo.counts()["segmentation_result"] == before["segmentation_result"] + 1
    assert PASSWORD not in caplog.text
    repo.close()


def test_wrong_password_is_named_but_not_shown(private_mariadb, secret_user):
    wrong = f"Wrong-{PASSWORD}"
    repo = Repository(f"mysql+pymysql://lh:{wrong}@127.0.0.1:{private_mariadb.port}/lh_x")
    with pytest.raises(StorageError) as info:
        repo.init()
    message = str(info.value)
    assert "refused the user name or password" in message
    assert PASSWORD not in message and wrong not in message


def test_missing_database_without_create_rights(private_mariadb):
    with private_mariadb.root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS 'reader'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute("GRANT SELECT ON `lh_readonly`.* TO 'reader'@'127.0.0.1'")
    repo = Repository(f"mysql+pymysql://reader:{PASSWORD}@127.0.0.1:{private_mariadb.port}/lh_missing")
    with pytest.raises(StorageError) as info:
        repo.list_results()
    assert "does not exist" in str(info.value) or "may not use" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_nothing_listening(monkeypatch):
    monkeypatch.setenv("LIVERHEALTH_DB_TIMEOUT", "2")
    port = free_port()
    repo = Repository(f"mysql+pymysql://someone:{PASSWORD}@127.0.0.1:{port}/db")
    with pytest.raises(StorageError) as info:
        repo.save(small_record(3))
    assert f"127.0.0.1:{port}" in str(info.value) and "cannot reach the server" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_sqlite_disk_full_rolls_back(tmp_path):
    repo = Repository(f"sqlite:///{tmp_path / 'full.db'}")
    repo.init()
    repo.save(small_record(1))
    before = repo.counts()
    with repo.engine.connect() as connection:
        pages = connection.execute(text("PRAGMA page_count")).scalar()
    # A real SQLite limit: the file may not grow past its current pages (as on a full disk).
    from sqlalchemy import event

    @event.listens_for(repo.engine, "connect")
    def limit(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    repo.engine.dispose()
    with pytest.raises(StorageError, match="disk is full"):
        repo.save(small_record(2, shape=(20, 128, 128)))
    event.remove(repo.engine, "connect", limit)
    repo.engine.dispose()
    assert repo.counts() == before


def test_sqlite_unwritable_location():
    with pytest.raises(StorageError, match="SQLite file"):
        Repository("sqlite:////proc/liverhealth/results.db").init()


def test_unencoded_at_sign_in_the_password_is_never_shown(private_mariadb, secret_user):
    """'lh:Se@cret-1@host' used to read as password 'Se' on host 'cret-1@host', and half the
    password came out in the message."""
    wrong = "Se@cret-1:x/y"
    repo = Repository(f"mysql+pymysql://lh:{wrong}@127.0.0.1:{private_mariadb.port}/lh_x")
    with pytest.raises(StorageError) as info:
        repo.init()
    message = str(info.value)
    assert "refused the user name or password" in message and f"127.0.0.1:{private_mariadb.port}" in message
    for part in ("Se@", "cret", "x/y"):
        assert part not in message


def test_invalid_urls():
    with pytest.raises(StorageError, match="not valid"):
        Repository("not a url at all")
    with pytest.raises(StorageError, match="port is not a number") as info:
        Repository("mysql+pymysql://lh:Secret-99@127.0.0.1:abc/db")
    assert "Secret-99" not in str(info.value)
    with pytest.raises(StorageError, match="not supported"):
        Repository("oracle://x@y/z")


WRITER = """
import dataclasses
import sys
from liverhealth.storage import Repository
from tests.helpers.databases import small_record
repo = Repository(sys.argv[1])
for i in range(int(sys.argv[3])):
    repo.save(small_record(int(sys.argv[2]) * 100 + i, shape=(8, 64, 64)))
"""


@pytest.mark.mysql  # the MariaDB on 127.0.0.1:3306, through mysql_root() rather than a fixture
def test_two_processes_save_at_once_to_mysql():
    name = f"lh_concurrent_{uuid.uuid4().hex[:8]}"
    url = f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    Repository(url).init()
    try:
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(k), "6"]) for k in (1, 2)]
        assert [w.wait(timeout=300) for w in writers] == [0, 0]
        repo = Repository(url)
        rows = repo.list_results()
        assert len(rows) == 12 and repo.counts()["study"] == 12
        for row in rows:  # every label map intact (checked against its own sha256 on load)
            stored = repo.get(row.result_id)
            seed = int(row.description.split()[-1])
            assert (stored.labels == small_record(seed, shape=(8, 64, 64)).labels).all()
        repo.close()
    finally:
        with mysql_root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


SAME_SCAN_WRITER = """
import dataclasses
import sys
from liverhealth.storage import Repository
from tests.helpers.databases import small_record
repo = Repository(sys.argv[1])
repo.init()
for i in range(int(sys.argv[3])):
    record = small_record(i, shape=(8, 64, 64))  # the same scans in both processes
    repo.save(dataclasses.replace(record, model=dataclasses.replace(record.model, sha256=sys.argv[2] * 64)))
"""


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_first_time_concurrent_saves_of_the_same_scans_make_one_study_each(kind, tmp_path):
    """Two processes on a database that does not exist yet: no migration race, one study per scan."""
    name = f"lh_race_{uuid.uuid4().hex[:8]}"
    url = (
        f"sqlite:///{tmp_path / 'race.db'}"
        if kind == "sqlite"
        else f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    )
    try:
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", SAME_SCAN_WRITER, url, digit, "5"], stderr=subprocess.PIPE, text=True
            )
            for digit in ("1", "2")
        ]
        outcomes = [(w.wait(timeout=300), w.stderr.read()) for w in writers]
        assert [code for code, _ in outcomes] == [0, 0], outcomes
        repo = Repository(url)
        assert repo.counts()["study"] == 5 and repo.counts()["segmentation_result"] == 10
        repo.close()
    finally:
        if kind == "mysql":
            with mysql_root() as connection, connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")


def test_init_detects_a_missing_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    Repository(url).init()
    import sqlite3

    with sqlite3.connect(tmp_path / "results.db") as connection:
        connection.execute("DROP TABLE report")
    with pytest.raises(StorageError, match=r"lacks the table\(s\) report"):
        Repository(url).init()


def test_saving_the_same_result_twice_keeps_one(tmp_path):
    repo = Repository(f"sqlite:///{tmp_path / 'results.db'}")
    repo.init()
    first = repo.save(small_record(7))
    assert repo.save(small_record(7)) == first
    assert repo.counts()["segmentation_result"] == 1
    repo.close()


def test_unknown_schema_revision_is_one_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    Repository(url).init()
    import sqlite3

    with sqlite3.connect(tmp_path / "results.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StorageError, match="schema revision '9999', which this LiverHealth does not know"):
        Repository(url).init()


@pytest.mark.mysql
def test_mysql_schema_upgrade_is_committed_before_the_lock_is_released():
    """The last revision's alembic_version update is committed before the schema lock goes: a lock
    released first lets a second workstation read the previous revision and add its columns again
    (the 'Duplicate column' race of two first-time saves)."""
    name = f"lh_lock_{uuid.uuid4().hex[:8]}"
    repo = Repository(f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}")
    order: list[str] = []

    @event.listens_for(repo.engine, "commit")
    def committed(_connection):
        order.append("commit")

    @event.listens_for(repo.engine, "before_cursor_execute")
    def executing(_connection, _cursor, statement, *_):
        if "RELEASE_LOCK" in statement:
            order.append("release")
        elif "GET_LOCK" in statement:
            order.append("lock")
        elif statement.lstrip().upper().startswith(("UPDATE ALEMBIC_VERSION", "INSERT INTO ALEMBIC_VERSION")):
            order.append("version")

    try:
        assert repo.init()
        last_version = max(i for i, step in enumerate(order) if step == "version")
        assert order.index("lock") < last_version < order.index("release"), order
        assert "commit" in order[last_version : order.index("release")], order
        repo.close()
    finally:
        with mysql_root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
