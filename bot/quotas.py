"""Credits: each guild's allowance per period, and a ledger of every movement.

A guild's balance is never stored; it is derived from the ledger: the allowance of the current
period plus the sum of that period's rows (reserve negative, refund positive, charge zero,
grant and rollover positive, reset and adjust either way). The rule is written once, in
:meth:`Quotas.balance`; the running totals it reads are kept by the storage backend's
:class:`~bot.storage.base.LedgerRepo` in step with every row it writes. A reservation is made,
checked and recorded inside one unit of work that has locked the guild, so concurrent requests
(also from other processes sharing the database) can never spend more than the balance.

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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from bot.clock import utcnow
from bot.config import Period
from bot.guild_settings import GuildDefaults, GuildSettings, micros_to_usd, usd_to_micros
from bot.periods import next_reset, period_key, previous_key
from bot.policy import GuildPolicy
from bot.pricing import Quote
from bot.storage.base import UnitOfWork
from bot.storage.records import LedgerEntry, LedgerKind, ReservationRow, ReservationState

__all__ = [
    "TERMINAL_GUILD",
    "Balance",
    "InsufficientCredits",
    "LedgerEntry",
    "MemberSpend",
    "Quotas",
    "Reservation",
]

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
    """Reserve, charge, refund and grant credits in the ledger, inside the caller's unit.

    Every method takes the :class:`~bot.storage.base.UnitOfWork` it runs in; the caller opens
    it (and locks the guild first where a rule must not be raced).
    """

    def __init__(
        self,
        *,
        default_allowance: int,
        default_period: Period,
        default_time_zone: str = "UTC",
        guild_usd_cap: Decimal | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self.guilds = GuildSettings(
            GuildDefaults(default_allowance, default_period, default_time_zone, guild_usd_cap),
            clock,
        )

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock every period and timestamp is taken from."""
        return self._clock

    async def balance(self, uow: UnitOfWork, guild_id: int) -> Balance:
        """The guild's balance now: the allowance plus the sum of the period's ledger rows.

        The one place the balance rule is written; the first look at a new period with
        rollover on carries the previous period's unused credits in.
        """
        now = self._clock()
        policy = await self.guilds.basics(uow, guild_id)
        tz = policy.tz
        key = period_key(policy.period, now, tz, policy.reset_hour)
        if policy.rollover and guild_id != TERMINAL_GUILD:
            await self._roll_over(uow, policy, key, now)
        totals = await uow.ledger.totals(guild_id, key)
        return Balance(
            guild_id=guild_id,
            allowance=policy.allowance,
            period=policy.period,
            period_key=key,
            reserved=totals.reserved,
            spent=totals.spent,
            granted=totals.granted,
            remaining=policy.allowance + totals.net,
            resets_at=next_reset(policy.period, now, tz, policy.reset_hour),
            carried=totals.carried,
            adjusted=totals.adjusted,
            time_zone=policy.time_zone,
            reset_hour=policy.reset_hour,
            rollover=policy.rollover,
        )

    async def reserve(
        self, uow: UnitOfWork, guild_id: int, user_id: int, quote: Quote
    ) -> Reservation:
        """Hold ``quote.credits``; raise :class:`InsufficientCredits` when the balance is short.

        Production reserves inside the unit that checks the guild's rules and writes the job
        row (:meth:`bot.jobs.JobService.create`), after locking the guild.
        """
        now = self._clock()
        balance = await self.balance(uow, guild_id)
        if guild_id != TERMINAL_GUILD and balance.remaining < quote.credits:
            raise InsufficientCredits(quote.credits, balance)
        reservation_id = await uow.ledger.hold(
            guild_id, user_id, balance.period_key, quote.credits, usd_to_micros(quote.usd), now
        )
        log.info(
            "credits.reserved",
            guild_id=guild_id,
            user_id=user_id,
            reservation_id=reservation_id,
            amount=quote.credits,
        )
        return Reservation(reservation_id, guild_id, user_id, quote.credits, balance.period_key)

    async def charge(
        self, uow: UnitOfWork, reservation_id: int, *, job_id: int | None = None
    ) -> bool:
        """Turn a held reservation into spend. False (and no change) if it already ended."""
        ended = await self.settle(uow, reservation_id, ReservationState.CHARGED, job_id=job_id)
        return ended is not None

    async def refund(
        self,
        uow: UnitOfWork,
        reservation_id: int,
        *,
        job_id: int | None = None,
        reason: str = "",
    ) -> bool:
        """Give a held reservation back. False (and no change) if it already ended."""
        ended = await self.settle(
            uow, reservation_id, ReservationState.REFUNDED, job_id=job_id, reason=reason
        )
        return ended is not None

    async def grant(
        self, uow: UnitOfWork, guild_id: int, amount: int, *, actor_id: int, reason: str
    ) -> Balance:
        """Add ``amount`` credits to the guild's current period (moderators, operator CLI)."""
        if amount <= 0:
            raise ValueError("a grant must be positive")
        after = await self.move(
            uow, guild_id, LedgerKind.GRANT, amount, actor_id=actor_id, reason=reason
        )
        log.info("credits.granted", guild_id=guild_id, amount=amount, actor_id=actor_id)
        return after

    async def reset(self, uow: UnitOfWork, guild_id: int, *, actor_id: int, reason: str) -> Balance:
        """Start the current period over: the balance becomes the allowance minus what running
        jobs hold (never below zero); one ``reset`` row records the difference."""
        balance = await self.balance(uow, guild_id)
        target = max(0, balance.allowance - balance.reserved)
        after = await self.move(
            uow,
            guild_id,
            LedgerKind.RESET,
            target - balance.remaining,
            actor_id=actor_id,
            reason=reason,
        )
        log.info("credits.reset", guild_id=guild_id, actor_id=actor_id, remaining=target)
        return after

    async def move(
        self,
        uow: UnitOfWork,
        guild_id: int,
        kind: LedgerKind,
        amount: int,
        *,
        actor_id: int | None,
        reason: str,
    ) -> Balance:
        """Write one moderator movement (grant, reset, rollover, adjust) in the current period;
        the balance after it."""
        balance = await self.balance(uow, guild_id)
        await uow.ledger.move(
            guild_id,
            balance.period_key,
            kind,
            amount,
            actor_id=actor_id,
            reason=reason,
            now=self._clock(),
        )
        return await self.balance(uow, guild_id)

    async def settle(
        self,
        uow: UnitOfWork,
        reservation_id: int,
        state: ReservationState,
        *,
        job_id: int | None = None,
        reason: str = "",
    ) -> ReservationRow | None:
        """End a held reservation as ``state`` (charged or refunded); the reservation as it
        ended (its amount and USD price, for the metrics), or None (and no change) if it had
        already ended."""
        ended = await uow.ledger.settle(
            reservation_id, state, job_id=job_id, reason=reason, now=self._clock()
        )
        if ended is None:
            return None
        log.info(
            f"credits.{state}",
            guild_id=ended.guild_id,
            reservation_id=reservation_id,
            job_id=job_id,
            amount=ended.amount,
        )
        return dataclasses.replace(ended, state=state)  # the repository's is the row before

    async def member_spent(self, uow: UnitOfWork, guild_id: int, user_id: int, key: str) -> int:
        """Credits the member holds or spent in the period ``key`` (refunds excluded)."""
        return await uow.ledger.member_spent(guild_id, user_id, key)

    async def usd_spent(
        self, uow: UnitOfWork, since: datetime, until: datetime, *, guild_id: int | None = None
    ) -> Decimal:
        """The provider's price of every clip held or delivered in [since, until), in USD;
        for one guild, or for the whole bot when ``guild_id`` is None."""
        return micros_to_usd(await uow.ledger.usd_spent(since, until, guild_id))

    async def usage(
        self, uow: UnitOfWork, guild_id: int, key: str, *, limit: int = 10
    ) -> list[MemberSpend]:
        """The members who spent most in the period ``key`` (held or charged), most first."""
        rows = await uow.ledger.usage(guild_id, key, limit)
        return [
            MemberSpend(r.user_id, r.credits, micros_to_usd(r.usd_micros), r.jobs) for r in rows
        ]

    async def ledger_page(
        self, uow: UnitOfWork, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[LedgerEntry], int]:
        """The guild's ledger rows newest first, and how many there are in all."""
        return await uow.ledger.page(guild_id, offset=offset, limit=limit)

    async def _roll_over(
        self, uow: UnitOfWork, policy: GuildPolicy, key: str, now: datetime
    ) -> None:
        """Carry the previous period's unused credits in, once per period (rollover on)."""
        if await uow.ledger.has_movement(policy.guild_id, key, LedgerKind.ROLLOVER):
            return
        before = previous_key(policy.period, now, policy.tz, policy.reset_hour)
        unused = policy.allowance + (await uow.ledger.totals(policy.guild_id, before)).net
        carried = min(max(unused, 0), policy.allowance)
        await uow.ledger.move(
            policy.guild_id,
            key,
            LedgerKind.ROLLOVER,
            carried,
            actor_id=None,
            reason=f"unused credits of {before}",
            now=now,
        )
        log.info("credits.rolled_over", guild_id=policy.guild_id, amount=carried, period=key)
