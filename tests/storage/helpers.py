"""Values the storage contract tests share: a fixed clock, a guild's defaults, a job to insert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import GenerationRequest, Origin, OriginKind
from bot.storage.base import NewGuild, NewJob

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
"""Every test's instant (no test reads the machine's clock)."""

DEFAULTS = NewGuild(allowance=100, period="daily")
GUILD = 1_234_567_890_123_456_789  # a real-sized 64-bit snowflake
OTHER_GUILD = 42
USER = 987_654_321_098_765_432
OTHER_USER = 7
PERIOD = "2026-03-14"


def later(seconds: float) -> datetime:
    """``NOW`` plus ``seconds``."""
    return NOW + timedelta(seconds=seconds)


def new_job(
    guild_id: int = GUILD,
    user_id: int = USER,
    *,
    cost: int = 10,
    reservation_id: int | None = None,
    prompt: str = "a red fox in the snow",
    kind: OriginKind = OriginKind.DISCORD,
    extra: dict[str, str] | None = None,
    lease_owner: str | None = None,
    lease_until: datetime | None = None,
) -> NewJob:
    """A job to insert, PENDING, in channel 55 of ``guild_id``."""
    return NewJob(
        origin=Origin(guild_id, 55, user_id, "fox fan", kind),
        request=GenerationRequest(prompt=prompt, seed=7),
        provider="fal",
        cost=cost,
        reservation_id=reservation_id,
        extra=extra or {},
        lease_owner=lease_owner,
        lease_until=lease_until,
    )
