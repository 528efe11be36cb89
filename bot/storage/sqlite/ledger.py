"""LedgerRepo over SQLite: ``reservations``, ``ledger`` and ``period_totals`` kept in step.

Each write that moves credits writes its ledger row and its change to the period's totals
here, in the caller's transaction, with the same values the triggers of migration 0004 wrote
(dropped by 0006): a hold is a ``reserve`` row of minus the amount by the member, a charge a
zero row, a refund the amount back; totals count ``net`` (the sum of the rows), grants,
rollovers, resets and adjustments, what is still held and what was charged.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.storage.records import (
    LedgerEntry,
    LedgerKind,
    MemberSpend,
    PeriodTotals,
    ReservationRow,
    ReservationState,
)
from bot.storage.sqlite.connection import Connection, instant, iso, maybe_instant

_TOTALS = ("net", "granted", "carried", "adjusted", "reserved", "spent")
_RESERVATION = (
    "id, guild_id, user_id, period_key, amount, usd_micros, state, created_at, settled_at"
)
_LEDGER = (
    "id, guild_id, period_key, kind, amount, user_id, actor_id, reservation_id, job_id,"
    " reason, created_at"
)
_ADD_TOTALS = (
    "INSERT INTO period_totals (guild_id, period_key, net, granted, carried, adjusted, reserved,"
    " spent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id, period_key) DO UPDATE SET"
    " net = net + excluded.net, granted = granted + excluded.granted,"
    " carried = carried + excluded.carried, adjusted = adjusted + excluded.adjusted,"
    " reserved = reserved + excluded.reserved, spent = spent + excluded.spent"
)
_INSERT_LEDGER = (
    "INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, actor_id, reservation_id,"
    " job_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


def movement_totals(kind: LedgerKind, amount: int) -> PeriodTotals:
    """What one moderator's or the period's own movement adds to the totals."""
    return PeriodTotals(
        net=amount,
        granted=amount if kind is LedgerKind.GRANT else 0,
        carried=amount if kind is LedgerKind.ROLLOVER else 0,
        adjusted=amount if kind in (LedgerKind.RESET, LedgerKind.ADJUST) else 0,
    )


class SqliteLedger:
    """Credit movements inside one unit's transaction."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    async def _add(self, guild_id: int, period_key: str, change: PeriodTotals) -> None:
        values = tuple(getattr(change, name) for name in _TOTALS)
        await self._db.execute(_ADD_TOTALS, (guild_id, period_key, *values))

    async def totals(self, guild_id: int, period_key: str) -> PeriodTotals:
        """The period's running totals (all zero for a period with no rows)."""
        row = await self._db.fetch_one(
            f"SELECT {', '.join(_TOTALS)} FROM period_totals WHERE guild_id = ? AND period_key = ?",
            (guild_id, period_key),
        )
        if row is None:
            return PeriodTotals()
        return PeriodTotals(**{name: int(row[name]) for name in _TOTALS})

    async def has_movement(self, guild_id: int, period_key: str, kind: LedgerKind) -> bool:
        """Whether the period has a row of ``kind`` (say, its rollover was already carried)."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM ledger WHERE guild_id = ? AND period_key = ? AND kind = ? LIMIT 1",
            (guild_id, period_key, LedgerKind(kind).value),
        )
        return row is not None

    async def move(
        self,
        guild_id: int,
        period_key: str,
        kind: LedgerKind,
        amount: int,
        *,
        actor_id: int | None,
        reason: str | None,
        now: datetime,
    ) -> int:
        """A moderator's or the period's own movement (grant, reset, adjust, rollover); id."""
        kind = LedgerKind(kind)
        if kind in (LedgerKind.RESERVE, LedgerKind.CHARGE, LedgerKind.REFUND):
            raise ValueError(f"{kind.value} rows are written by hold and settle")
        entry_id = await self._db.insert(
            _INSERT_LEDGER,
            (
                guild_id,
                period_key,
                kind.value,
                amount,
                None,
                actor_id,
                None,
                None,
                reason,
                iso(now),
            ),
        )
        await self._add(guild_id, period_key, movement_totals(kind, amount))
        return entry_id

    async def hold(
        self,
        guild_id: int,
        user_id: int,
        period_key: str,
        amount: int,
        usd_micros: int,
        now: datetime,
    ) -> int:
        """Hold credits: a reservation, its ``reserve`` row and the totals; its id."""
        stamp = iso(now)
        reservation_id = await self._db.insert(
            "INSERT INTO reservations (guild_id, user_id, period_key, amount, usd_micros, state,"
            " created_at) VALUES (?, ?, ?, ?, ?, 'held', ?) RETURNING id",
            (guild_id, user_id, period_key, amount, usd_micros, stamp),
        )
        await self._db.execute(
            _INSERT_LEDGER,
            (
                guild_id,
                period_key,
                LedgerKind.RESERVE.value,
                -amount,
                user_id,
                user_id,
                reservation_id,
                None,
                None,
                stamp,
            ),
        )
        await self._add(guild_id, period_key, PeriodTotals(net=-amount, reserved=amount))
        return reservation_id

    async def settle(
        self,
        reservation_id: int,
        state: ReservationState,
        *,
        job_id: int | None,
        reason: str,
        now: datetime,
    ) -> ReservationRow | None:
        """End a held reservation (charged or refunded) with its ledger row and totals; the
        reservation as it was, or None (and no change) if it had already ended."""
        state = ReservationState(state)
        if state is ReservationState.HELD:
            raise ValueError("a reservation is settled as charged or refunded")
        stamp = iso(now)
        row = await self._db.fetch_one(
            "UPDATE reservations SET state = ?, settled_at = ? WHERE id = ? AND state = 'held'"
            " RETURNING id, guild_id, user_id, period_key, amount, usd_micros, created_at",
            (state.value, stamp, reservation_id),
        )
        if row is None:
            return None
        held = ReservationRow(
            id=int(row["id"]),
            guild_id=int(row["guild_id"]),
            user_id=int(row["user_id"]),
            period_key=str(row["period_key"]),
            amount=int(row["amount"]),
            usd_micros=int(row["usd_micros"]),
            state=ReservationState.HELD,
            created_at=instant(row["created_at"]),
        )
        charged = state is ReservationState.CHARGED
        kind, amount = (LedgerKind.CHARGE, 0) if charged else (LedgerKind.REFUND, held.amount)
        await self._db.execute(
            _INSERT_LEDGER,
            (
                held.guild_id,
                held.period_key,
                kind.value,
                amount,
                held.user_id,
                None,
                reservation_id,
                job_id,
                reason or None,
                stamp,
            ),
        )
        change = PeriodTotals(
            net=amount, reserved=-held.amount, spent=held.amount if charged else 0
        )
        await self._add(held.guild_id, held.period_key, change)
        return held

    async def reservation(self, reservation_id: int) -> ReservationRow | None:
        """One reservation."""
        row = await self._db.fetch_one(
            f"SELECT {_RESERVATION} FROM reservations WHERE id = ?", (reservation_id,)
        )
        return None if row is None else _reservation(row)

    async def member_spent(self, guild_id: int, user_id: int, period_key: str) -> int:
        """Credits the member holds or spent in the period (refunds excluded)."""
        row = await self._db.fetch_one(
            "SELECT COALESCE(SUM(amount), 0) AS spent FROM reservations"
            " WHERE guild_id = ? AND period_key = ? AND user_id = ? AND state != 'refunded'",
            (guild_id, period_key, user_id),
        )
        return int(row["spent"]) if row else 0

    async def usd_spent(self, since: datetime, until: datetime, guild_id: int | None) -> int:
        """USD millionths held or charged in [since, until), one guild's or the bot's (None)."""
        sql = (
            "SELECT COALESCE(SUM(usd_micros), 0) AS micros FROM reservations"
            " WHERE state != 'refunded' AND created_at >= ? AND created_at < ?"
        )
        params: tuple[object, ...] = (iso(since), iso(until))
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params += (guild_id,)
        row = await self._db.fetch_one(sql, params)
        return int(row["micros"]) if row else 0

    async def usage(self, guild_id: int, period_key: str, limit: int) -> list[MemberSpend]:
        """The members who spent most in the period, most first (ties by user id)."""
        rows = await self._db.fetch_all(
            "SELECT user_id, SUM(amount) AS credits, SUM(usd_micros) AS micros,"
            " COUNT(*) AS jobs FROM reservations"
            " WHERE guild_id = ? AND period_key = ? AND state != 'refunded'"
            " GROUP BY user_id ORDER BY credits DESC, user_id LIMIT ?",
            (guild_id, period_key, limit),
        )
        return [
            MemberSpend(int(r["user_id"]), int(r["credits"]), int(r["micros"]), int(r["jobs"]))
            for r in rows
        ]

    async def page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[LedgerEntry], int]:
        """The guild's ledger rows newest first, and how many it has in all."""
        total = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM ledger WHERE guild_id = ?", (guild_id,)
        )
        rows = await self._db.fetch_all(
            f"SELECT {_LEDGER} FROM ledger WHERE guild_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (guild_id, limit, offset),
        )
        return [_entry(r) for r in rows], int(total["n"]) if total else 0


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        period_key=str(row["period_key"]),
        kind=LedgerKind(row["kind"]),
        amount=int(row["amount"]),
        user_id=_optional_int(row["user_id"]),
        actor_id=_optional_int(row["actor_id"]),
        reservation_id=_optional_int(row["reservation_id"]),
        job_id=_optional_int(row["job_id"]),
        reason=row["reason"],
        created_at=instant(row["created_at"]),
    )


def _reservation(row: sqlite3.Row) -> ReservationRow:
    return ReservationRow(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        user_id=int(row["user_id"]),
        period_key=str(row["period_key"]),
        amount=int(row["amount"]),
        usd_micros=int(row["usd_micros"]),
        state=ReservationState(row["state"]),
        created_at=instant(row["created_at"]),
        settled_at=maybe_instant(row["settled_at"]),
    )
