"""Load on one web server: users upload a real CT at once, then wait for their jobs to end.

U users upload N times each to one `liverhealth web` process with its default bounded queue, then
wait for their jobs to end (with a deadline).

    python -m bench.bench_load [--users 8] [--uploads 2] [--deadline-s 600] [--data ../shared/data]
                               [--models-dir DIR] [--out bench/results/security/bench_load.txt]

Each user is a web account made with `liverhealth web adduser NAME --password-stdin`; all users
start together and send their uploads back to back (no waiting between them). The CT is the
20-slice TotalSegmentator DICOM series, zipped here. Reports the uploads accepted and refused
(HTTP 503 with Retry-After, with the server's message), the jobs finished and failed, the wall
time, and the peak memory of the server (its resident memory and its children's, read from
/proc every 0.2 s; VmHWM of the server process besides). A fresh SQLite database, the installed
(or given) models, no LLM endpoint.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.bench_web import peak_rss_mb, web_process
from bench.paths import shown
from liverhealth import config

SERIES = Path("totalsegmentator") / "example_ct_dicom"
FINISHED = ("done", "failed", "cancelled", "interrupted")
SAMPLE_S = 0.2
OUT = config.REPO_ROOT / "bench" / "results" / "security" / "bench_load.txt"


@dataclass
class UserRun:
    """What one user saw: the answer to each upload, and how each accepted job ended."""

    refused: list[str] = field(default_factory=list)  # 503 + Retry-After: "message (Retry-After N s)"
    failed_uploads: list[str] = field(default_factory=list)  # any other refusal
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> final state (or "deadline")
    messages: dict[str, str] = field(default_factory=dict)  # job id -> the message of a failed job
    seconds: dict[str, float] = field(default_factory=dict)  # job id -> upload start to its end


def zip_series(folder: Path, target: Path) -> Path:
    """The DICOM series as one zip (what a user uploads from a PACS export)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"series/{path.name}")
    return target


def password(name: str) -> str:
    return f"load-password-{name}"


@contextmanager
def running_server(models_dir: Path | None, users: list[str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """A `liverhealth web` process with its defaults (1 worker, --max-queued 8, --max-queued-per-user 2)
    on a free port, a fresh database in a scratch folder and one account per user."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "LIVERHEALTH_CONFIG": f"{tmp}/none.toml",
            "LIVERHEALTH_DB_URL": f"sqlite:///{tmp}/web.db",
            "LIVERHEALTH_LLM_BASE_URL": "",
            "LIVERHEALTH_LLM_API_KEY": "",
            "DASHSCOPE_API_KEY": "",
            "TMPDIR": tmp,
        }
        base = [sys.executable, "-m", "liverhealth.cli", *(["--models-dir", str(models_dir)] if models_dir else [])]
        for name in users:
            subprocess.run(
                [*base, "web", "adduser", name, "--password-stdin"],
                input=password(name),
                text=True,
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
            )
        with web_process([*base, "web"], env, tmp, tries=300, stop_s=60) as running:
            yield running


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (from /proc), in MB."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total_kb = 0
    for member in tree:
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


class MemorySampler(threading.Thread):
    """The peak of ``process_tree_rss_mb`` over the run, sampled every ``SAMPLE_S``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.samples = pid, 0.0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_mb = max(self.peak_mb, process_tree_rss_mb(self.pid))
            self.samples += 1
            self.stopped.wait(SAMPLE_S)


def login(url: str, name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=600)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": name, "password": password(name), "token": token})
    return client, client.get("/api/me").json()["csrf"]


def one_user(url: str, name: str, ct: Path, uploads: int, start: threading.Barrier, deadline: float) -> UserRun:
    """Log in, wait for the others, send ``uploads`` uploads back to back, then wait for the accepted
    jobs to end (until ``deadline``, a time.monotonic() value)."""
    run = UserRun()
    client, csrf = login(url, name)
    started: dict[str, float] = {}
    start.wait()
    for _ in range(uploads):
        began = time.monotonic()
        with open(ct, "rb") as handle:
            response = client.post("/api/jobs", files={"files": (ct.name, handle)}, headers={"X-CSRF-Token": csrf})
        if response.status_code == 200:
            started[response.json()["job_id"]] = began
        elif response.status_code == 503 and "retry-after" in response.headers:
            run.refused.append(f"{response.json()['detail']} (Retry-After {response.headers['retry-after']} s)")
        else:
            run.failed_uploads.append(f"HTTP {response.status_code}: {response.text[:200]}")
    waiting = set(started)
    while waiting and time.monotonic() < deadline:
        for job_id in sorted(waiting):
            status = client.get(f"/api/jobs/{job_id}").json()
            if status["state"] in FINISHED:
                run.jobs[job_id], run.seconds[job_id] = status["state"], time.monotonic() - started[job_id]
                if status["state"] != "done":
                    run.messages[job_id] = status["message"]
                waiting.discard(job_id)
        time.sleep(0.5)
    run.jobs.update({job_id: "deadline" for job_id in waiting})
    client.close()
    return run


def report(runs: list[UserRun], wall_s: float, peak_mb: float, hwm_mb: float, samples: int) -> list[str]:
    """The result as the README quotes it."""
    accepted = sum(len(r.jobs) for r in runs)
    states = Counter(state for r in runs for state in r.jobs.values())
    refused = Counter(message for r in runs for message in r.refused)
    times = sorted(t for r in runs for job_id, t in r.seconds.items() if r.jobs[job_id] == "done")
    lines = [
        f"uploads accepted: {accepted} of {sum(len(r.jobs) + len(r.refused) + len(r.failed_uploads) for r in runs)}",
        f"refused (HTTP 503 with Retry-After): {sum(refused.values())}",
        *(f'  {count} x "{message}"' for message, count in refused.most_common()),
        f"uploads failed otherwise: {sum(len(r.failed_uploads) for r in runs)}",
        *(f"  {message}" for r in runs for message in r.failed_uploads),
        f"jobs finished (done): {states['done']}",
        f"jobs failed, cancelled or interrupted: {sum(n for s, n in states.items() if s not in ('done', 'deadline'))}",
        *(f"  {message}" for r in runs for message in r.messages.values()),
        f"jobs not finished by the deadline: {states['deadline']}",
    ]
    if times:
        lines.append(
            f"upload to done: first {times[0]:.1f} s, median {times[len(times) // 2]:.1f} s, last {times[-1]:.1f} s"
        )
    lines += [
        f"wall time: {wall_s:.1f} s",
        f"server peak memory: {peak_mb:.0f} MB (RSS of the server and its children, {samples} samples every "
        f"{SAMPLE_S} s); VmHWM of the server process {hwm_mb:.0f} MB",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=2, help="uploads per user, sent back to back (default 2)")
    parser.add_argument("--deadline-s", type=float, default=600, help="how long users wait for their jobs")
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT, help="where the result is written (besides stdout)")
    args = parser.parse_args()
    names = [f"user{i:02d}" for i in range(1, args.users + 1)]
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores
    with tempfile.TemporaryDirectory() as tmp, running_server(args.models_dir, names) as (url, server):
        ct = zip_series(args.data / SERIES, Path(tmp) / "example_ct_dicom.zip")
        sampler = MemorySampler(server.pid)
        sampler.start()
        start = threading.Barrier(len(names))
        runs: list[UserRun] = [UserRun() for _ in names]
        began = time.monotonic()
        deadline = began + args.deadline_s
        threads = [
            threading.Thread(
                target=lambda i=i: runs.__setitem__(i, one_user(url, names[i], ct, args.uploads, start, deadline))
            )
            for i in range(len(names))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
        sampler.stopped.set()
        sampler.join()
        hwm = peak_rss_mb(server.pid)
        size_mb = ct.stat().st_size / 2**20
    command = "python -m bench.bench_load " + " ".join(sys.argv[1:])
    header = [
        f"$ {command.strip()}",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, no GPU; "
        f"{args.users} users x {args.uploads} uploads at once to one `liverhealth web` (defaults: 1 worker, "
        "--max-queued 8, --max-queued-per-user 2), SQLite, the default model, no LLM endpoint",
        f"CT: {shown(args.data / SERIES)} (20 DICOM slices, JPEG 2000), zipped: {size_mb:.1f} MB",
        f"1-minute load average before the run: {load_before:.1f} (other work on the machine)",
    ]
    text = "\n".join([*header, *report(runs, wall, sampler.peak_mb, hwm, sampler.samples)]) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
