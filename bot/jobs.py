"""The job service: from a request to a delivered video, with credits settled exactly once.

One job moves through the states of :class:`~bot.models.JobState`. Each state is written to
the database *before* the side effect it enables, so a process killed at any moment is carried on by
:meth:`JobService.resume` without charging twice or losing the reservation:

====================  =====================================================================
state at restart      what resume does
====================  =====================================================================
PENDING               submit (nothing was sent yet)
SUBMITTING            the submit may or may not have reached the provider and there is no
                      way to ask it: the job fails and is refunded (the member is told the
                      bot restarted); a clip the provider still makes is never posted
QUEUED / GENERATING   follow the stored provider handle again
DOWNLOADING           download again from the stored result URL
FITTING               download again from the stored result URL and fit it again
                      (:mod:`bot.video`): the fitted file is a temporary, never kept
POSTING               the result message id stored when the post went out, else ask the
                      front end whether the video was already posted; post if not. A found
                      post goes through the same steps as a fresh one (:meth:`_delivered`)
====================  =====================================================================

The video's delivery and the charge are one transaction with the DELIVERED state; every
failure refunds in one transaction with the FAILED state.

Each job is run by one process at a time, the owner of its lease in the database
(:mod:`bot.ownership`). The times are internal constants:

====================  =====================================================================
lease                 what happens
====================  =====================================================================
create                the job is written leased to this process for ``LEASE_TTL`` (25 s)
every ``HEARTBEAT``   the owner renews the leases of the jobs it runs (every 8.3 s); a lease
                      that does not come back was taken over: the job stops here unsettled
each job write        the same unit renews the lease first (renew-or-stop), so the submit,
                      the post and the charge happen only while this process still owns it
clean shutdown        suspended jobs' leases are released: another process takes them at once
start, then every     the Discord bot claims unfinished jobs whose lease is free or has run
``TAKEOVER_EVERY``    out (every 3 s, up to ``TAKEOVER_BATCH`` at a time, sooner again after a
                      full batch so live processes share a dead one's jobs) and resumes them as in
                      the restart table above; a process killed with -9 has its jobs taken
                      over within ``LEASE_TTL`` plus ``TAKEOVER_EVERY`` (28 s)
====================  =====================================================================

The fair line (:class:`~bot.scheduler.FairScheduler`) and its limits are those of the whole
bot: every process sharing the database orders its waiting jobs in one line and counts one set
of slots, and a job keeps its slot when another process takes it over.

Cancelling refunds only work the provider does not bill: a job still in the bot's own line
(PENDING) is always cancellable; once submitted, only on a provider that can really cancel
(``Capabilities.can_cancel``) and only after it agreed to. Elsewhere the clip is delivered and
charged, and the member is told why (:meth:`JobService.cancel_refusal`).
A terminal job (``pikabot generate``) is never resumed into Discord: it is carried on only
once the process that started it is gone, headless, into its file (:meth:`JobService.resume`).
A stopped one is refunded only where the provider cannot still bill it
(:meth:`JobService.settle_stopped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog

from bot.admission import Admission
from bot.circuit import CircuitBreaker
from bot.clock import utcnow
from bot.delivery import DownloadedVideo, attachment_limit, download
from bot.lease import TerminalLease
from bot.metrics import Metrics
from bot.models import GenerationRequest, Job, JobState, Origin, OriginKind, Progress
from bot.ownership import (
    HEARTBEAT,
    LEASE_TTL,
    TAKEOVER_BATCH,
    TAKEOVER_EVERY,
    TAKEOVER_PAUSE,
    LeaseLost,
    new_owner,
)
from bot.policy import MemberContext
from bot.pricing import Quote, Unpriced, quote
from bot.providers.base import Provider, ProviderHandle, ProviderResult, StatusKind
from bot.providers.errors import (
    DeadlineExceeded,
    ProviderError,
    RateLimited,
    TransientError,
)
from bot.quotas import InsufficientCredits, Quotas
from bot.refusals import RequestRefused as RequestRefused  # re-exported: its historic home
from bot.scheduler import FairScheduler
from bot.storage.base import NewJob, Storage, UnitOfWork
from bot.storage.records import ReservationRow, ReservationState
from bot.throttle import LatestWins
from bot.video.stage import VideoStage

log = structlog.get_logger(__name__)

GENERIC_FAILURE = "Something went wrong on the bot's side. Your credits were refunded."
RESTARTED_MID_SUBMIT = (
    "The bot restarted while sending this request, so it was dropped. Your credits were refunded."
)
FOLLOW_ATTEMPTS = 6
"""How often following a job is resumed after a provider outage before the job fails."""
OVERDUE_FACTOR = 3
"""A job its provider cannot stop is followed this many deadlines from its submit (see
:meth:`JobService._past_deadline`)."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long a shutdown waits for submits and posts in flight, which must not be cut in half."""
ALREADY_ENDED = "This job has already ended."
ALREADY_MADE = "Too late to cancel: the video is already made and is being posted here."
STILL_SENDING = "The video service is still taking this request. Please try again in a moment."
PROVIDER_CANNOT_CANCEL = (
    "The video service can't stop a clip once it has started, so it can't be cancelled:"
    " it will be posted here and is charged."
)
PROVIDER_REFUSED_CANCEL = (
    "The video service could not stop this clip (it may be nearly done), so it goes on:"
    " it will be posted here and is charged."
)
TERMINAL_LEASE = "terminal_lease"
"""``Job.extra`` key: the token of a terminal job's lease (see :mod:`bot.lease`)."""


class JobObserver(Protocol):
    """How a front end (Discord, the terminal) shows one job."""

    async def progress(self, job: Job, progress: Progress) -> None:
        """Show the job's live state (called throttled: latest state wins)."""
        ...

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Post the video; return the id of the message that holds it, if any.

        Only the post itself: the service stores the id at once (🔁 reactions and restarts
        find the job by it), then calls :meth:`show_delivered`.
        """
        ...

    async def already_delivered(self, job: Job) -> int | None:
        """After a restart in POSTING: the id of a result message already posted, if any."""
        ...

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """The video is posted: finish the status (done, no Cancel) and invite reruns.

        Called once per delivery, after a fresh post and after a restart found the post, so
        it must be safe to repeat for the same message.
        """
        ...

    async def failed(self, job: Job, reason: str) -> None:
        """Tell the member the job failed, with a user-safe reason."""
        ...


ObserverFactory = Callable[[Job], JobObserver]


class ProviderGone(ProviderError):
    """A job's provider is no longer configured (the operator switched providers)."""

    user_message = (
        "The video service this clip was sent to is no longer used by this bot."
        " Your credits were refunded."
    )


class _StateMoved(Exception):
    """A job's stored state changed after a decision about it was made (another process
    moved it on): nothing was written; decide again."""


CANCEL_ATTEMPTS = 3
"""How often a cancel is decided again when the job's owner keeps moving it meanwhile."""


class CannotCancel(RequestRefused):
    """A cancel that would refund work the provider still does (and bills), or too late."""


class NotEnoughCredits(RequestRefused):
    """The guild's balance is short; carries the figures for a helpful message."""

    def __init__(self, shortfall: InsufficientCredits) -> None:
        balance = shortfall.balance
        super().__init__(
            f"This clip costs {shortfall.cost} credits but the server has {balance.remaining}"
            f" left. The allowance resets <t:{int(balance.resets_at.timestamp())}:R>."
        )
        self.cost = shortfall.cost
        self.balance = balance


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Operational bounds of the service."""

    deadline: timedelta = timedelta(minutes=20)
    max_download_bytes: int = 500 * 1024 * 1024
    status_interval: float = 3.0
    max_concurrent: int = 50
    guild_concurrent: int | None = None  # jobs of one guild at once (None: max_concurrent)
    max_queue: int = 100  # jobs that may wait for a slot beyond the running ones
    guild_max_queue: int | None = None  # of which one guild's (None: max_queue)
    monthly_usd_cap: Decimal | None = None  # provider spend of the whole bot per UTC month
    download_dir: Path | None = None
    outage_pause: float = 2.0
    """First pause before following a job again after a provider outage (doubles each time)."""


class JobService:
    """Runs jobs: price, reserve, persist, submit, follow, download, deliver, settle."""

    def __init__(
        self,
        *,
        storage: Storage,
        quotas: Quotas,
        provider: Provider,
        session: aiohttp.ClientSession,
        credits_per_usd: int,
        limits: JobLimits | None = None,
        fallback: Provider | None = None,
        terminal: ObserverFactory | None = None,
        lease_dir: Path | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
        video: VideoStage | None = None,
    ) -> None:
        """``terminal`` carries on a terminal job whose ``pikabot generate`` is gone (headless:
        the video goes to its file); without it such jobs are left for a process that has it.
        ``lease_dir`` is the folder of the terminal jobs' lease files (the data folder; None:
        terminal jobs are never carried on here). ``owner`` names this process in the jobs'
        leases (default: :func:`~bot.ownership.new_owner`); ``clock`` dates them. ``metrics``
        is told what the jobs do (:mod:`bot.metrics`; default: a registry of their own).
        ``video`` probes each download and fits it to the upload limit (None: posted as it
        came)."""
        self.owner = owner or new_owner()
        self.metrics = metrics or Metrics()
        self._clock = clock
        self._storage = storage
        self._terminal = terminal
        self._quotas = quotas
        self._lease_dir = lease_dir
        self.provider = provider
        self.fallback = fallback
        self.providers = {p.name: p for p in (provider, fallback) if p is not None}
        self.breakers = {name: CircuitBreaker() for name in self.providers}
        self._session = session
        self._credits_per_usd = credits_per_usd
        self.limits = limits or JobLimits()
        self.scheduler = FairScheduler(
            storage,
            max_running=self.limits.max_concurrent,
            per_guild_running=self.limits.guild_concurrent,
            max_waiting=self.limits.max_queue,
            per_guild_waiting=self.limits.guild_max_queue,
            clock=clock,
        )
        self._admission = Admission(quotas, bot_monthly_usd_cap=self.limits.monthly_usd_cap)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._closing = False
        self._cancel_requests: dict[int, str] = {}
        self._critical: dict[int, asyncio.Future[None]] = {}
        """Per job: a submit or post in flight, which must not be cut in half."""
        self._live: dict[int, Job] = {}
        """The job objects the running tasks move along (their state is the current one)."""
        self._owned: set[int] = set()
        """The jobs this process took the lease of (created or claimed), until their task ends."""
        self._lost: set[int] = set()
        """Of those, the ones another process took over: never written here again."""
        self._heartbeat: asyncio.Task[None] | None = None
        self._takeover: asyncio.Task[None] | None = None
        self.video = video

    @property
    def breaker(self) -> CircuitBreaker:
        """The primary provider's circuit breaker."""
        return self.breakers[self.provider.name]

    # -- taking a request ------------------------------------------------------------------

    def quote(self, request: GenerationRequest, provider: Provider | None = None) -> Quote:
        """Price a request on a provider (the primary by default), or refuse it clearly."""
        provider = provider or self.provider
        reason = provider.capabilities.unsupported(request)
        if reason:
            raise RequestRefused(reason)
        try:
            return quote(provider.prices, request, self._credits_per_usd)
        except Unpriced:
            raise RequestRefused("This combination of settings is not offered here.") from None

    def choose_provider(self, request: GenerationRequest) -> Provider:
        """The primary provider; the fallback while the primary's circuit is open.

        A failover request is priced with the fallback's own table, so the member sees (and
        pays) what that provider charges. With no usable fallback the request is refused
        before any credit is reserved.
        """
        if self.breaker.allow():  # closed, or this request is the half-open probe
            return self.provider
        fallback = self.fallback
        if (
            fallback is not None
            and fallback.capabilities.unsupported(request) is None
            and self.breakers[fallback.name].allow()
        ):
            log.info("provider.failover", primary=self.provider.name, fallback=fallback.name)
            return fallback
        minutes = max(1, round(self.breaker.retry_in() / 60))
        raise RequestRefused(
            "The video service is having trouble right now, so I'm not sending new requests"
            f" for about {minutes} min. No credits were used."
        )

    def provider_for(self, job: Job) -> Provider:
        """The provider a job was sent to (it stays there, also across restarts)."""
        provider = self.providers.get(job.provider)
        if provider is None:
            raise ProviderGone(f"job's provider {job.provider!r} is not configured")
        return provider

    async def create(
        self,
        request: GenerationRequest,
        origin: Origin,
        *,
        extra: dict[str, str] | None = None,
        member: MemberContext | None = None,
    ) -> Job:
        """Price the request, reserve its credits and persist the job, in one unit of work.

        ``extra`` holds front-end facts kept with the job (upload limit, the job it reruns).
        ``member`` (roles, channel NSFW flag, moderator status) is what the guild's rules are
        checked against; without it the member has no roles. The rules (:mod:`bot.policy`),
        the USD caps and the queue's room are checked in the reserving unit, after it locked
        the guild (and the whole bot when a bot-wide USD cap is set), so no concurrent
        request, in this process or another, can slip past them.
        """
        if self._closing:
            raise RequestRefused("The bot is restarting. Please try again in a minute.")
        provider = self.choose_provider(request)
        priced = self.quote(request, provider)
        member = member or MemberContext(origin.guild_id, origin.channel_id, origin.user_id)
        async with self._storage.unit() as uow:
            await uow.lock_guild(origin.guild_id)
            if self._admission.bot_monthly_usd_cap is not None:
                await uow.lock_bot()  # the bot-wide cap counts every guild's spend
            await self._admission.check(uow, member, request, priced)
            await self.scheduler.check_room(uow, origin.guild_id)
            try:
                reservation = await self._quotas.reserve(
                    uow, origin.guild_id, origin.user_id, priced
                )
            except InsufficientCredits as short:
                raise NotEnoughCredits(short) from None
            new = NewJob(
                origin=origin,
                request=request,
                provider=provider.name,
                cost=priced.credits,
                reservation_id=reservation.id,
                extra=dict(extra or {}),
                lease_owner=self.owner,
                lease_until=self._lease_until(),
            )
            job = await uow.jobs.create(new, utcnow())
        self._owned.add(job.id)
        log.info(
            "job.created",
            job_id=job.id,
            guild_id=origin.guild_id,
            user_id=origin.user_id,
            cost=job.cost,
            provider=job.provider,
        )
        self.metrics.job_created(job.provider, job.cost)
        return job

    def start(self, job: Job, observer: JobObserver) -> asyncio.Task[None]:
        """Run ``job`` in the background; the task ends when the job is terminal.

        Give it a job this service created or claimed (:meth:`resume`): their leases are
        renewed while they run; any other job runs without a lease."""
        task = asyncio.create_task(self.run(job, observer), name=f"job-{job.id}")
        self._tasks[job.id] = task
        self._live[job.id] = job
        if self._heartbeat is None and not self._closing:
            self._heartbeat = asyncio.create_task(self._beat(), name="job-leases-heartbeat")

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(job.id, None)
            self._live.pop(job.id, None)
            self._owned.discard(job.id)
            self._lost.discard(job.id)

        task.add_done_callback(forget)
        return task

    def active_jobs(self) -> list[Job]:
        """The jobs this process runs now, in their current state (for the metrics)."""
        return list(self._live.values())

    async def attach_status_message(self, job: Job, message_id: int) -> None:
        """Remember the message that shows the job's status."""
        await self.update(job, status_message_id=message_id)

    # -- reading and writing job rows ------------------------------------------------------

    async def get(self, job_id: int) -> Job | None:
        """The stored job with this id, or None."""
        async with self._storage.read() as uow:
            return await uow.jobs.get(job_id)

    async def find_by_message(self, message_id: int) -> Job | None:
        """The job whose status or result message has this id."""
        async with self._storage.read() as uow:
            return await uow.jobs.find_by_message(message_id)

    async def recent_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """A member's latest jobs in a guild, newest first."""
        async with self._storage.read() as uow:
            return await uow.jobs.recent(guild_id, user_id, limit)

    async def update(self, job: Job, **fields: Any) -> None:
        """Write ``fields`` (:class:`Job` attributes) in a unit of their own, and mirror them
        on ``job``; stamps ``updated_at``."""
        async with self._storage.unit() as uow:
            await self._hold(uow, job)
            await _write(uow, job, fields)

    # -- owning jobs: leases ---------------------------------------------------------------

    def _lease_until(self) -> datetime:
        return self._clock() + LEASE_TTL

    async def _hold(self, uow: UnitOfWork, job: Job) -> None:
        """Renew-or-stop: in ``uow``, before it writes ``job``, make sure this process still
        owns the job's lease (and extend it); raise :class:`LeaseLost` if another took it.

        A job this process never leased (a cancel of a job run elsewhere, a stopped
        terminal job settled after :meth:`close`) is written without a lease, as before.
        """
        if job.id in self._lost:
            raise LeaseLost(job.id)
        if job.id not in self._owned:
            return
        if job.id not in await uow.jobs.renew(self.owner, [job.id], self._lease_until()):
            self._lost.add(job.id)
            raise LeaseLost(job.id)

    async def renew_leases(self) -> list[int]:
        """Renew the leases of the jobs this process runs (the heartbeat); stop, without
        settling, each job whose lease another process took over. Returns those jobs' ids."""
        ids = sorted(self._owned - self._lost)
        if not ids:
            return []
        async with self._storage.unit() as uow:
            held = set(await uow.jobs.renew(self.owner, ids, self._lease_until()))
        lost: list[int] = []
        for job_id in ids:
            job = self._live.get(job_id)
            if job_id in held or job is None or job.state.terminal:
                continue  # still ours, or ended (or not started) here
            self._lost.add(job_id)
            lost.append(job_id)
            log.warning("job.lease_lost", job_id=job_id, owner=self.owner, state=job.state.value)
            task = self._tasks.get(job_id)
            if task is not None and job_id not in self._critical:
                task.cancel()  # a submit or post in flight stops at its next (guarded) write
        return lost

    async def _beat(self) -> None:
        """The heartbeat: :meth:`renew_leases` every ``HEARTBEAT`` until :meth:`close`."""
        while not self._closing:
            await asyncio.sleep(HEARTBEAT.total_seconds())
            try:
                await self.renew_leases()
            except Exception:  # a database hiccup: the next beat tries again within the TTL
                log.warning("jobs.heartbeat_failed", owner=self.owner, exc_info=True)

    def take_over(self, observers: ObserverFactory) -> asyncio.Task[None]:
        """Every ``TAKEOVER_EVERY`` (after the first :meth:`resume` at start) claim the jobs
        whose lease is free or has run out (their process stopped or died) and carry them on
        here, until :meth:`close`. For the Discord bot (``observers`` shows its jobs)."""
        if self._takeover is None:
            self._takeover = asyncio.create_task(self._take_over(observers), name="job-takeover")
        return self._takeover

    async def _take_over(self, observers: ObserverFactory) -> None:
        pause = TAKEOVER_EVERY.total_seconds()
        while not self._closing:
            await asyncio.sleep(pause)
            pause = TAKEOVER_EVERY.total_seconds()
            try:
                taken = await self.resume(observers, batch=TAKEOVER_BATCH)
            except Exception:
                log.warning("jobs.takeover_failed", owner=self.owner, exc_info=True)
                continue
            if len(taken) >= TAKEOVER_BATCH:  # more may be waiting: look again soon
                pause = random.uniform(*TAKEOVER_PAUSE)

    def _kinds(self, observers: ObserverFactory | None) -> Collection[OriginKind]:
        """The origins of the jobs this process can run (show) now."""
        kinds = set()
        if observers is not None:
            kinds.add(OriginKind.DISCORD)
        if self._terminal is not None and self._lease_dir is not None:
            kinds.add(OriginKind.TERMINAL)
        return kinds

    async def resume(
        self, observers: ObserverFactory | None, *, reclaim: bool = False, batch: int | None = None
    ) -> list[Job]:
        """Carry on every job that was not finished when its process last stopped.

        ``observers`` shows the Discord jobs (None: leave them, this is not the Discord bot).
        A terminal job is never shown in Discord: while the ``pikabot generate`` that started
        it lives (it holds the job's :class:`~bot.lease.TerminalLease`) it is left alone;
        once that process is gone it is carried on headless with the ``terminal`` observers
        given at construction (video saved to its file, credits settled as for any job).
        Only jobs whose lease (:mod:`bot.ownership`) is free or has run out are taken, and
        only as many as this process has free slots for; each is leased to this process
        first, so no other process runs it meanwhile. ``reclaim`` (at start): also the jobs
        still leased to this owner id, a previous run's (:data:`~bot.ownership.SOLE_BOT_OWNER`).
        ``batch``: claim at most that many. Returns the jobs this call started.
        """
        kinds = self._kinds(observers)
        room = self.limits.max_concurrent - len(self._tasks)
        if batch is not None:
            room = min(room, batch)
        if self._closing or not kinds or room <= 0:
            return []
        now = self._clock()
        async with self._storage.unit() as uow:
            claimed = await uow.jobs.claim(
                self.owner, now, now + LEASE_TTL, room, kinds=kinds, reclaim=reclaim
            )
        started: list[Job] = []
        unrunnable: list[int] = []
        for job in claimed:
            if job.id in self._tasks:  # ours all along (a late renewal): it runs already
                self._lost.discard(job.id)
                continue
            if job.origin.kind is OriginKind.TERMINAL:
                lease = self._claim_terminal(job)
                if lease is None or self._terminal is None:
                    unrunnable.append(job.id)  # its `pikabot generate` still lives
                    continue
                self._owned.add(job.id)
                task = self.start(job, self._terminal(job))
                task.add_done_callback(_releasing(lease))
            elif observers is not None:
                self._owned.add(job.id)
                self.start(job, observers(job))
            else:  # pragma: no cover - not claimed: not in kinds
                unrunnable.append(job.id)
                continue
            log.info(
                "job.resumed",
                job_id=job.id,
                state=job.state.value,
                origin=job.origin.kind,
                owner=self.owner,
            )
            started.append(job)
        if unrunnable:
            async with self._storage.unit() as uow:
                await uow.jobs.release(self.owner, unrunnable)
        return started

    def _claim_terminal(self, job: Job) -> TerminalLease | None:
        """The lease of a terminal job whose owner is gone (None: it lives, or no database)."""
        if self._terminal is None or self._lease_dir is None:
            return None
        token = job.extra.get(TERMINAL_LEASE) or f"job-{job.id}"
        try:
            return TerminalLease.claim(self._lease_dir, token)
        except OSError as exc:  # a read-only data folder must not stop the bot's start
            log.warning("job.terminal_lease_unavailable", job_id=job.id, error=str(exc))
            return None

    async def settle_stopped(self, job_id: int, *, reason: str) -> Job | None:
        """End a job its owner stopped (Ctrl-C in ``pikabot generate``), after :meth:`close`.

        Money follows the provider. A job the provider has not got (PENDING; SUBMITTING, as
        at a restart) is refunded; a queued or generating one at a provider that can cancel
        is cancelled there and refunded. Any other job is still made and billed by the
        provider: it stays open with its credits reserved, and the next :meth:`resume`
        fetches, delivers and charges it. Returns the job as it now stands.
        """
        job = await self.get(job_id)
        if job is None or job.state.terminal:
            return job
        unsent = job.state in (JobState.PENDING, JobState.SUBMITTING)
        at_provider = job.state in (JobState.QUEUED, JobState.GENERATING)
        if unsent or (at_provider and await self._dropped(job)):
            await self._settle_failure(job, reason, JobState.CANCELLED)
        return job

    async def _dropped(self, job: Job) -> bool:
        """True only when the job's provider can cancel and confirmed it dropped the job."""
        provider = self.providers.get(job.provider)
        if provider is None or not provider.capabilities.can_cancel or not job.provider_handle:
            return False
        try:
            async with asyncio.timeout(10):
                return await provider.cancel(ProviderHandle.from_json(job.provider_handle))
        except (ProviderError, TimeoutError):
            log.warning("job.cancel_unconfirmed", job_id=job.id, exc_info=True)
            return False

    async def wait_idle(self, within: float) -> bool:
        """Wait until no job task is running; False if ``within`` seconds passed first."""
        tasks = list(self._tasks.values())
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=within)
        return not pending

    def cancel_refusal(self, job: Job) -> str | None:
        """Why ``job`` cannot be cancelled with a refund now (member-facing); None if it can.

        Before the submit nothing is billed, so a job in the bot's own line always can. Once
        the provider has it, only a provider that can really cancel is asked (it may still
        refuse, see :meth:`cancel`); elsewhere the provider goes on making and billing the
        clip, so it is delivered and charged. A made video is always delivered.
        """
        if job.state.terminal:
            return ALREADY_ENDED
        if job.state in (JobState.DOWNLOADING, JobState.FITTING, JobState.POSTING):
            return ALREADY_MADE
        if job.state in (JobState.QUEUED, JobState.GENERATING):
            provider = self.providers.get(job.provider)
            if provider is not None and not provider.capabilities.can_cancel:
                return PROVIDER_CANNOT_CANCEL
        return None

    def can_cancel(self, job: Job) -> bool:
        """Whether a Cancel control should be offered for ``job`` in its current state."""
        return self.cancel_refusal(job) is None

    async def _current(self, job_id: int) -> Job | None:
        """The job as it is now; a submit or post in flight is waited for first (bounded)."""
        for _ in range(3):
            job = self._live.get(job_id) or await self.get(job_id)
            in_flight = self._critical.get(job_id)
            if job is None or in_flight is None:
                return job
            await asyncio.wait({in_flight}, timeout=SHUTDOWN_GRACE_SECONDS)
        return self._live.get(job_id) or await self.get(job_id)

    async def cancel(self, job_id: int, *, reason: str) -> Job:
        """Cancel a job and refund it, where that stops the provider's work; else refuse.

        Raises :class:`CannotCancel` with the member-facing reason when the job has ended,
        its video is already made, or the provider goes on with it (it cannot cancel, or it
        refused to): money is never refunded for a clip the provider still makes and bills.
        A submit in flight is waited for, so the decision is made on a known state; a job
        another process moved on while this one decided is decided again on its new state.
        """
        for _ in range(CANCEL_ATTEMPTS):
            try:
                return await self._cancel_once(job_id, reason)
            except _StateMoved:
                continue
        raise CannotCancel(STILL_SENDING)

    async def _cancel_once(self, job_id: int, reason: str) -> Job:
        job = await self._current(job_id)
        if job is None:
            raise CannotCancel("I can't find that job any more.")
        if job_id in self._critical:  # a submit still in flight after the wait: never cut it
            raise CannotCancel(STILL_SENDING)
        if job.state is JobState.SUBMITTING and job_id not in self._tasks:
            # Another process (the job's lease holder) is sending it right now: refunding it
            # here would pay for a clip the provider makes and bills.
            raise CannotCancel(STILL_SENDING)
        refusal = self.cancel_refusal(job)
        if refusal is not None:
            raise CannotCancel(refusal)
        if job.state in (JobState.QUEUED, JobState.GENERATING) and job.provider_handle:
            if not await self._cancel_at_provider(job):
                log.info("job.cancel_refused_by_provider", job_id=job.id, provider=job.provider)
                raise CannotCancel(PROVIDER_REFUSED_CANCEL)
            made = (JobState.DOWNLOADING, JobState.FITTING, JobState.POSTING)
            if job.state in made or job.state.terminal:
                raise CannotCancel(self.cancel_refusal(job) or ALREADY_MADE)
        # From the check above to here nothing was awaited but the provider's own answer, so
        # the job is not in the middle of a submit: stopping its task cuts nothing in half.
        task = self._tasks.get(job_id)
        if task is None or task.done():
            # Not running in this process (another holds its lease, or it never started):
            # settle it here, unless its owner moved it on since it was read above.
            await self._settle_failure(job, reason, JobState.CANCELLED, unless_moved=True)
            return job
        self._cancel_requests[job_id] = reason
        task.cancel()
        await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_SECONDS)
        stored = await self.get(job_id)
        assert stored is not None
        if not stored.state.terminal and task.done():
            # Cancelled before it ever ran, so its own handler did not settle it.
            self._cancel_requests.pop(job_id, None)
            await self._settle_failure(stored, reason, JobState.CANCELLED)
        return stored

    @contextlib.asynccontextmanager
    async def _critical_section(self, job_id: int) -> AsyncIterator[None]:
        """A step of a job that must not be cut in half by a shutdown or a cancel."""
        if self._closing:
            raise asyncio.CancelledError  # leave the job in its persisted state for resume
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._critical[job_id] = done
        try:
            yield
        finally:
            if self._critical.get(job_id) is done:
                del self._critical[job_id]
            if not done.done():
                done.set_result(None)

    async def close(self) -> None:
        """Stop taking jobs and stop the running ones where they are; they resume next start.

        Submits and posts already in flight get up to ``SHUTDOWN_GRACE_SECONDS`` to finish, so
        a deploy does not leave jobs in the ambiguous SUBMITTING state.
        """
        self._closing = True
        for loop in (self._takeover, self._heartbeat):
            if loop is not None:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        if self._critical:
            await asyncio.wait(set(self._critical.values()), timeout=SHUTDOWN_GRACE_SECONDS)
        held = sorted(self._owned - self._lost)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.scheduler.close()
        self._owned.difference_update(held)  # not ours any more, even if never started
        if held:  # another process (or the next start) takes the suspended jobs at once
            try:
                async with self._storage.unit() as uow:
                    await uow.jobs.release(self.owner, held)
            except Exception:  # they are taken over once the leases run out instead
                log.warning("jobs.release_failed", owner=self.owner, exc_info=True)

    # -- running a job ---------------------------------------------------------------------

    async def run(self, job: Job, observer: JobObserver) -> None:
        """Drive ``job`` to a terminal state; safe to repeat for a job after a restart."""
        bound = log.bind(job_id=job.id, guild_id=job.origin.guild_id, user_id=job.origin.user_id)
        status: LatestWins[Progress] = LatestWins(
            lambda p: observer.progress(job, p), min_interval=self.limits.status_interval
        )
        self._live[job.id] = job
        try:
            await self._run_settled(job, observer, status, bound)
        except LeaseLost:
            # Another process owns the job now: it settles and shows it, not this one.
            bound.warning("job.lease_lost", owner=self.owner, state=job.state.value)
        finally:
            await status.close()
            if job.id not in self._tasks:
                self._live.pop(job.id, None)

    async def _run_settled(
        self,
        job: Job,
        observer: JobObserver,
        status: LatestWins[Progress],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Run ``job`` and settle it whatever happens (but a lost lease)."""
        try:
            async with self.scheduler.slot(job.id, job.origin.guild_id, _in_line(job, status)):
                await self._run(job, observer, status, bound)
        except LeaseLost:
            raise
        except ProviderError as exc:
            # Pending progress must not overwrite the failure notice: stop it first.
            await status.close()
            bound.warning("job.failed", error=type(exc).__name__, detail=str(exc))
            await self._fail(job, observer, exc.user_message)
        except asyncio.CancelledError:
            await status.close()
            if job.id in self._lost:  # the heartbeat found it taken over
                raise LeaseLost(job.id) from None
            reason = self._cancel_requests.pop(job.id, None)
            if reason is None:
                bound.info("job.suspended", state=job.state.value)
                raise
            # cancel() stopped the provider's work (or there was none yet) before this.
            bound.info("job.cancelled", state=job.state.value)
            await self._settle_failure(job, reason, JobState.CANCELLED)
            with contextlib.suppress(Exception):
                await observer.failed(job, reason)
        except Exception:
            await status.close()
            bound.exception("job.crashed")
            await self._fail(job, observer, GENERIC_FAILURE)

    async def _run(
        self,
        job: Job,
        observer: JobObserver,
        status: LatestWins[Progress],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        if job.state is JobState.SUBMITTING:
            await self._fail(job, observer, RESTARTED_MID_SUBMIT)
            return
        if job.state in (JobState.PENDING, JobState.QUEUED, JobState.GENERATING):
            # The deadline counts from when the job leaves the bot's own line (its submit), so
            # a wait for a free slot is not held against the provider's generation time.
            since = utcnow() if job.state is JobState.PENDING else job.started_at
            remaining = (
                (since or job.created_at) + self.limits.deadline - utcnow()
            ).total_seconds()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    if job.state is JobState.PENDING:
                        status.publish(Progress(JobState.PENDING))
                        await self._submit(job, bound)
                    result = await self._follow(job, status)
            except TimeoutError:
                result = await self._past_deadline(job, status, bound)
            await self.update(
                job, state=JobState.DOWNLOADING, extra={**job.extra, "video_url": result.video_url}
            )
        if job.state in (JobState.DOWNLOADING, JobState.FITTING):
            status.publish(Progress(JobState.DOWNLOADING))
            video = await download(
                self._session,
                job.extra["video_url"],
                max_bytes=self.limits.max_download_bytes,
                directory=self.limits.download_dir,
                filename=f"pika-{job.id}.mp4",
            )
            try:
                video = await self._fit(job, video, status)
                async with self._critical_section(job.id):
                    await self.update(job, state=JobState.POSTING)
                    status.publish(Progress(JobState.POSTING))
                    await status.close()
                    message_id = await observer.delivered(job, video)
                    await self._delivered(job, observer, message_id, bound)
            finally:
                video.discard()
            return
        if job.state is JobState.POSTING:
            # The id is stored the moment the post exists; an older post is looked for.
            message_id = job.result_message_id or await observer.already_delivered(job)
            if message_id is None:
                # Not posted before the restart: fetch and post it now.
                await self.update(job, state=JobState.DOWNLOADING)
                await self._run(job, observer, status, bound)
                return
            await status.close()
            async with self._critical_section(job.id):
                await self._delivered(job, observer, message_id, bound)

    async def _fit(
        self, job: Job, video: DownloadedVideo, status: LatestWins[Progress]
    ) -> DownloadedVideo:
        """Probe the download and, where Discord would refuse it or not play it, have a
        version made that it takes (FITTING, its place in the fitting line shown)."""
        if self.video is None:
            return video

        async def fitting() -> None:
            await self.update(job, state=JobState.FITTING)

        def place(ahead: int | None) -> None:
            status.publish(Progress(JobState.FITTING, queue_position=ahead))

        return await self.video.prepare(
            video, attachment_limit(job), on_fitting=fitting, on_position=place
        )

    async def _delivered(
        self,
        job: Job,
        observer: JobObserver,
        message_id: int | None,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """The video is in front of the member: the one path after a fresh post and after a
        restart found the post.

        The result message id is stored first, before any other Discord call, so a 🔁 added
        at once (and a restart) finds the job by it; then the front end finishes the status
        and invites reruns; then the charge. Each step is safe to repeat after a restart.
        """
        if message_id is not None and job.result_message_id != message_id:
            await self.update(job, result_message_id=message_id)
        try:
            await observer.show_delivered(job, message_id)
        except Exception:
            bound.warning("job.delivery_not_shown", exc_info=True)
        await self._finish(job, bound)

    async def _submit(self, job: Job, bound: structlog.typing.FilteringBoundLogger) -> None:
        provider = self.provider_for(job)
        breaker = self.breakers[provider.name]
        async with self._critical_section(job.id):
            await self.update(job, state=JobState.SUBMITTING)
            try:
                handle = await provider.submit(job.request)
            except ProviderError as exc:
                self.metrics.provider_error(provider.name, exc)
                if isinstance(exc, TransientError | RateLimited):
                    breaker.record_outage()
                raise
            breaker.record_success()
            await self.update(
                job, state=JobState.QUEUED, provider_handle=handle.to_json(), started_at=utcnow()
            )
        bound.info("job.submitted", provider=provider.name, request_id=handle.request_id)

    async def _follow(self, job: Job, status: LatestWins[Progress]) -> ProviderResult:
        """Follow the provider's job; an outage while following is waited out, not a failure.

        The provider keeps making the clip while its status API hiccups, so a transient
        error re-enters ``watch`` after a pause (bounded in count, and by the job deadline).
        """
        assert job.provider_handle is not None
        handle = ProviderHandle.from_json(job.provider_handle)
        breaker = self.breakers[self.provider_for(job).name]
        for attempt in range(1, FOLLOW_ATTEMPTS + 1):
            try:
                result = await self._follow_once(job, handle, status)
            except ProviderError as exc:
                self.metrics.provider_error(job.provider, exc)
                if not isinstance(exc, TransientError | RateLimited):
                    raise
                breaker.record_outage()
                if attempt == FOLLOW_ATTEMPTS:
                    raise
                log.warning("job.follow_interrupted", job_id=job.id, error=type(exc).__name__)
                await asyncio.sleep(min(30.0, self.limits.outage_pause * 2.0 ** (attempt - 1)))
            else:
                breaker.record_success()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _follow_once(
        self, job: Job, handle: ProviderHandle, status: LatestWins[Progress]
    ) -> ProviderResult:
        seen: float | None = None  # when the last status that was not done came
        async for observed in self.provider_for(job).watch(handle):
            if observed.kind is StatusKind.COMPLETED and observed.result is not None:
                if seen is not None:
                    self.metrics.completion_detected(job.provider, time.monotonic() - seen)
                return observed.result
            seen = time.monotonic()
            if observed.kind is StatusKind.QUEUED:
                if job.state is not JobState.QUEUED:
                    await self.update(job, state=JobState.QUEUED)
                status.publish(Progress(JobState.QUEUED, queue_position=observed.queue_position))
            elif observed.kind is StatusKind.RUNNING:
                if job.state is not JobState.GENERATING:
                    await self.update(job, state=JobState.GENERATING, started_at=utcnow())
                status.publish(Progress(JobState.GENERATING))
        raise ProviderError("the provider's status ended without a result")

    async def _finish(self, job: Job, bound: structlog.typing.FilteringBoundLogger) -> None:
        charged: ReservationRow | None = None
        async with self._storage.unit() as uow:
            await uow.lock_guild(job.origin.guild_id)
            await self._hold(uow, job)
            if job.reservation_id is not None:
                charged = await self._quotas.settle(
                    uow, job.reservation_id, ReservationState.CHARGED, job_id=job.id
                )
            await _write(uow, job, {"state": JobState.DELIVERED, "finished_at": utcnow()})
        self.metrics.job_ended(job, charged)
        bound.info(
            "job.delivered", cost=job.cost, seconds=_seconds(job.created_at, job.finished_at)
        )

    async def _settle_failure(
        self, job: Job, reason: str, state: JobState, *, unless_moved: bool = False
    ) -> None:
        """Refund and end the job in one unit of work.

        ``unless_moved``: the job runs in another process and the decision was made on its
        state as read before: lock its row and raise :class:`_StateMoved` if that state
        moved on meanwhile (its owner started sending it, say), refunding nothing."""
        refunded: ReservationRow | None = None
        async with self._storage.unit() as uow:
            await uow.lock_guild(job.origin.guild_id)
            if unless_moved:
                stored = await uow.jobs.lock(job.id)
                if stored is None or stored.state is not job.state:
                    raise _StateMoved(job.id)
            await self._hold(uow, job)
            if job.reservation_id is not None:
                refunded = await self._quotas.settle(
                    uow, job.reservation_id, ReservationState.REFUNDED, job_id=job.id, reason=reason
                )
            await _write(uow, job, {"state": state, "error": reason, "finished_at": utcnow()})
        self.metrics.job_ended(job, refunded)

    async def _fail(self, job: Job, observer: JobObserver, reason: str) -> None:
        await self._settle_failure(job, reason, JobState.FAILED)
        try:
            await observer.failed(job, reason)
        except Exception:
            log.warning("job.failure_not_shown", job_id=job.id, exc_info=True)

    async def _past_deadline(
        self,
        job: Job,
        status: LatestWins[Progress],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> ProviderResult:
        """The deadline passed: stop the provider's work and refund, or, where it cannot be
        stopped, wait for the clip it still makes and bills.

        A provider that cannot cancel (or refuses to) goes on and charges the operator, so
        refunding the member then would pay for it twice. The job is followed on, up to
        ``OVERDUE_FACTOR`` times the deadline from its submit, and delivered and charged late;
        a provider that has neither delivered nor failed by then is taken to have lost the job
        (a clip that never arrives is not billed by any of the documented providers), and the
        job fails and is refunded.
        """
        if job.provider_handle is None or await self._cancel_at_provider(job):
            raise DeadlineExceeded(f"deadline of {self.limits.deadline} passed")
        since = job.started_at or job.created_at
        limit = since + self.limits.deadline * OVERDUE_FACTOR
        bound.warning("job.overdue", deadline=str(self.limits.deadline), until=limit.isoformat())
        try:
            async with asyncio.timeout(max((limit - utcnow()).total_seconds(), 0.0)):
                return await self._follow(job, status)
        except TimeoutError:
            raise DeadlineExceeded(
                f"no result {OVERDUE_FACTOR} x the deadline of {self.limits.deadline} after submit"
            ) from None

    async def _cancel_at_provider(self, job: Job) -> bool:
        """Ask the provider to drop the job; True only when it confirmed it did."""
        if job.provider_handle is None:
            return False
        handle = ProviderHandle.from_json(job.provider_handle)
        try:
            async with asyncio.timeout(10):
                return await self.provider_for(job).cancel(handle)
        except (ProviderError, TimeoutError):
            log.warning("job.provider_cancel_failed", job_id=job.id, exc_info=True)
            return False


def _in_line(job: Job, status: LatestWins[Progress]) -> Callable[[int], None] | None:
    """Show a new job's place in the bot's own waiting line ("waiting in line, position N")."""
    if job.state is not JobState.PENDING:
        return None  # a resumed job already at the provider shows its provider state
    # Progress positions count the jobs ahead (0: next), like the providers' queue positions.
    return lambda place: status.publish(Progress(JobState.PENDING, queue_position=place - 1))


def _releasing(lease: TerminalLease) -> Callable[[asyncio.Task[None]], None]:
    """A task callback that lets go of ``lease`` when the job's task ends."""
    return lambda _task: lease.release()


async def _write(uow: UnitOfWork, job: Job, fields: dict[str, Any]) -> None:
    """Write ``fields`` of ``job`` in ``uow`` and mirror them (and ``updated_at``) on it."""
    now = utcnow()
    await uow.jobs.update(job.id, fields, now)
    for name, value in fields.items():
        setattr(job, name, value)
    job.updated_at = now


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 2) if end else None
