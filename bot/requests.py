"""Turning what a member typed into a valid :class:`GenerationRequest`, or a friendly refusal.

Both front ends (the ``/pika`` command and ``pikabot generate``) go through here, so a flag,
an option or a bad value means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from bot.jobs import RequestRefused
from bot.models import (
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    SEED_MAX,
    AspectRatio,
    GenerationRequest,
    Mode,
    PikaModel,
    Resolution,
    random_seed,
)
from bot.prompt_flags import parse_prompt_flags

E = TypeVar("E", AspectRatio, Resolution)

_MODEL_ALIASES = {
    "2.2": PikaModel.V2_2,
    "v2.2": PikaModel.V2_2,
    "2.1": PikaModel.V2_1,
    "v2.1": PikaModel.V2_1,
    "turbo": PikaModel.V2_TURBO,
    "2-turbo": PikaModel.V2_TURBO,
    "v2-turbo": PikaModel.V2_TURBO,
    "2turbo": PikaModel.V2_TURBO,
}


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Options as given (None = not given). Explicit options win over prompt flags."""

    prompt: str
    negative_prompt: str | None = None
    aspect: str | None = None
    duration: int | None = None
    resolution: str | None = None
    seed: int | None = None
    model: str | None = None
    image_urls: tuple[str, ...] = ()
    mode: Mode = Mode.TEXT
    ingredients_mode: str | None = None


def build_request(options: RequestOptions, *, default_model: PikaModel) -> GenerationRequest:
    """Merge flags and options, validate, and return the request (or raise RequestRefused)."""
    parsed = parse_prompt_flags(options.prompt)
    if parsed.problems:
        raise RequestRefused("Check the flags in your prompt: " + "; ".join(parsed.problems) + ".")
    flags = parsed.flags
    if not parsed.prompt:
        raise RequestRefused("The prompt is empty: describe the video you want.")
    if len(parsed.prompt) > PROMPT_MAX_CHARS:
        raise RequestRefused(
            f"The prompt is too long: keep it under {PROMPT_MAX_CHARS} characters."
        )

    negative = (
        options.negative_prompt
        if options.negative_prompt is not None
        else flags.get("negative_prompt")
    )
    if negative is not None and len(negative) > NEGATIVE_PROMPT_MAX_CHARS:
        raise RequestRefused(
            "The negative prompt is too long: keep it under"
            f" {NEGATIVE_PROMPT_MAX_CHARS} characters."
        )
    aspect = _choice(
        options.aspect or flags.get("aspect"), AspectRatio, "aspect ratio", AspectRatio.WIDE
    )
    resolution = _choice(
        _normalise_resolution(options.resolution or flags.get("resolution")),
        Resolution,
        "resolution",
        Resolution.HD,
    )
    duration = options.duration if options.duration is not None else _int_flag(flags, "duration")
    if duration is None:
        duration = 5
    if duration not in (5, 10):
        raise RequestRefused("The duration must be 5 or 10 seconds.")
    seed = options.seed if options.seed is not None else _int_flag(flags, "seed")
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise RequestRefused(f"The seed must be a whole number from 0 to {SEED_MAX}.")
    model_text = options.model or flags.get("model")
    model = default_model
    if model_text is not None:
        found = _MODEL_ALIASES.get(model_text.strip().lower())
        if found is None:
            raise RequestRefused("Unknown model: use 2.2, 2.1 or turbo.")
        model = found
    try:
        return GenerationRequest(
            prompt=parsed.prompt,
            negative_prompt=negative,
            aspect=aspect,
            duration=duration,
            resolution=resolution,
            seed=seed if seed is not None else random_seed(),
            model=model,
            mode=options.mode,
            image_urls=options.image_urls,
            ingredients_mode=options.ingredients_mode,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "request"
        raise RequestRefused(f"That request is not valid ({where}: {problem['msg']}).") from None


def _choice(value: str | None, enum: type[E], what: str, default: E) -> E:
    if value is None:
        return default
    try:
        return enum(value.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise RequestRefused(f"Unknown {what} `{value}`: use one of {allowed}.") from None


def _normalise_resolution(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value.endswith("p") else f"{value}p"


def _int_flag(flags: dict[str, str], name: str) -> int | None:
    raw = flags.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestRefused(f"`{raw}` is not a whole number for {name}.") from None
