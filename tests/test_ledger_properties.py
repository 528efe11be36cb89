"""Property: no sequence of reserve, charge, refund, grant, reset, allowance, period, time
zone and rollover changes, with time passing, makes a balance wrong or lets a guild overspend.

The reference model is a dictionary of per-period sums; the real ledger is the storage
backend's rows and running totals, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Period
from bot.moderation import Moderation
from bot.periods import period_key, previous_key, zone
from bot.pricing import Quote
from bot.quotas import InsufficientCredits, Quotas
from bot.storage import open_storage
from tests.units import Credits

G, MOD = 77, 5
GUILDS = [G]
"""The last guild id used: every example gets a guild of its own in the test's database."""

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 80)),
        st.tuples(st.just("charge"), st.integers(0, 30)),
        st.tuples(st.just("refund"), st.integers(0, 30)),
        st.tuples(st.just("grant"), st.integers(1, 60)),
        st.tuples(st.just("reset"), st.just(0)),
        st.tuples(st.just("allowance"), st.integers(0, 300)),
        st.tuples(st.just("period"), st.sampled_from(list(Period))),
        st.tuples(st.just("zone"), st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Auckland"])),
        st.tuples(st.just("hour"), st.integers(0, 23)),
        st.tuples(st.just("rollover"), st.booleans()),
        st.tuples(st.just("advance"), st.integers(1, 24 * 9)),
    ),
    max_size=35,
)


class Model:
    """What the balance must be, as plain arithmetic per period key."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.allowance = 100
        self.period = Period.DAILY
        self.zone = "UTC"
        self.hour = 0
        self.rollover = False
        self.net: dict[str, int] = {}
        self.rolled: set[str] = set()
        self.held: dict[int, tuple[int, str]] = {}
        self.charged: dict[str, int] = {}

    def key(self) -> str:
        return period_key(self.period, self.now, zone(self.zone), self.hour)

    def remaining(self) -> int:
        key = self.key()
        if self.rollover and key not in self.rolled:
            before = previous_key(self.period, self.now, zone(self.zone), self.hour)
            unused = self.allowance + self.net.get(before, 0)
            self.net[key] = self.net.get(key, 0) + min(max(unused, 0), self.allowance)
            self.rolled.add(key)
        return self.allowance + self.net.get(key, 0)

    def move(self, amount: int) -> None:
        self.remaining()
        self.net[self.key()] = self.net.get(self.key(), 0) + amount

    def reserved(self) -> int:
        return sum(c for c, k in self.held.values() if k == self.key())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_ledger_model_holds_under_every_sequence(storage_url: str, ops):
    """The derived balance equals the model after every step; a reservation succeeds exactly
    when it fits; a change of period, zone or reset hour never raises the balance."""
    GUILDS[0] += 1
    G = GUILDS[0]

    async def scenario() -> None:
        model = Model(datetime(2026, 11, 21, 22, 30, tzinfo=UTC))
        store = await open_storage(storage_url)
        try:
            rules = Quotas(
                default_allowance=100, default_period=Period.DAILY, clock=lambda: model.now
            )
            quotas = Credits(store, rules)
            mod = Moderation(store, rules)
            ids: list[int] = []
            for op, value in ops:
                if op == "reserve":
                    fits = value <= model.remaining()
                    quote = Quote(value, Decimal(value) / 100)
                    if not fits:
                        with pytest.raises(InsufficientCredits):
                            await quotas.reserve(G, 1, quote)
                        continue
                    r = await quotas.reserve(G, 1, quote)
                    ids.append(r.id)
                    model.move(-value)
                    model.held[r.id] = (value, model.key())
                elif op in ("charge", "refund") and ids:
                    rid = ids[value % len(ids)]
                    was_held = rid in model.held
                    settle = quotas.charge if op == "charge" else quotas.refund
                    assert await settle(rid) is was_held
                    if was_held:
                        cost, key = model.held.pop(rid)
                        if op == "charge":
                            model.charged[key] = model.charged.get(key, 0) + cost
                        else:
                            model.net[key] = model.net.get(key, 0) + cost
                elif op == "grant":
                    await mod.grant(G, MOD, value, "property")
                    model.move(value)
                elif op == "reset":
                    await mod.reset(G, MOD)
                    target = max(0, model.allowance - model.reserved())
                    model.move(target - model.remaining())
                elif op == "allowance":
                    await mod.set(G, MOD, allowance=value)
                    model.allowance = value
                elif op in ("period", "zone", "hour"):
                    before, old_key = model.remaining(), model.key()
                    if op == "period":
                        await mod.set(G, MOD, period=value)
                        model.period = value
                    elif op == "zone":
                        await mod.set(G, MOD, time_zone=value)
                        model.zone = value
                    else:
                        await mod.set(G, MOD, reset_hour=value)
                        model.hour = value
                    after = model.remaining()
                    if model.key() != old_key:
                        model.move(min(before, model.allowance) - after)
                    if model.key() != old_key:  # a new period key: never more credits
                        assert (await quotas.balance(G)).remaining <= before
                elif op == "rollover":
                    await mod.set(G, MOD, rollover=value)
                    if value and not model.rollover:
                        model.remaining()
                        model.rolled.add(model.key())
                    model.rollover = value
                elif op == "advance":
                    model.now += timedelta(hours=value)
                balance = await quotas.balance(G)
                assert balance.remaining == model.remaining(), (op, value)
                assert balance.reserved == model.reserved()
                assert balance.spent == model.charged.get(model.key(), 0)
                assert balance.period_key == model.key()
        finally:
            await store.close()

    asyncio.run(scenario())
