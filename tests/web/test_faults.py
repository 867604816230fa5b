"""Faults through the web, on a real `liverhealth web` process: the results database going away
while a job runs (its save says so, its files stay downloadable), the disk filling during an
upload (nothing of it kept, one message), and the server killed in the middle of a save (the
database consistent after the restart)."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from liverhealth.storage import Repository
from tests.helpers.databases import PrivateMariaDB
from tests.helpers.web import WebClient, login, running_web_server


@pytest.fixture()
def private_mariadb(tmp_path_factory):
    """A MariaDB server of this test's own, which it may stop and start."""
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()
    yield server
    server.stop()


def _one_line_for_users(detail: str, root: Path) -> None:
    """A message a user can read: one line, no server path, address or library words."""
    assert "\n" not in detail and str(root) not in detail
    assert "127.0.0.1" not in detail and "Errno" not in detail and "Traceback" not in detail


def _run_stopping_the_database(client: WebClient, job_id: str, database: PrivateMariaDB) -> list[str]:
    """Follow a job's events; stop the database once its CT is on screen (segmenting follows).
    The job's states, the one asked for right after the stop included."""
    states = []
    with client.http.stream("GET", f"/api/jobs/{job_id}/events", timeout=300) as stream:
        for line in stream.iter_lines():
            event = json.loads(line[6:]) if line.startswith("data: ") else {}
            if event.get("kind") == "volume":
                database.stop()
                states.append(client.http.get(f"/api/jobs/{job_id}").json()["state"])
            elif event.get("kind") == "state":
                states.append(event["state"])
    return states


def test_the_database_going_away_mid_job_its_save_says_so_and_its_files_stay_downloadable(
    tmp_path, data_root, private_mariadb
):
    url = f"mysql+pymysql://root@127.0.0.1:{private_mariadb.port}/lh_web"
    with running_web_server(tmp_path / "web", {"LIVERHEALTH_DB_URL": url}) as server:
        alice = login(server, "alice")
        response = alice.upload(*sorted((data_root / "totalsegmentator" / "example_ct_dicom").iterdir()))
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        states = _run_stopping_the_database(alice, job_id, private_mariadb)
        assert states[-1] == "done", states

        saved = alice.post(f"/api/jobs/{job_id}/save", json={})
        assert saved.status_code == 503
        detail = saved.json()["detail"]
        assert detail.startswith("Could not save the result (the results database): cannot reach the server")
        assert detail.endswith("Nothing was changed; the result is still open and can be saved again.")
        _one_line_for_users(detail, tmp_path)
        assert str(private_mariadb.port) not in detail

        files = alice.http.get(f"/api/jobs/{job_id}").json()["files"]
        assert {"labels.nii.gz", "report.pdf", "measurements.json", "seg.dcm"} <= set(files)
        for name in files:
            download = alice.http.get(f"/api/jobs/{job_id}/files/{name}")
            assert download.status_code == 200 and download.content, name
        assert WebClient(server[0]).login("bob").status_code == 503  # no new login without the database

        private_mariadb.start()
        again = alice.post(f"/api/jobs/{job_id}/save", json={})
        assert again.status_code == 200, again.text
        listed = alice.post("/api/results/search", json={}).json()["results"]
        assert [row["result_id"] for row in listed] == [again.json()["result_id"]]


def test_a_result_twice_the_servers_packet_limit_is_saved_column_by_column(tmp_path, data_root, private_mariadb):
    url = f"mysql+pymysql://root@127.0.0.1:{private_mariadb.port}/lh_web"
    with running_web_server(tmp_path / "web", {"LIVERHEALTH_DB_URL": url}) as server:
        alice = login(server, "alice")
        job_id, events = alice.run(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
        assert events[-1]["state"] == "done"
        saved = alice.post(f"/api/jobs/{job_id}/save", json={})
        assert saved.status_code == 200, saved.text  # 8.8 MB of columns under a 16 MB packet limit
        listed = alice.post("/api/results/search", json={}).json()["results"]
        assert [row["result_id"] for row in listed] == [saved.json()["result_id"]]


def _open_deleted_files(pid: int, root: Path) -> list[str]:
    """Files under ``root`` the process still holds open after they were removed (space not freed)."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(root)) and target.endswith("(deleted)"):
            held.append(target)
    return held


@pytest.mark.parametrize(
    ("where", "upload", "limit_bytes"),
    [
        ("spooling the form", "3Dircadb1.1/PATIENT_DICOM.zip", 2 << 20),  # 31 MB: spilled to TMPDIR past 1 MB
        ("copying into the job folder", "dcmqi/ct-3slice/01.dcm", 400_000),  # 514 kB: kept in memory, then copied
    ],
)
def test_the_disk_filling_during_an_upload_keeps_nothing_and_says_so(tmp_path, data_root, where, upload, limit_bytes):
    """A file size limit on the server process (RLIMIT_FSIZE; Python ignores SIGXFSZ) makes its writes
    past ``limit_bytes`` fail with EFBIG, as a full disk fails them with ENOSPC."""
    with running_web_server(tmp_path) as server:
        alice = login(server, "alice")
        pid = server[3].pid
        assert (tmp_path / "web.db").stat().st_size < limit_bytes  # the database itself can still be written
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
        refused = alice.upload(data_root / upload)
        assert refused.status_code == 507, (where, refused.text)
        detail = refused.json()["detail"]
        assert detail.startswith("The server's disk is full: the upload could not be stored, and nothing of it")
        assert "tell the administrator" in detail
        _one_line_for_users(detail, tmp_path)
        assert [p for p in tmp_path.glob("liverhealth-web-*/jobs/*")] == []
        assert list(tmp_path.glob("tmp*")) == [] and _open_deleted_files(pid, tmp_path) == []
        assert alice.http.get("/api/me").status_code == 200  # the server keeps serving

        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        accepted = alice.upload(data_root / upload)  # space again: the same upload goes through
        assert accepted.status_code == 200, accepted.text
        assert alice.post(f"/api/jobs/{accepted.json()['job_id']}/cancel").status_code == 200


def _save_killed_in_its_transaction(client: WebClient, job_id: str, process, journal: Path) -> bool:
    """Post the save, SIGKILL the server as soon as its SQLite rollback journal appears (a write
    transaction is open); True when the journal outlived the kill (the kill landed inside it)."""
    answers: list[object] = []

    def save() -> None:
        try:
            answers.append(client.post(f"/api/jobs/{job_id}/save", json={}))
        except httpx.HTTPError as exc:
            answers.append(exc)

    saving = threading.Thread(target=save)
    saving.start()
    while saving.is_alive() and not journal.exists():
        pass
    process.send_signal(signal.SIGKILL)
    process.wait(60)
    saving.join(60)
    return journal.is_file() and journal.stat().st_size > 0


def test_the_server_killed_mid_save_leaves_a_consistent_database(tmp_path, data_root):
    db_file, journal = tmp_path / "web.db", tmp_path / "web.db-journal"
    with running_web_server(tmp_path) as server:
        alice = login(server, "alice")
        earlier, events = alice.run(*sorted((data_root / "dcmqi" / "ct-3slice").glob("*.dcm")))
        assert events[-1]["state"] == "done"
        kept = alice.post(f"/api/jobs/{earlier}/save", json={}).json()["result_id"]
        big, events = alice.run(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
        assert events[-1]["state"] == "done"
        alice = login(server, "alice")  # a fresh session: the save is the only write (no session touch)
        assert _save_killed_in_its_transaction(alice, big, server[3], journal), "the kill missed the save"

    with running_web_server(tmp_path) as server:  # the restart rolls the half-written save back
        alice.http.base_url = server[0]
        listed = alice.post("/api/results/search", json={})
        assert listed.status_code == 200, listed.text
        ids = sorted(row["result_id"] for row in listed.json()["results"])
        assert not journal.exists()
        with sqlite3.connect(db_file) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert (
                db.execute(
                    "SELECT r.id FROM segmentation_result r LEFT JOIN study s ON s.id = r.study_id WHERE s.id IS NULL"
                ).fetchall()
                == []
            )
            without_report = "SELECT id FROM segmentation_result WHERE id NOT IN (SELECT result_id FROM report)"
            assert db.execute(without_report).fetchall() == []  # a web save holds its report: none half saved
            assert sorted(r for (r,) in db.execute("SELECT id FROM segmentation_result")) == ids
        assert kept in ids
        repository = Repository(f"sqlite:///{db_file}")
        try:
            for result_id in ids:
                stored = repository.get(result_id)  # its labels decompressed and checked against their sha256
                assert stored.labels.any() and stored.reports
        finally:
            repository.close()
