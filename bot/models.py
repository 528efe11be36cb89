"""The request, the job and their vocabularies: plain data shared by every layer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.text import clean_text, is_visible
from bot.tools import ToolInputs

PROMPT_MAX_CHARS = 1000
"""Pika's gateways accept long prompts, but an embed field holds 1024 characters."""
NEGATIVE_PROMPT_MAX_CHARS = 500
SEED_MAX = 2**31 - 1
"""Seeds are 32-bit signed on every provider we know of."""


class AspectRatio(StrEnum):
    """The aspect ratios every Pika endpoint accepts."""

    WIDE = "16:9"
    TALL = "9:16"
    SQUARE = "1:1"
    PORTRAIT = "4:5"
    LANDSCAPE = "5:4"
    PHOTO = "3:2"
    PHOTO_TALL = "2:3"


class Resolution(StrEnum):
    """Output resolutions."""

    HD = "720p"
    FULL_HD = "1080p"


class PikaModel(StrEnum):
    """Pika model generations offered by the gateways."""

    V2_2 = "2.2"
    V2_1 = "2.1"
    V2_TURBO = "2-turbo"

    @property
    def label(self) -> str:
        """Human name, as members know it."""
        return {"2.2": "Pika 2.2", "2.1": "Pika 2.1", "2-turbo": "Pika 2 Turbo"}[self.value]


class Mode(StrEnum):
    """What the video starts from."""

    TEXT = "text"
    IMAGE = "image"
    SCENES = "scenes"


Duration = Literal[5, 10]
DURATIONS: tuple[int, ...] = (5, 10)


def random_seed() -> int:
    """A fresh seed, shown to the member so the clip can be reproduced."""
    return secrets.randbelow(SEED_MAX) + 1


class GenerationRequest(BaseModel):
    """Everything a provider needs to make one clip. Immutable and JSON-serialisable.

    ``tool`` is set for Pika's tools (Pikaffects, Pikadditions, Pikaswaps, Pikaframes, see
    :mod:`bot.tools`): their images are ``image_urls``, their own inputs are in ``tool``, and
    their prompt may be empty where the tool makes it optional. Model, mode, aspect and
    duration are then unused (Pikaframes uses the resolution).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(max_length=PROMPT_MAX_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=NEGATIVE_PROMPT_MAX_CHARS)
    aspect: AspectRatio = AspectRatio.WIDE
    duration: Duration = 5
    resolution: Resolution = Resolution.HD
    seed: int = Field(default_factory=random_seed, ge=0, le=SEED_MAX)
    model: PikaModel = PikaModel.V2_2
    mode: Mode = Mode.TEXT
    image_urls: tuple[str, ...] = ()
    ingredients_mode: Literal["creative", "precise"] | None = None
    tool: ToolInputs | None = None

    @field_validator("prompt")
    @classmethod
    def _clean_prompt(cls, value: str) -> str:
        value = clean_text(value)
        return value if is_visible(value) else ""

    @model_validator(mode="after")
    def _complete(self) -> GenerationRequest:
        if self.tool is None:
            if not self.prompt:
                raise ValueError("the prompt is empty")
            return self
        problem = self.tool.problem(images=len(self.image_urls), prompt=self.prompt)
        if problem is not None:
            raise ValueError(problem)
        return self

    def texts(self) -> list[str]:
        """Everything the member typed that the provider sees (for the server's blocklist)."""
        typed = [self.prompt, self.negative_prompt or ""]
        return typed + (self.tool.texts() if self.tool is not None else [])

    @field_validator("negative_prompt")
    @classmethod
    def _blank_negative_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = clean_text(value)
        return value if is_visible(value) else None


class JobState(StrEnum):
    """Where a job is. Each state is persisted before the side effect that follows it."""

    PENDING = "pending"  # credits reserved, row written, not yet sent to the provider
    SUBMITTING = "submitting"  # the submit may be in flight: it may or may not have arrived
    QUEUED = "queued"  # the provider accepted it and holds it in its queue
    GENERATING = "generating"
    DOWNLOADING = "downloading"
    FITTING = "fitting"  # made to fit the upload limit and play inline (bot.video)
    POSTING = "posting"
    DELIVERED = "delivered"  # terminal: video posted, credits charged
    FAILED = "failed"  # terminal: credits refunded, reason shown
    CANCELLED = "cancelled"  # terminal: credits refunded

    @property
    def terminal(self) -> bool:
        """True once nothing more will happen to the job."""
        return self in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED)


class OriginKind(StrEnum):
    """Which front end a job belongs to; no other front end ever shows it."""

    DISCORD = "discord"
    TERMINAL = "terminal"  # ``pikabot generate``: no channel, the video goes to a file


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: a Discord channel, or the terminal (ids all zero)."""

    guild_id: int
    channel_id: int
    user_id: int
    user_name: str = ""
    kind: OriginKind = OriginKind.DISCORD

    @classmethod
    def terminal(cls) -> Origin:
        """The origin of a ``pikabot generate`` run."""
        return cls(
            guild_id=0, channel_id=0, user_id=0, user_name="terminal", kind=OriginKind.TERMINAL
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's live state as a presenter shows it."""

    state: JobState
    queue_position: int | None = None
    detail: str | None = None  # a short, user-safe line such as the provider's last log


@dataclass(slots=True)
class Job:
    """One persisted generation job."""

    id: int
    origin: Origin
    request: GenerationRequest
    provider: str
    cost: int
    reservation_id: int | None
    state: JobState
    created_at: datetime
    updated_at: datetime
    status_message_id: int | None = None
    provider_handle: dict[str, str] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result_message_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
