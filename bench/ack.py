"""Benchmark 1: interaction acknowledgement latency of the real bot process.

``pikabot run`` (through tests/fakes/bot_process.py) is connected to the Discord double.
The double dispatches INTERACTION_CREATE over its gateway and records when the bot's
interaction callback arrives; the figure is that difference, per interaction, for ``/credits``
(a read) and ``/pika`` (price, reserve, write the job row, answer), one interaction at a
time. The ``/pika`` jobs then run for real against FakeFal in the background, so later
acknowledgements compete with status edits, downloads and uploads of earlier jobs.
"""

from __future__ import annotations

import asyncio

from bench.common import Config, Rows, bot_stack, median, ms, percentile
from tests.fakes.discord import CHANNEL_ID, USER_ID
from tests.fakes.fal import FakeFal

NAME = "ack"
TARGET_P95 = 0.100


async def run(cfg: Config) -> Rows:
    """Send ``/credits`` then ``/pika`` interactions one by one; report p50/p95 per command."""
    rows = Rows()
    count = 20 if cfg.quick else 200
    # Each /pika job takes about a second at "fal" and posts a small clip.
    async with (
        FakeFal(key="fal-bench-key", ready_after=1.0, stream_interval=0.25) as fal,
        bot_stack(
            cfg.workdir,
            NAME,
            fal,
            PIKABOT_STATUS_EDIT_INTERVAL="1.0",
            # Room for every job: refusals ("the line is full") are answered faster and
            # would flatter the figure.
            PIKABOT_MAX_QUEUE=str(count * 3),
            PIKABOT_GUILD_MAX_QUEUE=str(count * 3),
        ) as stack,
    ):
        discord = stack.discord
        for _ in range(3):  # warm-up: first-use costs (imports, prepared statements)
            it = await discord.slash("credits", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
            await it.response(timeout=10)
        results: dict[str, list[float]] = {"credits": [], "pika": []}
        refused = 0
        for command in ("credits", "pika"):
            for i in range(count):
                options = {} if command == "credits" else {"prompt": f"bench clip {i}"}
                it = await discord.slash(command, options, channel_id=CHANNEL_ID, user_id=USER_ID)
                callback = await it.response(timeout=10)
                if command == "pika" and "reserved" not in str(callback.data.get("content")):
                    refused += 1  # not a started job: left out of the figure
                    continue
                results[command].append(callback.at - it.created)
        # Bursts: many members at the same moment; each ack waits its turn for the database.
        burst, bursts = (10, 1) if cfg.quick else (25, 4)
        burst_lat: list[float] = []
        for b in range(bursts):
            its = await asyncio.gather(
                *(
                    discord.slash(
                        "pika",
                        {"prompt": f"burst {b} clip {i}"},
                        channel_id=CHANNEL_ID,
                        user_id=USER_ID,
                    )
                    for i in range(burst)
                )
            )
            for it in its:
                callback = await it.response(timeout=10)
                if "reserved" in str(callback.data.get("content")):
                    burst_lat.append(callback.at - it.created)
                else:
                    refused += 1
            await asyncio.sleep(1.0)
        results[f"pika, bursts of {burst}"] = burst_lat
        for command, lat in results.items():
            p95 = percentile(lat, 95)
            rows.add(NAME, f"/{command} ack p50 (n={len(lat)})", ms(median(lat)))
            rows.add(
                NAME,
                f"/{command} ack p95 (n={len(lat)})",
                ms(p95),
                f"<= {TARGET_P95 * 1000:.0f} ms",
                p95 <= TARGET_P95,
            )
            rows.add(NAME, f"/{command} ack max", ms(max(lat)))
        rows.notes.append(
            f"ack: {fal.count('submit')} /pika jobs reached FakeFal while acks were measured;"
            f" {refused} /pika refused (left out)."
        )
    return rows
