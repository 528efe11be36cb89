"""Benchmark 5: 1,000 concurrent jobs in one process.

The bot's core runs in a child process (``bench.jobs_worker``: the services ``pikabot run``
builds, with a recording front end) so its RSS and CPU time are its own; FakeFal runs here.
Each job goes through FakeFal's queue (two queue positions, two progress log lines on the
status stream) and is done 20 to 30 s after its submit (drawn per job; 3 to 8 s with
``--quick``), so that all of them are in flight at once, then its 1 MiB video is downloaded
and "delivered". ``PIKABOT_MAX_CONCURRENT_JOBS`` is set to the job count, so all
of them are followed at once. The child's RSS is also sampled from here with psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time

from bench.common import (
    FAL_KEY,
    Config,
    MiB,
    Rows,
    RssSampler,
    mb,
    median,
    ms,
    percentile,
    secs,
)
from tests.fakes.bot_process import ROOT
from tests.fakes.fal import FakeFal

NAME = "jobs"
RSS_TARGET = 300 * MiB
LAG_TARGET = 0.100
READY = (20.0, 30.0)  # long enough for every job to be in flight at once
QUICK_READY = (3.0, 8.0)


async def _jitter(
    fal: FakeFal, rng: random.Random, ready: tuple[float, float], in_flight: list[int]
) -> None:
    """Redraw FakeFal's ``ready_after`` every 10 ms, so each job gets its own duration, and
    record how many jobs FakeFal holds (submitted, not yet completed)."""
    while True:
        fal.ready_after = rng.uniform(*ready)
        in_flight.append(sum(1 for job in fal.jobs.values() if not job.completed))
        await asyncio.sleep(0.01)


async def run(cfg: Config) -> Rows:
    """Start the worker with ``jobs`` jobs, serve them, and report its figures."""
    rows = Rows()
    jobs = 50 if cfg.quick else 1000
    timeout = 120.0 if cfg.quick else 270.0
    rng = random.Random(5)
    async with FakeFal(
        key=FAL_KEY,
        stream_interval=0.5,
        video_size=1 * MiB,
        progress_logs=("Starting generation", "Rendering frames"),
    ) as fal:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "FAL_KEY": FAL_KEY,
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(cfg.workdir / "jobs.sqlite3"),
            "PIKABOT_DEFAULT_ALLOWANCE": "10000000",
            "PIKABOT_MAX_CONCURRENT_JOBS": str(jobs),
            "PIKABOT_MAX_QUEUE": str(jobs),
            "PIKABOT_GUILD_MAX_QUEUE": str(jobs),
            "PIKABOT_LOG_FORMAT": "json",
            "PIKABOT_LOG_LEVEL": "INFO",
        }
        in_flight: list[int] = []
        ready = QUICK_READY if cfg.quick else READY
        jitter = asyncio.create_task(_jitter(fal, rng, ready, in_flight))
        spawned = time.monotonic()
        with (cfg.workdir / "jobs-worker.log").open("wb") as log:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.jobs_worker",
                str(jobs),
                str(timeout),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        try:
            with RssSampler(child.pid, interval=0.05) as rss:
                async with asyncio.timeout(timeout + 30):
                    out, _ = await child.communicate()
        finally:
            jitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jitter
            if child.returncode is None:
                child.kill()
                await child.wait()
        if child.returncode != 0:
            raise RuntimeError(f"jobs worker exited {child.returncode}; see jobs-worker.log")
        figures = json.loads(out.decode().strip().splitlines()[-1])
        most_streams = fal.count("stream")
        late = [
            job.completed_at - job.ready_at
            for job in fal.jobs.values()
            if job.completed_at is not None and job.ready_at is not None
        ]

    peak = max(figures["peak_rss"], rss.peak(since=spawned))
    delivered = figures["delivered"]
    all_delivered = delivered == jobs and figures["states"].get("delivered") == jobs
    rows.add(
        NAME,
        f"{jobs} jobs delivered",
        f"{delivered} delivered, {figures['failed']} failed in {figures['wall_seconds']:.1f} s"
        f" (created in {figures['create_seconds']:.1f} s)",
        f"all {jobs}",
        all_delivered,
    )
    rows.add(
        NAME,
        "peak RSS of the process",
        f"{mb(peak)} (at start {mb(figures['baseline_rss'])})",
        f"<= {RSS_TARGET // MiB} MiB",
        peak <= RSS_TARGET,
    )
    rows.add(NAME, "most jobs in flight at FakeFal at once", f"{max(in_flight, default=0)}")
    rows.add(
        NAME,
        "done -> COMPLETED sent to the bot under load",
        f"median {secs(median(late))}, p95 {secs(percentile(late, 95))}",
    )
    rate = jobs / figures["create_seconds"]
    rows.add(NAME, "jobs created per second (price, reserve, job row)", f"{rate:,.0f}/s")
    rows.add(NAME, "CPU seconds per job", f"{figures['cpu_seconds'] / jobs * 1000:.1f} ms")
    rows.add(
        NAME,
        "event-loop lag p99 (10 ms sampler)",
        f"{ms(figures['lag_p99'])} (p50 {ms(figures['lag_p50'])}, max {ms(figures['lag_max'])})",
        f"<= {LAG_TARGET * 1000:.0f} ms",
        figures["lag_p99"] <= LAG_TARGET,
    )
    ledger = figures["ledger"]
    rows.add(
        NAME,
        "ledger after the run",
        f"{ledger.get('reserve', 0)} reserve, {ledger.get('charge', 0)} charge,"
        f" {ledger.get('refund', 0)} refund",
    )
    if figures["failures"]:
        rows.notes.append(f"jobs: failure reasons seen: {figures['failures']}")
    rows.notes.append(
        f"jobs: {most_streams} status streams opened at FakeFal for {jobs} jobs;"
        f" {figures['progress_calls']} throttled progress updates reached the front end."
    )
    return rows
