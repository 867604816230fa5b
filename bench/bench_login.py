"""Password guessing against the web login, as an attacker on 127.0.0.1 would try it: N wrong
passwords for one account, C at a time, then the right one at once.

    python -m bench.bench_login [--guesses 20] [--concurrent 8]

Reports the wall time, the guesses per second, how many were checked (answered "wrong password")
and how many refused unchecked (backed off), and whether the right password then worked at once.
A real `liverhealth web` process with a fresh SQLite database (bench/bench_web.py's server).
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from bench.bench_web import PASSWORD, running_server


def attempt(url: str, password: str) -> str:
    """One login as a fresh browser would do it: the form's token, then the post; its outcome."""
    with httpx.Client(base_url=url, timeout=120) as client:
        token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)
        location = client.post("/login", data={"name": "bench", "password": password, "token": token}).headers.get(
            "location", ""
        )
    if location == "/":
        return "accepted"
    return "refused (backed off)" if "error=3" in location else "wrong password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guesses", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=8)
    args = parser.parse_args()
    with running_server(None) as (url, _server):
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrent) as pool:
            outcomes = list(pool.map(lambda i: attempt(url, f"wrong-guess-{i:04d}"), range(args.guesses)))
        wall = time.perf_counter() - started
        right = attempt(url, PASSWORD)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {args.guesses} wrong passwords "
        f"for one account, {args.concurrent} at a time"
    )
    print(f"wall {wall:.2f} s, {args.guesses / wall:.1f} guesses/s")
    for outcome in ("wrong password", "refused (backed off)"):
        print(f"  {outcome}: {outcomes.count(outcome)}")
    print(f"the right password right after: {right}")


if __name__ == "__main__":
    main()
