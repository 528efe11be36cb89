"""Pika's tools as data: the shape each takes, the friendly refusals, the prices, who sells
them, and how reruns and the blocklist see them (pure: no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot.audit_text import describe
from bot.guild_settings import AuditEntry
from bot.models import GenerationRequest, Resolution
from bot.pricing import Unpriced, quote
from bot.providers.aigateway import AIGatewayProvider
from bot.providers.fal import FAL_CAPABILITIES, FAL_PRICES
from bot.providers.onemin import OneMinProvider
from bot.providers.pixazo import PixazoProvider
from bot.refusals import RequestRefused
from bot.reruns import Variant, offered_variants, rerun_request
from bot.tool_requests import SourceVideo, ToolOptions, build_tool_request
from bot.tools import Pikaffect, Tool, find_effect

VIDEO = SourceVideo(
    "https://cdn.example/clip.mp4", "clip.mp4", "https://discord.com/channels/1/2/3"
)
IMG = "https://cdn.example/cat.png"


def effect(**overrides: object) -> GenerationRequest:
    values: dict[str, object] = {"tool": Tool.PIKAFFECTS, "effect": "melt", "image_urls": (IMG,)}
    values.update(overrides)
    return build_tool_request(ToolOptions(**values))  # type: ignore[arg-type]


def frames(count: int = 3, **overrides: object) -> GenerationRequest:
    values: dict[str, object] = {
        "tool": Tool.PIKAFRAMES,
        "prompt": "a seed grows into a tree",
        "image_urls": tuple(f"https://cdn.example/{i}.png" for i in range(count)),
    }
    values.update(overrides)
    return build_tool_request(ToolOptions(**values))  # type: ignore[arg-type]


def test_find_effect_reads_what_people_type() -> None:
    """Case, spaces and dashes do not matter; unknown names are None."""
    assert find_effect("cakeify") is Pikaffect.CAKE_IFY
    assert find_effect("Eye pop") is Pikaffect.EYE_POP
    assert find_effect("TA-DA") is Pikaffect.TA_DA
    assert find_effect("melt ") is Pikaffect.MELT
    assert find_effect("sparkle") is None
    assert len(Pikaffect) == 16


def test_pikaffect_request_has_its_effect_and_optional_prompt() -> None:
    """An effect, one image, no prompt needed; the seed is chosen."""
    request = effect()
    assert request.tool is not None and request.tool.effect is Pikaffect.MELT
    assert request.prompt == "" and request.image_urls == (IMG,)
    assert request.seed > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"effect": "sparkle"}, "Unknown effect `sparkle`"),
        ({"image_urls": ()}, "exactly one image"),
        ({"image_urls": (IMG, IMG)}, "exactly one image"),
        ({"seed": -1}, "seed must be"),
        ({"prompt": "x" * 1001}, "prompt is too long"),
    ],
)
def test_pikaffect_refusals(options: dict[str, object], message: str) -> None:
    """Each bad input is one friendly sentence."""
    with pytest.raises(RequestRefused, match=message):
        effect(**options)


def test_pikadditions_needs_a_video_and_one_image() -> None:
    """The source video's URL is sent; its name and message link are kept for the result."""
    request = build_tool_request(
        ToolOptions(Tool.PIKADDITIONS, prompt="a cat", video=VIDEO, image_urls=(IMG,))
    )
    assert request.tool is not None
    assert request.tool.video_url == VIDEO.url
    assert request.tool.video_message_url == VIDEO.message_url
    with pytest.raises(RequestRefused, match="needs a video"):
        build_tool_request(ToolOptions(Tool.PIKADDITIONS, image_urls=(IMG,)))
    with pytest.raises(RequestRefused, match="exactly one image: what to add"):
        build_tool_request(ToolOptions(Tool.PIKADDITIONS, video=VIDEO))


def test_pikaswaps_needs_a_region_and_an_image_or_a_prompt() -> None:
    """What to replace is asked for; then an image, a prompt, or both."""
    swap = build_tool_request(
        ToolOptions(Tool.PIKASWAPS, region="the red car", prompt="a horse", video=VIDEO)
    )
    assert swap.tool is not None and swap.tool.region == "the red car"
    with pytest.raises(RequestRefused, match="Say what to replace"):
        build_tool_request(ToolOptions(Tool.PIKASWAPS, prompt="a horse", video=VIDEO))
    with pytest.raises(RequestRefused, match="an image or a prompt"):
        build_tool_request(ToolOptions(Tool.PIKASWAPS, region="the car", video=VIDEO))
    with pytest.raises(RequestRefused, match="region is too long"):
        build_tool_request(ToolOptions(Tool.PIKASWAPS, region="x" * 201, prompt="a", video=VIDEO))


def test_pikaframes_transitions_default_to_five_seconds() -> None:
    """Three keyframes: two transitions of 5 s, each with its own prompt where given."""
    request = frames(transition_prompts=("it sprouts", None), durations="3")
    assert request.tool is not None
    assert [(t.prompt, t.seconds) for t in request.tool.transitions] == [
        ("it sprouts", 3),
        (None, 5),
    ]
    assert request.tool.seconds() == 8


@pytest.mark.parametrize(
    ("count", "options", "message"),
    [
        (1, {}, "2 to 5 keyframe images"),
        (6, {}, "2 to 5 keyframe images"),
        (2, {"prompt": None}, "Describe the video"),
        (2, {"durations": "5 5"}, "2 lengths for 1 transitions"),
        (2, {"durations": "five"}, "not a list of seconds"),
        (2, {"durations": "11"}, "1 to 10 seconds"),
        (5, {"durations": "10 10 5 5"}, "add up to 30 s"),
        (2, {"transition_prompts": ("a", "b")}, "drop the extra transition"),
        (2, {"resolution": "4k"}, "Unknown resolution"),
    ],
)
def test_pikaframes_refusals(count: int, options: dict[str, object], message: str) -> None:
    """Keyframe counts, lengths and the 25 s total are checked before anything is reserved."""
    with pytest.raises(RequestRefused, match=message):
        frames(count, **options)


def test_invalid_tool_request_cannot_be_built_around_the_checks() -> None:
    """The request model itself refuses a tool request of the wrong shape."""
    request = effect()
    assert request.tool is not None
    with pytest.raises(ValidationError, match="exactly one image"):
        GenerationRequest(prompt="", tool=request.tool, image_urls=())
    with pytest.raises(ValidationError, match="prompt is empty"):
        GenerationRequest(prompt="  ")


def test_tool_request_survives_json() -> None:
    """The job row keeps the request as JSON: the tool and its inputs come back whole."""
    request = frames(transition_prompts=("grows",), resolution="1080p")
    again = GenerationRequest.model_validate_json(request.model_dump_json())
    assert again == request and again.resolution is Resolution.FULL_HD


def test_texts_include_the_tools_own_fields() -> None:
    """The blocklist sees the region and the transition prompts too."""
    swap = build_tool_request(
        ToolOptions(Tool.PIKASWAPS, region="the flag", prompt="a banner", video=VIDEO)
    )
    assert "the flag" in swap.texts() and "a banner" in swap.texts()
    assert "it sprouts" in frames(transition_prompts=("it sprouts",)).texts()


def test_fal_prices_each_tool() -> None:
    """Pikadditions $0.465, Pikaffects/Pikaswaps $0.50, Pikaframes per second by resolution."""
    swap = build_tool_request(
        ToolOptions(Tool.PIKASWAPS, region="the car", prompt="a horse", video=VIDEO)
    )
    add = build_tool_request(ToolOptions(Tool.PIKADDITIONS, video=VIDEO, image_urls=(IMG,)))
    assert quote(FAL_PRICES, add, 100).credits == 47  # $0.465, rounded up
    assert quote(FAL_PRICES, effect(), 100).usd == Decimal("0.50")
    assert quote(FAL_PRICES, swap, 100).usd == Decimal("0.50")
    assert quote(FAL_PRICES, frames(3), 100).usd == Decimal("0.40")  # 10 s x $0.04
    assert quote(FAL_PRICES, frames(3, resolution="1080p"), 100).usd == Decimal("0.60")
    assert quote(FAL_PRICES, frames(2, durations="2"), 100).usd == Decimal("0.20")  # min 5 s


def test_providers_without_tools_refuse_and_cannot_price_them() -> None:
    """Only fal sells the tools; the others say so, and have no price for them."""
    assert FAL_CAPABILITIES.unsupported(effect()) is None
    for provider in (AIGatewayProvider, OneMinProvider, PixazoProvider):
        capabilities = provider.capabilities
        assert capabilities.tools == frozenset()
        assert capabilities.unsupported(effect()) == (
            "This bot's video service does not offer Pikaffects."
        )
    with pytest.raises(Unpriced, match="Pikaffects"):
        quote(AIGatewayProvider.prices, effect(), 100)


def test_tool_reruns_keep_inputs_with_a_new_seed() -> None:
    """🔁 on a tool's clip: the same inputs, another seed; Pikaframes alone offers 1080p."""
    request = effect()
    assert offered_variants(request) == [Variant.NEW_SEED]
    again = rerun_request(request, Variant.NEW_SEED)
    assert again.tool == request.tool and again.image_urls == request.image_urls
    assert offered_variants(frames()) == [Variant.NEW_SEED, Variant.FULL_HD]
    assert rerun_request(frames(), Variant.FULL_HD).resolution is Resolution.FULL_HD


def test_effect_switches_read_as_the_moderator_set_them() -> None:
    """The audit trail shows "Pikaffect Decapitate: on → off" (and back)."""
    when = datetime(2026, 1, 1, tzinfo=UTC)

    def entry(action: str) -> AuditEntry:
        return AuditEntry(1, 2, 3, action, None, "Decapitate", None, when)

    off = describe(entry("disable effect"), role=str, channel=str)
    on = describe(entry("enable effect"), role=str, channel=str)
    assert off.line() == "Pikaffect Decapitate: on → off"
    assert on.line() == "Pikaffect Decapitate: off → on"
