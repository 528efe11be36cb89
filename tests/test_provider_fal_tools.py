"""FalProvider's Pika tools over a real socket against FakeFal: each tool's endpoint and exact
body, fal's validation (422 with its ``detail`` list) and an input fal cannot download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.models import GenerationRequest
from bot.providers.base import ProviderStatus, StatusKind
from bot.providers.errors import RejectedInput
from bot.providers.fal import FalProvider
from bot.providers.http import RetryPolicy
from bot.tool_requests import SourceVideo, ToolOptions, build_tool_request
from bot.tools import Tool
from tests.fakes._loopback import DEFAULT_VIDEO, Reply
from tests.fakes.fal import FakeFal

KEY = "fal-tools-key"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01, total_seconds=5.0)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    async with FakeFal(key=KEY, queue_positions=(), progress_logs=("working",)) as server:
        yield server


@pytest.fixture
async def provider(fal: FakeFal, session: aiohttp.ClientSession) -> AsyncIterator[FalProvider]:
    yield FalProvider(session, api_key=KEY, base_url=fal.url, poll_interval=0.01, retry=FAST)


async def run(provider: FalProvider, request: GenerationRequest) -> list[ProviderStatus]:
    handle = await provider.submit(request)
    seen = []
    async with asyncio.timeout(10):
        async for status in provider.watch(handle):
            seen.append(status)
    return seen


def hosted(fal: FakeFal) -> tuple[str, str]:
    """A video and an image on the fake's public file host (so fal can fetch both)."""
    return fal.host_file("clip.mp4", DEFAULT_VIDEO), fal.host_file("cat.png", PNG, "image/png")


async def test_pikaffects_body_and_endpoint(fal: FakeFal, provider: FalProvider) -> None:
    """Pikaffects: image_url, the effect as fal spells it, the seed; no empty prompt."""
    _, image = hosted(fal)
    request = build_tool_request(
        ToolOptions(Tool.PIKAFFECTS, effect="eye pop", image_urls=(image,), seed=7)
    )
    seen = await run(provider, request)
    assert seen[-1].kind is StatusKind.COMPLETED and seen[-1].result is not None
    (submit,) = fal.recorded("submit")
    assert submit.path == "/fal-ai/pika/v1.5/pikaffects"
    assert submit.json == {"image_url": image, "pikaffect": "Eye-pop", "seed": 7}


async def test_pikadditions_body_and_fal_fetches_the_video(
    fal: FakeFal, provider: FalProvider
) -> None:
    """Pikadditions: the video and the image fal downloads (it really got the video's bytes)."""
    video, image = hosted(fal)
    request = build_tool_request(
        ToolOptions(
            Tool.PIKADDITIONS,
            prompt="a cat on the sofa",
            negative_prompt="blurry",
            video=SourceVideo(video, "clip.mp4", "https://discord.com/channels/1/2/3"),
            image_urls=(image,),
            seed=9,
        )
    )
    await run(provider, request)
    (submit,) = fal.recorded("submit")
    assert submit.path == "/fal-ai/pika/v2/pikadditions"
    assert submit.json == {
        "video_url": video,
        "image_url": image,
        "prompt": "a cat on the sofa",
        "negative_prompt": "blurry",
        "seed": 9,
    }
    (job,) = fal.jobs.values()
    assert job.fetched is not None and job.fetched["video_url"] == DEFAULT_VIDEO[:64]


async def test_pikaswaps_body_with_region_and_prompt(fal: FakeFal, provider: FalProvider) -> None:
    """Pikaswaps: video, modify_region and the prompt; no image when none was given."""
    video, _ = hosted(fal)
    request = build_tool_request(
        ToolOptions(
            Tool.PIKASWAPS,
            region="the red car",
            prompt="a white horse",
            video=SourceVideo(video, "clip.mp4"),
            seed=3,
        )
    )
    await run(provider, request)
    (submit,) = fal.recorded("submit")
    assert submit.path == "/fal-ai/pika/v2/pikaswaps"
    assert submit.json == {
        "video_url": video,
        "modify_region": "the red car",
        "prompt": "a white horse",
        "seed": 3,
    }


async def test_pikaframes_body_with_transitions(fal: FakeFal, provider: FalProvider) -> None:
    """Pikaframes: the keyframes in order, one transition each (duration, own prompt)."""
    images = [fal.host_file(f"k{i}.png", PNG, "image/png") for i in range(3)]
    request = build_tool_request(
        ToolOptions(
            Tool.PIKAFRAMES,
            prompt="day turns to night",
            image_urls=tuple(images),
            transition_prompts=(None, "the moon rises"),
            durations="4 6",
            resolution="1080p",
            seed=5,
        )
    )
    await run(provider, request)
    (submit,) = fal.recorded("submit")
    assert submit.path == "/fal-ai/pika/v2.2/pikaframes"
    assert submit.json == {
        "image_urls": images,
        "transitions": [{"duration": 4}, {"duration": 6, "prompt": "the moon rises"}],
        "resolution": "1080p",
        "prompt": "day turns to night",
        "seed": 5,
    }


async def test_an_input_fal_cannot_download_fails_naming_the_video(
    fal: FakeFal, provider: FalProvider
) -> None:
    """An expired source URL: fal fails the job (422 at result time); the member reads which
    input, not fal's text."""
    _, image = hosted(fal)
    request = build_tool_request(
        ToolOptions(
            Tool.PIKADDITIONS,
            video=SourceVideo(f"{fal.url}/files/inputs/gone.mp4", "gone.mp4"),
            image_urls=(image,),
        )
    )
    with pytest.raises(RejectedInput) as caught:
        await run(provider, request)
    assert caught.value.user_message == "The video service rejected these settings: video."
    assert "download" not in caught.value.user_message


@pytest.mark.parametrize(
    ("endpoint", "body", "loc", "kind"),
    [
        ("v1.5/pikaffects", {"image_url": "https://x/a.png"}, ["body", "pikaffect"], "missing"),
        (
            "v1.5/pikaffects",
            {"image_url": "https://x/a.png", "pikaffect": "Sparkle"},
            ["body", "pikaffect"],
            "enum",
        ),
        ("v2/pikadditions", {"video_url": "https://x/v.mp4"}, ["body", "image_url"], "missing"),
        ("v2/pikaswaps", {"video_url": "ftp://x/v.mp4"}, ["body", "video_url"], "url_parsing"),
        (
            "v2.2/pikaframes",
            {"image_urls": ["https://x/1.png"]},
            ["body", "image_urls"],
            "too_short",
        ),
        (
            "v2.2/pikaframes",
            {"image_urls": ["https://x/1.png", "https://x/2.png"], "transitions": []},
            ["body", "transitions"],
            "value_error",
        ),
        (
            "v2.2/pikaframes",
            {
                "image_urls": ["https://x/1.png", "https://x/2.png", "https://x/3.png"],
                "transitions": [{"duration": 20}, {"duration": 6}],
            },
            ["body", "transitions"],
            "value_error",
        ),
        (
            "v2/pikaswaps",
            {"video_url": "https://x/v.mp4", "aspect_ratio": "1:1"},
            ["body", "aspect_ratio"],
            "extra_forbidden",
        ),
    ],
)
async def test_fake_validates_the_tools_like_fal(
    fal: FakeFal,
    session: aiohttp.ClientSession,
    endpoint: str,
    body: dict[str, Any],
    loc: list[object],
    kind: str,
) -> None:
    """Each documented rule answers 422 with fal's ``detail`` list (``loc``, ``msg``, ``type``)."""
    async with session.post(
        f"{fal.url}/fal-ai/pika/{endpoint}", json=body, headers={"Authorization": f"Key {KEY}"}
    ) as response:
        assert response.status == 422
        detail = (await response.json())["detail"]
    assert any(d["loc"] == loc and d["type"] == kind and d["msg"] for d in detail), detail
    assert fal.jobs == {}


async def test_a_422_at_submit_names_our_field(fal: FakeFal, provider: FalProvider) -> None:
    """fal refusing a tool's field at submit becomes the member's words for it."""
    fal.submit_replies.append(
        Reply(422, {"detail": [{"loc": ["body", "modify_region"], "msg": "bad", "type": "x"}]})
    )
    video, _ = hosted(fal)
    request = build_tool_request(
        ToolOptions(Tool.PIKASWAPS, region="sky", prompt="stars", video=SourceVideo(video, "v"))
    )
    with pytest.raises(RejectedInput) as caught:
        await provider.submit(request)
    assert caught.value.user_message == "The video service rejected these settings: region."
