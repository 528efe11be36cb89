"""Each guild's rules as moderators set them, and the audit trail of every change.

Owns the SQL of the ``guilds``, ``guild_roles``, ``guild_channels``, ``guild_blocklist`` and
``audit`` tables. A guild never seen before gets a row with the operator's defaults the first
time it is read. Every change made here writes an ``audit`` row with the actor's id (a
moderator's Discord id, or 0 for the operator's CLI) and the value before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import aiosqlite

from bot.config import Period
from bot.policy import GuildPolicy, RoleRule
from bot.reruns import RerunsBy
from bot.store import Transaction, utcnow

OPERATOR_ID = 0
"""The actor id of changes made from the operator's CLI."""

USD_MICROS = Decimal(1_000_000)

_COLUMNS: dict[str, Callable[[object], object]] = {
    "allowance": lambda v: int(v),  # type: ignore[call-overload]
    "period": lambda v: Period(str(v)).value,
    "time_zone": lambda v: None if v is None else str(v),
    "reset_hour": lambda v: int(v),  # type: ignore[call-overload]
    "rollover": lambda v: int(bool(v)),
    "member_cap": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "cooldown_seconds": lambda v: int(v),  # type: ignore[call-overload]
    "max_running": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "required_role_id": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
    "nsfw_only": lambda v: int(bool(v)),
    "reruns_by": lambda v: RerunsBy(str(v)).value,
    "monthly_usd_cap_micros": lambda v: None if v is None else int(v),  # type: ignore[call-overload]
}
"""The guild columns :meth:`GuildSettings.change_in` may write, with their SQL conversion."""


@dataclass(frozen=True, slots=True)
class GuildDefaults:
    """What a guild starts with, from the operator's settings."""

    allowance: int
    period: Period
    time_zone: str = "UTC"
    monthly_usd_cap: Decimal | None = None  # a ceiling: a guild's own cap can only be lower


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to a guild's rules."""

    id: int
    guild_id: int
    actor_id: int
    action: str
    old_value: str | None
    new_value: str | None
    reason: str | None
    created_at: datetime


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def usd_to_micros(usd: Decimal) -> int:
    """USD as the integer millionths stored in SQLite."""
    return int(usd * USD_MICROS)


def micros_to_usd(micros: int) -> Decimal:
    """Stored millionths back to USD."""
    return Decimal(micros) / USD_MICROS


class GuildSettings:
    """Read and change guild rules inside the caller's transaction."""

    def __init__(self, defaults: GuildDefaults, clock: Callable[[], datetime] = utcnow) -> None:
        self.defaults = defaults
        self._clock = clock

    async def _row(self, db: Transaction, guild_id: int) -> aiosqlite.Row:
        row = await db.fetch_one("SELECT * FROM guilds WHERE guild_id = ?", (guild_id,))
        if row is None:
            now = self._clock().isoformat()
            await db.execute(
                "INSERT INTO guilds (guild_id, allowance, period, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (guild_id, self.defaults.allowance, self.defaults.period.value, now, now),
            )
            row = await db.fetch_one("SELECT * FROM guilds WHERE guild_id = ?", (guild_id,))
            assert row is not None
        return row

    async def basics_in(self, db: Transaction, guild_id: int) -> GuildPolicy:
        """The guild's allowance, period and money settings only, in one read (for balances);
        its role, channel and blocklist rules are left empty."""
        return self._policy(guild_id, await self._row(db, guild_id), [], [], [])

    async def load_in(self, db: Transaction, guild_id: int) -> GuildPolicy:
        """The guild's policy (creating its row with the defaults if it has none)."""
        row = await self._row(db, guild_id)
        roles = await db.fetch_all(
            "SELECT role_id, kind, cap FROM guild_roles WHERE guild_id = ? ORDER BY role_id",
            (guild_id,),
        )
        channels = await db.fetch_all(
            "SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,)
        )
        blocklist = await db.fetch_all(
            "SELECT pattern FROM guild_blocklist WHERE guild_id = ? ORDER BY pattern", (guild_id,)
        )
        return self._policy(guild_id, row, roles, channels, blocklist)

    def _policy(
        self,
        guild_id: int,
        row: aiosqlite.Row,
        roles: list[aiosqlite.Row],
        channels: list[aiosqlite.Row],
        blocklist: list[aiosqlite.Row],
    ) -> GuildPolicy:
        own_cap = row["monthly_usd_cap_micros"]
        caps = [c for c in (self.defaults.monthly_usd_cap,) if c is not None]
        if own_cap is not None:
            caps.append(micros_to_usd(int(own_cap)))
        return GuildPolicy(
            guild_id=guild_id,
            allowance=int(row["allowance"]),
            period=Period(row["period"]),
            time_zone=row["time_zone"] or self.defaults.time_zone,
            reset_hour=int(row["reset_hour"]),
            rollover=bool(row["rollover"]),
            member_cap=row["member_cap"],
            cooldown_seconds=int(row["cooldown_seconds"]),
            max_running=row["max_running"],
            required_role_id=row["required_role_id"],
            nsfw_only=bool(row["nsfw_only"]),
            reruns_by=RerunsBy(row["reruns_by"]),
            monthly_usd_cap=min(caps) if caps else None,
            channels=frozenset(int(r["channel_id"]) for r in channels),
            blocklist=tuple(str(r["pattern"]) for r in blocklist),
            roles=tuple(
                RoleRule(int(r["role_id"]), exempt=r["kind"] == "exempt", cap=r["cap"])
                for r in roles
            ),
        )

    async def own_usd_cap_in(self, db: Transaction, guild_id: int) -> Decimal | None:
        """The cap a moderator set for the guild itself (before the operator's ceiling)."""
        row = await self._row(db, guild_id)
        micros = row["monthly_usd_cap_micros"]
        return None if micros is None else micros_to_usd(int(micros))

    async def change_in(
        self,
        db: Transaction,
        guild_id: int,
        actor_id: int,
        changes: Mapping[str, object],
        *,
        reason: str | None = None,
    ) -> list[tuple[str, str | None, str | None]]:
        """Write guild columns; one audit row per value that really changed. Returns them."""
        row = await self._row(db, guild_id)
        changed = []
        for column, value in changes.items():
            stored = _COLUMNS[column](value)
            if row[column] == stored:
                continue
            await db.execute(
                f"UPDATE guilds SET {column} = ?, updated_at = ? WHERE guild_id = ?",
                (stored, self._clock().isoformat(), guild_id),
            )
            old, new = _text(row[column]), _text(stored)
            await self.audit_in(db, guild_id, actor_id, f"set {column}", old, new, reason)
            changed.append((column, old, new))
        return changed

    async def set_channel_in(
        self, db: Transaction, guild_id: int, actor_id: int, channel_id: int, *, allowed: bool
    ) -> bool:
        """Add a channel to the allow-list (or remove it); False if nothing changed."""
        await self._row(db, guild_id)
        if allowed:
            changed = await db.execute(
                "INSERT OR IGNORE INTO guild_channels (guild_id, channel_id) VALUES (?, ?)",
                (guild_id, channel_id),
            )
        else:
            changed = await db.execute(
                "DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?",
                (guild_id, channel_id),
            )
        if changed:
            action = "allow channel" if allowed else "disallow channel"
            await self.audit_in(db, guild_id, actor_id, action, None, str(channel_id))
        return bool(changed)

    async def clear_channels_in(self, db: Transaction, guild_id: int, actor_id: int) -> int:
        """Empty the allow-list (every channel works again); the number removed."""
        rows = await db.fetch_all(
            "SELECT channel_id FROM guild_channels WHERE guild_id = ? ORDER BY channel_id",
            (guild_id,),
        )
        if rows:
            await db.execute("DELETE FROM guild_channels WHERE guild_id = ?", (guild_id,))
            old = ",".join(str(r["channel_id"]) for r in rows)
            await self.audit_in(db, guild_id, actor_id, "clear channels", old, None)
        return len(rows)

    async def set_blocked_in(
        self, db: Transaction, guild_id: int, actor_id: int, pattern: str, *, blocked: bool
    ) -> bool:
        """Add a (validated) blocklist entry or remove one; False if nothing changed."""
        await self._row(db, guild_id)
        if blocked:
            changed = await db.execute(
                "INSERT OR IGNORE INTO guild_blocklist (guild_id, pattern) VALUES (?, ?)",
                (guild_id, pattern),
            )
        else:
            changed = await db.execute(
                "DELETE FROM guild_blocklist WHERE guild_id = ? AND pattern = ?",
                (guild_id, pattern),
            )
        if changed:
            action = "block" if blocked else "unblock"
            await self.audit_in(db, guild_id, actor_id, action, None, pattern)
        return bool(changed)

    async def set_role_in(
        self,
        db: Transaction,
        guild_id: int,
        actor_id: int,
        role_id: int,
        *,
        exempt: bool = False,
        cap: int | None = None,
    ) -> None:
        """Make a role exempt from member limits, raise its cap, or (neither) drop its rule."""
        await self._row(db, guild_id)
        before = await db.fetch_one(
            "SELECT kind, cap FROM guild_roles WHERE guild_id = ? AND role_id = ?",
            (guild_id, role_id),
        )
        old = None if before is None else _role_text(before["kind"], before["cap"])
        if exempt or cap is not None:
            kind = "exempt" if exempt else "raise"
            await db.execute(
                "INSERT INTO guild_roles (guild_id, role_id, kind, cap) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (guild_id, role_id) DO UPDATE SET kind = excluded.kind,"
                " cap = excluded.cap",
                (guild_id, role_id, kind, None if exempt else cap),
            )
            new: str | None = _role_text(kind, None if exempt else cap)
        else:
            await db.execute(
                "DELETE FROM guild_roles WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
            )
            new = None
        if old != new:
            await self.audit_in(db, guild_id, actor_id, f"role {role_id}", old, new)

    async def audit_in(
        self,
        db: Transaction,
        guild_id: int,
        actor_id: int,
        action: str,
        old: str | None,
        new: str | None,
        reason: str | None = None,
    ) -> None:
        """Record one change made by ``actor_id``."""
        await db.execute(
            "INSERT INTO audit (guild_id, actor_id, action, old_value, new_value, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, actor_id, action, old, new, reason, self._clock().isoformat()),
        )

    async def audit_page_in(
        self, db: Transaction, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows newest first, and how many there are in all."""
        total = await db.fetch_one(
            "SELECT COUNT(*) AS n FROM audit WHERE guild_id = ?", (guild_id,)
        )
        rows = await db.fetch_all(
            "SELECT * FROM audit WHERE guild_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (guild_id, limit, offset),
        )
        entries = [
            AuditEntry(
                id=int(r["id"]),
                guild_id=int(r["guild_id"]),
                actor_id=int(r["actor_id"]),
                action=str(r["action"]),
                old_value=r["old_value"],
                new_value=r["new_value"],
                reason=r["reason"],
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
        ]
        return entries, int(total["n"]) if total else 0


def _role_text(kind: str, cap: int | None) -> str:
    return "exempt" if kind == "exempt" else f"cap {cap}"
