"""Reruns: what each variant changes, which are offered, and who may rerun."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import Period
from bot.models import GenerationRequest, Resolution
from bot.policy import GuildPolicy, MemberContext, MemberUsage, RerunNotAllowed, check_member
from bot.reruns import RerunsBy, Variant, offered_variants, rerun_request

BASE = GenerationRequest(prompt="a kite", seed=9)
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def test_rerun_new_seed_changes_only_the_seed():
    """🔁 and Rerun keep every setting and draw a new seed."""
    again = rerun_request(BASE, Variant.NEW_SEED)
    assert again.seed != BASE.seed
    assert again.model_dump(exclude={"seed"}) == BASE.model_dump(exclude={"seed"})


def test_rerun_variants_keep_the_seed():
    """The 1080p and 10-second variants keep the seed and change one setting."""
    hd = rerun_request(BASE, Variant.FULL_HD)
    longer = rerun_request(BASE, Variant.LONGER)
    assert (hd.seed, hd.resolution) == (9, Resolution.FULL_HD)
    assert (longer.seed, longer.duration) == (9, 10)


def test_rerun_offers_only_useful_variants():
    """A 1080p 10-second clip offers only a plain rerun."""
    big = BASE.model_copy(update={"resolution": Resolution.FULL_HD, "duration": 10})
    assert offered_variants(big) == [Variant.NEW_SEED]
    assert offered_variants(BASE) == [Variant.NEW_SEED, Variant.FULL_HD, Variant.LONGER]


@pytest.mark.parametrize(
    ("reruns_by", "user", "moderator", "allowed"),
    [
        (RerunsBy.ANYONE, 2, False, True),
        (RerunsBy.REQUESTER, 1, False, True),
        (RerunsBy.REQUESTER, 2, False, False),
        (RerunsBy.REQUESTER, 2, True, True),
    ],
)
def test_rerun_policy_decides_who_may_rerun(reruns_by, user, moderator, allowed):
    """With 'requester', only the original requester and moderators may rerun."""
    policy = GuildPolicy(guild_id=5, allowance=100, period=Period.DAILY, reruns_by=reruns_by)
    member = MemberContext(5, 6, user, is_moderator=moderator, rerun_of_user=1)
    if allowed:
        check_member(policy, member, ["a kite"], MemberUsage(), 20, NOW)
    else:
        with pytest.raises(RerunNotAllowed):
            check_member(policy, member, ["a kite"], MemberUsage(), 20, NOW)
