"""Benchmark 7: ``/pika`` acknowledgement latency in bursts of simultaneous members.

The real ``pikabot run`` process is connected to the Discord double, which dispatches a burst
of ``n`` INTERACTION_CREATE events at once (100, 400 and 1,000 in a full run) and records when
each callback arrives; Discord fails an interaction that is not answered within 3 s
("The application did not respond"), so the figures are the share answered inside 3 s and
the p50/p95/max latency. Every accepted ``/pika`` becomes a real job against FakeFal, so the
later bursts are answered while the earlier ones' jobs run.
"""

from __future__ import annotations

import asyncio

from bench.common import Config, Rows, bot_stack, median, ms, percentile
from tests.fakes.discord import CHANNEL_ID, USER_ID
from tests.fakes.fal import FakeFal

NAME = "bursts"
DISCORD_WINDOW = 3.0
TARGET_P95 = 0.250


async def run(cfg: Config) -> Rows:
    """Send each burst at once; report answered-in-time share and latency per burst size."""
    rows = Rows()
    sizes = (25, 100) if cfg.quick else (100, 400, 1000)
    total = sum(sizes)
    async with (
        FakeFal(key="fal-bench-key", ready_after=5.0, stream_interval=0.5) as fal,
        bot_stack(
            cfg.workdir,
            NAME,
            fal,
            PIKABOT_STATUS_EDIT_INTERVAL="3.0",
            PIKABOT_MAX_CONCURRENT_JOBS=str(total),
            PIKABOT_MAX_QUEUE=str(total),
            PIKABOT_GUILD_MAX_QUEUE=str(total),
        ) as stack,
    ):
        discord = stack.discord
        discord.callback_deadline = None  # measure late answers too, rather than refuse them
        for _ in range(3):  # warm-up: first-use costs
            it = await discord.slash("credits", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
            await it.response(timeout=10)
        for size in sizes:
            its = await asyncio.gather(
                *(
                    discord.slash(
                        "pika",
                        {"prompt": f"burst of {size}, clip {i}"},
                        channel_id=CHANNEL_ID,
                        user_id=USER_ID,
                    )
                    for i in range(size)
                )
            )
            latencies: list[float] = []
            unanswered = 0
            for it in its:
                try:
                    callback = await it.response(timeout=60)
                except TimeoutError:
                    unanswered += 1
                    continue
                latencies.append(callback.at - it.created)
            in_time = sum(lat <= DISCORD_WINDOW for lat in latencies)
            p95 = percentile(latencies, 95)
            rows.add(
                NAME,
                f"burst of {size}: answered inside 3 s",
                f"{in_time}/{size} ({100 * in_time / size:.1f} %)",
                "100 %",
                in_time == size,
            )
            rows.add(NAME, f"burst of {size}: ack p50", ms(median(latencies)))
            rows.add(
                NAME,
                f"burst of {size}: ack p95",
                ms(p95),
                f"<= {TARGET_P95 * 1000:.0f} ms",
                p95 <= TARGET_P95,
            )
            rows.add(NAME, f"burst of {size}: ack max", ms(max(latencies, default=float("nan"))))
            if unanswered:
                rows.notes.append(f"bursts: {unanswered} of {size} got no answer within 60 s")
            await asyncio.sleep(2.0)  # let the burst's jobs start before the next one
        rows.notes.append(f"bursts: {fal.count('submit')} jobs reached FakeFal")
    return rows
