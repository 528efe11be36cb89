"""Guild settings, role/channel/blocklist/effect rules and the audit trail in PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from asyncpg import Record

from bot.storage.base import NewGuild
from bot.storage.postgres.types import Connection, aware
from bot.storage.records import (
    GUILD_COLUMNS,
    AuditEntry,
    GuildLists,
    GuildRow,
    RoleKind,
    RoleRow,
)

_GUILD_FIELDS = ", ".join(("guild_id", *GUILD_COLUMNS))
_AUDIT_FIELDS = "id, guild_id, actor_id, action, old_value, new_value, reason, created_at"


def _guild(row: Record) -> GuildRow:
    return GuildRow(**{name: row[name] for name in ("guild_id", *GUILD_COLUMNS)})


def _audit(row: Record) -> AuditEntry:
    return AuditEntry(**{name: row[name] for name in _AUDIT_FIELDS.split(", ")})


class PostgresGuilds:
    """:class:`~bot.storage.base.GuildRepo` on one connection inside its unit's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def get_or_create(self, guild_id: int, defaults: NewGuild, now: datetime) -> GuildRow:
        """The guild's row, inserted with ``defaults`` the first time it is asked for."""
        row = await self._db.fetchrow(
            f"SELECT {_GUILD_FIELDS} FROM guilds WHERE guild_id = $1", guild_id
        )
        if row is None:
            # ON CONFLICT: a concurrent unit without the guild lock may have inserted it.
            await self._db.execute(
                "INSERT INTO guilds (guild_id, allowance, period, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (guild_id) DO NOTHING",
                guild_id,
                defaults.allowance,
                defaults.period,
                aware(now),
            )
            row = await self._db.fetchrow(
                f"SELECT {_GUILD_FIELDS} FROM guilds WHERE guild_id = $1", guild_id
            )
            assert row is not None
        return _guild(row)

    async def lists(self, guild_id: int) -> GuildLists:
        """The guild's role rules (by role id), allowed channels and blocklist (sorted)."""
        roles = await self._db.fetch(
            "SELECT role_id, kind, cap FROM guild_roles WHERE guild_id = $1 ORDER BY role_id",
            guild_id,
        )
        channels = await self._db.fetch(
            "SELECT channel_id FROM guild_channels WHERE guild_id = $1", guild_id
        )
        blocklist = await self._db.fetch(
            'SELECT pattern FROM guild_blocklist WHERE guild_id = $1 ORDER BY pattern COLLATE "C"',
            guild_id,
        )
        effects = await self._db.fetch(
            "SELECT effect FROM guild_disabled_effects WHERE guild_id = $1"
            ' ORDER BY effect COLLATE "C"',
            guild_id,
        )
        return GuildLists(
            roles=tuple(RoleRow(r["role_id"], RoleKind(r["kind"]), r["cap"]) for r in roles),
            channels=frozenset(int(r["channel_id"]) for r in channels),
            blocklist=tuple(str(r["pattern"]) for r in blocklist),
            disabled_effects=tuple(str(r["effect"]) for r in effects),
        )

    async def update(self, guild_id: int, changes: Mapping[str, object], now: datetime) -> None:
        """Write columns of :data:`~bot.storage.records.GUILD_COLUMNS` (already validated)."""
        unknown = sorted(set(changes) - set(GUILD_COLUMNS))
        if unknown:
            raise ValueError(f"not guild columns: {', '.join(unknown)}")
        if not changes:
            return
        names = list(changes)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        await self._db.execute(
            f"UPDATE guilds SET {assignments}, updated_at = ${len(names) + 2} WHERE guild_id = $1",
            guild_id,
            *(_column_value(name, changes[name]) for name in names),
            aware(now),
        )

    async def set_channel(self, guild_id: int, channel_id: int, *, allowed: bool) -> bool:
        """Add a channel to the allow-list or remove it; False if it already was so."""
        if allowed:
            status = await self._db.execute(
                "INSERT INTO guild_channels (guild_id, channel_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                guild_id,
                channel_id,
            )
        else:
            status = await self._db.execute(
                "DELETE FROM guild_channels WHERE guild_id = $1 AND channel_id = $2",
                guild_id,
                channel_id,
            )
        return _count(status) > 0

    async def clear_channels(self, guild_id: int) -> list[int]:
        """Empty the allow-list; the channel ids removed, sorted."""
        rows = await self._db.fetch(
            "DELETE FROM guild_channels WHERE guild_id = $1 RETURNING channel_id", guild_id
        )
        return sorted(int(r["channel_id"]) for r in rows)

    async def set_blocked(self, guild_id: int, pattern: str, *, blocked: bool) -> bool:
        """Add a blocklist entry or remove it; False if it already was so."""
        if blocked:
            status = await self._db.execute(
                "INSERT INTO guild_blocklist (guild_id, pattern) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                guild_id,
                pattern,
            )
        else:
            status = await self._db.execute(
                "DELETE FROM guild_blocklist WHERE guild_id = $1 AND pattern = $2",
                guild_id,
                pattern,
            )
        return _count(status) > 0

    async def set_effect_disabled(self, guild_id: int, effect: str, *, disabled: bool) -> bool:
        """Turn a Pikaffect off on the guild or back on; False if it already was so."""
        if disabled:
            status = await self._db.execute(
                "INSERT INTO guild_disabled_effects (guild_id, effect) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                guild_id,
                effect,
            )
        else:
            status = await self._db.execute(
                "DELETE FROM guild_disabled_effects WHERE guild_id = $1 AND effect = $2",
                guild_id,
                effect,
            )
        return _count(status) > 0

    async def role(self, guild_id: int, role_id: int) -> RoleRow | None:
        """The rule for one role, if any."""
        row = await self._db.fetchrow(
            "SELECT role_id, kind, cap FROM guild_roles WHERE guild_id = $1 AND role_id = $2",
            guild_id,
            role_id,
        )
        return None if row is None else RoleRow(row["role_id"], RoleKind(row["kind"]), row["cap"])

    async def set_role(
        self, guild_id: int, role_id: int, kind: RoleKind | None, cap: int | None
    ) -> None:
        """Write the role's rule (insert or replace); ``kind=None`` deletes it."""
        if kind is None:
            await self._db.execute(
                "DELETE FROM guild_roles WHERE guild_id = $1 AND role_id = $2", guild_id, role_id
            )
            return
        await self._db.execute(
            "INSERT INTO guild_roles (guild_id, role_id, kind, cap) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (guild_id, role_id) DO UPDATE SET kind = excluded.kind,"
            " cap = excluded.cap",
            guild_id,
            role_id,
            RoleKind(kind).value,
            cap,
        )

    async def add_audit(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        old: str | None,
        new: str | None,
        reason: str | None,
        now: datetime,
    ) -> int:
        """Record one change; its id."""
        audit_id = await self._db.fetchval(
            "INSERT INTO audit (guild_id, actor_id, action, old_value, new_value, reason,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            guild_id,
            actor_id,
            action,
            old,
            new,
            reason,
            aware(now),
        )
        return int(audit_id)

    async def audit_page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows newest first, and how many the guild has in all."""
        total = await self._db.fetchval("SELECT COUNT(*) FROM audit WHERE guild_id = $1", guild_id)
        rows = await self._db.fetch(
            f"SELECT {_AUDIT_FIELDS} FROM audit WHERE guild_id = $1"
            " ORDER BY id DESC LIMIT $2 OFFSET $3",
            guild_id,
            limit,
            offset,
        )
        return [_audit(r) for r in rows], int(total)


def _column_value(name: str, value: object) -> object:
    """A validated value as its column takes it (booleans as booleans, enums as text)."""
    if name in ("rollover", "nsfw_only"):
        return bool(value)
    if name in ("period", "reruns_by", "time_zone") and value is not None:
        return str(value)
    return value


def _count(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 1`` or ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])
