"""FalProvider over a real socket against FakeFal, with a real aiohttp session."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog

from bot.config import LogFormat
from bot.logs import configure_logging
from bot.models import AspectRatio, GenerationRequest, Mode, PikaModel, Resolution
from bot.pricing import quote
from bot.providers.base import ProviderHandle, ProviderStatus, StatusKind
from bot.providers.errors import (
    AuthenticationError,
    ContentPolicy,
    GenerationFailed,
    NotFound,
    OutOfProviderCredits,
    RejectedInput,
    TransientError,
)
from bot.providers.fal import FAL_PRICES, FalProvider
from bot.providers.http import NotDelivered, RetryPolicy
from tests.fakes.fal import FakeFal, Reply

KEY = "fal-secret-key-123"
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, total_seconds=5.0)
TIMEOUT = 10.0


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    async with FakeFal(key=KEY) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_provider(
    session: aiohttp.ClientSession, fal: FakeFal, *, key: str = KEY, poll: float = 0.01
) -> FalProvider:
    return FalProvider(session, api_key=key, base_url=fal.url, poll_interval=poll, retry=FAST)


def text_request(**overrides: object) -> GenerationRequest:
    values: dict[str, object] = {"prompt": "a cat surfing a wave", "seed": 42}
    values.update(overrides)
    return GenerationRequest.model_validate(values)


async def collect(provider: FalProvider, handle: ProviderHandle) -> list[ProviderStatus]:
    seen: list[ProviderStatus] = []
    async with asyncio.timeout(TIMEOUT):
        async for status in provider.watch(handle):
            seen.append(status)
            assert len(seen) < 50, "watch did not end"
    return seen


# -- submit ------------------------------------------------------------------------------------


async def test_submit_sends_key_header(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """The submit carries ``Authorization: Key <key>`` and JSON."""
    await make_provider(session, fal).submit(text_request())
    (submit,) = fal.recorded("submit")
    assert submit.headers["Authorization"] == f"Key {KEY}"
    assert submit.method == "POST"


async def test_submit_strips_trailing_slash(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """A base URL ending in "/" does not produce a double slash."""
    provider = FalProvider(session, api_key=KEY, base_url=fal.url + "/", retry=FAST)
    await provider.submit(text_request())
    assert fal.recorded("submit")[0].path == "/fal-ai/pika/v2.2/text-to-video"


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [
        (PikaModel.V2_2, "fal-ai/pika/v2.2/text-to-video"),
        (PikaModel.V2_1, "fal-ai/pika/v2.1/text-to-video"),
        (PikaModel.V2_TURBO, "fal-ai/pika/v2/turbo/text-to-video"),
    ],
)
async def test_submit_text_body_exact(
    fal: FakeFal, session: aiohttp.ClientSession, model: PikaModel, endpoint: str
) -> None:
    """Text mode posts exactly the schema's fields to the model's endpoint."""
    request = text_request(
        model=model,
        aspect=AspectRatio.TALL,
        duration=10,
        resolution=Resolution.FULL_HD,
        negative_prompt="blurry",
    )
    handle = await make_provider(session, fal).submit(request)
    (submit,) = fal.recorded("submit")
    assert submit.path == f"/{endpoint}"
    assert submit.json == {
        "prompt": "a cat surfing a wave",
        "negative_prompt": "blurry",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "duration": 10,
        "seed": 42,
    }
    assert handle.data["endpoint"] == endpoint


async def test_submit_omits_negative_prompt_when_none(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """No negative prompt means no negative_prompt field (fal's default applies)."""
    await make_provider(session, fal).submit(text_request())
    assert "negative_prompt" not in fal.recorded("submit")[0].json


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [
        (PikaModel.V2_2, "fal-ai/pika/v2.2/image-to-video"),
        (PikaModel.V2_1, "fal-ai/pika/v2.1/image-to-video"),
        (PikaModel.V2_TURBO, "fal-ai/pika/v2/turbo/image-to-video"),
    ],
)
async def test_submit_image_body_exact(
    fal: FakeFal, session: aiohttp.ClientSession, model: PikaModel, endpoint: str
) -> None:
    """Image mode sends image_url and no aspect_ratio."""
    request = text_request(
        model=model, mode=Mode.IMAGE, image_urls=("https://cdn.example/a.png",), duration=5
    )
    await make_provider(session, fal).submit(request)
    (submit,) = fal.recorded("submit")
    assert submit.path == f"/{endpoint}"
    assert submit.json == {
        "prompt": "a cat surfing a wave",
        "resolution": "720p",
        "duration": 5,
        "seed": 42,
        "image_url": "https://cdn.example/a.png",
    }


async def test_submit_scenes_body_exact(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Scenes send images as [{image_url}] plus ingredients_mode to v2.2/pikascenes."""
    request = text_request(
        mode=Mode.SCENES,
        image_urls=("https://cdn.example/a.png", "https://cdn.example/b.png"),
        ingredients_mode="precise",
        aspect=AspectRatio.SQUARE,
    )
    await make_provider(session, fal).submit(request)
    (submit,) = fal.recorded("submit")
    assert submit.path == "/fal-ai/pika/v2.2/pikascenes"
    assert submit.json == {
        "prompt": "a cat surfing a wave",
        "aspect_ratio": "1:1",
        "resolution": "720p",
        "duration": 5,
        "seed": 42,
        "images": [
            {"image_url": "https://cdn.example/a.png"},
            {"image_url": "https://cdn.example/b.png"},
        ],
        "ingredients_mode": "precise",
    }


async def test_submit_scenes_refused_before_sending_on_old_model(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """Scenes on 2.1 are refused locally; nothing reaches fal."""
    request = text_request(
        model=PikaModel.V2_1, mode=Mode.SCENES, image_urls=("https://cdn.example/a.png",)
    )
    with pytest.raises(RejectedInput) as caught:
        await make_provider(session, fal).submit(request)
    assert "2.2" in caught.value.user_message
    assert fal.requests == []


async def test_submit_handle_keeps_returned_urls(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """The handle stores fal's status/response/cancel URLs under the app path."""
    handle = await make_provider(session, fal).submit(text_request())
    base = f"{fal.url}/fal-ai/pika/requests/{handle.request_id}"
    assert handle.data["status_url"] == f"{base}/status"
    assert handle.data["response_url"] == base
    assert handle.data["cancel_url"] == f"{base}/cancel"
    assert ProviderHandle.from_json(handle.to_json()) == handle


async def test_submit_401_raises_authentication_error(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A refused key is an AuthenticationError whose messages never hold the key."""
    with pytest.raises(AuthenticationError) as caught:
        await make_provider(session, fal, key="wrong-key").submit(text_request())
    assert "wrong-key" not in str(caught.value)
    assert "wrong-key" not in caught.value.user_message
    assert "401" in str(caught.value)
    assert fal.count("submit") == 1


async def test_submit_403_exhausted_balance_is_out_of_credits(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """fal's "Exhausted balance" lock maps to OutOfProviderCredits."""
    fal.submit_replies.append(Reply(403, {"detail": "User is locked. Reason: Exhausted balance."}))
    with pytest.raises(OutOfProviderCredits):
        await make_provider(session, fal).submit(text_request())


async def test_submit_422_names_offending_fields(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 422 validation list names our field, never fal's message text."""
    detail = [
        {"loc": ["body", "prompt"], "msg": "secret internal text", "type": "string_too_long"},
        {"loc": ["body", "aspect_ratio"], "msg": "bad", "type": "enum"},
    ]
    fal.submit_replies.append(Reply(422, {"detail": detail}))
    with pytest.raises(RejectedInput) as caught:
        await make_provider(session, fal).submit(text_request())
    message = caught.value.user_message
    assert "prompt" in message
    assert "aspect ratio" in message
    assert "secret internal text" not in message
    assert fal.count("submit") == 1


async def test_submit_429_honours_retry_after_then_succeeds(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 429 is retried after its Retry-After, and the second submit succeeds."""
    fal.submit_replies.append(Reply(429, {"detail": "slow down"}, {"Retry-After": "0.2"}))
    handle = await make_provider(session, fal).submit(text_request())
    submits = fal.recorded("submit")
    assert len(submits) == 2
    assert submits[1].time - submits[0].time >= 0.19
    assert handle.request_id in fal.jobs


async def test_submit_503_is_resent(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """A 503 (refused at the door) is safe to resend."""
    fal.submit_replies.append(Reply(503, {"detail": "unavailable"}))
    handle = await make_provider(session, fal).submit(text_request())
    assert fal.count("submit") == 2
    assert handle.request_id in fal.jobs


async def test_submit_500_is_not_resent(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """A 500 may have queued the job, so the submit is not sent again."""
    fal.submit_replies.append(Reply(500, {"detail": "boom"}))
    with pytest.raises(TransientError) as caught:
        await make_provider(session, fal).submit(text_request())
    assert "boom" not in caught.value.user_message
    assert fal.count("submit") == 1


async def test_submit_connection_refused_is_not_delivered(
    session: aiohttp.ClientSession,
) -> None:
    """A closed port is NotDelivered (retried, then raised)."""
    async with FakeFal(key=KEY) as gone:
        url = gone.url
    provider = FalProvider(session, api_key=KEY, base_url=url, retry=FAST)
    with pytest.raises(NotDelivered):
        await provider.submit(text_request())


# -- status ------------------------------------------------------------------------------------


async def test_status_maps_each_state(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """IN_QUEUE, IN_PROGRESS and COMPLETED map to QUEUED (position), RUNNING (logs), COMPLETED."""
    fal.queue_positions = (3,)
    fal.progress_logs = ("Starting generation",)
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    queued = await provider.status(handle)
    running = await provider.status(handle)
    done = await provider.status(handle)
    assert queued == ProviderStatus(kind=StatusKind.QUEUED, queue_position=3)
    assert running == ProviderStatus(kind=StatusKind.RUNNING, logs=("Starting generation",))
    assert done.kind is StatusKind.COMPLETED
    assert done.result is None
    assert all(r.query.get("logs") == "1" for r in fal.recorded("status"))


async def test_status_accepts_200_while_waiting(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """Deployments answering 200 throughout are read the same as 202."""
    fal.waiting_status_code = 200
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    assert (await provider.status(handle)).kind is StatusKind.QUEUED


async def test_status_5xx_is_retried(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Status GETs are idempotent: 500 and 502 are retried until an answer comes."""
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    fal.status_replies.extend([Reply(500, {"detail": "x"}), Reply(502, None)])
    status = await provider.status(handle)
    assert status.kind is StatusKind.QUEUED
    assert fal.count("status") == 3


async def test_status_unknown_request_is_not_found(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A request id fal does not know raises NotFound without retries."""
    provider = make_provider(session, fal)
    handle = ProviderHandle(request_id="nope", data={"endpoint": "fal-ai/pika/v2.2/text-to-video"})
    with pytest.raises(NotFound):
        await provider.status(handle)
    assert fal.count("status") == 1
    assert fal.recorded("status")[0].path == "/fal-ai/pika/requests/nope/status"


# -- watch -------------------------------------------------------------------------------------


async def test_watch_stream_surfaces_queue_and_logs(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """Over the stream: queue positions, then new log lines, then COMPLETED with the video."""
    provider = make_provider(session, fal, poll=5.0)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert [(s.kind, s.queue_position, s.logs) for s in seen[:-1]] == [
        (StatusKind.QUEUED, 2, ()),
        (StatusKind.QUEUED, 1, ()),
        (StatusKind.RUNNING, None, ("Starting generation",)),
        (StatusKind.RUNNING, None, ("Rendering frames",)),
    ]
    final = seen[-1]
    assert final.kind is StatusKind.COMPLETED
    assert final.result is not None
    assert final.result.video_url == fal.video_url(handle.request_id)
    assert final.result.content_type == "video/mp4"
    assert final.result.file_size == fal.video_length
    assert fal.count("stream") == 1
    assert fal.count("status") == 0
    assert fal.count("result") == 1


async def test_watch_polls_when_stream_disabled(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 404 on the stream falls back to polling, with the same observations."""
    fal.stream_enabled = False
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert [s.kind for s in seen] == [
        StatusKind.QUEUED,
        StatusKind.QUEUED,
        StatusKind.RUNNING,
        StatusKind.RUNNING,
        StatusKind.COMPLETED,
    ]
    assert seen[-1].result is not None
    assert fal.count("stream") == 1
    assert fal.count("status") == 5


async def test_fal_logs_structlog_events_with_fields(
    fal: FakeFal, session: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    """fal's log lines are the same dotted JSON events as every other provider's."""
    configure_logging(level="INFO", fmt=LogFormat.JSON, secrets=[KEY])
    try:
        fal.stream_enabled = False
        provider = make_provider(session, fal)
        handle = await provider.submit(text_request())
        await collect(provider, handle)
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    records = [json.loads(line) for line in lines]
    ours = {r["event"]: r for r in records if r.get("logger") == "bot.providers.fal"}
    submitted = ours["provider.submitted"]
    assert (submitted["provider"], submitted["request_id"]) == ("fal", handle.request_id)
    assert submitted["endpoint"] == "fal-ai/pika/v2.2/text-to-video"
    unavailable = ours["provider.stream_unavailable"]
    assert (unavailable["provider"], unavailable["status"]) == ("fal", 404)
    assert KEY not in "".join(lines)


async def test_watch_poll_interval_respected(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Polling makes one status request per step, spaced by at least poll_interval."""
    fal.stream_enabled = False
    fal.queue_positions = (1,)
    fal.progress_logs = ("working",)
    provider = make_provider(session, fal, poll=0.05)
    handle = await provider.submit(text_request())
    await collect(provider, handle)
    polls = fal.recorded("status")
    assert len(polls) == 3  # IN_QUEUE, IN_PROGRESS, COMPLETED: nothing extra
    gaps = [b.time - a.time for a, b in itertools.pairwise(polls)]
    assert all(gap >= 0.045 for gap in gaps)


async def test_watch_falls_back_when_stream_ends_early(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A stream closed before COMPLETED hands over to polling without repeating statuses."""
    fal.stream_max_events = 2
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert [(s.kind, s.queue_position) for s in seen] == [
        (StatusKind.QUEUED, 2),
        (StatusKind.QUEUED, 1),
        (StatusKind.RUNNING, None),
        (StatusKind.RUNNING, None),
        (StatusKind.COMPLETED, None),
    ]
    assert fal.count("stream") == 1
    assert fal.count("status") == 3


async def test_watch_yields_only_changes(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Repeated identical observations (same position, no new log) are not yielded."""
    fal.stream_enabled = False
    fal.queue_positions = (4, 4, 3)
    fal.progress_logs = ("a", None, "b")
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert [(s.kind, s.queue_position, s.logs) for s in seen[:-1]] == [
        (StatusKind.QUEUED, 4, ()),
        (StatusKind.QUEUED, 3, ()),
        (StatusKind.RUNNING, None, ("a",)),
        (StatusKind.RUNNING, None, ("b",)),
    ]
    assert fal.count("status") == 7


async def test_watch_follows_returned_urls(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Status, stream and result go to the URLs fal returned, not ones built from the path."""
    fal.requests_path = "/elsewhere/fal-ai/pika/requests"
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert seen[-1].result is not None
    followed = [r for r in fal.requests if r.kind != "submit"]
    assert followed
    assert all(r.path.startswith("/elsewhere/fal-ai/pika/requests/") for r in followed)
    assert all("/v2.2/" not in r.path for r in followed)


async def test_watch_builds_app_path_urls_when_absent(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """Without URLs in the submit reply, the provider builds them under the app path."""
    fal.include_urls = False
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request(model=PikaModel.V2_1))
    assert "status_url" not in handle.data
    seen = await collect(provider, handle)
    assert seen[-1].result is not None
    paths = {r.path for r in fal.requests if r.kind != "submit"}
    assert f"/fal-ai/pika/requests/{handle.request_id}/status/stream" in paths
    assert f"/fal-ai/pika/requests/{handle.request_id}" in paths


async def test_watch_result_detail_string_is_generation_failed(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 500 with a detail string at result time is a GenerationFailed, fetched once."""
    fal.fail_result(500, "CUDA out of memory on runner xyz")
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(GenerationFailed) as caught:
        await collect(provider, handle)
    assert "CUDA" not in caught.value.user_message
    assert "CUDA" not in str(caught.value)
    assert fal.count("result") == 1


async def test_watch_result_detail_list_content_policy(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 422 detail list whose type is content_policy_violation is ContentPolicy."""
    fal.fail_result(
        422,
        [
            {
                "loc": ["body", "prompt"],
                "msg": "The content could not be processed because it contained material "
                "flagged by a content checker.",
                "type": "content_policy_violation",
            }
        ],
    )
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(ContentPolicy) as caught:
        await collect(provider, handle)
    assert "flagged" not in caught.value.user_message


async def test_watch_result_detail_list_validation_is_rejected_input(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 422 validation list at result time names the field as RejectedInput."""
    fal.fail_result(422, [{"loc": ["body", "duration"], "msg": "bad", "type": "enum"}])
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(RejectedInput) as caught:
        await collect(provider, handle)
    assert "duration" in caught.value.user_message


async def test_watch_result_header_error_type_content_policy(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """The X-Fal-Error-Type header alone is enough to classify a content refusal."""
    fal.fail_result(400, "refused", header_error_type="content_policy_violation")
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(ContentPolicy) as caught:
        await collect(provider, handle)
    assert "content_policy_violation" in str(caught.value)


async def test_watch_result_header_other_error_type_is_generation_failed(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A non-policy error type in the header is a GenerationFailed, not retried."""
    fal.fail_result(504, "timed out", header_error_type="generation_timeout")
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(GenerationFailed):
        await collect(provider, handle)
    assert fal.count("result") == 1


async def test_watch_result_502_retried_then_video(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A bare 502/503 on the result GET is a gateway hiccup: retried, then the video."""
    fal.result_replies.extend([Reply(502, None), Reply(503, {"detail": "busy"})])
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    assert seen[-1].result is not None
    assert fal.count("result") == 3


async def test_watch_result_retries_are_bounded(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A result GET that keeps answering 503 gives up after the policy's attempts."""
    fal.result_replies.extend([Reply(503, None)] * 10)
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    with pytest.raises(TransientError):
        await collect(provider, handle)
    assert fal.count("result") == FAST.attempts


# -- cancel ------------------------------------------------------------------------------------


async def test_cancel_queued_returns_true(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """Cancelling a queued job PUTs the cancel URL and returns True."""
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    assert await provider.cancel(handle) is True
    (cancel,) = fal.recorded("cancel")
    assert cancel.method == "PUT"
    assert cancel.headers["Authorization"] == f"Key {KEY}"
    assert fal.jobs[handle.request_id].cancelled


async def test_cancel_completed_returns_false(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """fal's 400 ALREADY_COMPLETED makes cancel return False."""
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    await collect(provider, handle)
    assert await provider.cancel(handle) is False
    assert fal.count("cancel") == 1


# -- the fake itself and the price table --------------------------------------------------------


async def test_fake_validates_like_fal(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """FakeFal answers 422 with a {loc, msg, type} list for bad enums and a missing prompt."""
    body = {"aspect_ratio": "7:3", "duration": 7, "resolution": "4k"}
    async with session.post(
        f"{fal.url}/fal-ai/pika/v2.2/text-to-video",
        json=body,
        headers={"Authorization": f"Key {KEY}"},
    ) as resp:
        assert resp.status == 422
        detail = (await resp.json())["detail"]
    locs = {tuple(item["loc"]) for item in detail}
    assert locs == {
        ("body", "prompt"),
        ("body", "aspect_ratio"),
        ("body", "duration"),
        ("body", "resolution"),
    }
    assert all({"loc", "msg", "type"} <= item.keys() for item in detail)


async def test_fake_serves_video_bytes(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    """The result's video URL serves the configured number of bytes without a key."""
    fal.video_size = 300_000
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    seen = await collect(provider, handle)
    result = seen[-1].result
    assert result is not None
    async with session.get(result.video_url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp4"
        payload = await resp.read()
    assert len(payload) == 300_000 == result.file_size


def test_prices_scale_from_base() -> None:
    """2.2 costs $0.20 for 5 s 720p and $0.90 for 10 s 1080p; 2.1 starts at $0.40."""
    assert quote(FAL_PRICES, text_request(), 100).credits == 20
    big = text_request(duration=10, resolution=Resolution.FULL_HD)
    assert quote(FAL_PRICES, big, 100).credits == 90
    assert quote(FAL_PRICES, text_request(model=PikaModel.V2_1), 100).credits == 40


async def test_status_429_waits_retry_after_then_reads(
    fal: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A 429 on a status read is retried after its Retry-After, not surfaced as a failure."""
    provider = make_provider(session, fal)
    handle = await provider.submit(text_request())
    fal.status_replies.append(Reply(429, {"detail": "slow down"}, {"Retry-After": "0.1"}))
    status = await provider.status(handle)
    assert status.kind is StatusKind.QUEUED
    assert fal.count("status") == 2


def test_change_tracker_reads_cumulative_and_incremental_logs() -> None:
    """Log lines count once whether fal repeats earlier lines (cumulative) or not."""
    from bot.providers.fal import _ChangeTracker

    tracker = _ChangeTracker()
    running = StatusKind.RUNNING
    first = tracker.observe(ProviderStatus(kind=running, logs=("a",)))
    cumulative = tracker.observe(ProviderStatus(kind=running, logs=("a", "b")))
    incremental = tracker.observe(ProviderStatus(kind=running, logs=("c",)))
    repeat = tracker.observe(ProviderStatus(kind=running, logs=("a", "b", "c")))
    assert first is not None and first.logs == ("a",)
    assert cumulative is not None and cumulative.logs == ("b",)
    assert incremental is not None and incremental.logs == ("c",)
    assert repeat is None
