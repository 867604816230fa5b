"""Backup and restore of the results database: real results saved through the repository on SQLite
and on the real MariaDB, backed up, restored into a new empty database and read back."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sqlite3
import threading
import uuid
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select

from liverhealth import __version__
from liverhealth.errors import InputError, OutputError, StorageError
from liverhealth.storage import Repository
from liverhealth.storage.backup import BackupSummary, backup, restore
from liverhealth.storage.database import make_engine
from liverhealth.storage.migrations_runner import alembic_config
from liverhealth.storage.models import Base
from liverhealth.storage.records import AuditEntry
from tests.helpers.databases import MYSQL_HOST, MYSQL_PORT, mysql_root, small_record
from tests.storage.test_repository import REPORT

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()  # this code's schema
STARTED = datetime(2026, 12, 7, 9, 30, 15)
USERS = {"alice": ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "admin"), "bob": ("$argon2id$v=19$bob", "reader")}
MYSQL = pytest.mark.mysql


@pytest.fixture()
def new_database(tmp_path):
    """new_database("sqlite" | "mysql", create=True) -> the URL of a new empty database; MySQL ones
    are dropped afterwards (with create=False the MySQL database does not exist yet)."""
    made: list[str] = []

    def make(kind: str, create: bool = True) -> str:
        name = f"lh_backup_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        made.append(name)
        if create:
            with mysql_root() as connection, connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        return f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"

    yield make
    if made:
        with mysql_root() as connection, connection.cursor() as cursor:
            for name in made:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")


def _fill(url: str, real_record=None) -> dict[str, list[int]]:
    """Save results, reports, a comparison and accounts; leave gaps in the ids (a deleted result)."""
    repo = Repository(url)
    repo.init()
    ids = []
    if real_record is not None:
        ids.append(repo.save(real_record, REPORT, store_patient=True))
    ids.append(repo.save(small_record(1), REPORT, store_patient=True))
    gone = repo.save(small_record(2), REPORT)
    confident = small_record(3)
    confidence = np.random.default_rng(3).integers(0, 101, confident.labels.shape).astype(np.uint8)
    ids.append(repo.save(dataclasses.replace(confident, owner="alice", confidence=confidence, overlay_png=b"\x89PNG")))
    ids.append(repo.save(small_record(4), store_patient=True))
    repo.delete_result(gone)
    repo.add_report(ids[-1], REPORT)
    comparisons = [
        repo.save_comparison(ids[-3], ids[-1], "PR", 12.5, {"response": "PR", "lesions": [{"id": 1, "mm": 12.5}]}),
        repo.save_comparison(ids[-3], ids[-2], "SD", 30.25, {"response": "SD", "note": "Läsion ✓"}),
    ]
    for name, (password_hash, role) in USERS.items():
        repo.add_user(name, password_hash, role)
    repo.add_audit(AuditEntry("alice", "web", "view", ids[0], None, "10.0.0.7", "opened", STARTED))
    repo.add_audit(AuditEntry("bob", "cli", "delete", gone))
    repo.add_session("a" * 64, "alice", "admin", "c" * 32, STARTED)
    repo.add_login_failure("mallory", "10.0.0.9", STARTED)
    repo.set_job_state("job-7f3a", "alice", "done", "Segmented", STARTED)  # a table keyed by a string
    repo.close()
    return {"results": ids, "comparisons": comparisons}


def _floats_within(values: tuple, rel: float) -> tuple:
    """``values`` with each float compared within ``rel`` (MySQL's FLOAT is single precision)."""
    return tuple(pytest.approx(value, rel=rel) if isinstance(value, float) else value for value in values)


def _table_rows(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                t.name: [tuple(row) for row in connection.execute(select(t).order_by(*t.primary_key))]
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def _assert_rows_equal(source: str, target: str, float_rel: float) -> None:
    """Every row of every table equal (floats within ``float_rel``)."""
    expected, actual = _table_rows(source), _table_rows(target)
    assert {name: len(rows) for name, rows in actual.items()} == {name: len(rows) for name, rows in expected.items()}
    for name, rows in expected.items():
        for want, got in zip(rows, actual[name], strict=True):
            assert got == _floats_within(want, float_rel), name


def _assert_results_equal(source: str, target: str, ids: dict[str, list[int]], float_rel: float) -> None:
    """What the repository reads back from the restored database is what it read from the original."""
    before, after = Repository(source), Repository(target)
    try:
        for result_id in ids["results"]:
            want, got = before.get(result_id), after.get(result_id)
            assert got.summary.result_id == result_id
            assert np.array_equal(got.labels, want.labels) and got.labels.dtype == np.uint8  # voxel for voxel
            assert (got.confidence is None) == (want.confidence is None)
            if want.confidence is not None:
                assert np.array_equal(got.confidence, want.confidence)
            assert got.measurements == want.measurements
            assert got.model == want.model
            assert got.timings == want.timings and got.overlay_png == want.overlay_png
            assert (got.workstation, got.user_name) == (want.workstation, want.user_name)
            assert got.reports == want.reports  # text, draft, PDF bytes, report ids, save times
            assert dataclasses.replace(got.study, affine=None, spacing=None) == dataclasses.replace(
                want.study, affine=None, spacing=None
            )
            assert got.study.spacing == _floats_within(want.study.spacing, float_rel)
            assert np.array_equal(got.study.affine, want.study.affine)
            assert dataclasses.astuple(got.summary) == _floats_within(dataclasses.astuple(want.summary), float_rel)
            assert after.comparisons(result_id) == before.comparisons(result_id)
            assert after.prior_target_sums(result_id) == pytest.approx(before.prior_target_sums(result_id))
        assert [r.result_id for r in after.list_results()] == [r.result_id for r in before.list_results()]
        assert after.counts() == before.counts()
        for name, account in USERS.items():
            assert after.get_user(name) == before.get_user(name) == account
        assert after.audit() == before.audit() and len(after.audit()) == 2
        assert after.get_session("a" * 64) == before.get_session("a" * 64) is not None
        assert after.login_failures(STARTED, name="mallory") == [STARTED]
        assert after.job_state("job-7f3a") == ("alice", "done", "Segmented")
    finally:
        before.close()
        after.close()


def _rewrite(path: Path, out: Path, change, fix_hashes: bool = False) -> None:
    """Copy a backup, passing each member's bytes through ``change(name, data)``; with ``fix_hashes``
    the manifest's checksums are made to match (a crafted file rather than a damaged one)."""
    with zipfile.ZipFile(path) as source:
        members = {name: change(name, source.read(name)) for name in source.namelist()}
    manifest = json.loads(members["manifest.json"])
    if fix_hashes:
        for entry in manifest["tables"]:
            entry["sha256"] = hashlib.sha256(members[entry["member"]]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)


def _lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def _dump_lines(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


@pytest.mark.parametrize(
    ("source_kind", "target_kind", "create_target"),
    [
        ("sqlite", "sqlite", True),
        pytest.param("mysql", "mysql", True, marks=MYSQL),
        pytest.param("sqlite", "mysql", False, marks=MYSQL),
        pytest.param("mysql", "sqlite", True, marks=MYSQL),
    ],
)
def test_restore_gives_back_every_result(
    source_kind, target_kind, create_target, new_database, ircadb1_record, tmp_path
):
    source = new_database(source_kind)
    ids = _fill(source, ircadb1_record)
    counts = Repository(source).counts()

    written = backup(source, tmp_path / "results.lhbackup")
    assert written == BackupSummary(tmp_path / "results.lhbackup", HEAD, written.created_at, written.rows)
    assert written.rows["segmentation_result"] == counts["segmentation_result"] == len(ids["results"])
    assert written.rows["web_user"] == 2 and written.rows["study_comparison"] == 2
    assert list(written.rows) == [t.name for t in Base.metadata.sorted_tables]

    target = new_database(target_kind, create=create_target)
    restored = restore(target, written.path)
    assert restored.rows == written.rows and restored.schema_revision == HEAD
    assert restored.created_at == written.created_at

    float_rel = 1e-5 if (source_kind, target_kind) == ("sqlite", "mysql") else 0
    _assert_results_equal(source, target, ids, float_rel)  # ids kept: the same ids read the same results
    _assert_rows_equal(source, target, float_rel)

    repo = Repository(target)
    assert repo.init() == HEAD
    new_id = repo.save(small_record(9))  # ids go on after the restored ones
    assert new_id > max(ids["results"])
    assert repo.save_comparison(ids["results"][0], new_id, "PD", 40.0, {}) > max(ids["comparisons"])
    repo.close()


@MYSQL
def test_backup_holds_no_credentials_and_says_what_it_is(new_database, tmp_path):
    database = new_database("mysql")
    name = database.rsplit("/", 1)[1]
    user, password = f"lhbk{uuid.uuid4().hex[:8]}", f"Secret-{uuid.uuid4().hex}"
    with mysql_root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
        cursor.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1'")
    url = f"mysql+pymysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    try:
        _fill(url)
        summary = backup(url, tmp_path / "backup.zip")
    finally:
        with mysql_root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")

    raw = summary.path.read_bytes()
    with zipfile.ZipFile(summary.path) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    for data in [raw, *members.values()]:
        for secret in (password, user, name, url):
            assert secret.encode() not in data
    assert summary.path.stat().st_mode & 0o777 == 0o600  # patient data: readable by its owner only

    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "liverhealth-backup" and manifest["format_version"] == 1
    assert manifest["liverhealth_version"] == __version__ and manifest["source"] == "mysql"
    assert manifest["schema_revision"] == HEAD and manifest["created_at"] == summary.created_at
    assert [t["name"] for t in manifest["tables"]] == [t.name for t in Base.metadata.sorted_tables]
    assert set(members) == {"manifest.json", *(t["member"] for t in manifest["tables"])}
    for entry in manifest["tables"]:
        assert hashlib.sha256(members[entry["member"]]).hexdigest() == entry["sha256"]
        assert len(_lines(members[entry["member"]])) == entry["rows"] == summary.rows[entry["name"]]
    entries = {entry["name"]: entry for entry in manifest["tables"]}
    kinds = {c["name"]: c["kind"] for c in entries["segmentation_result"]["columns"]}
    assert kinds["labels_zlib"] == "binary" and kinds["measurements"] == "json" and kinds["created_at"] == "datetime"

    results = _lines(members["tables/segmentation_result.jsonl"])
    assert [r["id"] for r in results] == sorted(r["id"] for r in results)
    repo = Repository(url.replace(f"{user}:{password}", "root"))
    stored = repo.get(results[0]["id"])
    repo.close()
    labels = np.frombuffer(zlib.decompress(base64.b64decode(results[0]["labels_zlib"])), np.uint8)
    assert np.array_equal(labels.reshape(stored.labels.shape), stored.labels)
    assert json.loads(results[0]["measurements"])["measurements"]["liver_volume_ml"] == pytest.approx(11.0)


def test_damaged_changed_or_foreign_files_are_refused_in_one_line(new_database, tmp_path):
    source = new_database("sqlite")
    _fill(source)
    good = backup(source, tmp_path / "good.zip").path
    target_url = new_database("sqlite")
    target_file = Path(target_url.removeprefix("sqlite:///"))

    def changed(name, data):
        return data.replace(b'"liver_volume_ml":11.0', b'"liver_volume_ml":99.0') if "segmentation" in name else data

    _rewrite(good, tmp_path / "changed.zip", changed)
    assert b"99.0" in zipfile.ZipFile(tmp_path / "changed.zip").read("tables/segmentation_result.jsonl")
    (tmp_path / "text.zip").write_text("not a zip")
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "something-else"}))
    revision = f'"schema_revision": "{HEAD}"'.encode()
    _rewrite(
        good,
        tmp_path / "future.zip",
        lambda n, d: d.replace(revision, b'"schema_revision": "0099"') if n == "manifest.json" else d,
    )
    assert b'"0099"' in zipfile.ZipFile(tmp_path / "future.zip").read("manifest.json")

    cases = {
        "changed.zip": (InputError, "segmentation_result.jsonl does not match its checksum"),
        "text.zip": (InputError, "not a LiverHealth backup"),
        "foreign.zip": (InputError, "not a LiverHealth backup"),
        "future.zip": (InputError, "revision '0099', which this LiverHealth does not know"),
        "missing.zip": (InputError, "There is no backup file"),
    }
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as info:
            restore(target_url, tmp_path / name)
        assert "\n" not in str(info.value)
        assert not target_file.exists()  # checked before the database is touched


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mysql", marks=MYSQL)])
def test_a_database_that_holds_results_is_refused_and_left_alone(kind, new_database, tmp_path):
    source = new_database("sqlite")
    _fill(source)
    path = backup(source, tmp_path / "backup.zip").path
    target = new_database(kind)
    repo = Repository(target)
    repo.init()
    kept = repo.save(small_record(7))
    before = _table_rows(target)
    with pytest.raises(StorageError, match=r"is not empty .*segmentation_result: 1.*nothing was changed") as info:
        restore(target, path)
    assert "\n" not in str(info.value)
    assert _table_rows(target) == before
    assert repo.get(kept).summary.model_id == "model-1"
    repo.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mysql", marks=MYSQL)])
def test_a_restore_that_fails_half_way_leaves_the_database_empty(kind, new_database, tmp_path):
    source = new_database("sqlite")
    _fill(source)
    path = backup(source, tmp_path / "backup.zip").path

    def dangling(name, data):  # the last report points at a result the backup lacks
        if name != "tables/report.jsonl":
            return data
        rows = _lines(data)
        rows[-1]["result_id"] = 9999
        return _dump_lines(rows)

    _rewrite(path, tmp_path / "crafted.zip", dangling, fix_hashes=True)
    target = new_database(kind)
    with pytest.raises(StorageError, match=r"Could not restore the backup .*Nothing was restored") as info:
        restore(target, tmp_path / "crafted.zip")
    assert "\n" not in str(info.value)
    assert all(rows == [] for rows in _table_rows(target).values())  # patients, studies, results rolled back
    assert restore(target, path).rows["report"] == 2  # and the database still takes the good backup


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mysql", marks=MYSQL)])
def test_backups_taken_while_results_are_saved_are_consistent(kind, new_database, tmp_path):
    source = new_database(kind)
    _fill(source)
    start = Repository(source).counts()
    stop, failures = threading.Event(), []

    def keep_saving() -> None:
        repo = Repository(source)
        seed = 100
        try:
            while not stop.is_set():
                repo.save(small_record(seed, shape=(2, 16, 16)), REPORT)  # a study, a result, a report at once
                seed += 1
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            repo.close()

    writer = threading.Thread(target=keep_saving)
    writer.start()
    try:
        summaries = [backup(source, tmp_path / f"during-{n}.zip") for n in range(4)]
    finally:
        stop.set()
        writer.join(60)
    assert not failures
    assert summaries[-1].rows["segmentation_result"] > start["segmentation_result"]  # it saved while they ran
    for summary in summaries:
        rows = summary.rows
        added = {name: rows[name] - start[name] for name in ("study", "segmentation_result", "report")}
        assert len(set(added.values())) == 1, added  # a save adds a study, a result and a report at once
        assert restore(new_database("sqlite"), summary.path).rows == rows  # foreign keys all resolve


def test_a_failed_backup_leaves_no_file_and_keeps_the_old_one(new_database, tmp_path):
    source = new_database("sqlite")
    _fill(source)
    folder = tmp_path / "backups"
    folder.mkdir()
    old = folder / "nightly.zip"
    old.write_bytes(b"yesterday's backup")
    with sqlite3.connect(source.removeprefix("sqlite:///")) as connection:
        connection.execute("ALTER TABLE study_comparison ADD COLUMN by_hand")  # no type: nothing to store it as
    with pytest.raises(StorageError, match=r"study_comparison\.by_hand has a type .* No backup was written"):
        backup(source, old)
    assert old.read_bytes() == b"yesterday's backup"
    assert sorted(p.name for p in folder.iterdir()) == ["nightly.zip"]  # no temporary file left

    with pytest.raises(OutputError, match="Cannot write the backup in"):
        backup(source, tmp_path / "no-such-folder" / "backup.zip")
    missing = tmp_path / "typo.db"
    with pytest.raises(StorageError, match=r"There is no SQLite file .*typo\.db"):
        backup(f"sqlite:///{missing}", folder / "typo.zip")
    assert not missing.exists() and sorted(p.name for p in folder.iterdir()) == ["nightly.zip"]
    with pytest.raises(OutputError, match="would replace the database itself"):
        backup(source, Path(source.removeprefix("sqlite:///")))


def test_a_backup_of_an_older_schema_restores_at_this_versions_schema(new_database, tmp_path):
    source = new_database("sqlite")
    ids = _fill(source)
    before = Repository(source)
    expected = {result_id: before.get(result_id) for result_id in ids["results"]}
    before.close()
    engine = create_engine(source)  # foreign keys off: 0005's downgrade rebuilds the table SQLite's way
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")  # as an older LiverHealth left it
    engine.dispose()
    summary = backup(source, tmp_path / "old.zip")
    assert summary.rows["report"] == 2 and summary.rows["study_comparison"] == 2
    manifest = json.loads(zipfile.ZipFile(summary.path).read("manifest.json"))
    assert summary.schema_revision == manifest["schema_revision"] == "0004"
    results = next(entry for entry in manifest["tables"] if entry["name"] == "segmentation_result")
    assert "confidence_zlib" not in {c["name"] for c in results["columns"]}

    target = new_database("sqlite")
    Repository(target).init()  # an empty database already at this version's schema
    restore(target, summary.path)
    repo = Repository(target)
    assert repo.init() == HEAD
    for result_id, want in expected.items():
        got = repo.get(result_id)
        assert np.array_equal(got.labels, want.labels) and got.measurements == want.measurements
        assert got.reports == want.reports and got.confidence is None  # the column 0005 added starts empty
    assert repo.comparisons(ids["results"][0]) == [
        (ids["comparisons"][0], *ids["results"][0::2], "PR"),
        (ids["comparisons"][1], *ids["results"][0:2], "SD"),
    ]
    assert repo.save(small_record(9)) > max(ids["results"])
    repo.close()
