"""Benchmark 7: ``/pika`` acknowledgement latency in bursts of simultaneous members.

The real ``pikabot run`` process is connected to the Discord double, which dispatches a burst
of ``n`` INTERACTION_CREATE events at once (100, 400 and 1,000 in a full run) and records when
each callback arrives; Discord fails an interaction that is not answered within 3 s
("The application did not respond"), so the figures are the share answered inside 3 s and
the p50/p95/max latency. The bursts go to one process (SQLite) and then, spread over nine
guilds on three shards, to three processes on one PostgreSQL database. Every accepted
``/pika`` becomes a real job against FakeFal, so the later bursts are answered while the
earlier ones' jobs run.
"""

from __future__ import annotations

import asyncio

from bench.cluster import bot_cluster, postgres_database
from bench.common import Config, Rows, bot_stack, median, ms, percentile
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, USER_ID, DiscordDouble
from tests.fakes.fal import FakeFal

NAME = "bursts"
DISCORD_WINDOW = 3.0
TARGET_P95 = 0.250


async def run(cfg: Config) -> Rows:
    """Each burst size against one process (SQLite), then against three (PostgreSQL)."""
    rows = Rows()
    sizes = (25, 100) if cfg.quick else (100, 400, 1000)
    total = sum(sizes)
    limits = {
        "PIKABOT_STATUS_EDIT_INTERVAL": "3.0",
        "PIKABOT_MAX_CONCURRENT_JOBS": str(total),
        "PIKABOT_MAX_QUEUE": str(total),
        "PIKABOT_GUILD_MAX_QUEUE": str(total),
    }
    async with FakeFal(key="fal-bench-key", ready_after=5.0, stream_interval=0.5) as fal:
        async with bot_stack(cfg.workdir, NAME, fal, **limits) as stack:
            await _bursts(rows, "1 process", stack.discord, [(GUILD_ID, CHANNEL_ID)], sizes)
        async with (
            postgres_database() as url,
            bot_cluster(cfg.workdir, f"{NAME}-3", fal, url, **limits) as cluster,
        ):
            places = [p for shard in range(3) for p in await cluster.add_guilds(shard, 3)]
            await _bursts(rows, "3 processes", cluster.discord, places, sizes)
        rows.notes.append(f"bursts: {fal.count('submit')} jobs reached FakeFal")
    return rows


async def _bursts(
    rows: Rows,
    label: str,
    discord: DiscordDouble,
    places: list[tuple[int, int]],
    sizes: tuple[int, ...],
) -> None:
    """Send each burst at once, spread over ``places`` (guild, channel); add its rows."""
    discord.callback_deadline = None  # measure late answers too, rather than refuse them
    for guild_id, channel_id in places:  # warm-up: first-use costs, in every process
        it = await discord.slash(
            "credits", {}, guild_id=guild_id, channel_id=channel_id, user_id=USER_ID
        )
        await it.response(timeout=10)
    for size in sizes:
        its = await asyncio.gather(
            *(
                discord.slash(
                    "pika",
                    {"prompt": f"burst of {size}, clip {i}"},
                    guild_id=places[i % len(places)][0],
                    channel_id=places[i % len(places)][1],
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
        name = f"{label}, burst of {size}"
        rows.add(
            NAME,
            f"{name}: answered inside 3 s",
            f"{in_time}/{size} ({100 * in_time / size:.1f} %)",
            "100 %",
            in_time == size,
        )
        rows.add(NAME, f"{name}: ack p50", ms(median(latencies)))
        rows.add(
            NAME, f"{name}: ack p95", ms(p95), f"<= {TARGET_P95 * 1000:.0f} ms", p95 <= TARGET_P95
        )
        rows.add(NAME, f"{name}: ack max", ms(max(latencies, default=float("nan"))))
        if unanswered:
            rows.notes.append(f"bursts ({label}): {unanswered} of {size} got no answer in 60 s")
        await asyncio.sleep(2.0)  # let the burst's jobs start before the next one
