"""The composition root of the Discord bot: builds the core, loads the cogs, syncs commands.

This is the only module in ``bot/`` that imports ``discord``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import signal
import time
from collections import OrderedDict
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import discord.http
import structlog
from discord.ext import commands
from yarl import URL

from bot import __version__
from bot.config import Settings
from bot.health import GatewayStatus, Health
from bot.http_listener import HttpListener
from bot.invite import invite_url
from bot.jobs import SHUTDOWN_GRACE_SECONDS
from bot.metrics import Metrics
from bot.metrics import stop as stop_sampling
from bot.services import Services
from bot.startup import StartupFailure, discord_unreachable
from bot.storage import Role
from cogs import EXTENSIONS
from cogs.errors import PikaTree

log = structlog.get_logger(__name__)

INTENTS = discord.Intents(guilds=True, guild_reactions=True)
"""No privileged intents: slash commands and raw reactions need none."""
RUNNER_STOP_SECONDS = 10.0
"""After closing, how long the shutdown waits for discord.py's connection task to end."""
SHUTDOWN_SECONDS = SHUTDOWN_GRACE_SECONDS + RUNNER_STOP_SECONDS
"""The longest a SIGTERM takes to end the process (submits and posts in flight, then the
gateway): a supervisor's stop timeout (docker-compose ``stop_grace_period``, systemd
``TimeoutStopSec``) must be longer."""
_CALLBACK = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
"""An interaction's first answer (its token is the middle segment: never kept or shown)."""


class DiscordTraffic:
    """What discord.py's own HTTP session sees, for the metrics: every 429 Discord answers,
    and how long after its arrival each interaction's first answer was accepted.

    discord.py sends all its requests (interaction answers too) through one aiohttp session
    and offers a hook for it (``http_trace``): :meth:`trace` is that hook.
    """

    PENDING = 1000
    """Arrivals remembered at most (an interaction never answered is forgotten in time)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._arrived: OrderedDict[str, float] = OrderedDict()

    def arrived(self, interaction_id: int) -> None:
        """An interaction came in over the gateway (now)."""
        self._arrived[str(interaction_id)] = time.monotonic()
        while len(self._arrived) > self.PENDING:
            self._arrived.popitem(last=False)

    def trace(self) -> aiohttp.TraceConfig:
        """The ``http_trace`` for discord.py's client."""
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._ended)
        return trace

    async def _ended(
        self, _session: aiohttp.ClientSession, _context: SimpleNamespace, params: Any
    ) -> None:
        status = params.response.status
        if status == 429:
            self._metrics.discord_429(params.response.headers.get("X-RateLimit-Scope"))
            return
        answered = _CALLBACK.search(params.url.path)
        if answered and 200 <= status < 300:
            arrived = self._arrived.pop(answered.group(1), None)
            if arrived is not None:
                self._metrics.interaction_acked(time.monotonic() - arrived)


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
        self.traffic = DiscordTraffic(services.metrics)
        self._ready_shards: set[int] = set()
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=INTENTS,
            tree_cls=PikaTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,
            chunk_guilds_at_startup=False,
            shard_count=services.settings.shard_count,
            http_trace=self.traffic.trace(),
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
        if self.application_id is not None:
            log.info("discord.invite", url=invite_url(self.application_id))
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

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """discord.py's event dispatch; an interaction's arrival is noted first (it runs as
        the gateway event is read, before the command's task starts)."""
        if event_name == "interaction" and args:
            self.traffic.arrived(args[0].id)
        super().dispatch(event_name, *args, **kwargs)

    def gateway_status(self) -> GatewayStatus:
        """This process's shards, which are connected and which are ready (health check)."""
        if self.is_closed():
            return GatewayStatus()
        shards = self.shards
        expected = self.shard_ids or (range(self.shard_count) if self.shard_count else [])
        latency = self.latency
        return GatewayStatus(
            shard_ids=tuple(sorted(expected)),
            connected=tuple(sorted(i for i, shard in shards.items() if not shard.is_closed())),
            ready=tuple(sorted(self._ready_shards & set(shards))),
            latency=latency if math.isfinite(latency) else None,
        )

    async def on_shard_ready(self, shard_id: int) -> None:
        """Log each shard's connection."""
        self._ready_shards.add(shard_id)
        log.info("discord.shard_ready", shard_id=shard_id, shard_count=self.shard_count)

    async def on_shard_resumed(self, shard_id: int) -> None:
        """A shard resumed its session after a reconnect: ready again."""
        self._ready_shards.add(shard_id)
        log.info("discord.shard_resumed", shard_id=shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        """A shard lost its gateway connection (discord.py reconnects it)."""
        if shard_id in self._ready_shards:
            log.warning("discord.shard_disconnected", shard_id=shard_id)
        self._ready_shards.discard(shard_id)

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
    log.info("bot.starting", version=__version__)
    services = await Services.open(settings, role=Role.BOT)  # one bot per SQLite file
    bot = PikaBot(services, sync_commands=sync_commands)
    health = Health(
        services.storage, services.jobs, gateway=bot.gateway_status, secrets=settings.secrets()
    )
    services.metrics.read_live(health.live)
    listener: HttpListener | None = None
    if settings.http_port is not None:
        listener = HttpListener(
            health, services.metrics, host=settings.http_host, port=settings.http_port
        )
        try:
            await listener.start()
        except BaseException:
            await services.close()
            raise
    sampling = services.metrics.start_loop_lag() if listener is not None else None
    try:
        await _run_until_stopped(bot, settings)
    finally:
        await stop_sampling(sampling)
        if listener is not None:
            await listener.stop()


async def _run_until_stopped(bot: PikaBot, settings: Settings) -> None:
    assert settings.discord_token is not None
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
            await asyncio.wait({runner}, timeout=RUNNER_STOP_SECONDS)


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
