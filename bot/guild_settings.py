"""Each guild's rules as moderators set them, and the audit trail of every change.

A guild's policy is composed, in plain Python, from its stored row
(:class:`~bot.storage.records.GuildRow`), its role/channel/blocklist rules
(:class:`~bot.storage.records.GuildLists`) and the operator's defaults; the rows themselves are
kept by the storage backend's :class:`~bot.storage.base.GuildRepo`. A guild never seen before
gets a row with the operator's defaults the first time it is read. Every change made here
writes an audit row with the actor's id (a moderator's Discord id, or 0 for the operator's CLI)
and the value before and after, in the unit of work the change runs in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.clock import utcnow
from bot.config import Period
from bot.policy import GuildPolicy, RoleRule
from bot.reruns import RerunsBy
from bot.storage.base import NewGuild, UnitOfWork
from bot.storage.records import GUILD_COLUMNS, AuditEntry, GuildLists, GuildRow, RoleKind
from bot.tools import Pikaffect

__all__ = [
    "OPERATOR_ID",
    "AuditEntry",
    "GuildDefaults",
    "GuildSettings",
    "compose_policy",
    "micros_to_usd",
    "usd_to_micros",
]

OPERATOR_ID = 0
"""The actor id of changes made from the operator's CLI."""

USD_MICROS = Decimal(1_000_000)

_COLUMNS: dict[str, Callable[[object], object]] = {
    "allowance": lambda v: int(v),  # type: ignore[call-overload]
    "period": lambda v: Period(str(v)).value,
    "time_zone": lambda v: None if v is None else str(v),
    "reset_hour": lambda v: int(v),  # type: ignore[call-overload]
    "rollover": lambda v: bool(v),
    "member_cap": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "cooldown_seconds": lambda v: int(v),  # type: ignore[call-overload]
    "max_running": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "required_role_id": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "nsfw_only": lambda v: bool(v),
    "reruns_by": lambda v: RerunsBy(str(v)).value,
    "monthly_usd_cap_micros": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
}
"""The guild columns :meth:`GuildSettings.change` may write, with their conversion to the
:class:`~bot.storage.records.GuildRow` field's type."""

assert set(_COLUMNS) == set(GUILD_COLUMNS)


@dataclass(frozen=True, slots=True)
class GuildDefaults:
    """What a guild starts with, from the operator's settings."""

    allowance: int
    period: Period
    time_zone: str = "UTC"
    monthly_usd_cap: Decimal | None = None  # a ceiling: a guild's own cap can only be lower


def _text(value: object) -> str | None:
    """A value as the audit trail keeps it (flags as 1 and 0, as they always were)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def usd_to_micros(usd: Decimal) -> int:
    """USD as the integer millionths the database keeps."""
    return int(usd * USD_MICROS)


def micros_to_usd(micros: int) -> Decimal:
    """Stored millionths back to USD."""
    return Decimal(micros) / USD_MICROS


def compose_policy(row: GuildRow, lists: GuildLists, defaults: GuildDefaults) -> GuildPolicy:
    """The guild's policy: its own settings, its rules, and the operator's defaults where the
    guild has set nothing (the operator's USD cap is a ceiling over the guild's own)."""
    caps = [c for c in (defaults.monthly_usd_cap,) if c is not None]
    if row.monthly_usd_cap_micros is not None:
        caps.append(micros_to_usd(row.monthly_usd_cap_micros))
    return GuildPolicy(
        guild_id=row.guild_id,
        allowance=row.allowance,
        period=Period(row.period),
        time_zone=row.time_zone or defaults.time_zone,
        reset_hour=row.reset_hour,
        rollover=row.rollover,
        member_cap=row.member_cap,
        cooldown_seconds=row.cooldown_seconds,
        max_running=row.max_running,
        required_role_id=row.required_role_id,
        nsfw_only=row.nsfw_only,
        reruns_by=RerunsBy(row.reruns_by),
        monthly_usd_cap=min(caps) if caps else None,
        channels=frozenset(lists.channels),
        blocklist=tuple(lists.blocklist),
        roles=tuple(
            RoleRule(r.role_id, exempt=r.kind is RoleKind.EXEMPT, cap=r.cap)
            for r in sorted(lists.roles, key=lambda r: r.role_id)
        ),
        # An effect name this version does not know (fal dropped it) simply stays off.
        disabled_effects=frozenset(
            Pikaffect(name) for name in lists.disabled_effects if name in set(Pikaffect)
        ),
    )


class GuildSettings:
    """Read and change guild rules inside the caller's unit of work."""

    def __init__(self, defaults: GuildDefaults, clock: Callable[[], datetime] = utcnow) -> None:
        self.defaults = defaults
        self._clock = clock

    async def row(self, uow: UnitOfWork, guild_id: int) -> GuildRow:
        """The guild's stored row, created with the operator's defaults the first time."""
        new = NewGuild(self.defaults.allowance, self.defaults.period.value)
        return await uow.guilds.get_or_create(guild_id, new, self._clock())

    async def basics(self, uow: UnitOfWork, guild_id: int) -> GuildPolicy:
        """The guild's allowance, period and money settings only, in one read (for balances);
        its role, channel and blocklist rules are left empty."""
        return compose_policy(await self.row(uow, guild_id), GuildLists(), self.defaults)

    async def load(self, uow: UnitOfWork, guild_id: int) -> GuildPolicy:
        """The guild's policy (creating its row with the defaults if it has none)."""
        row = await self.row(uow, guild_id)
        return compose_policy(row, await uow.guilds.lists(guild_id), self.defaults)

    async def own_usd_cap(self, uow: UnitOfWork, guild_id: int) -> Decimal | None:
        """The cap a moderator set for the guild itself (before the operator's ceiling)."""
        micros = (await self.row(uow, guild_id)).monthly_usd_cap_micros
        return None if micros is None else micros_to_usd(micros)

    async def change(
        self,
        uow: UnitOfWork,
        guild_id: int,
        actor_id: int,
        changes: Mapping[str, object],
        *,
        reason: str | None = None,
    ) -> list[tuple[str, str | None, str | None]]:
        """Write guild columns; one audit row per value that really changed. Returns them."""
        row = await self.row(uow, guild_id)
        changed = []
        for column, value in changes.items():
            stored = _COLUMNS[column](value)
            current = getattr(row, column)
            if current == stored:
                continue
            await uow.guilds.update(guild_id, {column: stored}, self._clock())
            old, new = _text(current), _text(stored)
            await self.audit(uow, guild_id, actor_id, f"set {column}", old, new, reason)
            changed.append((column, old, new))
        return changed

    async def set_channel(
        self, uow: UnitOfWork, guild_id: int, actor_id: int, channel_id: int, *, allowed: bool
    ) -> bool:
        """Add a channel to the allow-list (or remove it); False if nothing changed."""
        await self.row(uow, guild_id)
        changed = await uow.guilds.set_channel(guild_id, channel_id, allowed=allowed)
        if changed:
            action = "allow channel" if allowed else "disallow channel"
            await self.audit(uow, guild_id, actor_id, action, None, str(channel_id))
        return changed

    async def clear_channels(self, uow: UnitOfWork, guild_id: int, actor_id: int) -> int:
        """Empty the allow-list (every channel works again); the number removed."""
        removed = await uow.guilds.clear_channels(guild_id)
        if removed:
            old = ",".join(str(c) for c in removed)
            await self.audit(uow, guild_id, actor_id, "clear channels", old, None)
        return len(removed)

    async def set_blocked(
        self, uow: UnitOfWork, guild_id: int, actor_id: int, pattern: str, *, blocked: bool
    ) -> bool:
        """Add a (validated) blocklist entry or remove one; False if nothing changed."""
        await self.row(uow, guild_id)
        changed = await uow.guilds.set_blocked(guild_id, pattern, blocked=blocked)
        if changed:
            action = "block" if blocked else "unblock"
            await self.audit(uow, guild_id, actor_id, action, None, pattern)
        return changed

    async def set_effect(
        self, uow: UnitOfWork, guild_id: int, actor_id: int, effect: Pikaffect, *, enabled: bool
    ) -> bool:
        """Turn a Pikaffect back on for the guild or off; False if nothing changed."""
        await self.row(uow, guild_id)
        changed = await uow.guilds.set_effect_disabled(guild_id, effect.value, disabled=not enabled)
        if changed:
            action = "enable effect" if enabled else "disable effect"
            await self.audit(uow, guild_id, actor_id, action, None, effect.value)
        return changed

    async def set_role(
        self,
        uow: UnitOfWork,
        guild_id: int,
        actor_id: int,
        role_id: int,
        *,
        exempt: bool = False,
        cap: int | None = None,
    ) -> None:
        """Make a role exempt from member limits, raise its cap, or (neither) drop its rule."""
        await self.row(uow, guild_id)
        before = await uow.guilds.role(guild_id, role_id)
        old = None if before is None else _role_text(before.kind, before.cap)
        new: str | None = None
        if exempt or cap is not None:
            kind = RoleKind.EXEMPT if exempt else RoleKind.RAISE
            stored_cap = None if exempt else cap
            await uow.guilds.set_role(guild_id, role_id, kind, stored_cap)
            new = _role_text(kind, stored_cap)
        else:
            await uow.guilds.set_role(guild_id, role_id, None, None)
        if old != new:
            await self.audit(uow, guild_id, actor_id, f"role {role_id}", old, new)

    async def audit(
        self,
        uow: UnitOfWork,
        guild_id: int,
        actor_id: int,
        action: str,
        old: str | None,
        new: str | None,
        reason: str | None = None,
    ) -> None:
        """Record one change made by ``actor_id``."""
        await uow.guilds.add_audit(guild_id, actor_id, action, old, new, reason, self._clock())

    async def audit_page(
        self, uow: UnitOfWork, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows newest first, and how many there are in all."""
        return await uow.guilds.audit_page(guild_id, offset=offset, limit=limit)


def _role_text(kind: RoleKind, cap: int | None) -> str:
    return "exempt" if kind is RoleKind.EXEMPT else f"cap {cap}"
