"""The composition root of the Discord bot: builds the core, loads the cogs, syncs commands.

This is the only module in ``bot/`` that imports ``discord``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from collections.abc import Iterator
from typing import Any

import aiohttp
import discord
import discord.http
import structlog
from discord.ext import commands
from yarl import URL

from bot.config import Settings
from bot.services import Services
from bot.startup import StartupFailure, discord_unreachable
from bot.storage import Role
from cogs import EXTENSIONS
from cogs.errors import PikaTree

log = structlog.get_logger(__name__)

INTENTS = discord.Intents(guilds=True, guild_reactions=True)
"""No privileged intents: slash commands and raw reactions need none."""


class PikaBot(commands.AutoShardedBot):
    """The bot: owns the services for its lifetime and closes them on shutdown.

    Sharded from the start (Discord refuses an unsharded bot at 2,500 guilds): all shards in
    this process by default, as many as Discord recommends; ``PIKABOT_SHARD_COUNT`` and
    ``PIKABOT_SHARD_IDS`` give each of several processes its own range.
    """

    def __init__(
        self,
        services: Services,
        *,
        sync_commands: bool | None = None,
        resume_jobs: bool = True,
    ) -> None:
        shards = services.settings.shard_ids
        # discord.py reads a missing shard_ids as "every shard" (its stub types it as a list).
        sharding: dict[str, Any] = {"shard_ids": list(shards)} if shards else {}
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=INTENTS,
            tree_cls=PikaTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,
            chunk_guilds_at_startup=False,
            shard_count=services.settings.shard_count,
            **sharding,
        )
        self.services = services
        self._sync = sync_commands  # None: sync only if the command set changed
        self._resume = resume_jobs

    async def setup_hook(self) -> None:
        """Load the cogs (one failing is logged, the rest load) and sync commands on purpose."""
        for name in EXTENSIONS:
            try:
                await self.load_extension(name)
            except commands.ExtensionError:
                log.exception("cog.load_failed", extension=name)
        if self._sync is not False:
            await self.sync_commands(force=bool(self._sync))
        if self._resume:
            await self.resume_jobs()

    async def resume_jobs(self) -> None:
        """Carry on the jobs that were running when the bot last stopped, then keep taking
        over the jobs of processes that stop or die (their leases run out)."""
        from cogs.launcher import JobLauncher

        observer = JobLauncher(self).observer
        resumed = await self.services.jobs.resume(observer, reclaim=True)
        log.info("jobs.resumed", count=len(resumed), owner=self.services.jobs.owner)
        self.services.jobs.take_over(observer)

    def _scope(self) -> discord.Object | None:
        guild_id = self.services.settings.dev_guild_id
        return discord.Object(guild_id) if guild_id else None

    def command_payload(self) -> list[dict[str, Any]]:
        """The commands as Discord receives them, for change detection."""
        return [command.to_dict(self.tree) for command in self.tree.get_commands()]

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync to the dev guild if one is set, else globally; only if changed unless forced."""
        scope = self._scope()
        digest = hashlib.sha256(
            json.dumps(self.command_payload(), sort_keys=True).encode()
        ).hexdigest()
        key = f"commands_hash:{scope.id if scope else 'global'}"
        async with self.services.storage.read() as uow:
            stored = await uow.meta.get(key)
        if not force and stored == digest:
            log.info("commands.unchanged", scope=key)
            return False
        if scope is not None:
            self.tree.copy_global_to(guild=scope)
        synced = await self.tree.sync(guild=scope)
        async with self.services.storage.unit() as uow:
            await uow.meta.put(key, digest)
        log.info("commands.synced", scope=key, count=len(synced))
        return True

    async def on_shard_ready(self, shard_id: int) -> None:
        """Log each shard's connection."""
        log.info("discord.shard_ready", shard_id=shard_id, shard_count=self.shard_count)

    async def on_ready(self) -> None:
        """Log the connection once every shard of this process is ready."""
        assert self.user is not None
        log.info(
            "discord.ready",
            user_id=self.user.id,
            guilds=len(self.guilds),
            shard_ids=sorted(self.shards),
            shard_count=self.shard_count,
        )

    async def close(self) -> None:
        """Stop taking commands, suspend jobs (they resume next start), close the database."""
        log.info("bot.closing")
        await self.services.close()
        await super().close()


async def run_bot(settings: Settings, *, sync_commands: bool | None = None) -> None:
    """Start the bot and run until SIGINT or SIGTERM, then shut down cleanly."""
    assert settings.discord_token is not None
    services = await Services.open(settings, role=Role.BOT)  # one bot per SQLite file
    bot = PikaBot(services, sync_commands=sync_commands)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
        stopper = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("bot.signal_received")
        stopper.cancel()
        if not bot.is_closed():
            await bot.close()
        if runner in done:
            with _reaching_discord():
                runner.result()  # surfaces LoginFailure and other start-up errors
        else:
            await asyncio.wait({runner}, timeout=10)


async def sync_only(settings: Settings) -> None:
    """Log in, sync the commands unconditionally, and log out (``pikabot sync``)."""
    assert settings.discord_token is not None
    services = await Services.open(settings)
    bot = PikaBot(services, sync_commands=True, resume_jobs=False)
    async with bot:
        with _reaching_discord():
            await bot.login(settings.discord_token.get_secret_value())  # runs setup_hook: syncs


@contextlib.contextmanager
def _reaching_discord() -> Iterator[None]:
    """A connection that never reached Discord's API becomes a sentence that says so."""
    try:
        yield
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        host = URL(discord.http.Route.BASE).host or "discord.com"
        failure: StartupFailure = discord_unreachable(host, exc)
        raise failure from exc
