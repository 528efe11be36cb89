"""Credits: each guild's allowance per period, and a ledger of every movement.

A guild's balance is never stored; it is derived from the ledger: the allowance of the current
period plus the sum of that period's rows (reserve negative, refund positive, grant and reset
positive, charge zero). A reservation is made, checked and recorded inside one exclusive
transaction, so concurrent requests can never spend more than the balance.

Each reservation ends exactly once: ``charge`` and ``refund`` only act on a reservation that is
still held, so repeating either (after a restart, say) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from bot.config import Period
from bot.periods import next_reset, period_key
from bot.pricing import Quote
from bot.store import Store, Transaction, utcnow

log = structlog.get_logger(__name__)

TERMINAL_GUILD = 0
"""The guild id of ``pikabot generate``: the operator's own runs are recorded, never capped."""


@dataclass(frozen=True, slots=True)
class Balance:
    """A guild's credits in the current period."""

    guild_id: int
    allowance: int
    period: Period
    period_key: str
    reserved: int  # held by jobs still running
    spent: int  # charged for delivered videos
    granted: int  # extra credits given by moderators this period
    remaining: int
    resets_at: datetime


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held for one job until it is charged or refunded."""

    id: int
    guild_id: int
    user_id: int
    amount: int
    period_key: str


class InsufficientCredits(Exception):
    """The guild cannot afford the request; nothing was reserved."""

    def __init__(self, cost: int, balance: Balance) -> None:
        super().__init__(f"cost {cost} > remaining {balance.remaining}")
        self.cost = cost
        self.balance = balance


class Quotas:
    """Reserve, charge, refund and grant credits in the ledger."""

    def __init__(
        self,
        store: Store,
        *,
        default_allowance: int,
        default_period: Period,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._default_allowance = default_allowance
        self._default_period = default_period
        self._clock = clock

    async def balance(self, guild_id: int) -> Balance:
        """The guild's balance now."""
        async with self._store.transaction() as db:
            return await self._balance(db, guild_id, self._clock())

    async def reserve(self, guild_id: int, user_id: int, quote: Quote) -> Reservation:
        """Hold ``quote.credits``; raise :class:`InsufficientCredits` when the balance is short."""
        async with self._store.transaction() as db:
            return await self.reserve_in(db, guild_id, user_id, quote)

    async def reserve_in(
        self, db: Transaction, guild_id: int, user_id: int, quote: Quote
    ) -> Reservation:
        """:meth:`reserve` inside the caller's transaction (so the job row lands with it)."""
        now = self._clock()
        balance = await self._balance(db, guild_id, now)
        if guild_id != TERMINAL_GUILD and balance.remaining < quote.credits:
            raise InsufficientCredits(quote.credits, balance)
        reservation_id = await db.execute(
            "INSERT INTO reservations (guild_id, user_id, period_key, amount, usd_micros,"
            " state, created_at) VALUES (?, ?, ?, ?, ?, 'held', ?)",
            (
                guild_id,
                user_id,
                balance.period_key,
                quote.credits,
                int(quote.usd * Decimal(1_000_000)),
                now.isoformat(),
            ),
        )
        await db.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, actor_id,"
            " reservation_id, created_at) VALUES (?, ?, 'reserve', ?, ?, ?, ?, ?)",
            (
                guild_id,
                balance.period_key,
                -quote.credits,
                user_id,
                user_id,
                reservation_id,
                now.isoformat(),
            ),
        )
        log.info(
            "credits.reserved",
            guild_id=guild_id,
            user_id=user_id,
            reservation_id=reservation_id,
            amount=quote.credits,
        )
        return Reservation(reservation_id, guild_id, user_id, quote.credits, balance.period_key)

    async def charge(self, reservation_id: int, *, job_id: int | None = None) -> bool:
        """Turn a held reservation into spend. False (and no change) if it already ended."""
        async with self._store.transaction() as db:
            return await self.charge_in(db, reservation_id, job_id=job_id)

    async def refund(
        self, reservation_id: int, *, job_id: int | None = None, reason: str = ""
    ) -> bool:
        """Give a held reservation back. False (and no change) if it already ended."""
        async with self._store.transaction() as db:
            return await self.refund_in(db, reservation_id, job_id=job_id, reason=reason)

    async def charge_in(
        self, db: Transaction, reservation_id: int, *, job_id: int | None = None
    ) -> bool:
        """:meth:`charge` inside a caller's transaction (so a job's end is one atomic step)."""
        return await self._settle(db, reservation_id, "charged", job_id=job_id, reason="")

    async def refund_in(
        self,
        db: Transaction,
        reservation_id: int,
        *,
        job_id: int | None = None,
        reason: str = "",
    ) -> bool:
        """:meth:`refund` inside a caller's transaction."""
        return await self._settle(db, reservation_id, "refunded", job_id=job_id, reason=reason)

    async def grant(self, guild_id: int, amount: int, *, actor_id: int, reason: str) -> Balance:
        """Add ``amount`` credits to the guild's current period (moderators, operator CLI)."""
        if amount <= 0:
            raise ValueError("a grant must be positive")
        now = self._clock()
        async with self._store.transaction() as db:
            balance = await self._balance(db, guild_id, now)
            await db.execute(
                "INSERT INTO ledger (guild_id, period_key, kind, amount, actor_id, reason,"
                " created_at) VALUES (?, ?, 'grant', ?, ?, ?, ?)",
                (guild_id, balance.period_key, amount, actor_id, reason, now.isoformat()),
            )
            after = await self._balance(db, guild_id, now)
        log.info("credits.granted", guild_id=guild_id, amount=amount, actor_id=actor_id)
        return after

    async def _settle(
        self, db: Transaction, reservation_id: int, state: str, *, job_id: int | None, reason: str
    ) -> bool:
        now = self._clock().isoformat()
        row = await db.fetch_one(
            "SELECT guild_id, user_id, period_key, amount FROM reservations"
            " WHERE id = ? AND state = 'held'",
            (reservation_id,),
        )
        if row is None:
            return False
        await db.execute(
            "UPDATE reservations SET state = ?, settled_at = ? WHERE id = ? AND state = 'held'",
            (state, now, reservation_id),
        )
        kind, amount = ("charge", 0) if state == "charged" else ("refund", int(row["amount"]))
        await db.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, reservation_id,"
            " job_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["guild_id"],
                row["period_key"],
                kind,
                amount,
                row["user_id"],
                reservation_id,
                job_id,
                reason or None,
                now,
            ),
        )
        log.info(
            f"credits.{state}",
            guild_id=row["guild_id"],
            reservation_id=reservation_id,
            job_id=job_id,
            amount=int(row["amount"]),
        )
        return True

    async def _guild_policy(self, db: Transaction, guild_id: int) -> tuple[int, Period]:
        row = await db.fetch_one(
            "SELECT allowance, period FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        if row is None:
            now = self._clock().isoformat()
            await db.execute(
                "INSERT INTO guilds (guild_id, allowance, period, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (guild_id, self._default_allowance, self._default_period.value, now, now),
            )
            return self._default_allowance, self._default_period
        return int(row["allowance"]), Period(row["period"])

    async def _balance(self, db: Transaction, guild_id: int, now: datetime) -> Balance:
        allowance, period = await self._guild_policy(db, guild_id)
        key = period_key(period, now)
        row = await db.fetch_one(
            "SELECT"
            " COALESCE(SUM(amount), 0) AS net,"
            " COALESCE(SUM(CASE WHEN kind IN ('grant', 'reset') THEN amount END), 0) AS granted"
            " FROM ledger WHERE guild_id = ? AND period_key = ?",
            (guild_id, key),
        )
        held = await db.fetch_one(
            "SELECT"
            " COALESCE(SUM(CASE WHEN state = 'held' THEN amount END), 0) AS reserved,"
            " COALESCE(SUM(CASE WHEN state = 'charged' THEN amount END), 0) AS spent"
            " FROM reservations WHERE guild_id = ? AND period_key = ?",
            (guild_id, key),
        )
        net = int(row["net"]) if row else 0
        return Balance(
            guild_id=guild_id,
            allowance=allowance,
            period=period,
            period_key=key,
            reserved=int(held["reserved"]) if held else 0,
            spent=int(held["spent"]) if held else 0,
            granted=int(row["granted"]) if row else 0,
            remaining=allowance + net,
            resets_at=next_reset(period, now),
        )
