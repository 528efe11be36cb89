"""The plain values the storage repositories take and give: rows as typed, frozen dataclasses.

No behaviour and no SQL: the domain (quotas, moderation, admission, the job service) builds its
rules on these, and each backend maps them to its own tables. Money is kept as integer
millionths of a USD (``usd_micros``) and credits as integers, so both backends store them
exactly; instants are timezone-aware UTC ``datetime``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LedgerKind(StrEnum):
    """Why a ledger row moved a guild's balance."""

    RESERVE = "reserve"  # negative: credits held for a job
    CHARGE = "charge"  # zero: a held reservation became spend
    REFUND = "refund"  # positive: a held reservation came back
    GRANT = "grant"  # positive: a moderator's extra credits
    RESET = "reset"  # either way: a moderator started the period over
    ROLLOVER = "rollover"  # positive: the previous period's unused credits carried in
    ADJUST = "adjust"  # either way: a moderator's ``set`` moved the balance


class ReservationState(StrEnum):
    """A reservation is held until it ends, once, charged or refunded."""

    HELD = "held"
    CHARGED = "charged"
    REFUNDED = "refunded"


class RoleKind(StrEnum):
    """What a role rule does: lift the member limits, or raise the member cap."""

    EXEMPT = "exempt"
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class GuildRow:
    """One guild's own settings, as stored (``None``: the operator's default applies)."""

    guild_id: int
    allowance: int
    period: str  # daily | weekly | monthly
    time_zone: str | None = None
    reset_hour: int = 0
    rollover: bool = False
    member_cap: int | None = None
    cooldown_seconds: int = 0
    max_running: int | None = None
    required_role_id: int | None = None
    nsfw_only: bool = False
    reruns_by: str = "anyone"  # anyone | requester
    monthly_usd_cap_micros: int | None = None


GUILD_COLUMNS = (
    "allowance",
    "period",
    "time_zone",
    "reset_hour",
    "rollover",
    "member_cap",
    "cooldown_seconds",
    "max_running",
    "required_role_id",
    "nsfw_only",
    "reruns_by",
    "monthly_usd_cap_micros",
)
"""The :class:`GuildRow` fields a moderator's change may write (everything but the id)."""


@dataclass(frozen=True, slots=True)
class RoleRow:
    """A role rule of a guild."""

    role_id: int
    kind: RoleKind
    cap: int | None = None  # for RAISE: the member cap for holders of the role


@dataclass(frozen=True, slots=True)
class GuildLists:
    """A guild's role rules, allowed channels (none: every channel) and blocklist."""

    roles: tuple[RoleRow, ...] = ()
    channels: frozenset[int] = frozenset()
    blocklist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to a guild's rules, by ``actor_id`` (0: the operator's CLI)."""

    id: int
    guild_id: int
    actor_id: int
    action: str
    old_value: str | None
    new_value: str | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """A guild's running totals in one period, kept in step with every ledger row."""

    net: int = 0  # the sum of the period's ledger amounts
    granted: int = 0
    carried: int = 0  # rollover
    adjusted: int = 0  # reset and adjust
    reserved: int = 0  # reservations still held
    spent: int = 0  # reservations charged


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One credit movement."""

    id: int
    guild_id: int
    period_key: str
    kind: LedgerKind
    amount: int
    user_id: int | None
    actor_id: int | None
    reservation_id: int | None
    job_id: int | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReservationRow:
    """Credits held for one job until charged or refunded."""

    id: int
    guild_id: int
    user_id: int
    period_key: str
    amount: int
    usd_micros: int
    state: ReservationState
    created_at: datetime
    settled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberSpend:
    """One member's spend in a period (held or charged), for usage reports."""

    user_id: int
    credits: int
    usd_micros: int
    jobs: int


@dataclass(frozen=True, slots=True)
class WaitingJob:
    """A job in the bot's own line: PENDING, not holding a slot, and not orphaned."""

    job_id: int
    guild_id: int
    queued_at: datetime  # when it was created: its place in its guild's line


@dataclass(frozen=True, slots=True)
class LineSnapshot:
    """The whole bot's line at one instant, across every process sharing the database."""

    waiting: tuple[WaitingJob, ...]  # oldest first
    running: dict[int, int]  # guild id -> its unfinished jobs holding a slot
    last_start: dict[int, datetime]  # guild id -> its latest slot taken (guilds in line only)
