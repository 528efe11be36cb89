"""The credit ledger: reservations, settlement exactly once, no overspend under contention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Period
from bot.periods import next_reset, period_key
from bot.pricing import Quote
from bot.quotas import TERMINAL_GUILD, InsufficientCredits, Quotas
from bot.storage import Storage, open_storage
from bot.storage.records import LedgerKind
from tests.units import Credits, ledger_rows, totals_match_rows

GUILD = 1001


def q(credits: int) -> Quote:
    return Quote(credits=credits, usd=Decimal(credits) / 100)


async def test_quotas_new_guild_gets_default_allowance(credits: Credits):
    """A guild never seen before starts with the default allowance."""
    balance = await credits.balance(GUILD)
    assert balance.allowance == 100
    assert balance.remaining == 100
    assert balance.reserved == 0 and balance.spent == 0


async def test_quotas_reserve_then_charge_spends(credits: Credits):
    """A charged reservation stays spent."""
    reservation = await credits.reserve(GUILD, 7, q(30))
    assert (await credits.balance(GUILD)).remaining == 70
    assert await credits.charge(reservation.id) is True
    balance = await credits.balance(GUILD)
    assert balance.remaining == 70
    assert balance.spent == 30 and balance.reserved == 0


async def test_quotas_refund_gives_credits_back(credits: Credits):
    """A refunded reservation costs nothing."""
    reservation = await credits.reserve(GUILD, 7, q(30))
    assert await credits.refund(reservation.id, reason="failed") is True
    balance = await credits.balance(GUILD)
    assert balance.remaining == 100 and balance.spent == 0


async def test_quotas_settlement_happens_once(credits: Credits):
    """Charging or refunding an ended reservation again changes nothing."""
    reservation = await credits.reserve(GUILD, 7, q(30))
    assert await credits.charge(reservation.id)
    assert await credits.charge(reservation.id) is False
    assert await credits.refund(reservation.id) is False
    assert (await credits.balance(GUILD)).remaining == 70


async def test_quotas_insufficient_reserves_nothing(credits: Credits):
    """A request over the balance is refused with the figures and leaves no trace."""
    await credits.reserve(GUILD, 7, q(90))
    with pytest.raises(InsufficientCredits) as refused:
        await credits.reserve(GUILD, 8, q(20))
    assert refused.value.cost == 20
    assert refused.value.balance.remaining == 10
    rows = await ledger_rows(credits.storage, GUILD)
    assert [r.kind for r in rows] == [LedgerKind.RESERVE]


async def test_quotas_grant_raises_balance(credits: Credits):
    """A grant adds to this period's balance and is recorded with its actor."""
    balance = await credits.grant(GUILD, 50, actor_id=99, reason="event night")
    assert balance.remaining == 150 and balance.granted == 50
    (row,) = [r for r in await ledger_rows(credits.storage, GUILD) if r.kind is LedgerKind.GRANT]
    assert row.actor_id == 99 and row.reason == "event night"


async def test_quotas_terminal_guild_is_never_capped(credits: Credits):
    """The operator's terminal runs are recorded but not limited by an allowance."""
    for _ in range(3):
        await credits.reserve(TERMINAL_GUILD, 0, q(90))
    assert (await credits.balance(TERMINAL_GUILD)).reserved == 270


async def test_quotas_concurrent_reservations_never_overspend(credits: Credits):
    """Fifty simultaneous 7-credit requests against 100 credits: exactly 14 succeed."""

    async def attempt(user: int) -> bool:
        try:
            await credits.reserve(GUILD, user, q(7))
        except InsufficientCredits:
            return False
        return True

    results = await asyncio.gather(*(attempt(u) for u in range(50)))
    assert sum(results) == 14
    assert (await credits.balance(GUILD)).remaining == 2


async def test_quotas_two_connections_never_overspend(storage_url: str):
    """Two processes' connections on one database (bot and operator CLI, or two bot
    processes) cannot overspend either."""
    first, second = await open_storage(storage_url), await open_storage(storage_url)
    try:
        a = Credits(first, Quotas(default_allowance=100, default_period=Period.DAILY))
        b = Credits(second, Quotas(default_allowance=100, default_period=Period.DAILY))

        async def attempt(quotas: Credits, user: int) -> bool:
            try:
                await quotas.reserve(GUILD, user, q(10))
            except InsufficientCredits:
                return False
            return True

        results = await asyncio.gather(*(attempt(a if u % 2 else b, u) for u in range(30)))
        assert sum(results) == 10
        assert (await a.balance(GUILD)).remaining == 0
    finally:
        await first.close()
        await second.close()


async def test_quotas_new_period_starts_from_allowance(storage: Storage):
    """Spending in one day does not carry over to the next."""
    now = [datetime(2026, 11, 21, 23, 59, tzinfo=UTC)]
    quotas = Credits(
        storage, Quotas(default_allowance=100, default_period=Period.DAILY, clock=lambda: now[0])
    )
    reservation = await quotas.reserve(GUILD, 7, q(60))
    await quotas.charge(reservation.id)
    assert (await quotas.balance(GUILD)).remaining == 40
    now[0] += timedelta(minutes=2)
    balance = await quotas.balance(GUILD)
    assert balance.remaining == 100
    assert balance.resets_at == datetime(2026, 11, 23, tzinfo=UTC)


async def test_quotas_refund_after_period_change_returns_to_old_period(storage: Storage):
    """A job reserved before midnight and refunded after it does not inflate the new day."""
    now = [datetime(2026, 11, 21, 23, 59, tzinfo=UTC)]
    quotas = Credits(
        storage, Quotas(default_allowance=100, default_period=Period.DAILY, clock=lambda: now[0])
    )
    reservation = await quotas.reserve(GUILD, 7, q(60))
    now[0] += timedelta(minutes=2)
    await quotas.refund(reservation.id)
    assert (await quotas.balance(GUILD)).remaining == 100


@pytest.mark.parametrize(
    ("period", "when", "key", "reset"),
    [
        (
            Period.DAILY,
            datetime(2026, 11, 21, 8, tzinfo=UTC),
            "2026-11-21",
            datetime(2026, 11, 22, tzinfo=UTC),
        ),
        (
            Period.WEEKLY,
            datetime(2026, 11, 21, 8, tzinfo=UTC),
            "2026-W47",
            datetime(2026, 11, 23, tzinfo=UTC),
        ),
        (
            Period.MONTHLY,
            datetime(2026, 12, 31, 23, tzinfo=UTC),
            "2026-12",
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_periods_key_and_reset(period: Period, when: datetime, key: str, reset: datetime):
    """Period labels and the next reset instant, across a year boundary too."""
    assert period_key(period, when) == key
    assert next_reset(period, when) == reset


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 60)),
        st.tuples(st.just("charge"), st.integers(0, 20)),
        st.tuples(st.just("refund"), st.integers(0, 20)),
        st.tuples(st.just("grant"), st.integers(1, 50)),
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_quotas_ledger_matches_a_simple_model(storage_url: str, ops):
    """No sequence of reserve, charge, refund and grant makes the balance wrong or negative."""
    # One database for every example of the run, each example on a guild of its own.
    GUILDS[0] += 1
    guild = GUILDS[0]

    async def scenario() -> None:
        store = await open_storage(storage_url)
        try:
            quotas = Credits(store, Quotas(default_allowance=100, default_period=Period.DAILY))
            remaining, held, spent = 100, {}, 0
            reservations: list[int] = []
            for op, value in ops:
                if op == "reserve":
                    if value > remaining:
                        with pytest.raises(InsufficientCredits):
                            await quotas.reserve(guild, 1, q(value))
                        continue
                    r = await quotas.reserve(guild, 1, q(value))
                    reservations.append(r.id)
                    held[r.id] = value
                    remaining -= value
                elif op in ("charge", "refund") and reservations:
                    rid = reservations[value % len(reservations)]
                    was_held = rid in held
                    if op == "charge":
                        assert await quotas.charge(rid) is was_held
                        if was_held:
                            spent += held.pop(rid)
                    else:
                        assert await quotas.refund(rid) is was_held
                        if was_held:
                            remaining += held.pop(rid)
                elif op == "grant":
                    await quotas.grant(guild, value, actor_id=2, reason="test")
                    remaining += value
                balance = await quotas.balance(guild)
                assert balance.remaining == remaining >= 0
                assert balance.reserved == sum(held.values())
                assert balance.spent == spent
            assert await totals_match_rows(store, [guild])
        finally:
            await store.close()

    asyncio.run(scenario())


GUILDS = [GUILD]


async def test_quotas_reserve_sees_period_changes_made_elsewhere(credits: Credits):
    """After a period change made elsewhere, the next reservation follows the new period."""
    await credits.reserve(GUILD, 1, q(10))
    await credits.reserve(GUILD, 1, q(10))
    async with credits.storage.unit() as uow:
        await uow.guilds.update(GUILD, {"period": "monthly"}, credits.quotas.clock())
    reservation = await credits.reserve(GUILD, 1, q(10))
    assert "W" not in reservation.period_key and len(reservation.period_key) == 7  # 2026-11
    assert (await credits.balance(GUILD)).remaining == 90
    assert await totals_match_rows(credits.storage, [GUILD])
