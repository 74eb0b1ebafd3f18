"""The REST service under load: many clients polling a job's status while the job runs
on the embedded worker's 2 processes (real Tesseract on the tests/data pages), against
the same job with no pollers, in alternating rounds on one server.

Prints the status route's latency (p50/p99 over every poll) and the job's pages/s with
and without pollers (the job's own throughput, run time from the store), and while
polled the CPU the server and the clients use (they share the cores with the workers).
Targets:
p99 < 100 ms; pages/s with pollers within 5% of without.

Usage: python bench/service.py [--pollers 200] [--interval 1.0] [--copies 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "tests" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, str]:
    from ocrbatch.store import Store

    db = f"sqlite:///{tmp / 'bench.db'}"
    with Store(db) as st:
        token, _ = st.create_token("bench", "write")
    port = free_port()
    log = (tmp / "serve.log").open("wb")  # the server's, for its life
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "none", "serve", "--port", str(port),
         "--db", db, "--allow-root", str(tmp), "--state-dir", str(tmp / "state"),
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=log, cwd=tmp,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit((tmp / "serve.log").read_text())
        time.sleep(0.2)
    return proc, url, token


def inputs(tmp: Path, copies: int) -> Path:
    src = tmp / "pages"
    src.mkdir()
    originals = sorted(PAGES.glob("*/*.tif")) + sorted(PAGES.glob("*/*.jpg"))
    for i in range(copies):
        for p in originals:
            shutil.copy(p, src / f"{i:03}-{p.name}")
    return src


def submit(api: httpx.Client, src: Path, tmp: Path, n: int) -> int:
    body = {"inputs": [str(src)], "out": str(tmp / f"out-{n}"), "force": True,
            "options": {"preprocess": "off"}}  # fmt: skip
    r = api.post("/api/v1/jobs", json=body)
    r.raise_for_status()
    return int(r.json()["job"])


def wait_done(api: httpx.Client, job: int) -> dict[str, Any]:
    while True:
        d = api.get(f"/api/v1/jobs/{job}").json()
        if d["status"] in ("completed", "failed", "cancelled") and d["outputs"]:
            return dict(d)
        time.sleep(0.5)


errors: list[int] = []


async def poll(url: str, token: str, job: int, pollers: int, interval: float) -> list[float]:
    """``pollers`` clients on one aiohttp session (its HTTP parser is C: the clients share
    the cores with the server, so their own CPU is kept low and reported), each polling every
    ``interval`` s until the job ends; the latency of each poll."""
    import aiohttp

    latencies: list[float] = []
    done = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=pollers, keepalive_timeout=20)
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers, connector=connector,
                                     timeout=timeout) as c:  # fmt: skip

        async def client() -> None:
            await asyncio.sleep(random.uniform(0, interval))
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    async with c.get(f"/api/v1/jobs/{job}") as r:
                        body = await r.json() if r.status == 200 else None
                except (TimeoutError, aiohttp.ClientError):
                    errors.append(1)  # e.g. a keep-alive connection closed as it was reused
                    continue
                latencies.append(time.perf_counter() - t0)
                if body is None:
                    errors.append(r.status)
                elif body["status"] in ("completed", "failed", "cancelled"):
                    done.set()
                await asyncio.sleep(interval)

        await asyncio.gather(*(client() for _ in range(pollers)))
    return latencies


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), children left out."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pollers", type=int, default=200)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between a client's polls")
    ap.add_argument("--copies", type=int, default=40, help="copies of the 3 test pages")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-service-") as d:
        tmp = Path(d)
        src = inputs(tmp, a.copies)
        proc, url, token = start(tmp, a.workers)
        rates: dict[str, list[float]] = {"alone": [], "polled": []}
        latencies: list[float] = []
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
                n = 0
                for rnd in range(a.rounds):
                    for kind in ("alone", "polled"):
                        n += 1
                        job = submit(api, src, tmp, n)
                        if kind == "polled":
                            c0, s0, t0 = cpu_seconds(), cpu_seconds(proc.pid), time.monotonic()
                            lat = asyncio.run(poll(url, token, job, a.pollers, a.interval))
                            latencies += lat
                            wall = time.monotonic() - t0
                            print(
                                f"  while polled: the server's CPU "
                                f"{(cpu_seconds(proc.pid) - s0) / wall:.2f} cores, the "
                                f"clients' {(cpu_seconds() - c0) / wall:.2f} cores",
                                flush=True,
                            )
                        fig = wait_done(api, job)
                        rate = float(fig["pages_per_s"])
                        rates[kind].append(rate)
                        print(f"round {rnd + 1} {kind:6}: job {job}, {fig['pages_done']} pages, "
                              f"{rate:.3f} pages/s", flush=True)  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    alone, polled = statistics.mean(rates["alone"]), statistics.mean(rates["polled"])
    print(f"status polls: {len(latencies)} by {a.pollers} clients every {a.interval:g} s: "
          f"p50 {1000 * pct(latencies, 0.5):.1f} ms, p99 {1000 * pct(latencies, 0.99):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms; errors {len(errors)}")  # fmt: skip
    ratios = [p / q for p, q in zip(rates["polled"], rates["alone"], strict=True)]
    print(f"job pages/s: alone {alone:.3f}, with pollers {polled:.3f}: ratio {polled / alone:.3f} "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
