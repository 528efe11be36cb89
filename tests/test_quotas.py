"""The credit ledger: reservations, settlement exactly once, no overspend under contention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Period
from bot.periods import next_reset, period_key
from bot.pricing import Quote
from bot.quotas import TERMINAL_GUILD, InsufficientCredits, Quotas
from bot.store import Store

GUILD = 1001


def q(credits: int) -> Quote:
    return Quote(credits=credits, usd=Decimal(credits) / 100)


async def test_quotas_new_guild_gets_default_allowance(quotas: Quotas):
    """A guild never seen before starts with the default allowance."""
    balance = await quotas.balance(GUILD)
    assert balance.allowance == 100
    assert balance.remaining == 100
    assert balance.reserved == 0 and balance.spent == 0


async def test_quotas_reserve_then_charge_spends(quotas: Quotas):
    """A charged reservation stays spent."""
    reservation = await quotas.reserve(GUILD, 7, q(30))
    assert (await quotas.balance(GUILD)).remaining == 70
    assert await quotas.charge(reservation.id) is True
    balance = await quotas.balance(GUILD)
    assert balance.remaining == 70
    assert balance.spent == 30 and balance.reserved == 0


async def test_quotas_refund_gives_credits_back(quotas: Quotas):
    """A refunded reservation costs nothing."""
    reservation = await quotas.reserve(GUILD, 7, q(30))
    assert await quotas.refund(reservation.id, reason="failed") is True
    balance = await quotas.balance(GUILD)
    assert balance.remaining == 100 and balance.spent == 0


async def test_quotas_settlement_happens_once(quotas: Quotas):
    """Charging or refunding an ended reservation again changes nothing."""
    reservation = await quotas.reserve(GUILD, 7, q(30))
    assert await quotas.charge(reservation.id)
    assert await quotas.charge(reservation.id) is False
    assert await quotas.refund(reservation.id) is False
    assert (await quotas.balance(GUILD)).remaining == 70


async def test_quotas_insufficient_reserves_nothing(quotas: Quotas):
    """A request over the balance is refused with the figures and leaves no trace."""
    await quotas.reserve(GUILD, 7, q(90))
    with pytest.raises(InsufficientCredits) as refused:
        await quotas.reserve(GUILD, 8, q(20))
    assert refused.value.cost == 20
    assert refused.value.balance.remaining == 10
    rows = await quotas._store.fetch_all("SELECT * FROM reservations")
    assert len(rows) == 1


async def test_quotas_grant_raises_balance(quotas: Quotas):
    """A grant adds to this period's balance and is recorded with its actor."""
    balance = await quotas.grant(GUILD, 50, actor_id=99, reason="event night")
    assert balance.remaining == 150 and balance.granted == 50
    row = await quotas._store.fetch_one("SELECT actor_id, reason FROM ledger WHERE kind='grant'")
    assert row is not None and row["actor_id"] == 99 and row["reason"] == "event night"


async def test_quotas_terminal_guild_is_never_capped(quotas: Quotas):
    """The operator's terminal runs are recorded but not limited by an allowance."""
    for _ in range(3):
        await quotas.reserve(TERMINAL_GUILD, 0, q(90))
    assert (await quotas.balance(TERMINAL_GUILD)).reserved == 270


async def test_quotas_concurrent_reservations_never_overspend(quotas: Quotas):
    """Fifty simultaneous 7-credit requests against 100 credits: exactly 14 succeed."""

    async def attempt(user: int) -> bool:
        try:
            await quotas.reserve(GUILD, user, q(7))
        except InsufficientCredits:
            return False
        return True

    results = await asyncio.gather(*(attempt(u) for u in range(50)))
    assert sum(results) == 14
    assert (await quotas.balance(GUILD)).remaining == 2


async def test_quotas_two_connections_never_overspend(tmp_path: Path):
    """Two processes' connections on one file (bot and operator CLI) cannot overspend either."""
    path = tmp_path / "shared.sqlite3"
    first, second = await Store.open(path), await Store.open(path)
    try:
        a = Quotas(first, default_allowance=100, default_period=Period.DAILY)
        b = Quotas(second, default_allowance=100, default_period=Period.DAILY)

        async def attempt(quotas: Quotas, user: int) -> bool:
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


async def test_quotas_new_period_starts_from_allowance(store: Store):
    """Spending in one day does not carry over to the next."""
    now = [datetime(2026, 11, 21, 23, 59, tzinfo=UTC)]
    quotas = Quotas(store, default_allowance=100, default_period=Period.DAILY, clock=lambda: now[0])
    reservation = await quotas.reserve(GUILD, 7, q(60))
    await quotas.charge(reservation.id)
    assert (await quotas.balance(GUILD)).remaining == 40
    now[0] += timedelta(minutes=2)
    balance = await quotas.balance(GUILD)
    assert balance.remaining == 100
    assert balance.resets_at == datetime(2026, 11, 23, tzinfo=UTC)


async def test_quotas_refund_after_period_change_returns_to_old_period(store: Store):
    """A job reserved before midnight and refunded after it does not inflate the new day."""
    now = [datetime(2026, 11, 21, 23, 59, tzinfo=UTC)]
    quotas = Quotas(store, default_allowance=100, default_period=Period.DAILY, clock=lambda: now[0])
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
def test_quotas_ledger_matches_a_simple_model(tmp_path_factory: pytest.TempPathFactory, ops):
    """No sequence of reserve, charge, refund and grant makes the balance wrong or negative."""

    async def scenario() -> None:
        path = tmp_path_factory.mktemp("ledger") / "db.sqlite3"
        async with await Store.open(path) as store:
            quotas = Quotas(store, default_allowance=100, default_period=Period.DAILY)
            remaining, held, spent = 100, {}, 0
            reservations: list[int] = []
            for op, value in ops:
                if op == "reserve":
                    if value > remaining:
                        with pytest.raises(InsufficientCredits):
                            await quotas.reserve(GUILD, 1, q(value))
                        continue
                    r = await quotas.reserve(GUILD, 1, q(value))
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
                    await quotas.grant(GUILD, value, actor_id=2, reason="test")
                    remaining += value
                balance = await quotas.balance(GUILD)
                assert balance.remaining == remaining >= 0
                assert balance.reserved == sum(held.values())
                assert balance.spent == spent
            assert await totals_match_rows(store)

    asyncio.run(scenario())


async def totals_match_rows(store: Store) -> bool:
    """The trigger-kept running totals equal the sums re-derived from the ledger's rows."""
    kept = await store.fetch_all(
        "SELECT guild_id, period_key, net, granted, reserved, spent FROM period_totals"
        " ORDER BY guild_id, period_key"
    )
    derived = await store.fetch_all(
        "SELECT l.guild_id, l.period_key, SUM(l.amount) AS net,"
        " COALESCE(SUM(CASE WHEN l.kind = 'grant' THEN l.amount END), 0) AS granted,"
        " (SELECT COALESCE(SUM(amount), 0) FROM reservations r WHERE r.guild_id = l.guild_id"
        "  AND r.period_key = l.period_key AND r.state = 'held') AS reserved,"
        " (SELECT COALESCE(SUM(amount), 0) FROM reservations r WHERE r.guild_id = l.guild_id"
        "  AND r.period_key = l.period_key AND r.state = 'charged') AS spent"
        " FROM ledger l GROUP BY l.guild_id, l.period_key ORDER BY l.guild_id, l.period_key"
    )
    return [tuple(r) for r in kept] == [tuple(r) for r in derived]


async def test_quotas_reserve_sees_period_changes_made_elsewhere(store: Store):
    """After a period change made elsewhere, the next reservation follows the new period."""
    quotas = Quotas(store, default_allowance=100, default_period=Period.DAILY)
    await quotas.reserve(GUILD, 1, q(10))
    await quotas.reserve(GUILD, 1, q(10))
    async with store.transaction() as db:
        await db.execute("UPDATE guilds SET period = 'monthly' WHERE guild_id = ?", (GUILD,))
    reservation = await quotas.reserve(GUILD, 1, q(10))
    assert "W" not in reservation.period_key and len(reservation.period_key) == 7  # 2026-11
    assert (await quotas.balance(GUILD)).remaining == 90
    assert await totals_match_rows(store)
