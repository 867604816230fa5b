"""Where the cases run: a local process pool (default) or Ray (extra ``cluster``), the same
per-case function on both. The engine schedules; this module only hands it the cases and
collects the rows."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from liverhealth.batch.cases import Case
from liverhealth.batch.cohort import write_cohort
from liverhealth.batch.work import CaseOptions, CaseStatus, Row, worker_runner
from liverhealth.errors import LiverHealthError
from liverhealth.text import one_line

ENGINES = ("local", "ray")
Received = Callable[[Row], bool]  # True: stop the batch (--fail-fast)


def run_batch(
    cases: list[Case],
    out: Path,
    options: CaseOptions,
    models_dir: Path | None = None,
    db_url: str | None = None,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    fail_fast: bool = False,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run every case; write the cohort table and plots (also after an interruption, with the rows
    received so far); return the rows in case order."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.partial"):  # cases in flight when an earlier batch was killed
        shutil.rmtree(stale, ignore_errors=True)
    workers = max(1, min(workers, len(cases)))
    rows: dict[str, Row] = {}

    def received(row: Row) -> bool:
        rows[row.case_id] = row
        if on_row:
            on_row(row)
        return fail_fast and row.status == CaseStatus.ERROR

    models = str(models_dir) if models_dir else None
    try:
        if engine == "ray":
            _on_ray(cases, str(out), options, models, workers, ray_address, received)
        else:
            _on_local(cases, str(out), options, models, db_url, workers, received)
    finally:
        ordered = [rows[c.case_id] for c in cases if c.case_id in rows]
        write_cohort(ordered, out)
    return ordered


# a local process pool --------------------------------------------------------------------------
def _init_local(models_dir: str | None, db_url: str | None, threads: int, stop: Any) -> None:
    # Ctrl+C reaches the whole process group and SIGTERM's handler is inherited: the batch (the
    # parent) decides, and a worker finishes its case
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    worker_runner(models_dir, db_url, threads, stop)


def _run_local(case: Case, out: str, options: CaseOptions) -> Row:
    return worker_runner(None, None, 1).run(case, out, options)


def _on_local(
    cases: list[Case], out: str, options: CaseOptions, models_dir: str | None, db_url: str | None,
    workers: int, received: Received,
) -> None:  # fmt: skip
    """Threads per worker so that workers × threads ≤ cores; on an interruption (Ctrl+C, SIGTERM)
    the cases in flight finish and no other starts."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context()
    stop = context.Event()
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_local, initargs=(models_dir, db_url, threads, stop)
    )
    futures, seen = [], set()
    try:
        futures = [pool.submit(_run_local, case, out, options) for case in cases]
        for future in as_completed(futures):
            seen.add(future)
            if received(future.result()):
                break
    except BrokenProcessPool as exc:
        raise LiverHealthError(
            "A batch worker process died (most often: out of memory). The finished cases are kept; "
            "rerun the same command with fewer --workers to do the rest."
        ) from exc
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:  # cases that finished while the batch was stopping are in the table too
            if future not in seen and future.done() and not future.cancelled() and future.exception() is None:
                received(future.result())


# Ray -------------------------------------------------------------------------------------------
def _run_on_ray(case: Case, out: str, options: CaseOptions, models_dir: str | None, threads: int) -> Row:
    """A Ray task: the worker process keeps its runner (and model sessions) for the next case."""
    return worker_runner(models_dir, None, threads).run(case, out, options)


def _on_ray(
    cases: list[Case], out: str, options: CaseOptions, models_dir: str | None, workers: int,
    address: str | None, received: Received,
) -> None:  # fmt: skip
    """Each case is a Ray task asking for ``threads`` CPUs, so Ray runs ``workers`` of them at once
    over the cluster; a task whose worker dies becomes that case's error row. An interruption
    cancels what has not finished (those cases are made by the next run)."""
    try:
        import ray
    except ImportError as exc:
        raise LiverHealthError("--engine ray needs Ray: pip install 'liverhealth[cluster]'.") from exc
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, address)
    try:
        cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
        threads = max(1, min(int(sum(cpus) // workers), int(max(cpus, default=1))))
        task = ray.remote(num_cpus=threads, max_retries=0)(_run_on_ray)
        pending = {task.remote(case, out, options, models_dir, threads): case for case in cases}
        try:
            stopped = False
            while pending and not stopped:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1.0)
                for ref in ready:
                    stopped = received(_ray_row(ray, ref, pending.pop(ref))) or stopped
        finally:
            for ref in pending:
                ray.cancel(ref)
    finally:
        if started_here:
            ray.shutdown()


def _ray_row(ray: Any, ref: Any, case: Case) -> Row:
    """The task's row, or the case's error row when its worker failed (died, was killed)."""
    from ray.exceptions import RayError

    try:
        return ray.get(ref)
    except RayError as exc:
        failure = f"{type(exc).__name__}: {one_line(exc, 160)}"
        return Row(case.case_id, case.path, CaseStatus.ERROR, f"The Ray worker running this case failed ({failure}).")


def _start_ray(ray: Any, address: str | None) -> None:
    """Join the cluster at ``address`` (``ray://HOST:PORT``, ``HOST:PORT`` or ``auto``), or start a
    local one on this machine's cores, listening on 127.0.0.1 only."""
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # Ray nices its workers by default; a local batch runs at the local pool's priority
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(
                num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise LiverHealthError(
            f"Could not start or reach {where} ({one_line(exc, 160)}). Check `ray status` on the head node."
        ) from exc
