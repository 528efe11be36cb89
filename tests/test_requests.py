"""What a member types becomes the right request, or a friendly refusal."""

from __future__ import annotations

import pytest

from bot.jobs import RequestRefused
from bot.models import AspectRatio, PikaModel, Resolution
from bot.prompt_flags import parse_prompt_flags
from bot.requests import RequestOptions, build_request


def build(**options) -> object:
    return build_request(RequestOptions(**options), default_model=PikaModel.V2_2)


@pytest.mark.parametrize(
    ("text", "prompt", "flags"),
    [
        ("a cat -ar 9:16", "a cat", {"aspect": "9:16"}),
        ("a cat --ar 1:1 sleeping", "a cat sleeping", {"aspect": "1:1"}),
        (
            'dogs -neg "blurry, dark" -seed 42',
            "dogs",
            {"negative_prompt": "blurry, dark", "seed": "42"},
        ),
        ("boats -dur 10 -res 1080p", "boats", {"duration": "10", "resolution": "1080p"}),
        ("a well-lit room, -5 degrees", "a well-lit room, -5 degrees", {}),
        ("sky “-neg” stays", "sky “-neg” stays", {}),
    ],
)
def test_prompt_flags_are_extracted(text: str, prompt: str, flags: dict[str, str]):
    """Pika's flags come out of the prompt; look-alikes inside words stay."""
    parsed = parse_prompt_flags(text)
    assert parsed.prompt == prompt
    assert parsed.flags == flags
    assert parsed.problems == ()


def test_prompt_flag_without_value_is_reported():
    """A trailing flag with no value is a clear problem, not a guess."""
    assert parse_prompt_flags("a cat -seed").problems == ("`-seed` needs a value",)


def test_build_request_defaults():
    """Without options: 16:9, 5 s, 720p, the default model, and a random seed."""
    request = build(prompt="a fox in snow")
    assert request.aspect is AspectRatio.WIDE
    assert request.duration == 5
    assert request.resolution is Resolution.HD
    assert request.model is PikaModel.V2_2
    assert 0 < request.seed < 2**31


def test_build_request_flags_apply():
    """Flags in the prompt set the options they name."""
    request = build(prompt='a fox -ar 9:16 -seed 7 -neg "rain" -dur 10 -res 1080p')
    assert (request.prompt, request.aspect, request.seed) == ("a fox", AspectRatio.TALL, 7)
    assert (request.negative_prompt, request.duration, request.resolution) == (
        "rain",
        10,
        Resolution.FULL_HD,
    )


def test_build_request_explicit_options_win_over_flags():
    """An explicit option beats the same flag in the prompt."""
    request = build(prompt="a fox -ar 9:16 -seed 7", aspect="1:1", seed=9, duration=10)
    assert request.aspect is AspectRatio.SQUARE
    assert request.seed == 9
    assert request.duration == 10


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "-ar 9:16"}, "prompt is empty"),
        ({"prompt": "x" * 1001}, "too long"),
        ({"prompt": "a cat -ar 7:3"}, "Unknown aspect ratio"),
        ({"prompt": "a cat -dur 7"}, "5 or 10"),
        ({"prompt": "a cat -seed abc"}, "not a whole number"),
        ({"prompt": "a cat", "seed": -1}, "seed must be"),
        ({"prompt": "a cat -res 4k"}, "Unknown resolution"),
        ({"prompt": "a cat -model 9"}, "Unknown model"),
        ({"prompt": "a cat -seed"}, "needs a value"),
    ],
)
def test_build_request_bad_input_is_refused_clearly(options: dict[str, object], fragment: str):
    """Each kind of bad input gets a sentence that says what to fix."""
    with pytest.raises(RequestRefused) as refused:
        build(**options)
    assert fragment in refused.value.user_message
