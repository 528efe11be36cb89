"""Pixazo provider against its loopback fake: products, polling URL, statuses, errors."""

from __future__ import annotations

import asyncio
import itertools
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
from bot.providers.pixazo import DEFAULT_POLL_INTERVAL, PixazoProvider
from tests.fakes.pixazo import FakePixazo

KEY = "pixazo-secret-key-456"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)
POLL = 0.05
REQUEST = GenerationRequest(
    prompt="A large elegant white poodle on the deck of a yacht",
    negative_prompt="ugly, bad",
    aspect="4:5",
    duration=10,
    resolution="1080p",
    seed=42,
)
IMAGE = REQUEST.model_copy(
    update={"mode": Mode.IMAGE, "image_urls": ("https://example.com/horse.png",)}
)
SCENES = REQUEST.model_copy(
    update={
        "mode": Mode.SCENES,
        "image_urls": ("https://example.com/a.png", "https://example.com/b.png"),
        "ingredients_mode": "creative",
    }
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def fake() -> AsyncIterator[FakePixazo]:
    async with FakePixazo(key=KEY) as server:
        yield server


def make(
    session: aiohttp.ClientSession, fake: FakePixazo, *, poll: float = POLL, key: str = KEY
) -> PixazoProvider:
    return PixazoProvider(session, api_key=key, base_url=fake.url, poll_interval=poll, retry=FAST)


async def collect(provider: PixazoProvider, handle: ProviderHandle) -> list[ProviderStatus]:
    seen: list[ProviderStatus] = []
    async with asyncio.timeout(10):
        async for status in provider.watch(handle):
            seen.append(status)
    return seen


async def run_job(
    provider: PixazoProvider, request: GenerationRequest = REQUEST
) -> list[ProviderStatus]:
    async with asyncio.timeout(10):
        handle = await provider.submit(request)
    return await collect(provider, handle)


async def test_pixazo_submit_sends_subscription_key_and_options(session, fake):
    """Text-to-video goes to its product path with the key, no-cache and every option."""
    await make(session, fake).submit(REQUEST)
    (sent,) = fake.recorded("submit")
    assert sent.path == "/pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request"
    assert sent.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert sent.headers["Cache-Control"] == "no-cache"
    assert sent.json == {
        "prompt": "A large elegant white poodle on the deck of a yacht",
        "negative_prompt": "ugly, bad",
        "seed": 42,
        "aspect_ratio": "4:5",
        "resolution": "1080p",
        "duration": 10,
    }


async def test_pixazo_image_mode_uses_image_product(session, fake):
    """Image-to-video uses its own path, ``image_url`` and no aspect ratio."""
    seen = await run_job(make(session, fake), IMAGE)
    (sent,) = fake.recorded("submit")
    assert sent.path == "/pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request"
    assert sent.json["image_url"] == "https://example.com/horse.png"
    assert "aspect_ratio" not in sent.json
    assert seen[-1].kind is StatusKind.COMPLETED


async def test_pixazo_scenes_mode_uses_scenes_product(session, fake):
    """Scenes sends all image URLs and the ingredients mode to the Scenes product."""
    seen = await run_job(make(session, fake), SCENES)
    (sent,) = fake.recorded("submit")
    assert sent.path == "/pika-scenes-2-2/v1/pika-scenes-2-2-request"
    assert sent.json["image_urls"] == ["https://example.com/a.png", "https://example.com/b.png"]
    assert sent.json["ingredients_mode"] == "creative"
    assert seen[-1].kind is StatusKind.COMPLETED


async def test_pixazo_watch_polls_returned_url_until_completed(session, fake):
    """Statuses go QUEUED → PROCESSING → COMPLETED via POSTs to the returned polling URL."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    assert handle.data["polling_url"] == fake.polling_url(handle.request_id)
    seen = await collect(provider, handle)
    assert [s.kind for s in seen] == [StatusKind.QUEUED, StatusKind.RUNNING, StatusKind.COMPLETED]
    polls = fake.recorded("status")
    assert len(polls) == 3
    for poll in polls:
        assert poll.method == "POST"
        assert poll.path == f"/v2/requests/status/{handle.request_id}"
        assert poll.json == {"request_id": handle.request_id}
        assert poll.headers["Ocp-Apim-Subscription-Key"] == KEY
    result = seen[-1].result
    assert result is not None
    assert result.content_type == "video/mp4"
    async with session.get(result.video_url) as response:
        assert await response.read() == fake.video


async def test_pixazo_foreign_polling_url_is_not_followed(session, fake):
    """A polling URL on another host is replaced by our own origin, so the key stays home."""
    fake.polling_url_base = "http://203.0.113.7:9"
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    assert handle.data["polling_url"].startswith(fake.url + "/v2/requests/status/")
    seen = await collect(provider, handle)
    assert seen[-1].kind is StatusKind.COMPLETED


async def test_pixazo_missing_polling_url_falls_back_to_documented_path(session, fake):
    """Without a polling URL the documented /v2/requests/status/{id} is used."""
    fake.include_polling_url = False
    seen = await run_job(make(session, fake))
    assert seen[-1].kind is StatusKind.COMPLETED


@pytest.mark.parametrize("status", ["FAILED", "ERROR"])
async def test_pixazo_failed_request_raises_generation_failed(session, fake, status):
    """FAILED and ERROR both raise GenerationFailed; the provider's text stays in the log."""
    fake.fail_jobs("model crashed on frame 12", status=status)
    with pytest.raises(GenerationFailed) as caught:
        await run_job(make(session, fake))
    assert "model crashed" in str(caught.value)
    assert "model crashed" not in caught.value.user_message


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, None, RejectedInput),
        (401, None, AuthenticationError),
        (402, None, OutOfProviderCredits),
        (403, None, AuthenticationError),
        (403, {"error": "Out of call volume quota"}, OutOfProviderCredits),
        (404, None, NotFound),
        (500, None, TransientError),
    ],
)
async def test_pixazo_submit_error_maps_to_class_without_resend(session, fake, status, body, error):
    """Each documented submit error becomes its class and is not sent twice."""
    fake.script_error("submit", status, body=body, times=3)
    with pytest.raises(error) as caught:
        await make(session, fake).submit(REQUEST)
    assert fake.count("submit") == 1
    assert KEY not in str(caught.value)


async def test_pixazo_validation_error_from_fake_is_rejected_input(session, fake):
    """The fake's own 400 ``{"error": ...}`` for a bad body is read as RejectedInput."""
    provider = make(session, fake)
    with pytest.raises(RejectedInput) as caught:
        await provider._post(
            fake.url + "/pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request",
            {"seed": 1},
            where="pixazo.submit",
            submitting=True,
        )
    assert "Missing required field: prompt" in str(caught.value)


async def test_pixazo_wrong_key_raises_authentication_error(session, fake):
    """The fake's own key check answers 401, read as AuthenticationError."""
    with pytest.raises(AuthenticationError):
        await make(session, fake, key="wrong").submit(REQUEST)


async def test_pixazo_submit_429_waits_retry_after_then_succeeds(session, fake):
    """A 429 is retried after its Retry-After, measured between the fake's arrivals."""
    fake.script_error("submit", 429, retry_after=0.3)
    await make(session, fake).submit(REQUEST)
    first, second = fake.recorded("submit")
    assert second.time - first.time >= 0.29


async def test_pixazo_submit_429_exhausted_raises_rate_limited(session, fake):
    """Persistent 429s raise RateLimited."""
    fake.script_error("submit", 429, retry_after=0.01, times=5)
    with pytest.raises(RateLimited):
        await make(session, fake).submit(REQUEST)
    assert fake.count("submit") == FAST.attempts


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, NotFound), (401, AuthenticationError), (402, OutOfProviderCredits), (404, NotFound)],
)
async def test_pixazo_status_error_maps_to_class(session, fake, status, error):
    """Status errors: 400 (invalid request_id) and 404 are NotFound; 401 and 402 as submit."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    fake.script_error("status", status)
    with pytest.raises(error):
        await provider.status(handle)


async def test_pixazo_status_unknown_request_raises_not_found(session, fake):
    """The fake's 404 for an unknown request_id is NotFound."""
    with pytest.raises(NotFound):
        await make(session, fake).status(ProviderHandle("pika-2-2-text-to-video_nope"))


async def test_pixazo_status_500_is_retried(session, fake):
    """A 500 on a status poll is retried (polls are idempotent)."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    fake.script_error("status", 500)
    observed = await provider.status(handle)
    assert observed.kind is StatusKind.QUEUED
    assert fake.count("status") == 2


async def test_pixazo_polls_respect_interval(session, fake):
    """Polls arrive at least ``poll_interval`` apart (from the fake's arrival times)."""
    fake.polls_before_done = 3
    await run_job(make(session, fake, poll=0.15))
    times = [r.time for r in fake.recorded("status")]
    assert len(times) == 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.149


async def test_pixazo_defaults_match_document():
    """Default poll interval is within the documented 2-3 s; only Pika 2.2 is offered."""
    async with aiohttp.ClientSession() as client:
        provider = PixazoProvider(client, api_key=KEY, base_url="https://gateway.pixazo.ai/")
    assert provider.poll_interval == DEFAULT_POLL_INTERVAL
    assert 2.0 <= provider.poll_interval <= 3.0
    assert provider.name == "pixazo"
    caps = provider.capabilities
    assert caps.models == {PikaModel.V2_2}
    assert caps.modes == {Mode.TEXT, Mode.IMAGE, Mode.SCENES}
    assert caps.unsupported(REQUEST.model_copy(update={"model": PikaModel.V2_1})) is not None
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("resolution", "duration", "usd"),
    [
        (Resolution.HD, 5, "0.20"),
        (Resolution.HD, 10, "0.40"),
        (Resolution.FULL_HD, 5, "0.45"),
        (Resolution.FULL_HD, 10, "0.90"),
    ],
)
@pytest.mark.parametrize("base", [REQUEST, IMAGE, SCENES])
def test_pixazo_prices_match_document(base, resolution, duration, usd):
    """All three products cost the document's $0.20/$0.40/$0.45/$0.90."""
    request = base.model_copy(update={"resolution": resolution, "duration": duration})
    assert PixazoProvider.prices.usd_for(request) == Decimal(usd)


@pytest.mark.parametrize(
    "request_",
    [
        REQUEST.model_copy(update={"model": PikaModel.V2_TURBO}),
        IMAGE.model_copy(update={"image_urls": ()}),
        SCENES.model_copy(update={"image_urls": ()}),
    ],
)
async def test_pixazo_unsupported_request_is_refused_before_sending(session, fake, request_):
    """Wrong model, an image request without its image or empty Scenes: nothing is sent."""
    with pytest.raises(RejectedInput):
        await make(session, fake).submit(request_)
    assert fake.count("submit") == 0


async def test_pixazo_cancel_is_unsupported(session, fake):
    """There is no cancel endpoint: cancel answers False and sends nothing."""
    provider = make(session, fake)
    handle = await provider.submit(REQUEST)
    assert await provider.cancel(handle) is False
    assert [r.kind for r in fake.requests] == ["submit"]
