"""`liverhealth web` and `web adduser` as a user runs them: one line and exit 2 for what they refuse."""

from __future__ import annotations

from tests.helpers.cli import run_cli


def test_unreachable_database_stops_the_server_with_one_line(tmp_path):
    result = run_cli(
        "web", "--port", "8799", "--db-url", "mysql+pymysql://u:pw-secret@127.0.0.1:9/x",
        env_extra={"LIVERHEALTH_DB_TIMEOUT": "2", "LIVERHEALTH_CONFIG": str(tmp_path / "none.toml")},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the server" in lines[0] and "pw-secret" not in result.stderr


def test_adduser_refuses_a_short_password_and_needs_a_password_source(tmp_path):
    env = {"LIVERHEALTH_DB_URL": f"sqlite:///{tmp_path / 'u.db'}", "LIVERHEALTH_CONFIG": str(tmp_path / "none.toml")}
    short = run_cli("web", "adduser", "carol", "--password-stdin", env_extra=env, input_text="short\n")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    no_tty = run_cli("web", "adduser", "carol", env_extra=env)
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    bad_name = run_cli("web", "adduser", "../carol", "--password-stdin", env_extra=env, input_text="long enough pw\n")
    assert bad_name.returncode == 2 and "user name" in bad_name.stderr
    ok = run_cli("web", "adduser", "carol", "--password-stdin", env_extra=env, input_text="long enough pw\n")
    assert ok.returncode == 0 and "long enough pw" not in ok.stdout + ok.stderr
    assert b"long enough pw" not in (tmp_path / "u.db").read_bytes()  # only the Argon2 hash is stored
