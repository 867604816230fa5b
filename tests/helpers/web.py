"""A real `liverhealth web` server for tests (uvicorn in its own process on 127.0.0.1) with three
accounts and a tiny threshold model, and a browser-like client for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers.databases import free_port
from tests.helpers.onnx_models import make_threshold_model, manifest_entry

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "root": "admin-password-333"}
MAX_UPLOAD_MB = 40  # the IRCADb zip is 31 MB


class WebClient:
    """One browser-like user of the server: cookies, the CSRF token, uploads and event streams."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120, follow_redirects=False)
        self.csrf = ""

    def login(self, name: str, password: str | None = None) -> httpx.Response:
        page = self.http.get("/login")
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        response = self.http.post(
            "/login", data={"name": name, "password": password or PASSWORDS[name], "token": token}
        )
        if response.headers.get("location") == "/":
            self.csrf = self.http.get("/api/me").json()["csrf"]
        return response

    def post(self, path: str, **kwargs) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.http.post(path, headers=headers, **kwargs)

    def upload(self, *paths: Path, names: list[str] | None = None, **form) -> httpx.Response:
        handles = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed below
        try:
            files = [("files", (name, h)) for name, h in zip(names or [p.name for p in paths], handles, strict=True)]
            return self.post("/api/jobs", files=files, data=form)
        finally:
            for h in handles:
                h.close()

    def events(self, job_id: str) -> list[dict]:
        """Every event of a job, read live as server-sent events until the job finishes."""
        events = []
        with self.http.stream("GET", f"/api/jobs/{job_id}/events", timeout=300) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        return events

    def run(self, *paths: Path, **form) -> tuple[str, list[dict]]:
        response = self.upload(*paths, **form)
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        return job_id, self.events(job_id)


@contextmanager
def running_web_server(
    root: Path, env_extra: dict[str, str] | None = None, server_args: tuple[str, ...] = ()
) -> Iterator[tuple[str, Path, Path, subprocess.Popen]]:
    """(base URL, work folder, log path, process) of a `liverhealth web` process; stopped on exit.
    Started again on the same ``root`` it keeps the database (a restart)."""
    models = root / "models"
    if not (models / "manifest.json").is_file():
        models.mkdir(parents=True, exist_ok=True)
        make_threshold_model(models / "threshold.onnx", size=(128, 128))
        entry = manifest_entry("threshold", models / "threshold.onnx", size=(128, 128))
        (models / "manifest.json").write_text(json.dumps({"schema": 1, "default": "threshold", "models": [entry]}))
    env = {
        **os.environ,
        "LIVERHEALTH_CONFIG": str(root / "no-config.toml"),
        "LIVERHEALTH_DB_URL": f"sqlite:///{root / 'web.db'}",
        "LIVERHEALTH_LOG_DIR": str(root / "logs"),
        "LIVERHEALTH_THREADS": "2",
        "TMPDIR": str(root),
        **(env_extra or {}),
    }
    base = [sys.executable, "-m", "liverhealth.cli", "--models-dir", str(models), "web"]
    if not (root / "web.db").is_file():
        for name, password in PASSWORDS.items():
            admin = ["--admin"] if name == "root" else []
            subprocess.run(
                [*base, "adduser", name, "--password-stdin", *admin],
                input=password + "\n",
                text=True,
                env=env,
                check=True,
            )
    port = free_port()
    log = root / "server.log"
    with open(log, "a") as handle:
        process = subprocess.Popen(
            [*base, "--port", str(port), "--max-upload-mb", str(MAX_UPLOAD_MB), "--workers", "2", *server_args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/login", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the web server did not start: {log.read_text()}") from None
                time.sleep(0.3)
        yield url, root, log, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def login(web_server, name: str) -> WebClient:
    user = WebClient(web_server[0])
    assert user.login(name).headers["location"] == "/"
    return user
