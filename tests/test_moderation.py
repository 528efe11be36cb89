"""Moderators' operations: every change leaves a ledger or audit row with the actor's id."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.audit_text import describe
from bot.config import Period
from bot.guild_settings import OPERATOR_ID
from bot.moderation import Moderation, ModerationError, parse_usd
from bot.policy import MemberContext
from bot.pricing import Quote
from bot.quotas import Quotas
from bot.reruns import RerunsBy
from bot.storage import Storage
from bot.storage.records import LedgerKind
from tests.units import audit_rows, ledger_rows

G, MOD = 500, 9001


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 21, 12, tzinfo=UTC))


@pytest.fixture
def quotas(clock: Clock) -> Quotas:
    return Quotas(default_allowance=100, default_period=Period.DAILY, clock=clock)


@pytest.fixture
def mod(storage: Storage, quotas: Quotas) -> Moderation:
    return Moderation(storage, quotas)


def q(credits: int) -> Quote:
    return Quote(credits, Decimal(credits) / 100)


async def audit(storage: Storage) -> list[tuple[int, str, str | None, str | None]]:
    rows = await audit_rows(storage, G)
    return [(r.actor_id, r.action, r.old_value, r.new_value) for r in rows]


async def test_moderation_every_rule_change_is_audited_with_the_actor(mod: Moderation, storage):
    """Each command writes one audit row per real change, carrying who made it."""
    await mod.set(G, MOD, allowance=300, period="weekly", reset_hour=6, time_zone="Europe/Berlin")
    await mod.member_cap(G, MOD, credits=50, running=2, role_id=77, role_credits=200)
    await mod.member_cap(G, MOD, exempt_role_id=78)
    await mod.cooldown(G, MOD, 30)
    await mod.required_role(G, MOD, 79)
    await mod.channel(G, MOD, 111, allowed=True)
    await mod.nsfw_only(G, MOD, True)
    await mod.blocklist(G, MOD, "Gore", blocked=True)
    await mod.cooldown(G, MOD, 30)  # unchanged: no row
    rows = await audit(storage)
    assert {r[0] for r in rows} == {MOD}
    actions = [r[1] for r in rows]
    assert actions == [
        "set allowance",
        "set period",
        "set reset_hour",
        "set time_zone",
        "set member_cap",
        "set max_running",
        "role 77",
        "role 78",
        "set cooldown_seconds",
        "set required_role_id",
        "allow channel",
        "set nsfw_only",
        "block",
    ]
    assert rows[0][2:] == ("100", "300")
    assert rows[-1][3] == "gore"
    policy = (await mod.show(G)).policy
    assert policy.allowance == 300 and policy.period is Period.WEEKLY
    assert policy.time_zone == "Europe/Berlin" and policy.reset_hour == 6
    assert policy.member_cap == 50 and policy.max_running == 2 and policy.cooldown_seconds == 30
    assert policy.channels == {111} and policy.nsfw_only and policy.blocklist == ("gore",)
    page = await mod.audit(G, page=1, per_page=5)
    assert page.total == 13 and page.pages == 3 and page.items[0].action == "block"


async def test_moderation_grant_and_reset_are_ledger_rows(mod: Moderation, credits, storage):
    """A grant needs a reason; a reset returns to the allowance minus what jobs hold."""
    with pytest.raises(ModerationError):
        await mod.grant(G, MOD, 50, "  ")
    with pytest.raises(ModerationError):
        await mod.grant(G, MOD, 0, "nothing")
    balance = await mod.grant(G, MOD, 50, "movie night")
    assert balance.remaining == 150 and balance.granted == 50
    held = await credits.reserve(G, 1, q(30))
    spent = await credits.reserve(G, 1, q(40))
    await credits.charge(spent.id)
    balance = await mod.reset(G, MOD, "fresh start")
    assert balance.remaining == 70  # 100 allowance - 30 still held by a running job
    await credits.refund(held.id)
    assert (await credits.balance(G)).remaining == 100
    rows = [
        (r.kind, r.amount, r.actor_id, r.reason)
        for r in await ledger_rows(storage, G)
        if r.kind in (LedgerKind.GRANT, LedgerKind.RESET)
    ]
    assert rows == [
        ("grant", 50, MOD, "movie night"),
        ("reset", -10, MOD, "fresh start"),
    ]


async def test_moderation_bad_input_changes_nothing(mod: Moderation, storage):
    """Out-of-range values and unknown zones are refused with a sentence, no row written."""
    for call in (
        mod.set(G, MOD, allowance=-1),
        mod.set(G, MOD, period="hourly"),
        mod.set(G, MOD, reset_hour=24),
        mod.set(G, MOD, time_zone="Nowhere/City"),
        mod.set(G, MOD, usd_cap="ten dollars"),
        mod.set(G, MOD),
        mod.cooldown(G, MOD, -5),
        mod.blocklist(G, MOD, "re:(", blocked=True),
        mod.blocklist(G, MOD, "never-added", blocked=False),
        mod.member_cap(G, MOD, role_id=5),
    ):
        with pytest.raises(ModerationError):
            await call
    assert await audit(storage) == []


async def test_moderation_period_change_never_mints_credits(mod: Moderation, credits, storage):
    """Switching daily → weekly → daily keeps the balance; the adjustment is in the ledger."""
    spent = await credits.reserve(G, 1, q(60))
    await credits.charge(spent.id)
    overview = await mod.set(G, MOD, period="weekly")
    assert overview.balance.remaining == 40
    assert overview.balance.period_key == "2026-W47"
    assert (await mod.set(G, MOD, period="daily")).balance.remaining == 40
    assert (await mod.set(G, MOD, period="weekly", allowance=500)).balance.remaining == 40
    adjust = [r for r in await ledger_rows(storage, G) if r.kind is LedgerKind.ADJUST]
    assert adjust[0].amount == -60 and adjust[0].actor_id == MOD
    assert "balance kept at 40" in (adjust[0].reason or "")


async def test_moderation_allowance_change_moves_the_balance(mod: Moderation, credits):
    """Raising the allowance gives the difference now; lowering it takes it away."""
    spent = await credits.reserve(G, 1, q(60))
    await credits.charge(spent.id)
    assert (await mod.set(G, MOD, allowance=200)).balance.remaining == 140
    assert (await mod.set(G, MOD, allowance=50)).balance.remaining == -10
    with pytest.raises(Exception, match="cost 1 > remaining -10"):
        await credits.reserve(G, 1, q(1))
    assert (await mod.set(G, MOD, allowance=100)).balance.remaining == 40


async def test_moderation_rollover(mod: Moderation, credits, clock: Clock, storage):
    """Off: nothing carries. On: from the next period, unused credits (max one allowance)."""
    r = await credits.reserve(G, 1, q(30))
    await credits.charge(r.id)
    clock.now += timedelta(days=1)
    assert (await credits.balance(G)).remaining == 100  # off by default
    r = await credits.reserve(G, 1, q(30))
    await credits.charge(r.id)
    overview = await mod.set(G, MOD, rollover=True)
    assert overview.balance.remaining == 70, "turning it on carries nothing into this period"
    clock.now += timedelta(days=1)
    balance = await credits.balance(G)
    assert balance.carried == 70 and balance.remaining == 170
    await mod.grant(G, MOD, 500, "big event")
    clock.now += timedelta(days=1)
    balance = await credits.balance(G)
    assert balance.carried == 100 and balance.remaining == 200, "at most one allowance"
    rows = [r for r in await ledger_rows(storage, G) if r.kind is LedgerKind.ROLLOVER]
    assert [r.amount for r in rows] == [0, 70, 100]
    assert rows[1].reason == "unused credits of 2026-11-22"


async def test_moderation_usage_and_ledger_pages(mod: Moderation, credits):
    """Usage ranks members by spend this period; the ledger pages newest first."""
    for user, cost in ((1, 10), (2, 30), (1, 15), (3, 5)):
        r = await credits.reserve(G, user, q(cost))
        await credits.charge(r.id)
    refunded = await credits.reserve(G, 3, q(40))
    await credits.refund(refunded.id, reason="failed")
    report = await mod.usage(G)
    assert [(m.user_id, m.credits, m.jobs) for m in report.members] == [
        (2, 30, 1),
        (1, 25, 2),
        (3, 5, 1),
    ]
    assert report.usd_this_month == Decimal("0.60")
    first = await mod.ledger(G, page=1, per_page=4)
    assert first.total == 10 and first.pages == 3
    assert [e.kind for e in first.items] == ["refund", "reserve", "charge", "reserve"]
    assert first.items[0].reason == "failed"
    last = await mod.ledger(G, page=3, per_page=4)
    assert len(last.items) == 2 and last.items[-1].kind == "reserve"


async def test_moderation_usd_cap_operator_ceiling(storage: Storage, clock: Clock):
    """A guild's own USD cap applies, but never above the operator's per-guild ceiling."""
    quotas = Quotas(
        default_allowance=100,
        default_period=Period.DAILY,
        guild_usd_cap=Decimal(20),
        clock=clock,
    )
    mod = Moderation(storage, quotas)
    assert (await mod.show(G)).policy.monthly_usd_cap == Decimal(20)
    assert (await mod.set(G, MOD, usd_cap="$5")).policy.monthly_usd_cap == Decimal(5)
    assert (await mod.set(G, MOD, usd_cap="50")).policy.monthly_usd_cap == Decimal(20)
    assert (await mod.set(G, OPERATOR_ID, usd_cap="none")).policy.monthly_usd_cap == Decimal(20)
    assert parse_usd("12.345") == Decimal("12.34") or parse_usd("12.345") == Decimal("12.35")


async def test_moderation_member_standing(mod: Moderation, credits):
    """/credits shows the member's own spend and the cap that applies to their roles."""
    await mod.member_cap(G, MOD, credits=40, role_id=7, role_credits=90)
    r = await credits.reserve(G, 1, q(25))
    await credits.charge(r.id)
    plain = await mod.standing(MemberContext(G, 2, 1))
    assert (plain.spent, plain.cap, plain.exempt) == (25, 40, False)
    raised = await mod.standing(MemberContext(G, 2, 1, role_ids=frozenset({7})))
    assert raised.cap == 90
    moderator = await mod.standing(MemberContext(G, 2, 1, is_moderator=True))
    assert moderator.cap is None and moderator.exempt


async def test_moderation_audit_reads_in_the_moderators_terms(mod: Moderation):
    """Every kind of rule change, described as the moderator set it (role and channel names
    from the caller), newest first."""
    await mod.set(G, MOD, allowance=300, reset_hour=6, time_zone="Europe/Berlin", usd_cap="12.5")
    await mod.set(G, MOD, rollover=True, period="weekly")
    await mod.member_cap(G, MOD, credits=50, running=2, role_id=77, role_credits=200)
    await mod.member_cap(G, MOD, exempt_role_id=78)
    await mod.cooldown(G, MOD, 90)
    await mod.required_role(G, MOD, 79)
    await mod.reruns_by(G, MOD, RerunsBy.REQUESTER)
    await mod.nsfw_only(G, MOD, True)
    await mod.channel(G, MOD, 111, allowed=True)
    await mod.channel(G, MOD, 112, allowed=True)
    await mod.channel(G, MOD, 112, allowed=False)
    await mod.clear_channels(G, MOD)
    await mod.blocklist(G, MOD, "Gore", blocked=True)
    await mod.blocklist(G, MOD, "gore", blocked=False)
    await mod.set(G, MOD, usd_cap="none")
    page = await mod.audit(G, page=1, per_page=50)
    described = [
        describe(e, role=lambda i: f"@{i}", channel=lambda i: f"#{i}").line()
        for e in reversed(page.items)
    ]
    assert described == [
        "allowance: 100 credits → 300 credits",
        "reset time: 00:00 → 06:00",
        "time zone: the bot's default → Europe/Berlin",
        "monthly USD cap: no cap → $12.50",
        "period: daily → weekly",
        "rollover: off → on",
        "member cap: no cap → 50 credits",
        "jobs at once per member: no limit → 2",
        "rule for @77: no rule → cap 200 credits",
        "rule for @78: no rule → no member limits",
        "cooldown: none → 90 s",
        "role needed for /pika: anyone → @79",
        "reruns by: anyone → each video's requester",
        "only in age-restricted channels: off → on",
        "channels: — → #111 allowed",
        "channels: — → #112 allowed",
        "channels: #112 allowed → removed",
        "channels: #111 → all channels",
        "blocklist: — → `gore` added",
        "blocklist: `gore` → removed",
        "monthly USD cap: $12.50 → no cap",
    ]


async def test_moderation_rollover_is_carried_once_across_processes(
    storage_url: str, mod: Moderation, credits, quotas: Quotas, clock: Clock
):
    """Three processes looking at a new period at once carry the unused credits in once."""
    from bot.storage import open_storage

    await mod.set(G, MOD, rollover=True)
    r = await credits.reserve(G, 1, q(30))
    await credits.charge(r.id)
    clock.now += timedelta(days=1)
    opened = [await open_storage(storage_url) for _ in range(3)]
    try:
        balances = await asyncio.gather(
            *(Moderation(s, quotas).balance(G) for s in opened for _ in range(4))
        )
    finally:
        for s in opened:
            await s.close()
    assert {(b.carried, b.remaining) for b in balances} == {(70, 170)}
    carried = [r for r in await ledger_rows(credits.storage, G) if r.kind is LedgerKind.ROLLOVER]
    assert [r.amount for r in carried] == [0, 70]
