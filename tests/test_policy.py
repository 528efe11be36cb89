"""The rules checked before any credit is reserved: order, messages, roles, caps in USD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from bot.config import Period
from bot.models import GenerationRequest, Origin
from bot.policy import (
    BadPattern,
    ChannelNotAllowed,
    CoolingDown,
    GuildPolicy,
    MemberCapReached,
    MemberContext,
    MemberUsage,
    NsfwOnly,
    PromptBlocked,
    RoleRequired,
    RoleRule,
    SpendingCapReached,
    SpendState,
    TooManyRunning,
    blocked,
    check_member,
    check_spend,
    validate_pattern,
)
from bot.refusals import RequestRefused
from bot.storage import open_storage
from tests.fakes.fal import FakeFal
from tests.test_jobs import World, job_ids, make_world
from tests.units import ledger_rows, reservation_states

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
G, CH, USER = 5, 6, 7
MEMBER = MemberContext(G, CH, USER)


def policy(**kw: object) -> GuildPolicy:
    return GuildPolicy(guild_id=G, allowance=100, period=Period.DAILY, **kw)  # type: ignore[arg-type]


def check(p: GuildPolicy, member: MemberContext = MEMBER, prompt: str = "a fox", **usage: object):
    check_member(p, member, [prompt], MemberUsage(**usage), 20, NOW)  # type: ignore[arg-type]


def test_policy_default_allows_everything():
    """A guild nobody configured lets every member use /pika anywhere."""
    check(policy())


def test_policy_channel_allow_list_names_the_channels():
    """Outside the allow-list the member is told where videos are made."""
    with pytest.raises(ChannelNotAllowed) as refused:
        check(policy(channels=frozenset({99})))
    assert "<#99>" in refused.value.user_message
    check(policy(channels=frozenset({CH})))


def test_policy_nsfw_only_needs_an_age_restricted_channel():
    """NSFW-only refuses ordinary channels and allows marked ones."""
    with pytest.raises(NsfwOnly):
        check(policy(nsfw_only=True))
    check(policy(nsfw_only=True), MemberContext(G, CH, USER, channel_nsfw=True))


def test_policy_required_role_and_moderators():
    """A required role refuses members without it; moderators and role holders pass."""
    with pytest.raises(RoleRequired) as refused:
        check(policy(required_role_id=77))
    assert "<@&77>" in refused.value.user_message
    check(policy(required_role_id=77), MemberContext(G, CH, USER, role_ids=frozenset({77})))
    check(policy(required_role_id=77), MemberContext(G, CH, USER, is_moderator=True))


@pytest.mark.parametrize(
    ("entries", "text", "hit"),
    [
        (["gore"], "some GORE please", True),
        (["ass"], "a classic class", False),
        (["red fox"], "a Red  fox", False),
        (["red fox"], "the red fox runs", True),
        (["re:b[a@]d\\s*word"], "a B@d word here", True),
        (["re:^only$"], "not only this", False),
    ],
)
def test_policy_blocklist_matching(entries: list[str], text: str, hit: bool):
    """Words match whole and case-insensitively; ``re:`` entries are regular expressions."""
    assert blocked([validate_pattern(e) for e in entries], [text]) is hit


def test_policy_blocklist_message_is_generic_and_checks_negative_prompt():
    """The member never learns which word matched; the negative prompt is checked too."""
    p = policy(blocklist=("secretword",))
    with pytest.raises(PromptBlocked) as refused:
        check_member(p, MEMBER, ["a cat", "SecretWord"], MemberUsage(), 20, NOW)
    assert "secretword" not in refused.value.user_message.lower()


def test_policy_bad_patterns_are_refused():
    """Empty, too long and invalid regular expressions are not stored."""
    for bad in ("", "  ", "re:", "re:(unclosed", "x" * 201):
        with pytest.raises(BadPattern):
            validate_pattern(bad)


def test_policy_order_channel_before_blocklist_before_limits():
    """The first rule in the documented order decides the message."""
    p = policy(channels=frozenset({99}), blocklist=("fox",), member_cap=10, required_role_id=None)
    with pytest.raises(ChannelNotAllowed):
        check(p, prompt="a fox")
    p = policy(blocklist=("fox",), member_cap=10)
    with pytest.raises(PromptBlocked):
        check(p, prompt="a fox")


def test_policy_member_limits():
    """Running jobs, cooldown and cap, in that order; the cap counts this clip's cost."""
    p = policy(max_running=1, cooldown_seconds=60, member_cap=50)
    with pytest.raises(TooManyRunning):
        check(p, running=1)
    with pytest.raises(CoolingDown) as cooling:
        check(p, last_job_at=NOW - timedelta(seconds=30))
    assert cooling.value.ready_at == NOW + timedelta(seconds=30)
    check(p, last_job_at=NOW - timedelta(seconds=60), spent=30)
    with pytest.raises(MemberCapReached) as capped:
        check(p, spent=31)
    assert "used 31 of your 50" in capped.value.user_message


def test_policy_roles_raise_or_lift_the_cap():
    """A raising role lifts the cap to its own; an exempt role or a moderator has none."""
    p = policy(
        member_cap=20,
        cooldown_seconds=600,
        roles=(RoleRule(1, cap=100), RoleRule(2, exempt=True)),
    )
    with pytest.raises(MemberCapReached):
        check(p, spent=10)
    check(p, MemberContext(G, CH, USER, role_ids=frozenset({1})), spent=80)
    with pytest.raises(CoolingDown):  # raising a cap does not lift the cooldown
        check(p, MemberContext(G, CH, USER, role_ids=frozenset({1})), last_job_at=NOW)
    check(p, MemberContext(G, CH, USER, role_ids=frozenset({2})), spent=10_000, last_job_at=NOW)
    check(p, MemberContext(G, CH, USER, is_moderator=True), spent=10_000, running=9)


def test_policy_usd_caps():
    """The guild's and the bot's monthly USD caps both bind; exactly reaching one is fine."""
    p = policy(monthly_usd_cap=Decimal("1.00"))
    check_spend(p, SpendState(guild_usd=Decimal("0.80")), Decimal("0.20"))
    with pytest.raises(SpendingCapReached) as refused:
        check_spend(p, SpendState(guild_usd=Decimal("0.81")), Decimal("0.20"))
    assert refused.value.user_message == (
        "This clip costs $0.20 at the provider, but this server's monthly spending limit of"
        " $1.00 has $0.19 left this month ($0.81 spent)."
    )
    with pytest.raises(SpendingCapReached) as refused:
        check_spend(None, SpendState(bot_usd=Decimal(5), bot_cap=Decimal(5)), Decimal("0.2"))
    assert "the bot's monthly spending limit of $5.00 has $0.00 left" in (
        refused.value.user_message
    )


def test_policy_usd_cap_below_one_clip_says_so():
    """A cap smaller than one clip's price is not "reached": say the price and the cap."""
    ends = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(SpendingCapReached) as refused:
        check_spend(
            policy(monthly_usd_cap=Decimal("0.25")), SpendState(month_ends=ends), Decimal("0.40")
        )
    message = refused.value.user_message
    assert "$0.40" in message and "$0.25" in message
    assert "more than this server's whole monthly spending limit" in message
    assert "reached" not in message and "$0.00" not in message


# -- through the job service: refused before any credit is reserved ---------------------


@pytest.fixture
async def world(
    storage_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> AsyncIterator[World]:
    """The job service over FakeFal and a real database (as in test_jobs)."""
    async with FakeFal() as fal:
        storage = await open_storage(storage_url)
        built = make_world(fal, storage, storage_url, tmp_path, session)
        try:
            yield built
        finally:
            await built.service.close()
            await built.storage.close()


async def _refusals(world: World, member: MemberContext, prompt: str = "a red fox") -> str:
    origin = Origin(member.guild_id, member.channel_id, member.user_id, "bob")
    with pytest.raises(RequestRefused) as refused:
        await world.service.create(GenerationRequest(prompt=prompt, seed=1), origin, member=member)
    return refused.value.user_message


async def test_policy_refusals_reserve_nothing(world: World):
    """Channel, blocklist and caps refuse before any ledger row or reservation exists."""
    mod = world.service  # the moderator side is driven through Moderation in its own tests
    from bot.moderation import Moderation

    moderation = Moderation(world.storage, world.quotas.quotas)
    await moderation.channel(G, 1, 99, allowed=True)
    assert "<#99>" in await _refusals(world, MEMBER)
    await moderation.clear_channels(G, 1)
    await moderation.blocklist(G, 1, "fox", blocked=True)
    assert "can't be used" in await _refusals(world, MEMBER)
    ledger = await ledger_rows(world.storage, G)
    reservations = await reservation_states(world.storage, G)
    jobs = await job_ids(world.storage, G)
    assert ledger == [] and reservations == [] and jobs == []
    assert world.fal.count("submit") == 0
    assert mod.scheduler.waiting == 0


async def test_policy_member_cap_cannot_be_raced(world: World):
    """Ten simultaneous 20-credit requests of one member with a 50-credit cap: two pass."""
    from bot.moderation import Moderation

    await Moderation(world.storage, world.quotas.quotas).member_cap(G, 1, credits=50)

    async def attempt() -> bool:
        try:
            await world.service.create(
                GenerationRequest(prompt="x", seed=1), Origin(G, CH, USER), member=MEMBER
            )
        except RequestRefused:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(10)))
    assert sum(results) == 2
    assert (await world.quotas.balance(G)).reserved == 40


async def test_policy_usd_caps_cannot_be_raced(world: World):
    """A $0.50 guild cap with $0.20 clips: of ten simultaneous requests, two pass; the bot
    cap counts every guild's spend."""
    from bot.moderation import Moderation

    await Moderation(world.storage, world.quotas.quotas).set(G, 1, usd_cap="0.50")

    async def attempt(guild: int, user: int) -> bool:
        try:
            await world.service.create(
                GenerationRequest(prompt="x", seed=1),
                Origin(guild, CH, user),
                member=MemberContext(guild, CH, user),
            )
        except RequestRefused:
            return False
        return True

    results = await asyncio.gather(*(attempt(G, u) for u in range(10)))
    assert sum(results) == 2
    world.service._admission.bot_monthly_usd_cap = Decimal("1.00")
    others = await asyncio.gather(*(attempt(G + 1 + u, u) for u in range(10)))
    assert sum(others) == 3  # $0.40 spent by G already: three more $0.20 clips fit in $1.00


async def test_policy_rules_hold_across_processes(
    world: World, storage_url: str, tmp_path: Path, session: aiohttp.ClientSession
):
    """Three job services on one database (three bot processes): the guild's balance, a member
    cap and the bot-wide USD cap hold for all of them together."""
    from bot.moderation import Moderation

    others = [await open_storage(storage_url) for _ in range(2)]
    worlds = [world] + [make_world(world.fal, s, storage_url, tmp_path, session) for s in others]
    try:
        moderation = Moderation(world.storage, world.quotas.quotas)
        await moderation.set(G, 1, allowance=100)  # five 20-credit clips
        await moderation.member_cap(G, 1, credits=60)  # of which one member gets three

        async def attempt(where: World, guild: int, user: int) -> bool:
            try:
                await where.service.create(
                    GenerationRequest(prompt="x", seed=1),
                    Origin(guild, CH, user),
                    member=MemberContext(guild, CH, user),
                )
            except RequestRefused:
                return False
            return True

        one_member = await asyncio.gather(*(attempt(worlds[i % 3], G, USER) for i in range(12)))
        assert sum(one_member) == 3
        everyone = await asyncio.gather(*(attempt(worlds[i % 3], G, 100 + i) for i in range(12)))
        assert sum(everyone) == 2  # the balance: 100 credits, 60 already held
        assert (await world.quotas.balance(G)).remaining == 0
        for each in worlds:  # $1.00 for the whole bot; $1.00 already held by guild G
            each.service._admission.bot_monthly_usd_cap = Decimal("1.60")
        elsewhere = await asyncio.gather(*(attempt(worlds[i % 3], G + 1 + i, i) for i in range(12)))
        assert sum(elsewhere) == 3  # three more $0.20 clips fit in $1.60
    finally:
        for each in worlds[1:]:
            await each.service.close()
        for opened in others:
            await opened.close()
