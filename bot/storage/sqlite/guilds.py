"""GuildRepo over SQLite: the ``guilds``, ``guild_roles``, ``guild_channels``,
``guild_blocklist``, ``guild_disabled_effects`` and ``audit`` tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime

from bot.storage.base import NewGuild
from bot.storage.records import (
    GUILD_COLUMNS,
    AuditEntry,
    GuildLists,
    GuildRow,
    RoleKind,
    RoleRow,
)
from bot.storage.sqlite.connection import Connection, instant, iso

_BOOLEANS = frozenset({"rollover", "nsfw_only"})
_SELECT = f"SELECT guild_id, {', '.join(GUILD_COLUMNS)} FROM guilds WHERE guild_id = ?"


def _guild(row: sqlite3.Row) -> GuildRow:
    values = {column: row[column] for column in GUILD_COLUMNS}
    for column in _BOOLEANS:
        values[column] = bool(values[column])
    return GuildRow(guild_id=int(row["guild_id"]), **values)


def _stored(column: str, value: object) -> object:
    if column not in GUILD_COLUMNS:
        raise ValueError(f"not a guild setting: {column}")
    return int(bool(value)) if column in _BOOLEANS else value


class SqliteGuilds:
    """Guild settings, rules and audit inside one unit's transaction."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    async def get_or_create(self, guild_id: int, defaults: NewGuild, now: datetime) -> GuildRow:
        """The guild's row, inserted with ``defaults`` the first time it is asked for."""
        row = await self._db.fetch_one(_SELECT, (guild_id,))
        if row is None:
            stamp = iso(now)
            row = await self._db.fetch_one(
                "INSERT INTO guilds (guild_id, allowance, period, created_at, updated_at)"
                f" VALUES (?, ?, ?, ?, ?) RETURNING guild_id, {', '.join(GUILD_COLUMNS)}",
                (guild_id, defaults.allowance, defaults.period, stamp, stamp),
            )
            assert row is not None
        return _guild(row)

    async def lists(self, guild_id: int) -> GuildLists:
        """The guild's role rules (by role id), allowed channels and blocklist (sorted)."""
        roles = await self._db.fetch_all(
            "SELECT role_id, kind, cap FROM guild_roles WHERE guild_id = ? ORDER BY role_id",
            (guild_id,),
        )
        channels = await self._db.fetch_all(
            "SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,)
        )
        blocklist = await self._db.fetch_all(
            "SELECT pattern FROM guild_blocklist WHERE guild_id = ? ORDER BY pattern",
            (guild_id,),
        )
        effects = await self._db.fetch_all(
            "SELECT effect FROM guild_disabled_effects WHERE guild_id = ? ORDER BY effect",
            (guild_id,),
        )
        return GuildLists(
            roles=tuple(_role(r) for r in roles),
            channels=frozenset(int(r["channel_id"]) for r in channels),
            blocklist=tuple(str(r["pattern"]) for r in blocklist),
            disabled_effects=tuple(str(r["effect"]) for r in effects),
        )

    async def update(self, guild_id: int, changes: Mapping[str, object], now: datetime) -> None:
        """Write columns of :data:`~bot.storage.records.GUILD_COLUMNS` (already validated)."""
        values = [_stored(column, value) for column, value in changes.items()]
        if not values:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        await self._db.execute(
            f"UPDATE guilds SET {assignments}, updated_at = ? WHERE guild_id = ?",
            (*values, iso(now), guild_id),
        )

    async def set_channel(self, guild_id: int, channel_id: int, *, allowed: bool) -> bool:
        """Add a channel to the allow-list or remove it; False if it already was so."""
        if allowed:
            sql = (
                "INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING RETURNING channel_id"
            )
        else:
            sql = (
                "DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?"
                " RETURNING channel_id"
            )
        return bool(await self._db.fetch_all(sql, (guild_id, channel_id)))

    async def clear_channels(self, guild_id: int) -> list[int]:
        """Empty the allow-list; the channel ids removed, sorted."""
        rows = await self._db.fetch_all(
            "DELETE FROM guild_channels WHERE guild_id = ? RETURNING channel_id", (guild_id,)
        )
        return sorted(int(r["channel_id"]) for r in rows)

    async def set_blocked(self, guild_id: int, pattern: str, *, blocked: bool) -> bool:
        """Add a blocklist entry or remove it; False if it already was so."""
        if blocked:
            sql = (
                "INSERT INTO guild_blocklist (guild_id, pattern) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING RETURNING pattern"
            )
        else:
            sql = "DELETE FROM guild_blocklist WHERE guild_id = ? AND pattern = ? RETURNING pattern"
        return bool(await self._db.fetch_all(sql, (guild_id, pattern)))

    async def set_effect_disabled(self, guild_id: int, effect: str, *, disabled: bool) -> bool:
        """Turn a Pikaffect off on the guild or back on; False if it already was so."""
        if disabled:
            sql = (
                "INSERT INTO guild_disabled_effects (guild_id, effect) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING RETURNING effect"
            )
        else:
            sql = (
                "DELETE FROM guild_disabled_effects WHERE guild_id = ? AND effect = ?"
                " RETURNING effect"
            )
        return bool(await self._db.fetch_all(sql, (guild_id, effect)))

    async def role(self, guild_id: int, role_id: int) -> RoleRow | None:
        """The rule for one role, if any."""
        row = await self._db.fetch_one(
            "SELECT role_id, kind, cap FROM guild_roles WHERE guild_id = ? AND role_id = ?",
            (guild_id, role_id),
        )
        return None if row is None else _role(row)

    async def set_role(
        self, guild_id: int, role_id: int, kind: RoleKind | None, cap: int | None
    ) -> None:
        """Write the role's rule (insert or replace); ``kind=None`` deletes it."""
        if kind is None:
            await self._db.execute(
                "DELETE FROM guild_roles WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
            )
            return
        await self._db.execute(
            "INSERT INTO guild_roles (guild_id, role_id, kind, cap) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (guild_id, role_id) DO UPDATE SET kind = excluded.kind,"
            " cap = excluded.cap",
            (guild_id, role_id, RoleKind(kind).value, cap),
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
        return await self._db.insert(
            "INSERT INTO audit (guild_id, actor_id, action, old_value, new_value, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (guild_id, actor_id, action, old, new, reason, iso(now)),
        )

    async def audit_page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows newest first, and how many the guild has in all."""
        total = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM audit WHERE guild_id = ?", (guild_id,)
        )
        rows = await self._db.fetch_all(
            "SELECT id, guild_id, actor_id, action, old_value, new_value, reason, created_at"
            " FROM audit WHERE guild_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
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
                created_at=instant(r["created_at"]),
            )
            for r in rows
        ]
        return entries, int(total["n"]) if total else 0


def _role(row: sqlite3.Row) -> RoleRow:
    cap = row["cap"]
    return RoleRow(int(row["role_id"]), RoleKind(row["kind"]), None if cap is None else int(cap))
