"""Turning what a member (or the operator) gave a Pika tool into a valid request, or a
friendly refusal.

Both front ends go through here: the Discord commands, context menus and modals, and
``pikabot generate --effect / --add-to / --swap-in / --frames``. The shape rules themselves
are :meth:`bot.tools.ToolInputs.problem`; this module cleans the text, reads the effect and
the transition lengths as typed, and says what is wrong in the member's terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from bot.models import (
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    SEED_MAX,
    GenerationRequest,
    Resolution,
    random_seed,
)
from bot.refusals import RequestRefused
from bot.text import clean_text, is_visible
from bot.tools import (
    EFFECT_NAMES,
    FRAMES_MAX,
    FRAMES_MIN,
    REGION_MAX_CHARS,
    TRANSITION_MAX_SECONDS,
    TRANSITION_MIN_SECONDS,
    TRANSITION_PROMPT_MAX_CHARS,
    Tool,
    ToolInputs,
    Transition,
    find_effect,
    frames_transitions,
)


@dataclass(frozen=True, slots=True)
class SourceVideo:
    """The video a Pikadditions or Pikaswaps edits: the URL the provider fetches, its name,
    and the link to the Discord message that holds it (None from the terminal)."""

    url: str
    name: str
    message_url: str | None = None


@dataclass(frozen=True, slots=True)
class ToolOptions:
    """A tool's options as given (None or empty: not given)."""

    tool: Tool
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    effect: str | None = None
    region: str | None = None
    video: SourceVideo | None = None
    image_urls: tuple[str, ...] = ()
    image_names: tuple[str, ...] = ()
    transition_prompts: tuple[str | None, ...] = ()
    durations: str | None = None
    """Pikaframes: each transition's seconds, as typed (``5 3 4`` or ``5,3,4``)."""
    resolution: str | None = None


def build_tool_request(options: ToolOptions) -> GenerationRequest:
    """The valid request for ``options``; :class:`RequestRefused` saying what to fix."""
    tool = options.tool
    prompt = _text(options.prompt, "prompt", PROMPT_MAX_CHARS)
    negative = _text(options.negative_prompt, "negative prompt", NEGATIVE_PROMPT_MAX_CHARS)
    if options.seed is not None and not 0 <= options.seed <= SEED_MAX:
        raise RequestRefused(f"The seed must be a whole number from 0 to {SEED_MAX}.")
    effect = None
    if tool is Tool.PIKAFFECTS:
        effect = find_effect(options.effect or "")
        if effect is None:
            raise RequestRefused(
                f"Unknown effect `{_quoted(options.effect or '')}`: use one of {EFFECT_NAMES}."
            )
    region = _text(options.region, "region", REGION_MAX_CHARS) if tool is Tool.PIKASWAPS else None
    transitions: tuple[Transition, ...] = ()
    resolution = Resolution.HD
    if tool is Tool.PIKAFRAMES:
        count = len(options.image_urls)
        if not FRAMES_MIN <= count <= FRAMES_MAX:
            raise RequestRefused(f"Pikaframes takes {FRAMES_MIN} to {FRAMES_MAX} keyframe images.")
        prompts = tuple(
            _text(p, "transition prompt", TRANSITION_PROMPT_MAX_CHARS)
            for p in options.transition_prompts
        )
        if len(prompts) > count - 1 and any(prompts[count - 1 :]):
            raise RequestRefused(
                f"{count} keyframes have {count - 1} transitions: drop the extra transition"
                " prompts or add keyframes."
            )
        seconds = _durations(options.durations, count - 1)
        transitions = frames_transitions(count, prompts, seconds)
        resolution = _resolution(options.resolution)
    video = options.video if tool.edits_video else None
    inputs = ToolInputs(
        kind=tool,
        effect=effect,
        video_url=video.url if video else None,
        video_name=video.name if video else None,
        video_message_url=video.message_url if video else None,
        region=region,
        transitions=transitions,
        image_names=tuple(options.image_names),
    )
    problem = inputs.problem(images=len(options.image_urls), prompt=prompt or "")
    if problem is not None:
        raise RequestRefused(problem)
    try:
        return GenerationRequest(
            prompt=prompt or "",
            negative_prompt=negative,
            seed=options.seed if options.seed is not None else random_seed(),
            image_urls=tuple(options.image_urls),
            resolution=resolution,
            tool=inputs,
        )
    except ValidationError as exc:  # pragma: no cover - every rule is checked above
        raise RequestRefused(f"That request is not valid ({exc.errors()[0]['msg']}).") from None


def _text(value: str | None, what: str, limit: int) -> str | None:
    """Cleaned text, None when empty; refused when over ``limit`` characters."""
    if value is None:
        return None
    cleaned = clean_text(value)
    if not is_visible(cleaned):
        return None
    if len(cleaned) > limit:
        raise RequestRefused(f"The {what} is too long: keep it under {limit} characters.")
    return cleaned


def _durations(typed: str | None, transitions: int) -> tuple[int, ...]:
    """Each transition's seconds from ``5 3 4`` / ``5,3,4``; fewer than transitions: the rest
    take fal's default."""
    if typed is None or not typed.strip():
        return ()
    parts = [p for p in re.split(r"[\s,;]+", typed.strip()) if p]
    if not all(p.isdigit() for p in parts):
        raise RequestRefused(
            f"`{_quoted(typed)}` is not a list of seconds: give whole numbers like `5 3 4`."
        )
    if len(parts) > transitions:
        raise RequestRefused(
            f"{len(parts)} lengths for {transitions} transitions: give one per transition."
        )
    seconds = tuple(int(p) for p in parts)
    if any(not TRANSITION_MIN_SECONDS <= s <= TRANSITION_MAX_SECONDS for s in seconds):
        raise RequestRefused(
            f"Each transition lasts {TRANSITION_MIN_SECONDS} to {TRANSITION_MAX_SECONDS} seconds."
        )
    return seconds


def _resolution(typed: str | None) -> Resolution:
    if typed is None:
        return Resolution.HD
    value = typed.strip().lower()
    value = value if value.endswith("p") else f"{value}p"
    try:
        return Resolution(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Resolution)
        raise RequestRefused(f"Unknown resolution `{_quoted(typed)}`: use {allowed}.") from None


def _quoted(text: str) -> str:
    text = " ".join(text.replace("`", "'").split())
    return text if len(text) <= 40 else text[:39] + "…"
