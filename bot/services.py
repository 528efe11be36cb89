"""The core's object graph, built from Settings: one storage, one HTTP session, one provider.

Shared by the Discord bot and the terminal commands, so both run the very same core.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import structlog

from bot import __version__
from bot.config import Settings
from bot.delivery import sweep
from bot.jobs import JobLimits, JobService
from bot.metrics import Metrics
from bot.moderation import Moderation
from bot.ownership import SOLE_BOT_OWNER
from bot.providers import build_provider
from bot.providers.base import Provider
from bot.quotas import Quotas
from bot.storage import Role, Storage, open_storage
from bot.terminal import headless
from bot.video.fit_pool import FitPool
from bot.video.stage import VideoStage

log = structlog.get_logger(__name__)

USER_AGENT = f"pikabot/{__version__} (+https://github.com/pikabot/pikabot)"

HTTP_HEADROOM = 100
"""Connections beyond one per followed job: submits, result fetches and downloads."""


async def open_database(settings: Settings, *, role: Role = Role.COMMAND) -> Storage:
    """The database at ``PIKABOT_DATABASE_URL``, logged with where it is; a new, empty one
    is a warning, since a wrong working directory or setting silently starts a fresh
    ledger. ``role``: see :func:`~bot.storage.open_storage` (``BOT`` for ``pikabot run``)."""
    storage = await open_storage(settings.database_url, role=role)
    if storage.created:
        log.warning(
            "store.created",
            path=storage.location,
            backend=storage.backend,
            hint="a new, empty database: if this bot had credits and history before,"
            " PIKABOT_DATABASE_URL (or PIKABOT_DATABASE) points elsewhere (a relative path is"
            " taken from the working directory)",
        )
    else:
        log.info("store.opened", path=storage.location, backend=storage.backend)
    return storage


def build_quotas(settings: Settings) -> Quotas:
    """The credit ledger with the operator's defaults (also for the headless ``quota`` CLI)."""
    return Quotas(
        default_allowance=settings.default_allowance,
        default_period=settings.allowance_period,
        default_time_zone=settings.timezone,
        guild_usd_cap=settings.guild_monthly_usd_cap,
    )


@dataclass(slots=True)
class Services:
    """Everything the front ends need; close it once with :meth:`close`."""

    settings: Settings
    storage: Storage
    session: aiohttp.ClientSession
    provider: Provider
    quotas: Quotas
    jobs: JobService
    moderation: Moderation
    metrics: Metrics
    fit_pool: FitPool

    @classmethod
    async def open(cls, settings: Settings, *, role: Role = Role.COMMAND) -> Services:
        """Open the database (migrating it) and build the provider and services; ``role``
        ``BOT`` for the bot process (one per SQLite file)."""
        storage = await open_database(settings, role=role)
        session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120),
            # Each followed job holds one connection for its whole life (fal's status stream,
            # 1min.ai's blocking call); aiohttp's default pool of 100 made the 101st job wait
            # for a free connection before it could even open its stream.
            connector=aiohttp.TCPConnector(limit=settings.max_concurrent_jobs + HTTP_HEADROOM),
        )
        try:
            provider = build_provider(settings, session)
            fallback = (
                build_provider(settings, session, settings.fallback_provider)
                if settings.fallback_provider is not None
                else None
            )
        except BaseException:
            await session.close()
            await storage.close()
            raise
        quotas = build_quotas(settings)
        metrics = Metrics()
        sweep()  # what a killed process left in the temp folder; its jobs download again
        # Worker processes start on the first fit, not here: most clips need none.
        fit_pool = FitPool(concurrency=settings.fit_concurrency, timeout=settings.fit_timeout)
        jobs = JobService(
            storage=storage,
            owner=SOLE_BOT_OWNER if storage.sole_bot else None,
            quotas=quotas,
            provider=provider,
            session=session,
            credits_per_usd=settings.credits_per_usd,
            fallback=fallback,
            terminal=headless,  # a `generate` that died: finish it, never in Discord
            lease_dir=settings.data_dir,
            video=VideoStage(fit_pool),
            limits=JobLimits(
                deadline=settings.job_deadline,
                max_download_bytes=settings.max_download_mb * 1024 * 1024,
                status_interval=settings.status_edit_interval,
                max_concurrent=settings.max_concurrent_jobs,
                guild_concurrent=settings.guild_concurrency,
                max_queue=settings.max_queue,
                guild_max_queue=settings.guild_max_queue,
                monthly_usd_cap=settings.monthly_usd_cap,
            ),
            metrics=metrics,
        )
        moderation = Moderation(storage, quotas)
        return cls(
            settings, storage, session, provider, quotas, jobs, moderation, metrics, fit_pool
        )

    async def close(self) -> None:
        """Suspend running jobs (they resume next start), then close the session and database."""
        await self.jobs.close()
        await self.fit_pool.close()  # the jobs' fits were stopped with them; now the workers
        await self.session.close()
        await self.storage.close()
