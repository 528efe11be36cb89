"""Three real bot processes on one PostgreSQL database, each owning one shard of three of one
loopback Discord: a process killed with -9 while its jobs are at fal has them taken over by
the two others, which post each video exactly once and charge it exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest

from bot.ownership import LEASE_TTL, TAKEOVER_EVERY
from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import GUILD_ID, USER_ID, DiscordDouble
from tests.fakes.discord.gateway import shard_of
from tests.fakes.fal import FakeFal
from tests.fakes.stack import FAL_KEY, description, footer
from tests.polling import eventually

pytestmark = pytest.mark.e2e

SHARDS = 3
SAME_SHARD_GUILD_ID = 1_300_000_000_012_583_012
"""A second guild on the shard of ``GUILD_ID`` (shard 2 of 3)."""
OTHER_SHARD_GUILD_ID = 1_300_000_000_004_194_304
"""A guild on shard 1 of 2 (``GUILD_ID`` is on shard 0 of 2)."""
JOBS_PER_GUILD = 2
TAKEOVER_BOUND = (LEASE_TTL + TAKEOVER_EVERY * 3).total_seconds()
"""The most a takeover may take: the lease runs out, then a takeover round finds it (slack
for a busy machine)."""


def test_both_guilds_are_on_one_shard():
    """The jobs all start in the process that owns shard 2."""
    assert shard_of(GUILD_ID, SHARDS) == shard_of(SAME_SHARD_GUILD_ID, SHARDS) == 2


async def jobs(url: str) -> list[asyncpg.Record]:
    """Every job row: id, state, lease owner, guild."""
    connection = await asyncpg.connect(url)
    try:
        return list(
            await connection.fetch("SELECT id, state, lease_owner, guild_id FROM jobs ORDER BY id")
        )
    finally:
        await connection.close()


async def charges(url: str) -> tuple[list[str], int]:
    """Every reservation's state, and how many charge rows the ledger has."""
    connection = await asyncpg.connect(url)
    try:
        states = [r["state"] for r in await connection.fetch("SELECT state FROM reservations")]
        charged = await connection.fetchval("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")
        return states, int(charged)
    finally:
        await connection.close()


def owner_pid(owner: str | None) -> int | None:
    """The pid in a ``host:pid:random`` owner id."""
    return int(owner.split(":")[-2]) if owner else None


def ready_shards(discord: DiscordDouble) -> list[int]:
    """The shards whose session got READY."""
    return sorted(e.data["shard"][0] for e in discord.events if e.kind == "gateway_ready")


def posted_job_ids(discord: DiscordDouble, channels: Sequence[int]) -> Counter[str]:
    """How many messages with a video each job (by footer) has in ``channels``."""
    return Counter(
        footer(m) for channel in channels for m in discord.messages(channel) if m.attachments
    )


async def test_e2e_kill_9_of_one_of_three_processes_hands_its_jobs_to_the_others(
    postgres_url: str, tmp_path: Path
):
    """kill -9 of the process owning the guilds' shard with jobs at fal: within the lease
    time the other two processes take every job over from its stored fal handle (no second
    submit), post each once and charge each once."""
    async with (
        DiscordDouble(recommended_shards=SHARDS) as discord,
        FakeFal(key=FAL_KEY, stream_interval=0.05, ready_after=3600) as fal,
    ):
        bots = [
            BotProcess(
                discord.rest_base,
                {
                    "DISCORD_TOKEN": discord.token,
                    "FAL_KEY": FAL_KEY,
                    "FAL_QUEUE_URL": fal.url,
                    "PIKABOT_DATABASE_URL": postgres_url,
                    "PIKABOT_DATABASE": str(tmp_path / f"data{shard}" / "unused.sqlite3"),
                    "PIKABOT_SHARD_COUNT": str(SHARDS),
                    "PIKABOT_SHARD_IDS": str(shard),
                    "PIKABOT_STATUS_EDIT_INTERVAL": "0.5",
                    "PIKABOT_POLL_INTERVAL": "0.1",
                    "PIKABOT_DEFAULT_ALLOWANCE": "1000",
                },
                tmp_path / f"bot{shard}.log",
            )
            for shard in range(SHARDS)
        ]
        try:
            for bot in bots:
                await bot.start()

            await eventually(lambda: ready_shards(discord), [0, 1, 2], within=60, every=0.1)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=30)
            second = await discord.add_guild("Second", guild_id=SAME_SHARD_GUILD_ID)
            channels = [next(iter(discord.world.guilds[g].channels)) for g in (GUILD_ID, second)]
            for guild_id, channel_id in zip((GUILD_ID, second), channels, strict=True):
                for n in range(JOBS_PER_GUILD):
                    interaction = await discord.slash(
                        "pika",
                        {"prompt": f"a lighthouse {n} in guild {guild_id}"},
                        guild_id=guild_id,
                        channel_id=channel_id,
                        user_id=USER_ID,
                    )
                    answer = await interaction.answer(timeout=15)
                    assert "on its way" in answer.data.get("content", ""), answer.data
            total = JOBS_PER_GUILD * 2
            victim, survivors = bots[2], bots[:2]
            assert victim.process is not None
            victim_pid = victim.process.pid

            async def at_fal_with_victim() -> list[tuple[str, int | None]]:
                return [(r["state"], owner_pid(r["lease_owner"])) for r in await jobs(postgres_url)]

            for _ in range(300):  # bounded: 30 s
                seen = await at_fal_with_victim()
                if (
                    fal.count("submit") == total
                    and seen
                    and all(
                        state in ("queued", "generating") and pid == victim_pid
                        for state, pid in seen
                    )
                ):
                    break
                await _pause()
            assert len(seen) == total and all(pid == victim_pid for _, pid in seen), seen

            await victim.kill()
            killed_at = time.monotonic()
            survivor_pids = {b.process.pid for b in survivors if b.process is not None}
            taken_over: float | None = None
            for _ in range(int(TAKEOVER_BOUND * 10)):
                owners = {owner_pid(r["lease_owner"]) for r in await jobs(postgres_url)}
                if owners <= survivor_pids:
                    taken_over = time.monotonic() - killed_at
                    break
                await _pause()
            assert taken_over is not None, f"not taken over in {TAKEOVER_BOUND} s: {owners}"
            shares = Counter(owner_pid(r["lease_owner"]) for r in await jobs(postgres_url))
            print(f"takeover of {total} jobs after kill -9: {taken_over:.1f} s, {shares}")

            for job in fal.jobs.values():  # fal finishes the clips now
                job.ready_at = None
            expected = Counter({f"job {r['id']}": 1 for r in await jobs(postgres_url)})
            await eventually(
                lambda: posted_job_ids(discord, channels), expected, within=60, every=0.1
            )

            async def settled() -> tuple[list[str], list[str], int]:
                states, charged = await charges(postgres_url)
                return [r["state"] for r in await jobs(postgres_url)], sorted(states), charged

            for _ in range(100):
                if await settled() == (["delivered"] * total, ["charged"] * total, total):
                    break
                await _pause()
            assert await settled() == (["delivered"] * total, ["charged"] * total, total)
            assert fal.count("submit") == total  # followed from the stored handle, not resent
            assert posted_job_ids(discord, channels) == expected  # and nothing posted twice
            assert not discord.errors, discord.errors
        finally:
            for bot in bots:
                if bot.process is not None:
                    await bot.stop()
        for bot in bots:
            log = bot.log()
            assert FAL_KEY not in log and discord.token not in log


async def _pause() -> None:
    """A tenth of a second between two reads of another process's database."""
    await asyncio.sleep(0.1)


async def test_e2e_two_processes_share_one_line_and_its_limit(postgres_url: str, tmp_path: Path):
    """PIKABOT_MAX_CONCURRENT_JOBS=1 with two processes on one database: while process A's
    job runs, process B's job (another guild, another shard) waits in the shared line and its
    status says so; once A's clip is done, B's starts and both are posted and charged once."""
    async with (
        DiscordDouble(recommended_shards=2) as discord,
        FakeFal(key=FAL_KEY, stream_interval=0.05, ready_after=3600) as fal,
    ):
        bots = [
            BotProcess(
                discord.rest_base,
                {
                    "DISCORD_TOKEN": discord.token,
                    "FAL_KEY": FAL_KEY,
                    "FAL_QUEUE_URL": fal.url,
                    "PIKABOT_DATABASE_URL": postgres_url,
                    "PIKABOT_DATABASE": str(tmp_path / f"data{shard}" / "unused.sqlite3"),
                    "PIKABOT_SHARD_COUNT": "2",
                    "PIKABOT_SHARD_IDS": str(shard),
                    "PIKABOT_MAX_CONCURRENT_JOBS": "1",
                    "PIKABOT_STATUS_EDIT_INTERVAL": "0.2",
                    "PIKABOT_POLL_INTERVAL": "0.1",
                    "PIKABOT_DEFAULT_ALLOWANCE": "1000",
                },
                tmp_path / f"line{shard}.log",
            )
            for shard in range(2)
        ]
        try:
            for bot in bots:
                await bot.start()
            await eventually(lambda: ready_shards(discord), [0, 1], within=60, every=0.1)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=30)
            other = await discord.add_guild("Other", guild_id=OTHER_SHARD_GUILD_ID)
            places = [(g, next(iter(discord.world.guilds[g].channels))) for g in (GUILD_ID, other)]
            assert {shard_of(g, 2) for g, _ in places} == {0, 1}
            first, second = places
            cursor = discord.cursor()
            for guild_id, channel_id in places:
                interaction = await discord.slash(
                    "pika",
                    {"prompt": f"a lighthouse in guild {guild_id}"},
                    guild_id=guild_id,
                    channel_id=channel_id,
                    user_id=USER_ID,
                )
                answer = await interaction.answer(timeout=15)
                assert "on its way" in answer.data.get("content", ""), answer.data
                if guild_id == first[0]:
                    await eventually(lambda: fal.count("submit"), 1, within=20, every=0.05)
            waiting = await discord.wait_for_message(
                lambda m: "waiting in line, position 1" in description(m),
                channel_id=second[1],
                timeout=20,
                after=cursor,
                kinds=("message_create", "message_update"),
            )
            assert waiting.embeds
            assert fal.count("submit") == 1  # the bot-wide limit holds across the processes
            for job in fal.jobs.values():
                job.ready_at = None  # the first clip is done: the second may start
            await eventually(lambda: fal.count("submit"), 2, within=30, every=0.05)
            for job in fal.jobs.values():
                job.ready_at = None
            expected = Counter({f"job {r['id']}": 1 for r in await jobs(postgres_url)})
            await eventually(
                lambda: posted_job_ids(discord, [first[1], second[1]]),
                expected,
                within=60,
                every=0.1,
            )
            for _ in range(100):
                states, charged = await charges(postgres_url)
                if sorted(states) == ["charged", "charged"] and charged == 2:
                    break
                await _pause()
            assert sorted(states) == ["charged", "charged"] and charged == 2
        finally:
            for bot in bots:
                if bot.process is not None:
                    await bot.stop()
