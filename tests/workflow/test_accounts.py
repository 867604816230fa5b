"""Accounts, sessions and the audit trail through the workflow service, on a real SQLite database:
back-off and lock per account and per client, sessions kept as hashes with idle and absolute
timeouts, and who did what recorded without patient names or passwords."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta

import pytest

from liverhealth import accounts
from liverhealth.accounts import LoginRefused
from liverhealth.domain import Actor
from liverhealth.errors import InputError
from liverhealth.workflow import Workstation

PASSWORD = "correct horse battery"


@pytest.fixture()
def workstation(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVERHEALTH_CONFIG", str(tmp_path / "no-config.toml"))
    ws = Workstation(db_url=f"sqlite:///{tmp_path / 'lh.db'}", actor=Actor("tester", "cli"))
    ws.add_user("alice", PASSWORD)
    ws.add_user("bob", PASSWORD)
    yield ws
    ws.close()


def _rows(workstation: Workstation, sql: str) -> list[tuple]:
    path = workstation.repository.url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_wait_grows_from_the_fifth_failure_and_locks_from_the_tenth():
    now = datetime(2026, 12, 7, 12, 0, 0)
    failures = lambda n: [now] * n  # noqa: E731 - all just now
    assert [accounts.wait_s(failures(n), accounts.ACCOUNT_LIMITS, now) for n in range(1, 10)] == [
        0,
        0,
        0,
        0,
        2,
        4,
        8,
        16,
        32,
    ]
    assert accounts.wait_s(failures(10), accounts.ACCOUNT_LIMITS, now) == 15 * 60
    assert accounts.wait_s(failures(10), accounts.ACCOUNT_LIMITS, now + timedelta(minutes=15)) == 0
    assert accounts.wait_s(failures(9), accounts.CLIENT_LIMITS, now) == 0  # a shared address waits later


def test_guessing_backs_off_even_the_right_password_and_a_reset_lifts_it(workstation):
    for _ in range(5):
        with pytest.raises(InputError, match="Wrong user name or password"):
            workstation.login("alice", "guess-guess-guess", "10.0.0.5")
    with pytest.raises(LoginRefused, match="Too many failed logins for this account") as refused:
        workstation.login("alice", PASSWORD, "10.0.0.5")  # the right one, during the back-off
    assert 1 <= refused.value.retry_after_s <= 2
    key, session = workstation.login("bob", PASSWORD, "10.0.0.6")  # another account is not touched
    assert session.user == "bob" and key
    time.sleep(2.1)
    workstation.login("alice", PASSWORD, "10.0.0.5")  # after the wait it works, and clears the count
    now = datetime.now().replace(microsecond=0)
    for seconds in range(10, 0, -1):  # ten failures within the last minute (as the back-off let them in)
        accounts.record_failure(workstation.repository, "alice", "10.0.0.5", now - timedelta(seconds=seconds))
    with pytest.raises(LoginRefused, match="minutes") as locked:
        workstation.login("alice", PASSWORD, "10.0.0.7")
    assert locked.value.retry_after_s > 10 * 60
    workstation.set_password("alice", "a brand new password")  # the administrator's reset
    assert workstation.login("alice", "a brand new password", "10.0.0.7")[1].user == "alice"
    actions = [e.action for e in workstation.audit_trail(user="alice")]
    assert actions.count("login-failed") == 5 and actions.count("login-refused") == 2 and actions[-1] == "login"
    assert ("password-changed", "tester", "alice") in [(e.action, e.user, e.detail) for e in workstation.audit_trail()]


def test_one_client_guessing_many_accounts_is_slowed(workstation):
    for i in range(10):
        with pytest.raises(InputError):
            workstation.login(f"user{i}", "guess-guess-guess", "10.9.9.9")
    with pytest.raises(LoginRefused, match="from this computer"):
        workstation.login("alice", PASSWORD, "10.9.9.9")
    assert workstation.login("alice", PASSWORD, "10.1.1.1")[1].user == "alice"  # from elsewhere: fine


def test_a_password_typed_as_the_name_is_kept_nowhere(workstation, tmp_path):
    with pytest.raises(InputError):
        workstation.login("MySecretPassword42", "x", "127.0.0.1")
    database = (tmp_path / "lh.db").read_bytes()
    assert b"MySecretPassword42" not in database
    assert workstation.audit_trail()[-1].user == "?"


def test_sessions_are_stored_as_hashes_and_end_idle_old_or_by_the_admin(workstation, monkeypatch, tmp_path):
    key, session = workstation.login("alice", PASSWORD, "127.0.0.1")
    assert workstation.web_session(key) == session
    assert key.encode() not in (tmp_path / "lh.db").read_bytes()  # only its SHA-256 is kept
    assert workstation.web_session(key + "x") is None
    assert workstation.end_user_sessions("alice", Actor("root", "web", "127.0.0.1")) == 1
    assert workstation.web_session(key) is None
    key, _ = workstation.login("alice", PASSWORD, "127.0.0.1")
    monkeypatch.setenv("LIVERHEALTH_SESSION_IDLE_MINUTES", "0.02")  # 1.2 s
    time.sleep(2.5)  # times are kept to the second
    assert workstation.web_session(key) is None  # idle too long
    monkeypatch.delenv("LIVERHEALTH_SESSION_IDLE_MINUTES")
    key, _ = workstation.login("alice", PASSWORD, "127.0.0.1")
    eight_hours_ago = (datetime.now() - timedelta(hours=8, minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    path = workstation.repository.url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE web_session SET created_at = ?", (eight_hours_ago,))
    assert workstation.web_session(key) is None  # logged in over 8 hours ago, however active
    monkeypatch.setenv("LIVERHEALTH_SESSION_IDLE_MINUTES", "soon")
    with pytest.raises(InputError, match="number of minutes"):
        workstation.login("alice", PASSWORD, "127.0.0.1")


def test_saved_results_record_who_opened_saved_exported_and_deleted_them(workstation, ircadb1, models_dir, tmp_path):
    session = workstation.session()
    session.set_volume(ircadb1)
    session.segment()
    saved = session.save(store_patient=True)
    workstation.get(saved.result_id, Actor("alice", "web", "10.0.0.8"))
    workstation.export_saved(saved.result_id, tmp_path / "out")
    workstation.delete(saved.result_id)
    trail = workstation.audit_trail(result_id=saved.result_id)
    assert [(e.action, e.user, e.face) for e in trail] == [
        ("save", "tester", "cli"),
        ("view", "alice", "web"),
        ("export", "tester", "cli"),
        ("delete", "tester", "cli"),
    ]
    assert trail[1].client == "10.0.0.8" and all(e.at is not None for e in trail)
    patient = ircadb1.patient
    text = repr(_rows(workstation, "SELECT * FROM audit_event"))
    for identifier in filter(None, (patient.name, patient.patient_id) if patient else ()):
        assert identifier not in text
    assert str(tmp_path) not in text  # no paths either
