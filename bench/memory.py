"""Benchmark 4: the bot process's peak RSS growth while it delivers a 95 MiB video.

The real bot process (tier 3 guild: 100 MiB per attachment) downloads the video from FakeFal
and uploads it to the Discord double while a thread samples its RSS with psutil every 5 ms.
Growth is the peak during the job minus the median RSS of the half second before it; a
5 MiB job first warms the paths up (imports, connection pools), so one-off costs are not
counted as per-video memory.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import (
    FAL_KEY,
    BotStack,
    Config,
    MiB,
    Rows,
    RssSampler,
    bot_stack,
    mb,
    median,
)
from bench.delivery import BIG_REQUEST_LIMIT, deliver
from tests.fakes.fal import FakeFal

NAME = "memory"
SIZE = 95 * MiB
TARGET = 20 * MiB


async def _measure(stack: BotStack, label: str) -> tuple[int, int, float]:
    """(baseline RSS, peak growth, seconds) of one 95 MiB delivery."""
    with RssSampler(stack.pid) as sampler:
        await asyncio.sleep(0.5)
        started = time.monotonic()
        baseline = int(median([rss for _, rss in sampler.samples]))
        result = await deliver(stack, SIZE, label)
        await asyncio.sleep(0.3)  # the temporary file and buffers are released after posting
    peak = sampler.peak(since=started)
    return baseline, peak - baseline, result.total


async def run(cfg: Config) -> Rows:
    """Warm up with 5 MiB, then deliver 95 MiB clips and report the RSS growth of each."""
    rows = Rows()
    runs = 1 if cfg.quick else 2
    async with (
        FakeFal(key=FAL_KEY, queue_positions=(), progress_logs=(), ready_after=1.0) as fal,
        bot_stack(cfg.workdir, NAME, fal, PIKABOT_STATUS_EDIT_INTERVAL="1.0") as stack,
    ):
        fal.stream_interval = 0.25
        await stack.discord.set_premium_tier(3)
        stack.discord.request_limit = BIG_REQUEST_LIMIT
        await asyncio.sleep(0.5)
        await deliver(stack, 5 * MiB, "warm-up clip")
        for i in range(runs):
            baseline, growth, took = await _measure(stack, f"95 MiB clip {i}")
            rows.add(
                NAME,
                f"95 MiB delivery #{i + 1}: peak RSS growth",
                f"{mb(growth)} (baseline {mb(baseline)}, {took:.2f} s)",
                f"< {TARGET // MiB} MiB",
                growth < TARGET,
            )
    return rows
