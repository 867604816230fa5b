"""Web interface timings on the real IRCADb CT: upload -> first view, -> result, -> report; the
server's peak memory; four concurrent uploads (throughput, failures).

    python -m bench.bench_web [--data ../shared/data] [--models-dir DIR] [--workers 1] [--concurrent 4]

A real `liverhealth web` process on 127.0.0.1 with a fresh SQLite database and the installed
(or given) models; one account; no LLM endpoint (the report is the measured findings with the
no-draft notice, as a site without an LLM gets). Times are from the client: the upload request
starts the clock; "first view" is the server-sent event that the CT is ready for the viewer,
"result" the one with the segmentation and measurements, "done" the finished report. The
browser's own drawing is not in these figures (tests/web/test_browser.py drives chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from liverhealth import config

PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def login(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=600)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "bench", "password": PASSWORD, "token": token})
    return client, client.get("/api/me").json()["csrf"]


def one_upload(url: str, ct: Path) -> dict[str, float | str]:
    """Upload, then follow the events; seconds from the start of the upload to each milestone."""
    client, csrf = login(url)
    started = time.perf_counter()
    with open(ct, "rb") as handle:
        response = client.post("/api/jobs", files={"files": (ct.name, handle)}, headers={"X-CSRF-Token": csrf})
    uploaded = time.perf_counter() - started
    if response.status_code != 200:
        return {"state": f"refused: {response.text[:200]}"}
    times: dict[str, float | str] = {"upload_s": uploaded}
    with client.stream("GET", f"/api/jobs/{response.json()['job_id']}/events") as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            now = time.perf_counter() - started
            if event["kind"] == "volume":
                times["first_view_s"] = now
            elif event["kind"] == "result":
                times["result_s"] = now
            elif event["kind"] == "state" and event["state"] in ("done", "failed", "cancelled"):
                times["done_s"] = now
                times["state"] = event["state"] if event["state"] == "done" else f"{event['state']}: {event['message']}"
    return times


@contextmanager
def web_process(
    command: list[str], env: dict[str, str], cwd: str, tries: int = 200, stop_s: float = 30
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``liverhealth ... web`` started on a free port of 127.0.0.1, waited for (``tries`` × 0.2 s)
    until its login page answers: (its URL, the process); terminated afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(tries):
            if server.poll() is not None:
                raise SystemExit(f"`liverhealth web` exited with status {server.returncode} before answering")
            try:
                httpx.get(f"{url}/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, server
    finally:
        server.terminate()
        server.wait(stop_s)


@contextmanager
def running_server(
    models_dir: Path | None, workers: int = 1, base_env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A `liverhealth web` process on a free port with a fresh database and one account ("bench"),
    run in ``base_env`` (default: this process's) from a scratch folder."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **(base_env if base_env is not None else os.environ),
            "LIVERHEALTH_CONFIG": f"{tmp}/none.toml",
            "LIVERHEALTH_DB_URL": f"sqlite:///{tmp}/web.db",
            "LIVERHEALTH_LLM_BASE_URL": "",
            "LIVERHEALTH_LLM_API_KEY": "",
            "DASHSCOPE_API_KEY": "",
            "TMPDIR": tmp,
        }
        base = [sys.executable, "-m", "liverhealth.cli"]
        if models_dir:
            base += ["--models-dir", str(models_dir)]
        subprocess.run(
            [*base, "web", "adduser", "bench", "--password-stdin"],
            input=PASSWORD,
            text=True,
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        with web_process([*base, "web", "--workers", str(workers)], env, tmp) as running:
            yield running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args()
    ct = args.data / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    with running_server(args.models_dir, args.workers) as (url, server):
        print(f"CT: {ct.relative_to(args.data)} (129 x 512 x 512), server workers: {args.workers}, no LLM endpoint")
        single = [one_upload(url, ct) for _ in range(2)]
        for i, row in enumerate(single, 1):
            print(
                f"single upload {i}: upload {row['upload_s']:.2f} s, first view {row['first_view_s']:.2f} s, "
                f"result {row['result_s']:.2f} s, report done {row['done_s']:.2f} s ({row['state']})"
            )
        rows: list[dict] = [{} for _ in range(args.concurrent)]
        started = time.perf_counter()
        threads = [
            threading.Thread(target=lambda i=i: rows.__setitem__(i, one_upload(url, ct)))
            for i in range(args.concurrent)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        failed = [r for r in rows if r.get("state") != "done"]
        rate = args.concurrent / wall * 60
        slowest = max(r.get("done_s", float("nan")) for r in rows)
        states = [r.get("state") for r in failed]
        print(f"{args.concurrent} concurrent uploads: all finished in {wall:.1f} s ({rate:.1f} studies/min),")
        print(f"  slowest {slowest:.1f} s after its upload began; failures {len(failed)} {states}")
        print(f"server peak memory (VmHWM): {peak_rss_mb(server.pid):.0f} MB")


if __name__ == "__main__":
    main()
