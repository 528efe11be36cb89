"""Pika's tools beyond text- and image-to-video: what each takes, what makes it valid, how it
is priced.

* **Pikaffects** (``fal-ai/pika/v1.5/pikaffects``): one image and one of 16 effects (a photo
  that melts, squishes or explodes), an optional prompt.
* **Pikadditions** (``fal-ai/pika/v2/pikadditions``): a video and an image of something to add
  to it, an optional prompt.
* **Pikaswaps** (``fal-ai/pika/v2/pikaswaps``): a video, the region to replace, and an image
  and/or a prompt for what replaces it.
* **Pikaframes** (``fal-ai/pika/v2.2/pikaframes``): 2 to 5 keyframe images and a prompt, with
  a prompt and a length per transition.

A tool request is a :class:`~bot.models.GenerationRequest` whose ``tool`` holds a
:class:`ToolInputs`; its images are the request's ``image_urls``, so they are sniffed and sent
like every other image. The rules below are the one place each tool's shape is checked: the
front ends call :meth:`ToolInputs.problem` to refuse kindly, and the request model calls it so
no invalid tool request can exist at all. Nothing here imports the request model.

Choices where fal's schemas are silent are marked "Choice:".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Tool(StrEnum):
    """A Pika tool (one fal endpoint each)."""

    PIKAFFECTS = "pikaffects"
    PIKADDITIONS = "pikadditions"
    PIKASWAPS = "pikaswaps"
    PIKAFRAMES = "pikaframes"

    @property
    def label(self) -> str:
        """The tool's name as Pika spells it."""
        return {
            "pikaffects": "Pikaffects",
            "pikadditions": "Pikadditions",
            "pikaswaps": "Pikaswaps",
            "pikaframes": "Pikaframes",
        }[self.value]

    @property
    def edits_video(self) -> bool:
        """True for the tools that change an existing video (it must be a fetchable video)."""
        return self in (Tool.PIKADDITIONS, Tool.PIKASWAPS)


class Pikaffect(StrEnum):
    """The 16 effects of fal's ``PikaffectEnum``, spelt exactly as fal takes them."""

    CAKE_IFY = "Cake-ify"
    CRUMBLE = "Crumble"
    CRUSH = "Crush"
    DECAPITATE = "Decapitate"
    DEFLATE = "Deflate"
    DISSOLVE = "Dissolve"
    EXPLODE = "Explode"
    EYE_POP = "Eye-pop"
    INFLATE = "Inflate"
    LEVITATE = "Levitate"
    MELT = "Melt"
    PEEL = "Peel"
    POKE = "Poke"
    SQUISH = "Squish"
    TA_DA = "Ta-da"
    TEAR = "Tear"


def find_effect(text: str) -> Pikaffect | None:
    """The effect a person typed (``melt``, ``cakeify``, ``Eye pop``), or None."""
    wanted = _squashed(text)
    return next((effect for effect in Pikaffect if _squashed(effect.value) == wanted), None)


def _squashed(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


EFFECT_NAMES = ", ".join(effect.value for effect in Pikaffect)

FRAMES_MIN = 2
FRAMES_MAX = 5
"""fal's Pikaframes takes 2 to 5 ``image_urls`` (its schema and the platform notes)."""
FRAMES_MAX_SECONDS = 25
"""fal: "Total duration of all transitions must not exceed 25 seconds"."""
TRANSITION_SECONDS = 5
"""fal's default length of a transition (when none is given)."""
TRANSITION_MIN_SECONDS = 1
TRANSITION_MAX_SECONDS = 10
"""Choice: fal bounds only the total (25 s); one transition is held to 1-10 s, the lengths of
Pika's own clips, so a typo like ``50`` is refused with a clear message rather than by fal."""
REGION_MAX_CHARS = 200
"""Choice: fal sets no limit on ``modify_region`` ("plaintext description of the object or
region"); a short phrase is what Pika's own UI asks for."""
TRANSITION_PROMPT_MAX_CHARS = 500
"""Choice: the same bound as a negative prompt; an embed field holds 1024 characters."""


class Transition(BaseModel):
    """One Pikaframes transition (fal's ``KeyframeTransition``): from one keyframe to the next."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = Field(default=None, max_length=TRANSITION_PROMPT_MAX_CHARS)
    seconds: int = Field(
        default=TRANSITION_SECONDS, ge=TRANSITION_MIN_SECONDS, le=TRANSITION_MAX_SECONDS
    )


class ToolInputs(BaseModel):
    """What a tool works on, besides the request's prompt, negative prompt, seed and images.

    ``video_url`` is the source video the provider fetches (Pikadditions, Pikaswaps); its
    ``video_name`` and the link to the Discord message that holds it (``video_message_url``)
    are for the result's "made from" line, and are never sent. ``image_names`` are the
    images' names as the member saw them (the URLs are signed and never shown).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Tool
    effect: Pikaffect | None = None
    video_url: str | None = None
    video_name: str | None = None
    video_message_url: str | None = None
    region: str | None = Field(default=None, max_length=REGION_MAX_CHARS)
    transitions: tuple[Transition, ...] = ()
    image_names: tuple[str, ...] = ()

    def problem(self, *, images: int, prompt: str) -> str | None:
        """Why these inputs (with ``images`` images and ``prompt``) are not a valid request
        for the tool, as a sentence for the member; None when they are."""
        kind = self.kind
        if (self.effect is not None) != (kind is Tool.PIKAFFECTS):
            return "Pikaffects needs an effect (and only Pikaffects takes one)."
        if (self.video_url is not None) != kind.edits_video:
            return f"{kind.label} {'needs a' if kind.edits_video else 'takes no'} video."
        if self.region is not None and kind is not Tool.PIKASWAPS:
            return "Only Pikaswaps takes a region to replace."
        if self.transitions and kind is not Tool.PIKAFRAMES:
            return "Only Pikaframes takes transitions."
        match kind:
            case Tool.PIKAFFECTS | Tool.PIKADDITIONS:
                if images != 1:
                    what = "the image to change" if kind is Tool.PIKAFFECTS else "what to add"
                    return f"{kind.label} takes exactly one image: {what}."
            case Tool.PIKASWAPS:
                if not self.region:
                    # Choice: fal's modify_region is optional, but a swap that does not say
                    # what to replace leaves the model guessing; we ask for it.
                    return "Say what to replace in the video (the region), like 'the red car'."
                if images > 1:
                    return "Pikaswaps takes at most one image: what goes in its place."
                if images == 0 and not prompt:
                    return "Give an image or a prompt for what goes in the region's place."
            case Tool.PIKAFRAMES:
                if not FRAMES_MIN <= images <= FRAMES_MAX:
                    return f"Pikaframes takes {FRAMES_MIN} to {FRAMES_MAX} keyframe images."
                if len(self.transitions) != images - 1:
                    return "Pikaframes needs one transition between each two keyframes."
                if not prompt:
                    # Choice: fal's global prompt is optional; without one (and without every
                    # transition's own) the frames are joined blindly, so we ask for it.
                    return "Describe the video Pikaframes should make between the keyframes."
                if self.seconds() > FRAMES_MAX_SECONDS:
                    return (
                        f"The transitions add up to {self.seconds()} s; Pikaframes makes at"
                        f" most {FRAMES_MAX_SECONDS} s."
                    )
        return None

    def seconds(self) -> int:
        """Pikaframes: the video's length, the sum of its transitions."""
        return sum(t.seconds for t in self.transitions)

    def texts(self) -> list[str]:
        """What the member typed into the tool's own fields (for the server's blocklist)."""
        return [self.region or "", *(t.prompt or "" for t in self.transitions)]


# -- prices ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerVideo:
    """One price per video, whatever its settings."""

    usd: Decimal

    def price(self, inputs: ToolInputs, resolution: str) -> Decimal | None:
        """The price of one run."""
        return self.usd


@dataclass(frozen=True, slots=True)
class PerSecond:
    """A price per second of video by resolution (``"720p"``), with a billed minimum."""

    usd_per_second: Mapping[str, Decimal]
    min_seconds: int = 0

    def price(self, inputs: ToolInputs, resolution: str) -> Decimal | None:
        """The price of one run; None at a resolution the table has no rate for."""
        rate = self.usd_per_second.get(resolution)
        if rate is None:
            return None
        return rate * max(inputs.seconds(), self.min_seconds)


ToolPrice = PerVideo | PerSecond


def frames_transitions(
    count: int, prompts: tuple[str | None, ...] = (), seconds: tuple[int, ...] = ()
) -> tuple[Transition, ...]:
    """The ``count - 1`` transitions between ``count`` keyframes: each with its own prompt and
    length where given (else fal's default of 5 s and the video's prompt)."""
    between = max(count - 1, 0)
    return tuple(
        Transition(
            prompt=prompts[i] if i < len(prompts) else None,
            seconds=seconds[i] if i < len(seconds) else TRANSITION_SECONDS,
        )
        for i in range(between)
    )
