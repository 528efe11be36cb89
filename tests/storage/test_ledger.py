"""Contract of LedgerRepo: every movement writes its ledger row and the period's totals, exactly
as the triggers of migration 0004 did (reserve negative, charge zero, refund positive)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.storage import Storage
from bot.storage.records import (
    LedgerEntry,
    LedgerKind,
    MemberSpend,
    PeriodTotals,
    ReservationRow,
    ReservationState,
)
from tests.storage.helpers import GUILD, NOW, OTHER_GUILD, OTHER_USER, PERIOD, USER, later

NEXT_PERIOD = "2026-03-15"


async def entries(storage: Storage, guild_id: int = GUILD) -> list[LedgerEntry]:
    """The guild's ledger, oldest first."""
    async with storage.read() as uow:
        page, total = await uow.ledger.page(guild_id, offset=0, limit=1000)
    assert len(page) == total
    return page[::-1]


async def totals(storage: Storage, key: str = PERIOD, guild_id: int = GUILD) -> PeriodTotals:
    """The period's totals, read in a unit of their own."""
    async with storage.read() as uow:
        return await uow.ledger.totals(guild_id, key)


async def test_totals_of_an_empty_period_are_zero(storage: Storage) -> None:
    assert await totals(storage) == PeriodTotals()


async def test_hold_writes_reservation_reserve_row_and_totals(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 30, 1_250_000, NOW)
        assert await uow.ledger.reservation(rid) == ReservationRow(
            id=rid,
            guild_id=GUILD,
            user_id=USER,
            period_key=PERIOD,
            amount=30,
            usd_micros=1_250_000,
            state=ReservationState.HELD,
            created_at=NOW,
            settled_at=None,
        )
    [row] = await entries(storage)
    assert row.kind is LedgerKind.RESERVE
    assert (row.amount, row.user_id, row.actor_id) == (-30, USER, USER)
    assert (row.reservation_id, row.job_id, row.reason) == (rid, None, None)
    assert (row.guild_id, row.period_key, row.created_at) == (GUILD, PERIOD, NOW)
    assert await totals(storage) == PeriodTotals(net=-30, reserved=30)


async def test_charge_writes_a_zero_row_and_moves_held_to_spent(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 30, 0, NOW)
    async with storage.unit() as uow:
        before = await uow.ledger.settle(
            rid, ReservationState.CHARGED, job_id=77, reason="", now=later(5)
        )
        after = await uow.ledger.reservation(rid)
    assert before is not None
    assert (before.id, before.state, before.amount, before.settled_at) == (
        rid,
        ReservationState.HELD,
        30,
        None,
    )
    assert after is not None
    assert (after.state, after.settled_at) == (ReservationState.CHARGED, later(5))
    _, charge = await entries(storage)
    assert charge.kind is LedgerKind.CHARGE
    assert (charge.amount, charge.user_id, charge.actor_id) == (0, USER, None)
    assert (charge.reservation_id, charge.job_id) == (rid, 77)
    assert charge.reason is None  # an empty reason is stored as none
    assert (charge.period_key, charge.created_at) == (PERIOD, later(5))
    assert await totals(storage) == PeriodTotals(net=-30, reserved=0, spent=30)


async def test_refund_gives_the_amount_back_with_its_reason(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 30, 0, NOW)
        settled = await uow.ledger.settle(
            rid, ReservationState.REFUNDED, job_id=None, reason="provider failed", now=later(5)
        )
        assert settled is not None and settled.state is ReservationState.HELD
        after = await uow.ledger.reservation(rid)
    assert after is not None and after.state is ReservationState.REFUNDED
    _, refund = await entries(storage)
    assert refund.kind is LedgerKind.REFUND
    assert (refund.amount, refund.user_id, refund.reservation_id) == (30, USER, rid)
    assert (refund.job_id, refund.reason) == (None, "provider failed")
    assert await totals(storage) == PeriodTotals(net=0, reserved=0, spent=0)


@pytest.mark.parametrize("second", [ReservationState.CHARGED, ReservationState.REFUNDED])
@pytest.mark.parametrize("first", [ReservationState.CHARGED, ReservationState.REFUNDED])
async def test_settle_twice_is_a_no_op(
    storage: Storage, first: ReservationState, second: ReservationState
) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 30, 0, NOW)
        assert await uow.ledger.settle(rid, first, job_id=1, reason="x", now=later(1)) is not None
    rows, sums = await entries(storage), await totals(storage)
    async with storage.unit() as uow:
        assert await uow.ledger.settle(rid, second, job_id=1, reason="y", now=later(2)) is None
        after = await uow.ledger.reservation(rid)
    assert after is not None and after.state is first and after.settled_at == later(1)
    assert await entries(storage) == rows
    assert await totals(storage) == sums


async def test_settle_of_an_unknown_reservation_is_none(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert (
            await uow.ledger.settle(404, ReservationState.CHARGED, job_id=None, reason="", now=NOW)
            is None
        )
        assert await uow.ledger.reservation(404) is None
    assert await entries(storage) == []


async def test_settle_to_held_is_refused(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 30, 0, NOW)
        with pytest.raises(ValueError):
            await uow.ledger.settle(rid, ReservationState.HELD, job_id=None, reason="", now=NOW)


@pytest.mark.parametrize(
    ("kind", "amount", "expected"),
    [
        (LedgerKind.GRANT, 25, PeriodTotals(net=25, granted=25)),
        (LedgerKind.ROLLOVER, 40, PeriodTotals(net=40, carried=40)),
        (LedgerKind.RESET, -15, PeriodTotals(net=-15, adjusted=-15)),
        (LedgerKind.ADJUST, 8, PeriodTotals(net=8, adjusted=8)),
        (LedgerKind.ROLLOVER, 0, PeriodTotals()),
    ],
)
async def test_move_writes_its_row_and_totals(
    storage: Storage, kind: LedgerKind, amount: int, expected: PeriodTotals
) -> None:
    async with storage.unit() as uow:
        mid = await uow.ledger.move(
            GUILD, PERIOD, kind, amount, actor_id=11, reason="because", now=NOW
        )
    [row] = await entries(storage)
    assert row == LedgerEntry(
        id=mid,
        guild_id=GUILD,
        period_key=PERIOD,
        kind=kind,
        amount=amount,
        user_id=None,
        actor_id=11,
        reservation_id=None,
        job_id=None,
        reason="because",
        created_at=NOW,
    )
    assert await totals(storage) == expected


async def test_move_without_actor_or_reason(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.ledger.move(
            GUILD, PERIOD, LedgerKind.ROLLOVER, 3, actor_id=None, reason=None, now=NOW
        )
    [row] = await entries(storage)
    assert (row.actor_id, row.reason) == (None, None)


async def test_totals_add_up_per_guild_and_period(storage: Storage) -> None:
    async with storage.unit() as uow:
        a = await uow.ledger.hold(GUILD, USER, PERIOD, 10, 0, NOW)
        b = await uow.ledger.hold(GUILD, OTHER_USER, PERIOD, 20, 0, NOW)
        c = await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, NOW)
        await uow.ledger.hold(GUILD, USER, NEXT_PERIOD, 7, 0, later(86_400))
        await uow.ledger.hold(OTHER_GUILD, USER, PERIOD, 9, 0, NOW)
        await uow.ledger.move(GUILD, PERIOD, LedgerKind.GRANT, 50, actor_id=1, reason="", now=NOW)
        await uow.ledger.move(GUILD, PERIOD, LedgerKind.ADJUST, -4, actor_id=1, reason="", now=NOW)
        await uow.ledger.move(
            GUILD, PERIOD, LedgerKind.ROLLOVER, 6, actor_id=None, reason=None, now=NOW
        )
        await uow.ledger.settle(a, ReservationState.CHARGED, job_id=None, reason="", now=NOW)
        await uow.ledger.settle(b, ReservationState.REFUNDED, job_id=None, reason="", now=NOW)
        in_unit = await uow.ledger.totals(GUILD, PERIOD)  # a unit sees its own writes
    expected = PeriodTotals(
        net=-10 - 20 - 5 + 20 + 50 - 4 + 6, granted=50, carried=6, adjusted=-4, reserved=5, spent=10
    )
    assert in_unit == expected
    assert await totals(storage) == expected
    assert await totals(storage, NEXT_PERIOD) == PeriodTotals(net=-7, reserved=7)
    assert await totals(storage, guild_id=OTHER_GUILD) == PeriodTotals(net=-9, reserved=9)
    assert c > b > a
    rows = await entries(storage)
    period_rows = [r for r in rows if r.period_key == PERIOD]
    assert expected.net == sum(r.amount for r in period_rows)


async def test_has_movement(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.ledger.has_movement(GUILD, PERIOD, LedgerKind.ROLLOVER) is False
        await uow.ledger.move(
            GUILD, PERIOD, LedgerKind.ROLLOVER, 0, actor_id=None, reason=None, now=NOW
        )
        assert await uow.ledger.has_movement(GUILD, PERIOD, LedgerKind.ROLLOVER) is True
        assert await uow.ledger.has_movement(GUILD, NEXT_PERIOD, LedgerKind.ROLLOVER) is False
        assert await uow.ledger.has_movement(OTHER_GUILD, PERIOD, LedgerKind.ROLLOVER) is False
        assert await uow.ledger.has_movement(GUILD, PERIOD, LedgerKind.GRANT) is False
        await uow.ledger.hold(GUILD, USER, PERIOD, 1, 0, NOW)
        assert await uow.ledger.has_movement(GUILD, PERIOD, LedgerKind.RESERVE) is True


async def test_member_spent_counts_held_and_charged_not_refunded(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.ledger.member_spent(GUILD, USER, PERIOD) == 0
        held = await uow.ledger.hold(GUILD, USER, PERIOD, 10, 0, NOW)
        charged = await uow.ledger.hold(GUILD, USER, PERIOD, 20, 0, NOW)
        refunded = await uow.ledger.hold(GUILD, USER, PERIOD, 40, 0, NOW)
        await uow.ledger.hold(GUILD, OTHER_USER, PERIOD, 80, 0, NOW)
        await uow.ledger.hold(GUILD, USER, NEXT_PERIOD, 160, 0, NOW)
        await uow.ledger.hold(OTHER_GUILD, USER, PERIOD, 320, 0, NOW)
        await uow.ledger.settle(charged, ReservationState.CHARGED, job_id=None, reason="", now=NOW)
        await uow.ledger.settle(
            refunded, ReservationState.REFUNDED, job_id=None, reason="", now=NOW
        )
        assert await uow.ledger.member_spent(GUILD, USER, PERIOD) == 30
        assert held > 0


async def test_usd_spent_in_a_half_open_window(storage: Storage) -> None:
    since, until = NOW, NOW + timedelta(days=30)
    async with storage.unit() as uow:
        await uow.ledger.hold(GUILD, USER, PERIOD, 1, 1_000_000, since)  # first instant: in
        await uow.ledger.hold(GUILD, USER, PERIOD, 1, 2_000_000, until - timedelta(microseconds=1))
        await uow.ledger.hold(GUILD, USER, PERIOD, 1, 4_000_000, until)  # last instant: out
        await uow.ledger.hold(GUILD, USER, PERIOD, 1, 8_000_000, since - timedelta(seconds=1))
        refunded = await uow.ledger.hold(GUILD, USER, PERIOD, 1, 16_000_000, later(10))
        await uow.ledger.settle(
            refunded, ReservationState.REFUNDED, job_id=None, reason="", now=NOW
        )
        charged = await uow.ledger.hold(GUILD, USER, PERIOD, 1, 32_000_000, later(10))
        await uow.ledger.settle(charged, ReservationState.CHARGED, job_id=None, reason="", now=NOW)
        await uow.ledger.hold(OTHER_GUILD, USER, PERIOD, 1, 64_000_000, later(10))
        assert await uow.ledger.usd_spent(since, until, GUILD) == 35_000_000
        assert await uow.ledger.usd_spent(since, until, None) == 99_000_000
        assert await uow.ledger.usd_spent(until, until + timedelta(days=1), GUILD) == 4_000_000
        assert await uow.ledger.usd_spent(since, until, 999) == 0


async def test_usage_ranks_members_most_first_ties_by_user_id(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.ledger.hold(GUILD, 300, PERIOD, 10, 100, NOW)
        await uow.ledger.hold(GUILD, 300, PERIOD, 15, 200, NOW)
        await uow.ledger.hold(GUILD, 200, PERIOD, 25, 400, NOW)
        await uow.ledger.hold(GUILD, 100, PERIOD, 5, 800, NOW)
        gone = await uow.ledger.hold(GUILD, 100, PERIOD, 50, 1600, NOW)
        await uow.ledger.settle(gone, ReservationState.REFUNDED, job_id=None, reason="", now=NOW)
        await uow.ledger.hold(GUILD, 400, NEXT_PERIOD, 99, 0, NOW)
        await uow.ledger.hold(OTHER_GUILD, 500, PERIOD, 99, 0, NOW)
        ranked = await uow.ledger.usage(GUILD, PERIOD, 10)
        top = await uow.ledger.usage(GUILD, PERIOD, 1)
    assert ranked == [
        MemberSpend(user_id=200, credits=25, usd_micros=400, jobs=1),
        MemberSpend(user_id=300, credits=25, usd_micros=300, jobs=2),
        MemberSpend(user_id=100, credits=5, usd_micros=800, jobs=1),
    ]
    assert top == ranked[:1]


async def test_page_is_newest_first_with_total_per_guild(storage: Storage) -> None:
    async with storage.unit() as uow:
        ids = [
            await uow.ledger.move(
                GUILD, PERIOD, LedgerKind.GRANT, i + 1, actor_id=1, reason=None, now=later(i)
            )
            for i in range(5)
        ]
        await uow.ledger.move(
            OTHER_GUILD, PERIOD, LedgerKind.GRANT, 1, actor_id=1, reason=None, now=NOW
        )
        first, total = await uow.ledger.page(GUILD, offset=0, limit=3)
        rest, again = await uow.ledger.page(GUILD, offset=3, limit=3)
        none, _ = await uow.ledger.page(GUILD, offset=5, limit=3)
    assert total == again == 5
    assert [e.id for e in first + rest] == ids[::-1]
    assert [e.amount for e in first] == [5, 4, 3]
    assert first[0].created_at == later(4)
    assert none == []
    async with storage.read() as uow:
        assert await uow.ledger.page(404, offset=0, limit=3) == ([], 0)


@pytest.mark.parametrize("kind", [LedgerKind.RESERVE, LedgerKind.CHARGE, LedgerKind.REFUND])
async def test_move_refuses_the_kinds_of_hold_and_settle(
    storage: Storage, kind: LedgerKind
) -> None:
    async with storage.unit() as uow:
        with pytest.raises(ValueError):
            await uow.ledger.move(GUILD, PERIOD, kind, -5, actor_id=1, reason=None, now=NOW)
    assert await entries(storage) == []
