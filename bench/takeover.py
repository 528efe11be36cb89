"""Benchmark: kill -9 of one of three bot processes with 50 jobs in flight.

Three real ``pikabot run`` processes share one PostgreSQL database, one shard each. Fifty
``/pika`` arrive in ten guilds on the victim's shard, so the victim creates and runs all 50;
once every job is at FakeFal (queued there) the victim is killed with SIGKILL. Measured: the
time until the two survivors hold every job's lease, how the jobs were shared between them,
and, once FakeFal finishes the clips, that each of the 50 was posted once and charged once
(and never submitted twice).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg

from bench.cluster import bot_cluster, postgres_database
from bench.common import FAL_KEY, Config, Rows
from bot.ownership import LEASE_TTL, TAKEOVER_EVERY
from tests.fakes.discord import USER_ID
from tests.fakes.fal import FakeFal
from tests.fakes.stack import footer

NAME = "takeover"
VICTIM = 2


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


def _pid(owner: str | None) -> int | None:
    return int(owner.split(":")[-2]) if owner else None


async def run(cfg: Config) -> Rows:
    """Kill the process running every job; report takeover time and exactly-once delivery."""
    rows = Rows()
    guilds, per_guild = (5, 2) if cfg.quick else (10, 5)
    total = guilds * per_guild
    async with (
        postgres_database() as url,
        FakeFal(key=FAL_KEY, stream_interval=0.2, ready_after=3600) as fal,
        bot_cluster(
            cfg.workdir,
            NAME,
            fal,
            url,
            PIKABOT_STATUS_EDIT_INTERVAL="1.0",
            PIKABOT_POLL_INTERVAL="0.5",
        ) as cluster,
    ):
        discord = cluster.discord
        places = await cluster.add_guilds(VICTIM, guilds)
        interactions = [
            await discord.slash(
                "pika",
                {"prompt": f"lighthouse {n} of guild {g}"},
                guild_id=g,
                channel_id=c,
                user_id=USER_ID,
            )
            for g, c in places
            for n in range(per_guild)
        ]
        for interaction in interactions:
            await interaction.answer(timeout=30)
        victim = cluster.bots[VICTIM]
        assert victim.process is not None
        for _ in range(600):  # bounded: 60 s
            jobs = await _rows(url, "SELECT state, lease_owner FROM jobs")
            at_fal = [j for j in jobs if j["state"] in ("queued", "generating")]
            if fal.count("submit") == total and len(at_fal) == total:
                break
            await asyncio.sleep(0.1)
        owners = Counter(_pid(j["lease_owner"]) for j in jobs)
        rows.add(NAME, "jobs in flight at the kill", f"{len(at_fal)}, owned {dict(owners)}")
        await victim.kill()
        killed = time.monotonic()
        survivors = {b.process.pid for b in cluster.bots if b.process and b is not victim}
        taken: float | None = None
        bound = (LEASE_TTL + TAKEOVER_EVERY * 5).total_seconds()
        for _ in range(int(bound * 10)):
            jobs = await _rows(url, "SELECT lease_owner FROM jobs")
            if {_pid(j["lease_owner"]) for j in jobs} <= survivors:
                taken = time.monotonic() - killed
                break
            await asyncio.sleep(0.1)
        shares = Counter(_pid(j["lease_owner"]) for j in jobs)
        lease = LEASE_TTL.total_seconds()
        rows.add(
            NAME,
            f"kill -9 -> all {total} jobs leased by the survivors",
            "not within bound" if taken is None else f"{taken:.1f} s",
            f"<= {lease + TAKEOVER_EVERY.total_seconds():.0f} s (lease + one takeover round)",
            taken is not None and taken <= lease + TAKEOVER_EVERY.total_seconds(),
        )
        rows.add(NAME, "jobs per survivor", ", ".join(str(n) for n in sorted(shares.values())))
        for job in fal.jobs.values():
            job.ready_at = None  # fal finishes the clips now
        finishing = time.monotonic()
        channels = [c for _, c in places]
        posted: Counter[str] = Counter()
        settled = []
        for _ in range(1200):  # bounded: 120 s
            posted = Counter(
                footer(m) for ch in channels for m in discord.messages(ch) if m.attachments
            )
            settled = await _rows(url, "SELECT state FROM reservations WHERE state <> 'held'")
            if len(posted) == total and len(settled) == total:
                break
            await asyncio.sleep(0.1)
        charges = await _rows(url, "SELECT 1 FROM ledger WHERE kind = 'charge'")
        delivered = await _rows(url, "SELECT 1 FROM jobs WHERE state = 'delivered'")
        once = len(posted) == total and all(n == 1 for n in posted.values())
        rows.add(
            NAME,
            "posted once / charged once / submitted once",
            f"{sum(posted.values())} posts of {len(posted)} jobs, {len(charges)} charges,"
            f" {len(delivered)} delivered, {fal.count('submit')} submits",
            f"{total} / {total} / {total}",
            once and len(charges) == total == len(delivered) and fal.count("submit") == total,
        )
        rows.add(
            NAME, "clips ready -> all posted and charged", f"{time.monotonic() - finishing:.1f} s"
        )
    return rows
