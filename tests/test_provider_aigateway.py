"""AIgateway provider against its loopback fake: headers, bodies, statuses, errors, polling."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from bot.models import GenerationRequest, Mode, PikaModel, Resolution
from bot.providers.aigateway import MIN_POLL_INTERVAL, AIGatewayProvider
from bot.providers.base import ProviderHandle, ProviderStatus, StatusKind
from bot.providers.errors import (
    AuthenticationError,
    ContentPolicy,
    GenerationFailed,
    NotFound,
    OutOfProviderCredits,
    ProviderError,
    RateLimited,
    RejectedInput,
    TransientError,
)
from bot.providers.http import RetryPolicy
from tests.fakes.aigateway import FakeAIGateway

KEY = "aig-secret-key-123"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)
POLL = 0.05
REQUEST = GenerationRequest(
    prompt="a slow drone shot over a mountain lake",
    negative_prompt="blurry",
    aspect="9:16",
    duration=10,
    resolution="1080p",
    seed=4242,
    model=PikaModel.V2_1,
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def fake() -> AsyncIterator[FakeAIGateway]:
    async with FakeAIGateway(key=KEY, min_poll_interval=POLL) as server:
        yield server


def make(
    session: aiohttp.ClientSession, fake: FakeAIGateway, *, poll: float = POLL, key: str = KEY
) -> AIGatewayProvider:
    return AIGatewayProvider(
        session, api_key=key, base_url=fake.url + "/", poll_interval=poll, retry=FAST
    )


async def collect(provider: AIGatewayProvider, handle: ProviderHandle) -> list[ProviderStatus]:
    seen: list[ProviderStatus] = []
    async with asyncio.timeout(10):
        async for status in provider.watch(handle):
            seen.append(status)
    return seen


async def run_job(provider: AIGatewayProvider, request: GenerationRequest = REQUEST) -> Any:
    async with asyncio.timeout(10):
        handle = await provider.submit(request)
    return await collect(provider, handle)


async def test_aigateway_submit_sends_bearer_key_and_options(session, fake):
    """The submit carries the Bearer key and every option, named as the gateway expects."""
    handle = await make(session, fake).submit(REQUEST)
    (sent,) = fake.recorded("submit")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.path == "/v1/videos/generations"
    assert sent.json == {
        "model": "pika/pika-v2.1-text-to-video",
        "prompt": "a slow drone shot over a mountain lake",
        "negative_prompt": "blurry",
        "aspect_ratio": "9:16",
        "duration": 10,
        "resolution": "1080p",
        "seed": 4242,
    }
    assert handle.request_id in fake.jobs


async def test_aigateway_submit_image_mode_sends_image_url_without_aspect(session, fake):
    """Image-to-video uses the assumed image slug, the image URL and no aspect ratio."""
    request = REQUEST.model_copy(
        update={
            "mode": Mode.IMAGE,
            "model": PikaModel.V2_2,
            "image_urls": ("https://example.com/a.png",),
        }
    )
    await make(session, fake).submit(request)
    (sent,) = fake.recorded("submit")
    assert sent.json["model"] == "pika/pika-v2.2-image-to-video"
    assert sent.json["image_url"] == "https://example.com/a.png"
    assert "aspect_ratio" not in sent.json


async def test_aigateway_watch_yields_queued_running_completed(session, fake):
    """A job is seen queued, then running, then completed with the fake's video URL."""
    seen = await run_job(make(session, fake))
    assert [s.kind for s in seen] == [StatusKind.QUEUED, StatusKind.RUNNING, StatusKind.COMPLETED]
    assert seen[-1].result is not None
    assert seen[-1].result.video_url.startswith(fake.url + "/files/")
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in fake.recorded("status"))


@pytest.mark.parametrize("word", ["running", "processing"])
async def test_aigateway_watch_running_word_is_running(session, fake, word):
    """Both ``running`` and ``processing`` read as RUNNING."""
    fake.running_status = word
    seen = await run_job(make(session, fake))
    assert StatusKind.RUNNING in [s.kind for s in seen]


@pytest.mark.parametrize("shape", ["url", "file_url", "result_url"])
async def test_aigateway_result_url_any_documented_place_downloads(session, fake, shape):
    """The video URL is found under result.url, result.file_url or result_url."""
    fake.result_shape = shape
    seen = await run_job(make(session, fake))
    result = seen[-1].result
    assert result is not None
    async with session.get(result.video_url) as response:
        assert await response.read() == fake.video


@pytest.mark.parametrize(
    "error", ["upstream exploded", {"code": "upstream_error", "message": "upstream exploded"}]
)
async def test_aigateway_failed_job_raises_generation_failed(session, fake, error):
    """A failed job (error as string or object) raises GenerationFailed with a safe message."""
    fake.fail_jobs(error)
    with pytest.raises(GenerationFailed) as caught:
        await run_job(make(session, fake))
    assert "upstream exploded" in str(caught.value)
    assert "upstream exploded" not in caught.value.user_message


async def test_aigateway_cancelled_job_raises_generation_failed(session, fake):
    """A job cancelled at the gateway ends as GenerationFailed."""
    fake.fail_jobs(None, status="cancelled")
    with pytest.raises(GenerationFailed) as caught:
        await run_job(make(session, fake))
    assert "cancelled" in caught.value.user_message


async def test_aigateway_policy_error_code_raises_content_policy(session, fake):
    """A job error whose code names the content policy raises ContentPolicy."""
    fake.fail_jobs({"code": "content_policy_violation", "message": "nope"})
    with pytest.raises(ContentPolicy):
        await run_job(make(session, fake))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, RejectedInput),
        (401, AuthenticationError),
        (402, OutOfProviderCredits),
        (404, NotFound),
        (500, TransientError),
    ],
)
async def test_aigateway_submit_error_maps_to_class_without_resend(session, fake, status, error):
    """Each documented submit error becomes its class; none of these is sent twice."""
    fake.script_error("submit", status, times=3)
    with pytest.raises(error) as caught:
        await make(session, fake).submit(REQUEST)
    assert fake.count("submit") == 1
    assert KEY not in str(caught.value)
    assert KEY not in caught.value.user_message


async def test_aigateway_submit_wrong_key_raises_authentication_error(session, fake):
    """The fake's own key check answers 401, read as AuthenticationError."""
    with pytest.raises(AuthenticationError):
        await make(session, fake, key="wrong").submit(REQUEST)


async def test_aigateway_submit_unknown_model_says_not_available(session, fake):
    """A slug the gateway does not carry (404) tells the member the model is unavailable."""
    fake.models = frozenset({"pika/pika-v2.1-text-to-video"})
    request = REQUEST.model_copy(update={"model": PikaModel.V2_2})
    with pytest.raises(NotFound) as caught:
        await make(session, fake).submit(request)
    assert "not available" in caught.value.user_message


async def test_aigateway_submit_429_waits_retry_after_then_succeeds(session, fake):
    """A 429 is retried after its Retry-After, measured between the fake's arrivals."""
    fake.script_error("submit", 429, retry_after=0.3)
    await make(session, fake).submit(REQUEST)
    first, second = fake.recorded("submit")
    assert second.time - first.time >= 0.29


async def test_aigateway_submit_429_exhausted_raises_rate_limited(session, fake):
    """Persistent 429s raise RateLimited carrying the Retry-After seconds."""
    fake.script_error("submit", 429, retry_after=0.01, times=5)
    with pytest.raises(RateLimited) as caught:
        await make(session, fake).submit(REQUEST)
    assert caught.value.retry_after == pytest.approx(0.01)
    assert fake.count("submit") == FAST.attempts


async def test_aigateway_submit_503_is_retried(session, fake):
    """A 503 (saturated, refused at the door) is re-sent and then accepted."""
    fake.script_error("submit", 503)
    handle = await make(session, fake).submit(REQUEST)
    assert fake.count("submit") == 2
    assert handle.request_id in fake.jobs


@pytest.mark.parametrize("status", [500, 503])
async def test_aigateway_status_server_error_is_retried(session, fake, status):
    """A 500 or 503 on a poll is retried (polls are idempotent)."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    fake.script_error("status", status)
    observed = await provider.status(handle)
    assert observed.kind is StatusKind.QUEUED
    assert fake.count("status") == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (402, OutOfProviderCredits), (404, NotFound)],
)
async def test_aigateway_status_error_maps_to_class(session, fake, status, error):
    """Poll errors map like submit errors."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    fake.script_error("status", status)
    with pytest.raises(error):
        await provider.status(handle)


async def test_aigateway_status_unknown_job_raises_not_found(session, fake):
    """An id the gateway does not know raises NotFound."""
    with pytest.raises(NotFound):
        await make(session, fake).status(ProviderHandle("job_missing"))


async def test_aigateway_polls_respect_interval(session, fake):
    """Polls of one job arrive at least ``poll_interval`` apart and never draw a 304."""
    fake.min_poll_interval = 0.2
    fake.polls_before_done = 3
    await run_job(make(session, fake, poll=0.2))
    times = [r.time for r in fake.recorded("status")]
    assert len(times) == 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.199
    assert fake.not_modified == 0


async def test_aigateway_304_reads_as_unchanged(session, fake):
    """Polling faster than the gateway allows draws 304s that change nothing."""
    fake.min_poll_interval = 0.15
    seen = await run_job(make(session, fake, poll=0.02))
    assert fake.not_modified > 0
    assert [s.kind for s in seen] == [StatusKind.QUEUED, StatusKind.RUNNING, StatusKind.COMPLETED]


async def test_aigateway_defaults_match_document():
    """Default poll interval is the documented 3 s; capabilities claim 2.1/2.2 text and image."""
    async with aiohttp.ClientSession() as client:
        provider = AIGatewayProvider(client, api_key=KEY, base_url="https://api.aigateway.sh/")
    assert provider.poll_interval == MIN_POLL_INTERVAL == 3.0
    assert provider.name == "aigateway"
    caps = provider.capabilities
    assert caps.models == {PikaModel.V2_1, PikaModel.V2_2}
    assert caps.modes == {Mode.TEXT, Mode.IMAGE}
    assert not caps.can_cancel
    turbo = REQUEST.model_copy(update={"model": PikaModel.V2_TURBO})
    assert caps.unsupported(turbo) is not None
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("model", "resolution", "duration", "usd"),
    [
        (PikaModel.V2_1, Resolution.HD, 5, "2.00"),
        (PikaModel.V2_1, Resolution.FULL_HD, 10, "4.00"),
        (PikaModel.V2_2, Resolution.HD, 5, "2.00"),
    ],
)
def test_aigateway_prices_are_forty_cents_per_second(model, resolution, duration, usd):
    """$0.40 per video second (documented for 2.1, assumed for 2.2)."""
    request = REQUEST.model_copy(
        update={"model": model, "resolution": resolution, "duration": duration}
    )
    assert AIGatewayProvider.prices.usd_for(request) == Decimal(usd)


async def test_aigateway_unsupported_request_is_refused_before_sending(session, fake):
    """A request the gateway cannot make is refused locally, with nothing sent."""
    request = REQUEST.model_copy(update={"model": PikaModel.V2_TURBO})
    with pytest.raises(RejectedInput) as caught:
        await make(session, fake).submit(request)
    assert "Pika 2 Turbo" in caught.value.user_message
    assert fake.count("submit") == 0


async def test_aigateway_cancel_is_unsupported(session, fake):
    """There is no cancel endpoint: cancel answers False and sends nothing."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    assert await provider.cancel(handle) is False
    assert [r.kind for r in fake.requests] == ["submit"]


async def test_aigateway_errors_are_provider_errors_without_body(session, fake):
    """A 401 body that echoes the key is redacted in the log text and kept from the member."""
    fake.script_error(
        "submit", 401, body={"error": {"type": "authentication_error", "message": KEY}}
    )
    with pytest.raises(ProviderError) as caught:
        await make(session, fake).submit(REQUEST)
    assert KEY not in caught.value.user_message
    assert KEY not in str(caught.value)


async def test_aigateway_304_without_history_yields_nothing(session, fake):
    """A 304 on the first poll (e.g. after a restart) yields no guessed status."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    fake.script_error("status", 304)
    seen = await collect(provider, handle)
    assert [s.kind for s in seen] == [StatusKind.QUEUED, StatusKind.RUNNING, StatusKind.COMPLETED]
    assert fake.count("status") == 4
