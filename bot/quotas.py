"""Credits: each guild's allowance per period, and a ledger of every movement.

A guild's balance is never stored; it is derived from the ledger: the allowance of the current
period plus the sum of that period's rows (reserve negative, refund positive, charge zero,
grant and rollover positive, reset and adjust either way). A reservation is made, checked and
recorded inside one exclusive transaction, so concurrent requests can never spend more than
the balance.

Rows that move the balance without a job:

* ``grant``: a moderator adds credits to the current period.
* ``reset``: a moderator starts the period over: the balance becomes the allowance minus what
  running jobs hold (so their refunds cannot push it above the allowance).
* ``rollover``: with rollover on, the first time a new period is looked at, the previous
  period's unused credits (at most one allowance) are carried in. Turning rollover on writes a
  zero rollover row for the current period, so carrying starts with the next one.
* ``adjust``: a moderator's ``set`` moved the balance (see :mod:`bot.moderation`).

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
from bot.guild_settings import GuildDefaults, GuildSettings, micros_to_usd
from bot.periods import next_reset, period_key, previous_key
from bot.policy import GuildPolicy
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
    carried: int = 0  # rolled over from the previous period
    adjusted: int = 0  # resets and adjustments by moderators this period
    time_zone: str = "UTC"
    reset_hour: int = 0
    rollover: bool = False


@dataclass(frozen=True, slots=True)
class MemberSpend:
    """One member's spend in a period (reserved or charged), for usage reports."""

    user_id: int
    credits: int
    usd: Decimal
    jobs: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One credit movement, as the audit view shows it."""

    id: int
    period_key: str
    kind: str
    amount: int
    user_id: int | None
    actor_id: int | None
    reservation_id: int | None
    job_id: int | None
    reason: str | None
    created_at: datetime


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
        default_time_zone: str = "UTC",
        guild_usd_cap: Decimal | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._clock = clock
        self.guilds = GuildSettings(
            GuildDefaults(default_allowance, default_period, default_time_zone, guild_usd_cap),
            clock,
        )

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock every period and timestamp is taken from."""
        return self._clock

    async def balance(self, guild_id: int) -> Balance:
        """The guild's balance now."""
        async with self._store.transaction() as db:
            return await self._balance(db, guild_id, self._clock())

    async def balance_in(self, db: Transaction, guild_id: int) -> Balance:
        """:meth:`balance` inside the caller's transaction."""
        return await self._balance(db, guild_id, self._clock())

    async def reserve(self, guild_id: int, user_id: int, quote: Quote) -> Reservation:
        """Hold ``quote.credits``; raise :class:`InsufficientCredits` when the balance is short.

        Production reserves with :meth:`reserve_in`, inside the transaction that checks the
        guild's rules and writes the job row (:meth:`bot.jobs.JobService.create`); this is the
        same step in a transaction of its own.
        """
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
        # The reservation's 'reserve' ledger row is written by its trigger (migration 0004).
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
        async with self._store.transaction() as db:
            return await self.grant_in(db, guild_id, amount, actor_id=actor_id, reason=reason)

    async def grant_in(
        self, db: Transaction, guild_id: int, amount: int, *, actor_id: int, reason: str
    ) -> Balance:
        """:meth:`grant` inside the caller's transaction."""
        if amount <= 0:
            raise ValueError("a grant must be positive")
        after = await self.move_in(db, guild_id, "grant", amount, actor_id=actor_id, reason=reason)
        log.info("credits.granted", guild_id=guild_id, amount=amount, actor_id=actor_id)
        return after

    async def reset_in(
        self, db: Transaction, guild_id: int, *, actor_id: int, reason: str
    ) -> Balance:
        """Start the current period over: the balance becomes the allowance minus what running
        jobs hold (never below zero); one ``reset`` row records the difference."""
        balance = await self._balance(db, guild_id, self._clock())
        target = max(0, balance.allowance - balance.reserved)
        after = await self.move_in(
            db, guild_id, "reset", target - balance.remaining, actor_id=actor_id, reason=reason
        )
        log.info("credits.reset", guild_id=guild_id, actor_id=actor_id, remaining=target)
        return after

    async def move_in(
        self,
        db: Transaction,
        guild_id: int,
        kind: str,
        amount: int,
        *,
        actor_id: int | None,
        reason: str,
    ) -> Balance:
        """Write one moderator movement (grant, reset, rollover, adjust) in the current period."""
        now = self._clock()
        balance = await self._balance(db, guild_id, now)
        await db.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, actor_id, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, balance.period_key, kind, amount, actor_id, reason, now.isoformat()),
        )
        return await self._balance(db, guild_id, now)

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

    async def member_spent_in(self, db: Transaction, guild_id: int, user_id: int, key: str) -> int:
        """Credits the member holds or spent in the period ``key`` (refunds excluded)."""
        row = await db.fetch_one(
            "SELECT COALESCE(SUM(amount), 0) AS spent FROM reservations"
            " WHERE guild_id = ? AND period_key = ? AND user_id = ? AND state != 'refunded'",
            (guild_id, key, user_id),
        )
        return int(row["spent"]) if row else 0

    async def usd_spent_in(
        self, db: Transaction, since: datetime, until: datetime, *, guild_id: int | None = None
    ) -> Decimal:
        """The provider's price of every clip held or delivered in [since, until), in USD;
        for one guild, or for the whole bot when ``guild_id`` is None."""
        sql = (
            "SELECT COALESCE(SUM(usd_micros), 0) AS micros FROM reservations"
            " WHERE state != 'refunded' AND created_at >= ? AND created_at < ?"
        )
        params: tuple[object, ...] = (since.isoformat(), until.isoformat())
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params += (guild_id,)
        row = await db.fetch_one(sql, params)
        return micros_to_usd(int(row["micros"]) if row else 0)

    async def usage_in(
        self, db: Transaction, guild_id: int, key: str, *, limit: int = 10
    ) -> list[MemberSpend]:
        """The members who spent most in the period ``key`` (held or charged), most first."""
        rows = await db.fetch_all(
            "SELECT user_id, SUM(amount) AS credits, SUM(usd_micros) AS micros,"
            " COUNT(*) AS jobs FROM reservations"
            " WHERE guild_id = ? AND period_key = ? AND state != 'refunded'"
            " GROUP BY user_id ORDER BY credits DESC, user_id LIMIT ?",
            (guild_id, key, limit),
        )
        return [
            MemberSpend(
                int(r["user_id"]),
                int(r["credits"]),
                micros_to_usd(int(r["micros"])),
                int(r["jobs"]),
            )
            for r in rows
        ]

    async def ledger_page_in(
        self, db: Transaction, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[LedgerEntry], int]:
        """The guild's ledger rows newest first, and how many there are in all."""
        total = await db.fetch_one(
            "SELECT COUNT(*) AS n FROM ledger WHERE guild_id = ?", (guild_id,)
        )
        rows = await db.fetch_all(
            "SELECT * FROM ledger WHERE guild_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (guild_id, limit, offset),
        )
        entries = [
            LedgerEntry(
                id=int(r["id"]),
                period_key=str(r["period_key"]),
                kind=str(r["kind"]),
                amount=int(r["amount"]),
                user_id=r["user_id"],
                actor_id=r["actor_id"],
                reservation_id=r["reservation_id"],
                job_id=r["job_id"],
                reason=r["reason"],
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
        ]
        return entries, int(total["n"]) if total else 0

    async def _net(self, db: Transaction, guild_id: int, key: str) -> int:
        row = await db.fetch_one(
            "SELECT net FROM period_totals WHERE guild_id = ? AND period_key = ?",
            (guild_id, key),
        )
        return int(row["net"]) if row else 0

    async def _roll_over(
        self, db: Transaction, policy: GuildPolicy, key: str, now: datetime
    ) -> None:
        """Carry the previous period's unused credits in, once per period (rollover on)."""
        done = await db.fetch_one(
            "SELECT 1 FROM ledger WHERE guild_id = ? AND period_key = ? AND kind = 'rollover'",
            (policy.guild_id, key),
        )
        if done is not None:
            return
        before = previous_key(policy.period, now, policy.tz, policy.reset_hour)
        unused = policy.allowance + await self._net(db, policy.guild_id, before)
        carried = min(max(unused, 0), policy.allowance)
        await db.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, reason, created_at)"
            " VALUES (?, ?, 'rollover', ?, ?, ?)",
            (policy.guild_id, key, carried, f"unused credits of {before}", now.isoformat()),
        )
        log.info("credits.rolled_over", guild_id=policy.guild_id, amount=carried, period=key)

    async def _balance(self, db: Transaction, guild_id: int, now: datetime) -> Balance:
        policy = await self.guilds.basics_in(db, guild_id)
        tz = policy.tz
        key = period_key(policy.period, now, tz, policy.reset_hour)
        if policy.rollover and guild_id != TERMINAL_GUILD:
            await self._roll_over(db, policy, key, now)
        # One row kept by triggers (migration 0004) instead of sums over the period's rows.
        row = await db.fetch_one(
            "SELECT net, granted, carried, adjusted, reserved, spent FROM period_totals"
            " WHERE guild_id = ? AND period_key = ?",
            (guild_id, key),
        )
        held = row
        net = int(row["net"]) if row else 0
        return Balance(
            guild_id=guild_id,
            allowance=policy.allowance,
            period=policy.period,
            period_key=key,
            reserved=int(held["reserved"]) if held else 0,
            spent=int(held["spent"]) if held else 0,
            granted=int(row["granted"]) if row else 0,
            remaining=policy.allowance + net,
            resets_at=next_reset(policy.period, now, tz, policy.reset_hour),
            carried=int(row["carried"]) if row else 0,
            adjusted=int(row["adjusted"]) if row else 0,
            time_zone=policy.time_zone,
            reset_hour=policy.reset_hour,
            rollover=policy.rollover,
        )
