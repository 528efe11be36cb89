"""Benchmark 1: interaction acknowledgement latency of the real bot process.

``pikabot run`` (through tests/fakes/bot_process.py) is connected to the Discord double.
The double dispatches INTERACTION_CREATE over its gateway and records when the bot's
interaction callback arrives; the figure is that difference, per interaction, for ``/credits``
(a read) and ``/pika`` (price, reserve, write the job row, answer), one interaction at a
time. The ``/pika`` jobs then run for real against FakeFal in the background, so later
acknowledgements compete with status edits, downloads and uploads of earlier jobs.
"""

from __future__ import annotations

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
        bot_stack(cfg.workdir, NAME, fal, PIKABOT_STATUS_EDIT_INTERVAL="1.0") as stack,
    ):
        discord = stack.discord
        for _ in range(3):  # warm-up: first-use costs (imports, prepared statements)
            it = await discord.slash("credits", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
            await it.response(timeout=10)
        results: dict[str, list[float]] = {"credits": [], "pika": []}
        for command in ("credits", "pika"):
            for i in range(count):
                options = {} if command == "credits" else {"prompt": f"bench clip {i}"}
                it = await discord.slash(command, options, channel_id=CHANNEL_ID, user_id=USER_ID)
                callback = await it.response(timeout=10)
                results[command].append(callback.at - it.created)
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
            f"ack: {fal.count('submit')} /pika jobs reached FakeFal while acks were measured."
        )
    return rows
