"""The job service end to end over real sockets: FakeFal, a real database (SQLite and
PostgreSQL), a recording front end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from bot.circuit import CircuitBreaker
from bot.clock import utcnow
from bot.config import Period
from bot.delivery import DownloadedVideo
from bot.jobs import (
    PROVIDER_CANNOT_CANCEL,
    PROVIDER_REFUSED_CANCEL,
    RESTARTED_MID_SUBMIT,
    TERMINAL_LEASE,
    CannotCancel,
    JobLimits,
    JobService,
    NotEnoughCredits,
    ObserverFactory,
    RequestRefused,
)
from bot.lease import TerminalLease
from bot.models import GenerationRequest, Job, JobState, Origin, OriginKind, Progress
from bot.ownership import LEASE_TTL
from bot.pricing import Quote
from bot.providers.aigateway import AIGatewayProvider
from bot.providers.fal import FalProvider
from bot.providers.http import RetryPolicy
from bot.quotas import Quotas
from bot.storage import Storage, open_storage
from bot.storage.base import NewJob
from bot.storage.records import LedgerKind, ReservationState
from bot.terminal import OUT, headless
from tests.fakes.aigateway import FakeAIGateway
from tests.fakes.fal import FakeFal, Reply
from tests.units import Credits, ledger_rows, reservation_states

ORIGIN = Origin(guild_id=42, channel_id=43, user_id=44, user_name="ada")
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, total_seconds=2)


@dataclass
class RecordingFrontEnd:
    """A front end that keeps what it was shown (the Discord one is tested end to end)."""

    progress_seen: list[Progress] = field(default_factory=list)
    delivered_bytes: bytes | None = None
    deliveries: int = 0
    failures: list[str] = field(default_factory=list)
    posted_before_restart: int | None = None
    shown_delivered: list[int | None] = field(default_factory=list)
    queued: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, progress: Progress) -> None:
        self.progress_seen.append(progress)
        if progress.state is JobState.QUEUED:
            self.queued.set()

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        self.deliveries += 1
        self.delivered_bytes = video.path.read_bytes()
        return 5000 + job.id

    async def already_delivered(self, job: Job) -> int | None:
        return self.posted_before_restart

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        self.shown_delivered.append(message_id)

    async def failed(self, job: Job, reason: str) -> None:
        self.failures.append(reason)


@dataclass
class World:
    fal: FakeFal
    storage: Storage
    quotas: Credits
    service: JobService
    url: str
    lease_dir: Path
    session: aiohttp.ClientSession

    async def restart(self, *, terminal: ObserverFactory | None = None) -> World:
        """A new process on the same database: new storage, provider and service, started
        once the old process's leases ran out (it stopped without releasing them)."""
        await self.storage.close()
        storage = await open_storage(self.url)
        return make_world(
            self.fal,
            storage,
            self.url,
            self.lease_dir,
            self.session,
            terminal=terminal,
            clock=lambda: utcnow() + LEASE_TTL,
        )


def make_world(
    fal: FakeFal,
    storage: Storage,
    url: str,
    lease_dir: Path,
    session: aiohttp.ClientSession,
    *,
    limits: JobLimits | None = None,
    terminal: ObserverFactory | None = None,
    clock: Callable[[], datetime] = utcnow,
    owner: str | None = None,
) -> World:
    quotas = Quotas(default_allowance=100, default_period=Period.DAILY)
    provider = FalProvider(
        session, api_key=fal.key, base_url=fal.url, poll_interval=0.01, retry=FAST
    )
    service = JobService(
        storage=storage,
        quotas=quotas,
        provider=provider,
        session=session,
        credits_per_usd=100,
        limits=limits or JobLimits(status_interval=0.0),
        terminal=terminal,
        lease_dir=lease_dir,
        clock=clock,
        owner=owner,
    )
    return World(fal, storage, Credits(storage, quotas), service, url, lease_dir, session)


@pytest.fixture
async def world(
    storage_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> AsyncIterator[World]:
    async with FakeFal() as fal:
        storage = await open_storage(storage_url)
        built = make_world(fal, storage, storage_url, tmp_path, session)
        try:
            yield built
        finally:
            await built.service.close()
            await built.storage.close()


async def charges(storage: Storage, guild_id: int = ORIGIN.guild_id) -> list[object]:
    """The guild's ``charge`` ledger rows."""
    return [r for r in await ledger_rows(storage, guild_id) if r.kind is LedgerKind.CHARGE]


async def job_ids(storage: Storage, guild_id: int = ORIGIN.guild_id) -> list[int]:
    """The ids of the guild's jobs."""
    async with storage.read() as uow:
        return [job.id for job in await uow.jobs.recent(guild_id, None, 1000)]


def request(**overrides: object) -> GenerationRequest:
    return GenerationRequest(prompt="a red fox in snow", seed=7, **overrides)


async def run(world: World, job: Job, front: RecordingFrontEnd) -> Job:
    async with asyncio.timeout(10):
        await world.service.run(job, front)
    stored = await world.service.get(job.id)
    assert stored is not None
    return stored


async def test_job_delivers_video_and_charges_once(world: World):
    """A job goes queued → generating → delivered; bytes match; 20 credits charged once."""
    job = await world.service.create(request(), ORIGIN)
    assert job.cost == 20
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.DELIVERED
    assert done.result_message_id == 5000 + job.id
    assert front.shown_delivered == [5000 + job.id]
    assert front.delivered_bytes == world.fal.video
    assert front.deliveries == 1
    states = [p.state for p in front.progress_seen]
    assert JobState.QUEUED in states and JobState.GENERATING in states
    positions = [p.queue_position for p in front.progress_seen if p.state is JobState.QUEUED]
    assert positions and set(positions) <= {2, 1}  # fast updates coalesce: latest wins
    balance = await world.quotas.balance(ORIGIN.guild_id)
    assert (balance.spent, balance.reserved, balance.remaining) == (20, 0, 80)
    assert len(await charges(world.storage)) == 1


async def test_job_submits_exact_options_to_fal(world: World):
    """The request's options reach fal's endpoint for the chosen model, unchanged."""
    job = await world.service.create(
        request(aspect="9:16", duration=10, resolution="1080p", negative_prompt="blur"), ORIGIN
    )
    await run(world, job, RecordingFrontEnd())
    submit = world.fal.recorded("submit")[0]
    assert submit.path == "/fal-ai/pika/v2.2/text-to-video"
    assert submit.json == {
        "prompt": "a red fox in snow",
        "negative_prompt": "blur",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "duration": 10,
        "seed": 7,
    }


async def test_job_failed_generation_refunds(world: World):
    """fal's failure at result time refunds the reservation and tells the member why."""
    world.fal.fail_result(500, "Generation failed", error_type="generation_error")
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.FAILED
    assert front.failures and "could not generate" in front.failures[0]
    assert front.deliveries == 0
    balance = await world.quotas.balance(ORIGIN.guild_id)
    assert (balance.remaining, balance.spent, balance.reserved) == (100, 0, 0)


async def test_job_content_policy_failure_is_named(world: World):
    """A content-policy refusal says so, without fal's raw text."""
    world.fal.fail_result(
        422, "nsfw content detected", header_error_type="content_policy_violation"
    )
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    await run(world, job, front)
    assert "content policy" in front.failures[0]
    assert "nsfw content detected" not in front.failures[0]


async def test_job_rejected_key_refunds(world: World):
    """A 401 at submit fails the job with an operator-facing reason and refunds."""
    world.fal.key = "another-key"
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.FAILED
    assert "key was refused" in front.failures[0]
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_submit_500_is_not_resent_and_refunds(world: World):
    """A 500 on submit may have been accepted: it is not sent again, and credits come back."""
    world.fal.submit_replies.append(Reply(500, {"detail": "boom"}))
    job = await world.service.create(request(), ORIGIN)
    done = await run(world, job, RecordingFrontEnd())
    assert done.state is JobState.FAILED
    assert world.fal.count("submit") == 1
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_download_over_cap_refunds(world: World, tmp_path: Path):
    """A video over the download cap fails cleanly and refunds."""
    world.service.limits = JobLimits(status_interval=0.0, max_download_bytes=100)
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.FAILED
    assert "larger than this bot accepts" in front.failures[0]
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_deadline_cancels_at_provider_and_refunds(world: World):
    """A job past its deadline is cancelled at fal and refunded."""
    world.fal.stream_enabled = False
    world.fal.queue_positions = tuple(range(10_000, 0, -1))
    world.service.limits = JobLimits(status_interval=0.0, deadline=timedelta(seconds=0.3))
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.FAILED
    assert "took too long" in front.failures[0]
    assert world.fal.count("cancel") == 1
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_not_enough_credits_reserves_nothing(world: World):
    """Over the balance: a refusal with cost, balance and reset time; no job row, no submit."""
    await world.quotas.reserve(ORIGIN.guild_id, 1, Quote(credits=30, usd=Decimal("0.30")))
    for _ in range(3):
        await world.service.create(request(), ORIGIN)
    with pytest.raises(NotEnoughCredits) as refused:
        await world.service.create(request(), ORIGIN)
    assert "costs 20 credits" in refused.value.user_message
    assert "has 10 left" in refused.value.user_message
    assert "<t:" in refused.value.user_message
    assert len(await job_ids(world.storage)) == 3
    assert world.fal.count("submit") == 0


async def test_job_unsupported_request_is_refused_before_reserving(world: World):
    """Scenes on Pika 2.1 is refused with a reason before any credit moves."""
    with pytest.raises(RequestRefused):
        await world.service.create(
            request(model="2.1", mode="scenes", image_urls=("http://127.0.0.1/x.png",)), ORIGIN
        )
    assert await reservation_states(world.storage, ORIGIN.guild_id) == []


async def test_job_resumes_after_restart_while_queued(world: World):
    """A process stopped while fal held the job: the next start follows it and delivers once."""
    world.fal.stream_enabled = False
    world.fal.queue_positions = (5, 4, 3, 2, 1)
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    task = world.service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    await world.service.close()  # the process stops; state stays as persisted
    assert task.cancelled()
    restarted = await world.restart()
    try:
        second = RecordingFrontEnd()
        resumed = await restarted.service.resume(lambda _job: second)
        assert [j.id for j in resumed] == [job.id]
        assert await restarted.service.wait_idle(10)
        done = await restarted.service.get(job.id)
        assert done is not None and done.state is JobState.DELIVERED
        assert second.deliveries == 1 and front.deliveries == 0
        assert world.fal.count("submit") == 1
        assert len(await charges(restarted.storage)) == 1
    finally:
        await restarted.service.close()
        world.storage = restarted.storage


async def test_job_restart_mid_submit_refunds_and_never_resubmits(world: World):
    """A job left in SUBMITTING is failed and refunded by the documented rule, not re-sent."""
    job = await world.service.create(request(), ORIGIN)
    await world.service.update(job, state=JobState.SUBMITTING)
    restarted = await world.restart()
    world.storage = restarted.storage
    front = RecordingFrontEnd()
    await restarted.service.resume(lambda _job: front)
    assert await restarted.service.wait_idle(5)
    assert front.failures == [RESTARTED_MID_SUBMIT]
    assert world.fal.count("submit") == 0
    assert (await restarted.quotas.balance(ORIGIN.guild_id)).remaining == 100
    await restarted.service.close()


async def test_job_restart_after_post_charges_without_reposting(world: World):
    """Stopped after posting but before recording it: found again, charged once, not reposted."""
    job = await world.service.create(request(), ORIGIN)
    await world.service.update(
        job, state=JobState.POSTING, extra={"video_url": world.fal.video_url("x")}
    )
    restarted = await world.restart()
    world.storage = restarted.storage
    front = RecordingFrontEnd(posted_before_restart=777)
    await restarted.service.resume(lambda _job: front)
    assert await restarted.service.wait_idle(5)
    done = await restarted.service.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert done.result_message_id == 777
    assert front.deliveries == 0
    assert front.shown_delivered == [777]  # the same finishing step as a fresh post
    assert (await restarted.quotas.balance(ORIGIN.guild_id)).spent == 20
    await restarted.service.close()


async def test_job_status_updates_are_coalesced(world: World):
    """With a status interval, the front end sees fewer updates than fal's steps."""
    world.fal.stream_enabled = False
    world.fal.queue_positions = tuple(range(30, 0, -1))
    world.service.limits = JobLimits(status_interval=0.2)
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    await run(world, job, front)
    assert front.deliveries == 1
    assert len(front.progress_seen) < 30


@pytest.mark.parametrize(
    "state",
    [JobState.PENDING, JobState.QUEUED, JobState.GENERATING, JobState.DOWNLOADING],
)
async def test_job_restart_at_each_state_delivers_and_charges_once(world: World, state: JobState):
    """Stopped at any state before posting, the next start delivers once and charges once."""
    job = await world.service.create(request(), ORIGIN)
    if state is not JobState.PENDING:
        handle = await world.service.provider.submit(job.request)
        await world.service.update(job, state=state, provider_handle=handle.to_json())
        if state is JobState.DOWNLOADING:
            await world.service.update(
                job, extra={"video_url": world.fal.video_url(handle.request_id)}
            )
    submits_before = world.fal.count("submit")
    restarted = await world.restart()
    world.storage = restarted.storage
    front = RecordingFrontEnd()
    await restarted.service.resume(lambda _job: front)
    assert await restarted.service.wait_idle(10)
    done = await restarted.service.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert front.deliveries == 1 and front.delivered_bytes == world.fal.video
    expected_submits = submits_before + (1 if state is JobState.PENDING else 0)
    assert world.fal.count("submit") == expected_submits
    assert len(await charges(restarted.storage)) == 1
    await restarted.service.close()


async def test_job_restart_while_posting_unposted_posts_once(world: World):
    """Stopped in POSTING before the post went out: fetched again and posted exactly once."""
    job = await world.service.create(request(), ORIGIN)
    handle = await world.service.provider.submit(job.request)
    await world.service.update(
        job, state=JobState.POSTING, extra={"video_url": world.fal.video_url(handle.request_id)}
    )
    restarted = await world.restart()
    world.storage = restarted.storage
    front = RecordingFrontEnd(posted_before_restart=None)
    await restarted.service.resume(lambda _job: front)
    assert await restarted.service.wait_idle(5)
    assert front.deliveries == 1
    assert (await restarted.quotas.balance(ORIGIN.guild_id)).spent == 20
    await restarted.service.close()


@pytest.mark.parametrize(
    "fault",
    [
        Reply(500, {"detail": "upstream"}),
        Reply(429, {"detail": "slow down"}, {"Retry-After": "0"}),
        Reply(200, b"{not json"),
        Reply(502, None),
    ],
    ids=["500", "429", "malformed-json", "502-empty"],
)
async def test_job_status_outage_is_waited_out(world: World, fault: Reply):
    """A status API failing past the retry budget pauses following; the job still delivers."""
    world.fal.stream_enabled = False
    world.fal.status_replies.extend([fault] * 3)  # FAST retries twice, so one outage
    world.service.limits = JobLimits(status_interval=0.0, outage_pause=0.01)
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.DELIVERED
    assert front.deliveries == 1


async def test_job_breaker_opens_after_repeated_outages(world: World):
    """After five submits lost to outages, new requests are refused without reserving."""
    world.fal.submit_replies.extend([Reply(503, {"detail": "busy"})] * 20)
    for _ in range(5):
        job = await world.service.create(request(), ORIGIN)
        done = await run(world, job, RecordingFrontEnd())
        assert done.state is JobState.FAILED
    reservations_before = len(await reservation_states(world.storage, ORIGIN.guild_id))
    with pytest.raises(RequestRefused) as refused:
        await world.service.create(request(), ORIGIN)
    assert "having trouble" in refused.value.user_message
    assert len(await reservation_states(world.storage, ORIGIN.guild_id)) == reservations_before
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_breaker_half_open_sends_one_probe(world: World):
    """After the cool-down one request probes the provider; the others are refused until the
    probe has answered, and its success lets everyone through again."""
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=lambda: now[0])
    world.service.breakers[world.service.provider.name] = breaker
    breaker.record_outage()
    breaker.record_outage()
    now[0] = 61.0
    probe = await world.service.create(request(), ORIGIN)
    with pytest.raises(RequestRefused) as refused:
        await world.service.create(request(), ORIGIN)
    assert "having trouble" in refused.value.user_message
    assert len(await reservation_states(world.storage, ORIGIN.guild_id)) == 1
    done = await run(world, probe, RecordingFrontEnd())
    assert done.state is JobState.DELIVERED
    after = await world.service.create(request(), ORIGIN)
    assert after.provider == world.service.provider.name
    assert world.fal.count("submit") == 1


async def test_job_cancel_while_queued_refunds(world: World):
    """Cancelling a queued job cancels at fal, refunds, and ends CANCELLED."""
    world.fal.stream_enabled = False
    world.fal.queue_positions = tuple(range(10_000, 0, -1))
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    world.service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    cancelled = await world.service.cancel(job.id, reason="Cancelled by ada.")
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert front.failures == ["Cancelled by ada."]
    assert world.fal.count("cancel") == 1
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100
    with pytest.raises(CannotCancel):
        await world.service.cancel(job.id, reason="again")


async def test_job_cancel_refused_by_fal_is_not_refunded(world: World):
    """fal answers that it cannot cancel: no refund, the job goes on, is delivered, charged."""
    world.fal.stream_enabled = False
    world.fal.queue_positions = tuple(range(10_000, 0, -1))
    world.fal.cancel_replies.append(Reply(400, {"status": "ALREADY_COMPLETED"}))
    job = await world.service.create(request(), ORIGIN)
    front = RecordingFrontEnd()
    task = world.service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    with pytest.raises(CannotCancel) as refused:
        await world.service.cancel(job.id, reason="Cancelled by ada.")
    assert refused.value.user_message == PROVIDER_REFUSED_CANCEL
    assert world.fal.count("cancel") == 1
    assert (await world.quotas.balance(ORIGIN.guild_id)).reserved == 20
    world.fal.queue_positions = ()  # fal finishes the clip it would not cancel
    async with asyncio.timeout(10):
        await task
    done = await world.service.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert front.failures == [] and front.deliveries == 1
    kinds = [r.kind for r in await ledger_rows(world.storage, ORIGIN.guild_id)]
    assert kinds == ["reserve", "charge"]


async def test_job_cancel_during_submit_waits_for_it_then_cancels_at_fal(world: World):
    """A Cancel while the submit is on its way does not cut it (fal would keep the job
    unknown to us): it waits for fal's answer, then cancels there and refunds."""
    world.fal.delay = 0.3
    world.fal.stream_enabled = False
    world.fal.queue_positions = tuple(range(10_000, 0, -1))
    job = await world.service.create(request(), ORIGIN)
    world.service.start(job, RecordingFrontEnd())
    async with asyncio.timeout(5):  # bounded poll: the submit has no event of its own
        while job.state is not JobState.SUBMITTING:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    cancelled = await world.service.cancel(job.id, reason="Cancelled by ada.")
    assert cancelled.state is JobState.CANCELLED
    assert world.fal.count("submit") == 1 and world.fal.count("cancel") == 1
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


@pytest.fixture
async def gateway_world(
    storage_url: str, session: aiohttp.ClientSession
) -> AsyncIterator[tuple[JobService, Credits, FakeAIGateway]]:
    """A job service on AIgateway, which documents no way to cancel a job."""
    async with FakeAIGateway(min_poll_interval=0.0, polls_before_done=10_000) as gateway:
        store = await open_storage(storage_url)
        rules = Quotas(default_allowance=1000, default_period=Period.DAILY)
        provider = AIGatewayProvider(
            session, api_key=gateway.key, base_url=gateway.url, poll_interval=0.01, retry=FAST
        )
        service = JobService(
            storage=store,
            quotas=rules,
            provider=provider,
            session=session,
            credits_per_usd=100,
            limits=JobLimits(status_interval=0.0, max_concurrent=1),
        )
        try:
            yield service, Credits(store, rules), gateway
        finally:
            await service.close()
            await store.close()


async def test_job_cancel_after_submit_refused_where_provider_cannot_cancel(
    gateway_world: tuple[JobService, Credits, FakeAIGateway],
):
    """AIgateway cannot cancel: once submitted, Cancel is refused with the reason, nothing is
    refunded, and the clip the provider makes (and bills) is delivered and charged."""
    service, quotas, gateway = gateway_world
    job = await service.create(request(model="2.1"), ORIGIN)
    assert service.can_cancel(job)  # still in the bot's own line
    front = RecordingFrontEnd()
    task = service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    assert not service.can_cancel(job)
    with pytest.raises(CannotCancel) as refused:
        await service.cancel(job.id, reason="Cancelled by ada.")
    assert refused.value.user_message == PROVIDER_CANNOT_CANCEL
    assert (await quotas.balance(ORIGIN.guild_id)).reserved == job.cost
    gateway.polls_before_done = 0  # the provider goes on and finishes the clip
    async with asyncio.timeout(10):
        await task
    done = await service.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert front.failures == [] and front.deliveries == 1
    balance = await quotas.balance(ORIGIN.guild_id)
    assert (balance.spent, balance.reserved) == (job.cost, 0)


async def test_job_cancel_before_submit_refunds_where_provider_cannot_cancel(
    gateway_world: tuple[JobService, Credits, FakeAIGateway],
):
    """A job still waiting in the bot's own line was never sent: Cancel refunds it, anywhere."""
    service, quotas, gateway = gateway_world
    first = await service.create(request(model="2.1"), ORIGIN)
    waiting = await service.create(request(model="2.1"), ORIGIN)
    running = RecordingFrontEnd()
    service.start(first, running)
    async with asyncio.timeout(5):
        await running.queued.wait()
    front = RecordingFrontEnd()
    service.start(waiting, front)
    async with asyncio.timeout(5):  # shown "waiting in line" (bounded poll: no event to await)
        while JobState.PENDING not in [p.state for p in front.progress_seen]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    cancelled = await service.cancel(waiting.id, reason="Cancelled by ada.")
    assert cancelled.state is JobState.CANCELLED
    assert front.failures == ["Cancelled by ada."]
    assert gateway.count("submit") == 1
    assert (await quotas.balance(ORIGIN.guild_id)).reserved == first.cost


async def overdue_on_gateway(
    service: JobService,
    quotas: Credits,
    session: aiohttp.ClientSession,
    submitted_ago: timedelta,
    store: Storage,
) -> tuple[JobService, Job]:
    """A job AIgateway is making, left by a stopped process ``submitted_ago``, taken up by a
    new service (same database) whose deadline of 20 minutes has passed for it."""
    job = await service.create(request(model="2.1"), ORIGIN)
    front = RecordingFrontEnd()
    service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    await service.close()  # the process stops while the provider works on
    stored = await service.get(job.id)
    assert stored is not None and stored.started_at is not None
    await service.update(stored, started_at=stored.started_at - submitted_ago)
    restarted = JobService(
        storage=store,
        quotas=Quotas(default_allowance=1000, default_period=Period.DAILY),
        provider=service.provider,
        session=session,
        credits_per_usd=100,
        limits=JobLimits(status_interval=0.0, deadline=timedelta(minutes=20)),
    )
    return restarted, stored


async def test_job_past_deadline_waits_for_a_clip_the_provider_cannot_stop(
    gateway_world: tuple[JobService, Credits, FakeAIGateway],
    session: aiohttp.ClientSession,
    storage_url: str,
):
    """Past its deadline on a provider that cannot cancel (and so still bills), the job is not
    refunded: it is followed on and the clip is delivered and charged when it comes."""
    service, quotas, gateway = gateway_world
    store = await open_storage(storage_url)  # the next process's connection
    restarted, job = await overdue_on_gateway(
        service, quotas, session, timedelta(minutes=30), store
    )
    front = RecordingFrontEnd()
    try:
        task = restarted.start(job, front)
        polls = gateway.count("status")
        async with asyncio.timeout(5):  # still followed after the deadline (bounded poll)
            while gateway.count("status") < polls + 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert not task.done()
        gateway.polls_before_done = 0  # the provider finishes the clip late
        async with asyncio.timeout(10):
            await task
        done = await restarted.get(job.id)
        assert done is not None and done.state is JobState.DELIVERED
        assert front.failures == [] and front.deliveries == 1
        balance = await quotas.balance(ORIGIN.guild_id)
        assert (balance.spent, balance.reserved) == (job.cost, 0)
    finally:
        await restarted.close()
        await store.close()


async def test_job_far_past_deadline_is_given_up_and_refunded(
    gateway_world: tuple[JobService, Credits, FakeAIGateway],
    session: aiohttp.ClientSession,
    storage_url: str,
):
    """Three deadlines after its submit with no result, the provider has lost the job: it fails
    and is refunded."""
    service, quotas, _gateway = gateway_world
    store = await open_storage(storage_url)  # the next process's connection
    restarted, job = await overdue_on_gateway(
        service, quotas, session, timedelta(minutes=61), store
    )
    front = RecordingFrontEnd()
    try:
        async with asyncio.timeout(10):
            await restarted.run(job, front)
        done = await restarted.get(job.id)
        assert done is not None and done.state is JobState.FAILED
        assert front.failures and "took too long" in front.failures[0]
        balance = await quotas.balance(ORIGIN.guild_id)
        assert (balance.spent, balance.reserved) == (0, 0)
    finally:
        await restarted.close()
        await store.close()


async def test_job_shutdown_lets_a_submit_in_flight_finish(world: World):
    """A shutdown during a submit waits for it, so the job is QUEUED, not SUBMITTING."""
    world.fal.delay = 0.3
    job = await world.service.create(request(), ORIGIN)
    world.service.start(job, RecordingFrontEnd())
    async with asyncio.timeout(5):
        while world.fal.count("submit") == 0 and job.state is not JobState.SUBMITTING:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await world.service.close()
    stored = await world.service.get(job.id)
    assert stored is not None and stored.state is JobState.QUEUED
    assert world.fal.count("submit") == 1


async def test_job_fails_over_to_second_provider_repriced(
    storage_url: str, session: aiohttp.ClientSession
):
    """With fal's circuit open, a new request goes to the fallback at the fallback's price."""
    async with FakeFal() as fal, FakeAIGateway(min_poll_interval=0.0) as gateway:
        store = await open_storage(storage_url)
        try:
            quotas = Quotas(default_allowance=1000, default_period=Period.DAILY)
            primary = FalProvider(session, api_key=fal.key, base_url=fal.url, retry=FAST)
            fallback = AIGatewayProvider(
                session, api_key=gateway.key, base_url=gateway.url, poll_interval=0.01, retry=FAST
            )
            service = JobService(
                storage=store,
                quotas=quotas,
                provider=primary,
                fallback=fallback,
                session=session,
                credits_per_usd=100,
                limits=JobLimits(status_interval=0.0),
            )
            first = await service.create(request(model="2.1"), ORIGIN)
            assert (first.provider, first.cost) == ("fal", 40)
            for _ in range(service.breaker.threshold):
                service.breaker.record_outage()
            job = await service.create(request(model="2.1"), ORIGIN)
            assert (job.provider, job.cost) == ("aigateway", 200)  # $0.40 per second x 5 s
            front = RecordingFrontEnd()
            async with asyncio.timeout(10):
                await service.run(job, front)
            assert front.delivered_bytes == gateway.video
            assert gateway.count("submit") == 1 and fal.count("submit") == 0
            await service.close()
        finally:
            await store.close()


async def test_job_whose_provider_is_gone_is_refunded(world: World):
    """A job resumed after the operator switched providers is refunded with a clear reason."""
    # A job stored on a provider this bot no longer has (as after the operator switched).
    reservation = await world.quotas.reserve(ORIGIN.guild_id, ORIGIN.user_id, Quote(20, Decimal(0)))
    async with world.storage.unit() as uow:
        new = NewJob(ORIGIN, request(), "pixazo", 20, reservation.id)
        job = await uow.jobs.create(new, utcnow())
    await world.service.update(job, state=JobState.QUEUED, provider_handle={"request_id": "r"})
    front = RecordingFrontEnd()
    done = await run(world, job, front)
    assert done.state is JobState.FAILED
    assert "no longer used" in front.failures[0]
    assert (await world.quotas.balance(ORIGIN.guild_id)).remaining == 100


async def test_job_failure_notice_is_the_last_thing_shown(world: World):
    """A progress update still waiting in the throttle never lands after the failure notice."""

    @dataclass
    class OrderedFrontEnd(RecordingFrontEnd):
        shown: list[str] = field(default_factory=list)

        async def progress(self, job: Job, progress: Progress) -> None:
            self.shown.append(progress.state.value)

        async def failed(self, job: Job, reason: str) -> None:
            self.shown.append("failed")
            await asyncio.sleep(0.5)  # a slow Discord edit, during which the throttle wakes

    world.fal.stream_enabled = False
    world.fal.fail_result(500, "boom", error_type="generation_error")
    world.service.limits = JobLimits(status_interval=0.3)
    job = await world.service.create(request(), ORIGIN)
    front = OrderedFrontEnd()
    await run(world, job, front)
    assert front.shown[-1] == "failed"


async def test_resume_never_shows_a_terminal_job_in_discord(world: World, tmp_path: Path):
    """A ``pikabot generate`` job is never resumed into a channel: while its process holds the
    lease it is left alone; once that process is gone it is finished headless into its file."""
    out = tmp_path / "clips" / "fox.mp4"
    lease = TerminalLease.acquire(tmp_path)  # the live `generate` process
    terminal = await world.service.create(
        request(), Origin.terminal(), extra={TERMINAL_LEASE: lease.token, OUT: str(out)}
    )
    discord = await world.service.create(request(duration=10), ORIGIN)
    restarted = await world.restart(terminal=headless)  # `pikabot run` starts
    world.storage = restarted.storage
    shown: list[Job] = []

    def observers(job: Job) -> RecordingFrontEnd:
        shown.append(job)
        return RecordingFrontEnd()

    try:
        resumed = await restarted.service.resume(observers)
        assert [j.id for j in resumed] == [discord.id]
        assert await restarted.service.wait_idle(10)
        left = await restarted.service.get(terminal.id)
        assert left is not None and left.state is JobState.PENDING
        assert left.origin.kind is OriginKind.TERMINAL

        lease.release()  # the `generate` process died
        resumed = await restarted.service.resume(observers)
        assert [j.id for j in resumed] == [terminal.id]
        assert await restarted.service.wait_idle(10)
        assert [j.id for j in shown] == [discord.id]  # only the Discord job reached Discord
        done = await restarted.service.get(terminal.id)
        assert done is not None and done.state is JobState.DELIVERED
        assert out.read_bytes() == world.fal.video
        states = await reservation_states(restarted.storage, 0, ORIGIN.guild_id)
        assert states == [ReservationState.CHARGED, ReservationState.CHARGED]
    finally:
        await restarted.service.close()


async def test_stopped_job_not_yet_sent_is_refunded(world: World):
    """Stopped before its submit: refunded, nothing sent or cancelled at the provider."""
    job = await world.service.create(request(), Origin.terminal())
    await world.service.close()
    stopped = await world.service.settle_stopped(job.id, reason="stopped")
    assert stopped is not None and stopped.state is JobState.CANCELLED
    assert world.fal.count("submit") == 0 and world.fal.count("cancel") == 0
    states = await reservation_states(world.storage, 0)
    assert states == [ReservationState.REFUNDED]


@pytest.mark.parametrize("fal_still_cancels", [True, False])
async def test_stopped_job_at_fal_is_refunded_only_if_fal_drops_it(
    world: World, fal_still_cancels: bool
):
    """At fal (which can cancel): refunded only once fal confirms the cancel; a clip fal has
    already finished stays open (reserved) for the next start to fetch and charge."""
    world.fal.ready_after = 600
    job = await world.service.create(request(), Origin.terminal())
    front = RecordingFrontEnd()
    world.service.start(job, front)
    async with asyncio.timeout(5):
        await front.queued.wait()
    await world.service.close()
    if not fal_still_cancels:
        for fal_job in world.fal.jobs.values():
            fal_job.completed = True  # fal answers ALREADY_COMPLETED
    stopped = await world.service.settle_stopped(job.id, reason="stopped")
    assert stopped is not None
    assert world.fal.count("cancel") == 1
    states = await reservation_states(world.storage, 0)
    if fal_still_cancels:
        assert stopped.state is JobState.CANCELLED
        assert states == [ReservationState.REFUNDED]
    else:
        assert stopped.state is JobState.QUEUED
        assert states == [ReservationState.HELD]
