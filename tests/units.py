"""Test-side callers of the domain over a real :class:`~bot.storage.base.Storage`.

:class:`Credits` is what the job service and the moderators do in production: open one unit of
work per operation, lock the guild, call :class:`~bot.quotas.Quotas` in it. The readers below
go through the repositories, so the same assertions hold on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from bot.pricing import Quote
from bot.quotas import Balance, Quotas, Reservation
from bot.storage.base import Storage
from bot.storage.records import AuditEntry, LedgerEntry, LedgerKind, ReservationState

ALL = 1_000_000


class Credits:
    """:class:`Quotas` with one locked unit of work per call."""

    def __init__(self, storage: Storage, quotas: Quotas) -> None:
        self.storage = storage
        self.quotas = quotas

    async def balance(self, guild_id: int) -> Balance:
        """The guild's balance now."""
        async with self.storage.unit() as uow:
            await uow.lock_guild(guild_id)
            return await self.quotas.balance(uow, guild_id)

    async def reserve(self, guild_id: int, user_id: int, quote: Quote) -> Reservation:
        """Hold credits, or raise InsufficientCredits."""
        async with self.storage.unit() as uow:
            await uow.lock_guild(guild_id)
            return await self.quotas.reserve(uow, guild_id, user_id, quote)

    async def charge(self, reservation_id: int, *, job_id: int | None = None) -> bool:
        """Charge a held reservation."""
        async with self.storage.unit() as uow:
            return await self.quotas.charge(uow, reservation_id, job_id=job_id)

    async def refund(
        self, reservation_id: int, *, job_id: int | None = None, reason: str = ""
    ) -> bool:
        """Refund a held reservation."""
        async with self.storage.unit() as uow:
            return await self.quotas.refund(uow, reservation_id, job_id=job_id, reason=reason)

    async def grant(self, guild_id: int, amount: int, *, actor_id: int, reason: str) -> Balance:
        """Add credits to the current period."""
        async with self.storage.unit() as uow:
            await uow.lock_guild(guild_id)
            return await self.quotas.grant(uow, guild_id, amount, actor_id=actor_id, reason=reason)


async def ledger_rows(storage: Storage, guild_id: int) -> list[LedgerEntry]:
    """Every ledger row of the guild, oldest first."""
    async with storage.read() as uow:
        rows, _ = await uow.ledger.page(guild_id, offset=0, limit=ALL)
    return list(reversed(rows))


async def audit_rows(storage: Storage, guild_id: int) -> list[AuditEntry]:
    """Every audit row of the guild, oldest first."""
    async with storage.read() as uow:
        rows, _ = await uow.guilds.audit_page(guild_id, offset=0, limit=ALL)
    return list(reversed(rows))


async def reservation_states(storage: Storage, *guild_ids: int) -> list[ReservationState]:
    """The state of each of the guilds' reservations, guild by guild, oldest first."""
    ids = []
    for guild_id in guild_ids:
        rows = await ledger_rows(storage, guild_id)
        ids += [r.reservation_id for r in rows if r.kind is LedgerKind.RESERVE]
    states = []
    async with storage.read() as uow:
        for rid in ids:
            assert rid is not None
            reservation = await uow.ledger.reservation(rid)
            assert reservation is not None
            states.append(reservation.state)
    return states


async def totals_match_rows(storage: Storage, guild_ids: Iterable[int]) -> bool:
    """The running totals the backend keeps equal the sums re-derived from the ledger's rows
    and the reservations' states."""
    for guild_id in guild_ids:
        rows = await ledger_rows(storage, guild_id)
        derived: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        async with storage.read() as uow:
            for row in rows:
                sums = derived[row.period_key]
                sums[0] += row.amount
                if row.kind is LedgerKind.GRANT:
                    sums[1] += row.amount
                if row.kind is LedgerKind.RESERVE:
                    assert row.reservation_id is not None
                    held = await uow.ledger.reservation(row.reservation_id)
                    assert held is not None
                    if held.state is ReservationState.HELD:
                        sums[2] += held.amount
                    elif held.state is ReservationState.CHARGED:
                        sums[3] += held.amount
            for key, (net, granted, reserved, spent) in derived.items():
                kept = await uow.ledger.totals(guild_id, key)
                if (kept.net, kept.granted, kept.reserved, kept.spent) != (
                    net,
                    granted,
                    reserved,
                    spent,
                ):
                    return False
    return True
