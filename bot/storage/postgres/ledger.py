"""Credits in PostgreSQL: ledger rows, reservations and period totals, written together.

Every method that moves credits writes its ledger row and the period's running totals in
the unit's transaction (the SQLite schema once did the same with triggers), in one statement
per movement (one round trip). The totals row is an upsert, so the first movement of a period
creates it even under concurrent units, and its additions never lose one another's.
"""

from __future__ import annotations

from datetime import datetime

from asyncpg import Record

from bot.storage.postgres.types import Connection, aware
from bot.storage.records import (
    LedgerEntry,
    LedgerKind,
    MemberSpend,
    PeriodTotals,
    ReservationRow,
    ReservationState,
)

_TOTALS = "net, granted, carried, adjusted, reserved, spent"
_RESERVATION_FIELDS = (
    "id, guild_id, user_id, period_key, amount, usd_micros, state, created_at, settled_at"
)
_LEDGER_FIELDS = (
    "id, guild_id, period_key, kind, amount, user_id, actor_id, reservation_id, job_id,"
    " reason, created_at"
)
_ON_CONFLICT_ADD = (
    " ON CONFLICT (guild_id, period_key) DO UPDATE SET"
    " net = period_totals.net + excluded.net,"
    " granted = period_totals.granted + excluded.granted,"
    " carried = period_totals.carried + excluded.carried,"
    " adjusted = period_totals.adjusted + excluded.adjusted,"
    " reserved = period_totals.reserved + excluded.reserved,"
    " spent = period_totals.spent + excluded.spent"
)
"""Add a movement's change to the period's totals row, creating it the first time."""

# Each write below is one statement (one round trip): its row, its ledger row and its change
# to the totals, in data-modifying CTEs that succeed or fail together.
_MOVE = (
    "WITH entry AS (INSERT INTO ledger (guild_id, period_key, kind, amount, actor_id, reason,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
    f" totals AS (INSERT INTO period_totals (guild_id, period_key, {_TOTALS})"
    " VALUES ($1, $2, $4, $8, $9, $10, 0, 0)"
    f"{_ON_CONFLICT_ADD})"
    " SELECT id FROM entry"
)
_HOLD = (
    "WITH held AS (INSERT INTO reservations (guild_id, user_id, period_key, amount, usd_micros,"
    " state, created_at) VALUES ($1, $2, $3, $4, $5, 'held', $6) RETURNING id),"
    " entry AS (INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, actor_id,"
    " reservation_id, created_at) SELECT $1, $3, 'reserve', -$4::BIGINT, $2, $2, id, $6"
    " FROM held),"
    f" totals AS (INSERT INTO period_totals (guild_id, period_key, {_TOTALS})"
    f" VALUES ($1, $3, -$4::BIGINT, 0, 0, 0, $4, 0){_ON_CONFLICT_ADD})"
    " SELECT id FROM held"
)
# READ COMMITTED: a second unit settling the same reservation waits for the first's row lock,
# then finds it no longer held and changes nothing.
_SETTLE = (
    "WITH ended AS (UPDATE reservations SET state = $2, settled_at = $3"
    " WHERE id = $1 AND state = 'held'"
    " RETURNING id, guild_id, user_id, period_key, amount, usd_micros, created_at),"
    " entry AS (INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, reservation_id,"
    " job_id, reason, created_at) SELECT guild_id, period_key, $4,"
    " CASE WHEN $2 = 'refunded' THEN amount ELSE 0 END, user_id, id, $5, $6, $3 FROM ended),"
    f" totals AS (INSERT INTO period_totals (guild_id, period_key, {_TOTALS})"
    " SELECT guild_id, period_key, CASE WHEN $2 = 'refunded' THEN amount ELSE 0 END,"
    " 0, 0, 0, -amount, CASE WHEN $2 = 'charged' THEN amount ELSE 0 END FROM ended"
    f"{_ON_CONFLICT_ADD})"
    " SELECT id, guild_id, user_id, period_key, amount, usd_micros, created_at FROM ended"
)
_MOVES = (LedgerKind.GRANT, LedgerKind.RESET, LedgerKind.ROLLOVER, LedgerKind.ADJUST)


def _reservation(row: Record) -> ReservationRow:
    return ReservationRow(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        period_key=row["period_key"],
        amount=row["amount"],
        usd_micros=row["usd_micros"],
        state=ReservationState(row["state"]),
        created_at=row["created_at"],
        settled_at=row["settled_at"],
    )


def _entry(row: Record) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        period_key=row["period_key"],
        kind=LedgerKind(row["kind"]),
        amount=row["amount"],
        user_id=row["user_id"],
        actor_id=row["actor_id"],
        reservation_id=row["reservation_id"],
        job_id=row["job_id"],
        reason=row["reason"],
        created_at=row["created_at"],
    )


class PostgresLedger:
    """:class:`~bot.storage.base.LedgerRepo` on one connection inside its unit's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def totals(self, guild_id: int, period_key: str) -> PeriodTotals:
        """The period's running totals (all zero for a period with no rows)."""
        row = await self._db.fetchrow(
            f"SELECT {_TOTALS} FROM period_totals WHERE guild_id = $1 AND period_key = $2",
            guild_id,
            period_key,
        )
        return PeriodTotals() if row is None else PeriodTotals(**dict(row.items()))

    async def has_movement(self, guild_id: int, period_key: str, kind: LedgerKind) -> bool:
        """Whether the period has a row of ``kind`` (say, its rollover was already carried)."""
        found = await self._db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ledger"
            " WHERE guild_id = $1 AND period_key = $2 AND kind = $3)",
            guild_id,
            period_key,
            LedgerKind(kind).value,
        )
        return bool(found)

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
        if kind not in _MOVES:
            raise ValueError(f"{kind.value} is not a movement (hold and settle write those)")
        entry_id = await self._db.fetchval(
            _MOVE,
            guild_id,
            period_key,
            kind.value,
            amount,
            actor_id,
            reason,
            aware(now),
            amount if kind is LedgerKind.GRANT else 0,
            amount if kind is LedgerKind.ROLLOVER else 0,
            amount if kind in (LedgerKind.RESET, LedgerKind.ADJUST) else 0,
        )
        return int(entry_id)

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
        reservation_id = await self._db.fetchval(
            _HOLD, guild_id, user_id, period_key, amount, usd_micros, aware(now)
        )
        return int(reservation_id)

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
            raise ValueError("a reservation ends charged or refunded, not held")
        charged = state is ReservationState.CHARGED
        row = await self._db.fetchrow(
            _SETTLE,
            reservation_id,
            state.value,
            aware(now),
            (LedgerKind.CHARGE if charged else LedgerKind.REFUND).value,
            job_id,
            reason or None,
        )
        if row is None:
            return None
        held = ReservationRow(
            id=row["id"],
            guild_id=row["guild_id"],
            user_id=row["user_id"],
            period_key=row["period_key"],
            amount=row["amount"],
            usd_micros=row["usd_micros"],
            state=ReservationState.HELD,  # as it was
            created_at=row["created_at"],
        )
        return held

    async def reservation(self, reservation_id: int) -> ReservationRow | None:
        """One reservation."""
        row = await self._db.fetchrow(
            f"SELECT {_RESERVATION_FIELDS} FROM reservations WHERE id = $1", reservation_id
        )
        return None if row is None else _reservation(row)

    async def member_spent(self, guild_id: int, user_id: int, period_key: str) -> int:
        """Credits the member holds or spent in the period (refunds excluded)."""
        spent = await self._db.fetchval(
            "SELECT COALESCE(SUM(amount), 0) FROM reservations"
            " WHERE guild_id = $1 AND period_key = $2 AND user_id = $3 AND state != 'refunded'",
            guild_id,
            period_key,
            user_id,
        )
        return int(spent)

    async def usd_spent(self, since: datetime, until: datetime, guild_id: int | None) -> int:
        """USD millionths held or charged in [since, until), one guild's or the bot's (None)."""
        micros = await self._db.fetchval(
            "SELECT COALESCE(SUM(usd_micros), 0) FROM reservations"
            " WHERE state != 'refunded' AND created_at >= $1 AND created_at < $2"
            " AND ($3::BIGINT IS NULL OR guild_id = $3)",
            aware(since),
            aware(until),
            guild_id,
        )
        return int(micros)

    async def usage(self, guild_id: int, period_key: str, limit: int) -> list[MemberSpend]:
        """The members who spent most in the period, most first (ties by user id)."""
        rows = await self._db.fetch(
            "SELECT user_id, SUM(amount) AS credits, SUM(usd_micros) AS micros,"
            " COUNT(*) AS jobs FROM reservations"
            " WHERE guild_id = $1 AND period_key = $2 AND state != 'refunded'"
            " GROUP BY user_id ORDER BY credits DESC, user_id LIMIT $3",
            guild_id,
            period_key,
            limit,
        )
        return [
            MemberSpend(int(r["user_id"]), int(r["credits"]), int(r["micros"]), int(r["jobs"]))
            for r in rows
        ]

    async def page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[LedgerEntry], int]:
        """The guild's ledger rows newest first, and how many it has in all."""
        total = await self._db.fetchval("SELECT COUNT(*) FROM ledger WHERE guild_id = $1", guild_id)
        rows = await self._db.fetch(
            f"SELECT {_LEDGER_FIELDS} FROM ledger WHERE guild_id = $1"
            " ORDER BY id DESC LIMIT $2 OFFSET $3",
            guild_id,
            limit,
            offset,
        )
        return [_entry(r) for r in rows], int(total)
