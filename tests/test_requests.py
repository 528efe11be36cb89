"""What a member types becomes the right request, or a friendly refusal."""

from __future__ import annotations

import pytest

from bot.jobs import RequestRefused
from bot.models import AspectRatio, PikaModel, Resolution
from bot.prompt_flags import parse_prompt_flags
from bot.requests import RequestOptions, build_request, prepare_request


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
        ({"prompt": "a cat -res 4k"}, "Unknown resolution `4k`: use one of 720p, 1080p."),
        ({"prompt": "a cat", "resolution": "2160P"}, "Unknown resolution `2160P`"),
        ({"prompt": "a cat -model 9"}, "Unknown model `9`: use one of 2.2, 2.1, 2-turbo."),
        ({"prompt": "\u200b\u200d\ufeff"}, "prompt is empty"),
        ({"prompt": "\x00\x07\x1b \u2060\u00ad -ar 9:16"}, "prompt is empty"),
        ({"prompt": "\u3164\u2800\u0301"}, "prompt is empty"),
        ({"prompt": "\u200b" * 5 + "x" * 1001}, "too long"),
        ({"prompt": "a cat -seed"}, "needs a value"),
    ],
)
def test_build_request_bad_input_is_refused_clearly(options: dict[str, object], fragment: str):
    """Each kind of bad input gets a sentence that says what to fix."""
    with pytest.raises(RequestRefused) as refused:
        build(**options)
    assert fragment in refused.value.user_message


def test_build_request_drops_invisible_characters():
    """NFKC first, then control and format characters go: what reaches the provider is what
    the member can see, and the length rule counts only that."""
    request = build(
        prompt="ａ\u200bcat\u200d\ufeff in\tsnow －ar 9:16",
        negative_prompt="\u200b\u200b",
    )
    assert (request.prompt, request.aspect) == ("acat in snow", AspectRatio.TALL)
    assert request.negative_prompt is None
    assert build(prompt="\u200b" * 50 + "y" * 1000).prompt == "y" * 1000


@pytest.mark.parametrize(
    ("text", "prompt", "ignored"),
    [
        ("a fox -fps 24 -motion 2", "a fox", ("-fps 24", "-motion 2")),
        ("a fox -gs 8 running -ar 9:16", "a fox running", ("-gs 8",)),
        ("a fox -camera zoom in at dusk", "a fox at dusk", ("-camera zoom in",)),
        ("a fox -camera pan up left", "a fox", ("-camera pan up left",)),
        ('a fox -camera "rotate cw" fast', "a fox fast", ("-camera rotate cw",)),
    ],
)
def test_pika_discord_flags_are_taken_out(text: str, prompt: str, ignored: tuple[str, ...]):
    """Flags of Pika's own Discord bot that the Pika 2.x APIs lack never reach the prompt."""
    parsed = parse_prompt_flags(text)
    assert (parsed.prompt, parsed.ignored, parsed.unknown) == (prompt, ignored, ())


def test_unknown_flag_stays_in_the_prompt_and_is_reported():
    """A ``-word`` we do not know may be meant as text: it stays, and the member is told."""
    prepared = prepare_request(
        RequestOptions(prompt='a fox -hd -neg "blurry -x" -fps 24 -camera zoom out'),
        default_model=PikaModel.V2_2,
    )
    assert prepared.request.prompt == "a fox -hd"
    assert prepared.request.negative_prompt == "blurry -x"
    ignored, unknown = prepared.notes
    assert "`-fps 24`, `-camera zoom out` out of your prompt" in ignored
    assert "no camera control or frame rate setting" in ignored
    assert unknown.startswith("`-hd` is not a flag I know, so I left it in your prompt")
    assert prepare_request(RequestOptions(prompt="a fox"), default_model=PikaModel.V2_2).notes == ()
    (two,) = prepare_request(
        RequestOptions(prompt="a fox -hd -wide"), default_model=PikaModel.V2_2
    ).notes
    assert two.startswith("`-hd`, `-wide` are not flags I know, so I left them in your prompt")


@pytest.mark.parametrize(
    ("name", "model"),
    [("2-turbo", PikaModel.V2_TURBO), ("turbo", PikaModel.V2_TURBO), ("V2.1", PikaModel.V2_1)],
)
def test_model_flag_accepts_the_documented_names(name: str, model: PikaModel):
    """``-model 2-turbo`` (the name documented everywhere) and its short spellings work."""
    assert build(prompt=f"a fox -model {name}").model is model
