"""1min.ai provider against its loopback fake: the blocking call, handles, restarts, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from bot.models import GenerationRequest, Mode, PikaModel, Resolution
from bot.providers.base import ProviderHandle, ProviderStatus, StatusKind
from bot.providers.errors import (
    AuthenticationError,
    GenerationFailed,
    NotFound,
    OutOfProviderCredits,
    RateLimited,
    RejectedInput,
    TransientError,
)
from bot.providers.http import RetryPolicy
from bot.providers.onemin import DEFAULT_REQUEST_TIMEOUT, USD_PER_CREDIT, OneMinProvider
from tests.fakes.onemin import FakeOneMin

KEY = "onemin-secret-key-789"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)
REQUEST = GenerationRequest(
    prompt="gentle waves moving on a peaceful beach at sunset",
    negative_prompt="blurry, low quality, people",
    aspect="1:1",
    duration=10,
    resolution="1080p",
    seed=12345,
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def fake() -> AsyncIterator[FakeOneMin]:
    async with FakeOneMin(key=KEY, block_seconds=0.3) as server:
        yield server


def make(
    session: aiohttp.ClientSession,
    fake: FakeOneMin,
    *,
    key: str = KEY,
    accept_window: float = 0.05,
    request_timeout: float = 30,
) -> OneMinProvider:
    return OneMinProvider(
        session,
        api_key=key,
        base_url=fake.url + "/",
        retry=FAST,
        request_timeout=request_timeout,
        accept_window=accept_window,
        asset_base_url=fake.asset_base_url,
    )


async def held(fake: FakeOneMin) -> int:
    """How many calls the fake holds, once the first has arrived (bounded wait)."""
    async with asyncio.timeout(5):
        await fake.call_held.wait()
    return fake.holding


async def collect(provider: OneMinProvider, handle: ProviderHandle) -> list[ProviderStatus]:
    seen: list[ProviderStatus] = []
    async with asyncio.timeout(10):
        async for status in provider.watch(handle):
            seen.append(status)
    return seen


@pytest.mark.parametrize(
    ("model", "task_type"),
    [
        (PikaModel.V2_2, "pika-v2.2"),
        (PikaModel.V2_1, "pika-v2.1"),
        (PikaModel.V2_TURBO, "pika-v2-turbo"),
    ],
)
async def test_onemin_submit_sends_api_key_and_options(session, fake, model, task_type):
    """The call carries ``API-KEY`` and the documented body with every option."""
    fake.block_seconds = 0
    async with asyncio.timeout(10):
        await make(session, fake, accept_window=5).submit(
            REQUEST.model_copy(update={"model": model})
        )
    (sent,) = fake.recorded("submit")
    assert sent.path == "/api/features"
    assert sent.headers["API-KEY"] == KEY
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "type": "TEXT_TO_VIDEO",
        "model": "pika",
        "conversationId": "TEXT_TO_VIDEO",
        "promptObject": {
            "task_type": task_type,
            "prompt": "gentle waves moving on a peaceful beach at sunset",
            "negative_prompt": "blurry, low quality, people",
            "aspect_ratio": "1:1",
            "resolution": "1080p",
            "duration": 10,
            "seed": 12345,
        },
    }


async def test_onemin_slow_call_gives_pending_handle_then_running_then_completed(session, fake):
    """While the call blocks, submit returns a pending handle and watch shows RUNNING first."""
    fake.block_seconds = 5  # ended by release() below
    provider = make(session, fake)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    assert handle.data["result"] == "pending"
    assert await held(fake) == 1
    assert (await provider.status(handle)).kind is StatusKind.RUNNING
    fake.release()
    seen = await collect(provider, handle)
    assert [s.kind for s in seen] == [StatusKind.RUNNING, StatusKind.COMPLETED]
    assert seen[-1].result is not None
    async with session.get(seen[-1].result.video_url) as response:
        assert await response.read() == fake.video
    assert fake.count("submit") == 1


async def test_onemin_fast_call_puts_result_in_handle(session, fake):
    """A call that ends within the accept window yields a handle that already holds the video."""
    fake.block_seconds = 0
    provider = make(session, fake, accept_window=5)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    assert handle.data["result"] == "known"
    assert handle.data["video_url"].startswith(fake.url + "/files/development/videos/")
    seen = await collect(provider, handle)
    assert [s.kind for s in seen] == [StatusKind.COMPLETED]
    assert seen[0].result is not None
    assert seen[0].result.video_url == handle.data["video_url"]


async def test_onemin_known_handle_survives_restart(session, fake):
    """After a restart, a handle with a known result completes with no request at all."""
    fake.block_seconds = 0
    async with asyncio.timeout(10):
        handle = await make(session, fake, accept_window=5).submit(REQUEST)
    restored = ProviderHandle.from_json(handle.to_json())
    seen = await collect(make(session, fake), restored)
    assert seen[-1].result is not None
    assert seen[-1].result.video_url == handle.data["video_url"]
    assert fake.count("submit") == 1


async def test_onemin_pending_handle_after_restart_fails_without_resend(session, fake):
    """A pending handle in a fresh process raises GenerationFailed and is never re-sent."""
    async with asyncio.timeout(10):
        handle = await make(session, fake).submit(REQUEST)
    restarted = make(session, fake)
    restored = ProviderHandle.from_json(handle.to_json())
    with pytest.raises(GenerationFailed) as caught:
        await collect(restarted, restored)
    assert "restarted" in caught.value.user_message
    with pytest.raises(GenerationFailed):
        await restarted.status(restored)
    assert fake.count("submit") == 1


async def test_onemin_result_object_is_joined_to_asset_base(session, fake):
    """Without temporaryUrl the resultObject key is joined to the asset base URL."""
    fake.include_temporary_url = False
    fake.block_seconds = 0
    provider = make(session, fake, accept_window=5)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    url = handle.data["video_url"]
    assert url.startswith(fake.asset_base_url + "development/videos/")
    async with session.get(url) as response:
        assert await response.read() == fake.video


async def test_onemin_non_success_status_raises_generation_failed_from_watch(session, fake):
    """A finished call whose aiRecord status is not SUCCESS fails the watch."""
    fake.fail_jobs("out of GPUs")
    provider = make(session, fake)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    with pytest.raises(GenerationFailed) as caught:
        await collect(provider, handle)
    assert "FAILED" in str(caught.value)
    assert "GPUs" not in caught.value.user_message


async def test_onemin_non_success_within_window_raises_from_submit(session, fake):
    """A failure known within the accept window is raised by submit itself."""
    fake.fail_jobs()
    fake.block_seconds = 0
    with pytest.raises(GenerationFailed):
        async with asyncio.timeout(10):
            await make(session, fake, accept_window=5).submit(REQUEST)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, None, RejectedInput),
        (422, None, RejectedInput),
        (400, {"statusCode": 400, "message": "Insufficient credits"}, OutOfProviderCredits),
        (401, None, AuthenticationError),
        (402, None, OutOfProviderCredits),
        (403, None, AuthenticationError),
        (404, None, NotFound),
        (500, None, TransientError),
        (504, None, TransientError),
    ],
)
async def test_onemin_error_maps_to_class_without_resend(session, fake, status, body, error):
    """Each error answer becomes its class, is raised by submit and is not re-sent."""
    fake.script_error("submit", status, body=body, times=3)
    with pytest.raises(error) as caught:
        async with asyncio.timeout(10):
            await make(session, fake, accept_window=5).submit(REQUEST)
    assert fake.count("submit") == 1
    assert KEY not in str(caught.value)


async def test_onemin_wrong_key_raises_authentication_error(session, fake):
    """The fake's own key check answers 401, read as AuthenticationError."""
    with pytest.raises(AuthenticationError):
        async with asyncio.timeout(10):
            await make(session, fake, key="wrong", accept_window=5).submit(REQUEST)


async def test_onemin_429_waits_retry_after_then_succeeds(session, fake):
    """A 429 is re-sent after its Retry-After (refused before any work)."""
    fake.script_error("submit", 429, retry_after=0.3)
    fake.block_seconds = 0
    async with asyncio.timeout(10):
        handle = await make(session, fake, accept_window=5).submit(REQUEST)
    assert handle.data["result"] == "known"
    first, second = fake.recorded("submit")
    assert second.time - first.time >= 0.29


async def test_onemin_429_exhausted_raises_rate_limited(session, fake):
    """Persistent 429s raise RateLimited."""
    fake.script_error("submit", 429, retry_after=0.01, times=5)
    with pytest.raises(RateLimited):
        async with asyncio.timeout(10):
            await make(session, fake, accept_window=5).submit(REQUEST)
    assert fake.count("submit") == FAST.attempts


async def test_onemin_503_is_retried(session, fake):
    """A 503 is refused at the door and re-sent."""
    fake.script_error("submit", 503)
    fake.block_seconds = 0
    async with asyncio.timeout(10):
        await make(session, fake, accept_window=5).submit(REQUEST)
    assert fake.count("submit") == 2


async def test_onemin_request_timeout_raises_transient_without_resend(session, fake):
    """A call held past ``request_timeout`` fails as TransientError and is not re-sent."""
    fake.block_seconds = 5
    provider = make(session, fake, request_timeout=0.3)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    with pytest.raises(TransientError):
        await collect(provider, handle)
    assert fake.count("submit") == 1


async def test_onemin_cancelled_watcher_leaves_call_running(session, fake):
    """Cancelling a watcher does not abort the call; a second watch gets the result."""
    fake.block_seconds = 5
    provider = make(session, fake)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)

    async def first_watch() -> None:
        async for _ in provider.watch(handle):
            pass

    task = asyncio.create_task(first_watch())
    assert await held(fake) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.holding == 1
    fake.release()
    seen = await collect(provider, handle)
    assert seen[-1].kind is StatusKind.COMPLETED
    assert fake.count("submit") == 1


async def test_onemin_defaults_match_design():
    """Long default timeout, nothing polled, text-to-video only, all three task types."""
    async with aiohttp.ClientSession() as client:
        provider = OneMinProvider(client, api_key=KEY, base_url="https://api.1min.ai/")
    assert provider.request_timeout == DEFAULT_REQUEST_TIMEOUT == 900
    assert provider.poll_interval == 0
    assert provider.name == "onemin"
    caps = provider.capabilities
    assert caps.models == set(PikaModel)
    assert caps.modes == {Mode.TEXT}
    assert not caps.can_cancel
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("model", "resolution", "duration", "credits"),
    [
        (PikaModel.V2_TURBO, Resolution.HD, 5, 600_000),
        (PikaModel.V2_TURBO, Resolution.FULL_HD, 10, 600_000),
        (PikaModel.V2_1, Resolution.HD, 10, 1_200_000),
        (PikaModel.V2_2, Resolution.HD, 5, 600_000),
        (PikaModel.V2_2, Resolution.FULL_HD, 5, 1_350_000),
        (PikaModel.V2_2, Resolution.HD, 10, 1_200_000),
        (PikaModel.V2_2, Resolution.FULL_HD, 10, 2_700_000),
    ],
)
def test_onemin_prices_convert_document_credits(model, resolution, duration, credits):
    """Prices are the document's credits per video times the assumed USD per credit."""
    request = REQUEST.model_copy(
        update={"model": model, "resolution": resolution, "duration": duration}
    )
    assert OneMinProvider.prices.usd_for(request) == credits * USD_PER_CREDIT
    assert Decimal("0.000001") == USD_PER_CREDIT


async def test_onemin_image_request_is_refused_before_sending(session, fake):
    """1min.ai's Pika feature is text-to-video only: nothing is sent for an image request."""
    request = REQUEST.model_copy(
        update={"mode": Mode.IMAGE, "image_urls": ("https://example.com/a.png",)}
    )
    with pytest.raises(RejectedInput):
        await make(session, fake).submit(request)
    assert fake.count("submit") == 0


async def test_onemin_cancel_is_unsupported(session, fake):
    """There is no cancel: cancel answers False and the call goes on."""
    provider = make(session, fake)
    async with asyncio.timeout(10):
        handle = await provider.submit(REQUEST)
    assert await provider.cancel(handle) is False
    seen = await collect(provider, handle)
    assert seen[-1].kind is StatusKind.COMPLETED
