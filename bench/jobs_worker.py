"""The child process of the 1,000-job benchmark: the bot's core with a recording front end.

``python -m bench.jobs_worker JOBS TIMEOUT`` builds the services exactly as ``pikabot run``
does (:meth:`bot.services.Services.open`, settings from the environment the parent sets:
FakeFal's URL, a database file, ``PIKABOT_MAX_CONCURRENT_JOBS``...), creates ``JOBS`` jobs the
way ``/pika`` does (create, then start), and waits until every one has ended. The front end
only records what it is told; it neither edits messages nor re-reads the video file.

It prints one JSON object on stdout: counts, timings, CPU seconds, RSS and event-loop lag.
Logs (JSON lines, INFO, as in production) go to stderr, which the parent sends to a file.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import psutil

from bench.common import LoopLag, RssSampler, percentile
from bot.config import load_settings
from bot.delivery import DownloadedVideo
from bot.logs import configure_logging
from bot.models import GenerationRequest, Job, Origin, Progress
from bot.services import Services

GUILDS = 10


class RecordingFrontEnd:
    """A :class:`bot.jobs.JobObserver` that only records what it is told."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.progress_calls = 0
        self.delivered_at: dict[int, float] = {}
        self.failed_with: dict[int, str] = {}
        self.all_done = asyncio.Event()

    def _check(self) -> None:
        if len(self.delivered_at) + len(self.failed_with) >= self.expected:
            self.all_done.set()

    async def progress(self, job: Job, progress: Progress) -> None:
        """Count a status update."""
        self.progress_calls += 1

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Record a delivery; the job's id stands for the message id."""
        self.delivered_at[job.id] = time.monotonic()
        self._check()
        return job.id

    async def already_delivered(self, job: Job) -> int | None:
        """Nothing was posted before (no restarts here)."""
        return None

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """Nothing more to show."""

    async def failed(self, job: Job, reason: str) -> None:
        """Record a failure."""
        self.failed_with[job.id] = reason
        self._check()


async def main(jobs: int, limit_seconds: float) -> dict[str, object]:
    """Run ``jobs`` jobs at once; return the figures."""
    settings = load_settings(need_discord=False, need_provider=True)
    configure_logging(level="INFO", fmt=settings.log_format, secrets=settings.secrets())
    me = psutil.Process()
    services = await Services.open(settings)
    front = RecordingFrontEnd(jobs)
    lag = LoopLag(0.01)
    baseline_rss = me.memory_info().rss
    cpu_before = me.cpu_times()
    # Sampled, not ru_maxrss: on Linux that keeps the parent's peak across fork and exec.
    rss = RssSampler(me.pid, interval=0.01)
    rss.start()
    lag.start()
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_seconds):
            for i in range(jobs):
                origin = Origin(
                    guild_id=1000 + i % GUILDS,
                    channel_id=2000 + i % GUILDS,
                    user_id=3000 + i,
                    user_name=f"member {i}",
                )
                request = GenerationRequest(prompt=f"benchmark clip {i}", seed=i)
                job = await services.jobs.create(request, origin)
                services.jobs.start(job, front)
            created = time.monotonic()
            await front.all_done.wait()
        finished = time.monotonic()
    finally:
        rss.stop()
        await lag.stop()
        cpu_after = me.cpu_times()
        states: Counter[str] = Counter()
        ledger: Counter[str] = Counter()
        async with services.storage.read() as uow:
            for guild in range(1000, 1000 + GUILDS):
                for job in await uow.jobs.recent(guild, None, jobs):
                    states[job.state.value] += 1
                entries, _ = await uow.ledger.page(guild, offset=0, limit=10 * jobs + 10)
                ledger.update(entry.kind.value for entry in entries)
        await services.close()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {
        "jobs": jobs,
        "delivered": len(front.delivered_at),
        "failed": len(front.failed_with),
        "failures": sorted(set(front.failed_with.values()))[:3],
        "create_seconds": created - started,
        "wall_seconds": finished - started,
        "cpu_seconds": cpu,
        "baseline_rss": baseline_rss,
        "peak_rss": rss.peak(),
        "lag_p50": percentile(lag.lags, 50),
        "lag_p99": percentile(lag.lags, 99),
        "lag_max": max(lag.lags, default=0.0),
        "progress_calls": front.progress_calls,
        "states": dict(states),
        "ledger": dict(ledger),
    }


if __name__ == "__main__":
    result = asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
    print(json.dumps(result))
