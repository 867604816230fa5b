"""Running it in a hospital, through a real server: sessions and jobs across a restart (and a kill),
a bounded queue, the audit trail for admins, guessing slowed at the login form, and no server
details shown to users."""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers.web import WebClient, login, running_web_server


def _wait_for_state(client: WebClient, job_id: str, states: set[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.http.get(f"/api/jobs/{job_id}").json()["state"]
        if state in states:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}")


@pytest.mark.parametrize("stop", ["kill", "terminate"])
def test_sessions_survive_a_restart_and_a_stopped_job_says_it_was_interrupted(tmp_path, data_root, stop):
    upload = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    with running_web_server(tmp_path) as server:
        alice = login(server, "alice")
        response = alice.upload(upload)
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        _wait_for_state(alice, job_id, {"loading", "segmenting"})
        process = server[3]
        process.send_signal(signal.SIGKILL if stop == "kill" else signal.SIGTERM)
        process.wait(60)
    assert not list(tmp_path.glob("liverhealth-web-*/jobs/*")) or stop == "kill"
    with running_web_server(tmp_path) as server:
        alice.http.base_url = server[0]
        me = alice.http.get("/api/me")
        assert me.status_code == 200 and me.json()["user"] == "alice"  # still logged in
        status = alice.http.get(f"/api/jobs/{job_id}").json()
        assert status["state"] == "interrupted"
        assert "server restart" in status["message"] and "again" in status["message"]
        bob = login(server, "bob")
        assert bob.http.get(f"/api/jobs/{job_id}").status_code == 404  # still alice's only
        folders = [p for p in tmp_path.glob("liverhealth-web-*/jobs/*") if p.is_dir()]
        assert folders == []  # the killed server's job folder (a copy of the CT) is gone


def test_a_full_queue_refuses_with_retry_after_and_the_admin_sees_the_audit_trail(tmp_path, data_root):
    upload = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    with running_web_server(tmp_path, server_args=("--max-queued-per-user", "1")) as server:
        alice = login(server, "alice")
        first = alice.upload(upload, patient_name="DOE^JANE")
        assert first.status_code == 200
        second = alice.upload(upload)
        assert second.status_code == 503
        assert int(second.headers["retry-after"]) > 0
        assert "already have 1 studies waiting" in second.json()["detail"]
        job_id = first.json()["job_id"]
        alice.events(job_id)
        saved = alice.post(f"/api/jobs/{job_id}/save", json={}).json()
        assert saved["where"] == "the results database"  # no server path for a user
        assert alice.http.get("/api/me").json()["niivue"].startswith("(")  # no library version either
        assert alice.post("/api/admin/audit", json={}).status_code == 403
        root = login(server, "root")
        assert ".db" in root.post(f"/api/jobs/{job_id}/save", json={}).json()["where"]  # admins: where
        events = root.post("/api/admin/audit", json={"user": "alice"}).json()["events"]
        actions = [(e["action"], e["face"], e["client"]) for e in events]
        assert ("login", "web", "127.0.0.1") in actions and ("upload", "web", "127.0.0.1") in actions
        assert any(e["action"] == "save" and e["result_id"] == saved["result_id"] for e in events)
        assert "DOE" not in repr(events)
        ended = root.post("/api/admin/accounts/alice/end-sessions").json()
        assert ended["ended"] == 1
        assert alice.http.get("/api/me").status_code == 401


def test_guessing_at_the_login_form_is_slowed_and_told(tmp_path):
    with running_web_server(tmp_path) as server:
        guesser = WebClient(server[0])
        locations = [guesser.login("bob", "not-bobs-password").headers["location"] for _ in range(5)]
        assert locations == ["/login?error=1"] * 5
        refused = guesser.login("bob")  # the right password, during the back-off
        assert refused.headers["location"].startswith("/login?error=3&wait=")
        page = guesser.http.get(refused.headers["location"]).text
        assert "Too many failed logins: try again in" in page
        time.sleep(2.2)
        assert guesser.login("bob").headers["location"] == "/"
