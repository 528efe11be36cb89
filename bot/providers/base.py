"""The contract every provider implements, and the data it exchanges with the job service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.models import AspectRatio, GenerationRequest, Mode, PikaModel, Resolution
from bot.pricing import PriceTable
from bot.tools import Tool


class StatusKind(StrEnum):
    """A provider's job state, reduced to what the job service acts on."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class ProviderHandle:
    """What we must keep to find a submitted job again, also after a restart.

    ``data`` holds provider-specific URLs or ids (fal's ``status_url``/``response_url``);
    it is stored as JSON in the job row, so keep values plain strings.
    """

    request_id: str
    data: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict for the job row."""
        return {"request_id": self.request_id, **self.data}

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> ProviderHandle:
        """Rebuild a handle from :meth:`to_json` output."""
        data = {k: v for k, v in raw.items() if k != "request_id"}
        return cls(request_id=raw["request_id"], data=data)


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """Where the finished video can be downloaded."""

    video_url: str
    content_type: str | None = None
    file_size: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """One observation of a submitted job.

    A ``COMPLETED`` status from :meth:`Provider.watch` always carries ``result``; a failed
    generation is raised as a :class:`~bot.providers.errors.ProviderError` instead.
    """

    kind: StatusKind
    queue_position: int | None = None
    logs: tuple[str, ...] = ()
    result: ProviderResult | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can make; front ends offer only this."""

    models: frozenset[PikaModel]
    modes: frozenset[Mode] = frozenset({Mode.TEXT})
    durations: frozenset[int] = frozenset({5, 10})
    resolutions: frozenset[Resolution] = frozenset(Resolution)
    aspects: frozenset[AspectRatio] = frozenset(AspectRatio)
    max_images: int = 0
    can_cancel: bool = False
    mode_models: Mapping[Mode, frozenset[PikaModel]] = field(default_factory=dict)
    """Modes offered only for some models (fal's Scenes: 2.2 only); absent = every model."""
    data_uri_images: bool = False
    """True where the provider's document says an image may be sent inline as a base64
    ``data:`` URI; elsewhere images must be URLs the provider can fetch."""
    tools: frozenset[Tool] = frozenset()
    """The Pika tools (:mod:`bot.tools`) the provider sells; their commands exist only here."""
    tool_resolutions: Mapping[Tool, frozenset[Resolution]] = field(default_factory=dict)
    """Resolutions a tool is offered in where it has the setting (Pikaframes)."""

    def unsupported(self, request: GenerationRequest) -> str | None:
        """A user-safe sentence naming what the request asks that this provider lacks."""
        if request.tool is not None:
            return self._tool_unsupported(request)
        if request.model not in self.models:
            return f"{request.model.label} is not available on this bot's video service."
        if request.mode not in self.modes:
            return f"This bot's video service cannot make {request.mode.value}-to-video clips."
        able = self.mode_models.get(request.mode, self.models)
        if request.model not in able:
            names = " or ".join(sorted(model.label for model in able))
            return (
                f"{request.model.label} cannot make {request.mode.value} clips here; use {names}."
            )
        if request.duration not in self.durations:
            return f"{request.duration}-second clips are not available here."
        if request.resolution not in self.resolutions:
            return f"{request.resolution.value} is not available here."
        if request.aspect not in self.aspects and request.mode is not Mode.IMAGE:
            return f"The {request.aspect.value} aspect ratio is not available here."
        if len(request.image_urls) > max(self.max_images, 0) and request.mode is not Mode.TEXT:
            return f"At most {self.max_images} images are accepted here."
        return None

    def _tool_unsupported(self, request: GenerationRequest) -> str | None:
        assert request.tool is not None
        tool = request.tool.kind
        if tool not in self.tools:
            return f"This bot's video service does not offer {tool.label}."
        resolutions = self.tool_resolutions.get(tool)
        if resolutions is not None and request.resolution not in resolutions:
            return f"{tool.label} is not available in {request.resolution.value} here."
        return None


class Provider(Protocol):
    """A text-to-video gateway. Implementations live one per module in ``bot/providers``."""

    name: str
    """Short id, as in ``PIKA_PROVIDER``."""
    capabilities: Capabilities
    poll_interval: float
    """Seconds between status requests; the provider's documented minimum or more."""
    prices: PriceTable
    """The provider's public prices, from its document."""

    async def submit(self, request: GenerationRequest) -> ProviderHandle:
        """Send the request; return once the provider has accepted it."""
        ...

    async def status(self, handle: ProviderHandle) -> ProviderStatus:
        """One status observation (no result fetch)."""
        ...

    def watch(self, handle: ProviderHandle) -> AsyncIterator[ProviderStatus]:
        """Yield observations until the job ends; the last one is COMPLETED with a result.

        Raises a ``ProviderError`` for a failed generation. Implementations choose how
        (polling at ``poll_interval``, a server-sent event stream, a blocking call).
        """
        ...

    async def cancel(self, handle: ProviderHandle) -> bool:
        """Ask the provider to drop the job; False where it cannot."""
        ...

    async def verify_key(self) -> bool | None:
        """Check the API key with one cheap authenticated call that creates nothing.

        True: the provider accepted the key; False: it refused it (401/403); None: the
        provider has no such call (nothing is sent). Outages raise a ``TransientError``, an
        empty account ``OutOfProviderCredits``, a rate limit ``RateLimited``.
        """
        ...
