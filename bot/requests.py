"""Turning what a member typed into a valid :class:`GenerationRequest`, or a friendly refusal.

Both front ends (the ``/pika`` command and ``pikabot generate``) go through here, so a flag,
an option or a bad value means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
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
from bot.prompt_flags import IGNORED_FLAGS, SHORT_FLAGS, ParsedPrompt, parse_prompt_flags
from bot.text import clean_text, is_visible

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
"""Spellings members use; messages and documents name only :class:`PikaModel`'s values."""
MODEL_NAMES = ", ".join(m.value for m in PikaModel)
_QUOTED_MAX = 40


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


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A valid request and what the member should be told about how it was read (flags that
    were ignored or left in the prompt as text)."""

    request: GenerationRequest
    notes: tuple[str, ...] = ()


def build_request(options: RequestOptions, *, default_model: PikaModel) -> GenerationRequest:
    """Merge flags and options, validate, and return the request (or raise RequestRefused)."""
    return prepare_request(options, default_model=default_model).request


def prepare_request(options: RequestOptions, *, default_model: PikaModel) -> PreparedRequest:
    """:func:`build_request`, with the notes for the member's private answer."""
    parsed = parse_prompt_flags(clean_text(options.prompt))
    if parsed.problems:
        raise RequestRefused("Check the flags in your prompt: " + "; ".join(parsed.problems) + ".")
    if not is_visible(parsed.prompt):
        raise RequestRefused("The prompt is empty: describe the video you want.")
    if len(parsed.prompt) > PROMPT_MAX_CHARS:
        raise RequestRefused(
            f"The prompt is too long: keep it under {PROMPT_MAX_CHARS} characters."
        )
    return PreparedRequest(_request(options, parsed, default_model), _notes(parsed))


def _request(
    options: RequestOptions, parsed: ParsedPrompt, default_model: PikaModel
) -> GenerationRequest:
    flags = parsed.flags
    negative = (
        clean_text(options.negative_prompt)
        if options.negative_prompt is not None
        else flags.get("negative_prompt")
    )
    if negative is not None and not is_visible(negative):
        negative = None
    if negative is not None and len(negative) > NEGATIVE_PROMPT_MAX_CHARS:
        raise RequestRefused(
            "The negative prompt is too long: keep it under"
            f" {NEGATIVE_PROMPT_MAX_CHARS} characters."
        )
    aspect = _choice(
        options.aspect or flags.get("aspect"), AspectRatio, "aspect ratio", AspectRatio.WIDE
    )
    resolution = _choice(
        options.resolution or flags.get("resolution"),
        Resolution,
        "resolution",
        Resolution.HD,
        normalise=_normalise_resolution,
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
            raise RequestRefused(
                f"Unknown model `{_quoted(model_text)}`: use one of {MODEL_NAMES}."
            )
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


def _choice(
    value: str | None,
    enum: type[E],
    what: str,
    default: E,
    *,
    normalise: Callable[[str], str] = str.strip,
) -> E:
    if value is None:
        return default
    try:
        return enum(normalise(value))
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise RequestRefused(f"Unknown {what} `{_quoted(value)}`: use one of {allowed}.") from None


def _normalise_resolution(value: str) -> str:
    """``1080`` and ``1080P`` mean ``1080p``."""
    value = value.strip().lower()
    return value if value.endswith("p") else f"{value}p"


def _quoted(text: str) -> str:
    """What the member typed, safe inside a code span and short."""
    text = " ".join(text.replace("`", "'").split())
    return text if len(text) <= _QUOTED_MAX else text[: _QUOTED_MAX - 1] + "…"


def _notes(parsed: ParsedPrompt) -> tuple[str, ...]:
    notes = []
    if parsed.ignored:
        settings = sorted(
            {IGNORED_FLAGS[flag.split()[0].lstrip("-").lower()] for flag in parsed.ignored}
        )
        notes.append(
            "I took "
            + ", ".join(f"`{_quoted(flag)}`" for flag in parsed.ignored)
            + " out of your prompt: Pika's own Discord bot had those flags, but the Pika 2.x"
            f" models have no {' or '.join(settings)} setting."
        )
    if parsed.unknown:
        known = ", ".join(f"-{name}" for name in SHORT_FLAGS)
        one = len(parsed.unknown) == 1
        notes.append(
            ", ".join(f"`{_quoted(flag)}`" for flag in parsed.unknown)
            + (" is not a flag" if one else " are not flags")
            + f" I know, so I left {'it' if one else 'them'} in your prompt as text"
            f" (the flags are {known})."
        )
    return tuple(notes)


def _int_flag(flags: dict[str, str], name: str) -> int | None:
    raw = flags.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestRefused(f"`{raw}` is not a whole number for {name}.") from None
