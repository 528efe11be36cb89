"""The rules a request must pass before any credit is reserved.

Everything here is pure: a :class:`GuildPolicy` (what the moderators set), a
:class:`MemberContext` (who asks, where, with which roles), the member's :class:`MemberUsage`
and the request's price go in; nothing comes out, or a :class:`~bot.refusals.RequestRefused`
subclass with a friendly message. The job service runs these checks inside the transaction
that reserves the credits, so neither the rules nor the caps can be raced.

The order, first refusal wins:

1. channel allow-list  2. NSFW-only  3. required role  3b. a Pikaffect the moderators turned
off  4. blocklist on everything typed (a generic message that never names the word)
5. member limits: jobs running at once, cooldown, member cap  6. USD caps: the guild's per
month, then the whole bot's per month.

Moderators (Manage Server) and members with an exempt role skip the required role and the
member limits (5); nobody skips the channel, NSFW, blocklist or money rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache

from bot.config import Period
from bot.periods import zone
from bot.refusals import RequestRefused
from bot.reruns import RerunsBy
from bot.tools import Pikaffect, ToolInputs

REGEX_PREFIX = "re:"
"""A blocklist entry starting with this is a regular expression; others are words."""
MAX_PATTERN_CHARS = 200


@dataclass(frozen=True, slots=True)
class RoleRule:
    """A role that raises the member cap to ``cap`` credits, or exempts from member limits."""

    role_id: int
    exempt: bool = False
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class GuildPolicy:
    """Everything moderators control for one guild (defaults come from the settings)."""

    guild_id: int
    allowance: int
    period: Period
    time_zone: str = "UTC"
    reset_hour: int = 0
    rollover: bool = False
    member_cap: int | None = None
    cooldown_seconds: int = 0
    max_running: int | None = None
    required_role_id: int | None = None
    nsfw_only: bool = False
    reruns_by: RerunsBy = RerunsBy.ANYONE
    monthly_usd_cap: Decimal | None = None
    channels: frozenset[int] = frozenset()
    blocklist: tuple[str, ...] = ()
    roles: tuple[RoleRule, ...] = ()
    disabled_effects: frozenset[Pikaffect] = frozenset()

    @property
    def tz(self) -> tzinfo:
        """The time zone periods are counted in."""
        return zone(self.time_zone)


@dataclass(frozen=True, slots=True)
class MemberContext:
    """Who asks and where: what the Discord front end knows about the member and channel."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: frozenset[int] = frozenset()
    channel_nsfw: bool = False
    is_moderator: bool = False
    rerun_of_user: int | None = None
    """For a rerun: the member who asked for the original video."""


@dataclass(frozen=True, slots=True)
class MemberUsage:
    """The member's use of the bot in the current period."""

    spent: int = 0  # credits reserved or charged this period
    running: int = 0  # jobs not finished yet
    last_job_at: datetime | None = None
    resets_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SpendState:
    """Provider spend (USD) of this UTC calendar month, and the bot-wide cap."""

    guild_usd: Decimal = Decimal(0)
    bot_usd: Decimal = Decimal(0)
    bot_cap: Decimal | None = None
    month_ends: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberLimits:
    """The limits that apply to one member after roles are taken into account."""

    cap: int | None
    cooldown_seconds: int
    max_running: int | None
    exempt: bool = field(default=False)


# -- refusals ----------------------------------------------------------------------------


class ChannelNotAllowed(RequestRefused):
    """/pika is limited to some channels and this is not one of them."""

    def __init__(self, channels: Iterable[int]) -> None:
        where = ", ".join(f"<#{c}>" for c in sorted(channels))
        super().__init__(f"Videos are made in {where} on this server. Please ask there.")


class NsfwOnly(RequestRefused):
    """The guild allows /pika only in age-restricted channels."""

    def __init__(self) -> None:
        super().__init__("On this server, videos are made only in age-restricted channels.")


class RoleRequired(RequestRefused):
    """The member lacks the role the guild requires for /pika."""

    def __init__(self, role_id: int) -> None:
        super().__init__(f"You need the <@&{role_id}> role to make videos on this server.")


class RerunNotAllowed(RequestRefused):
    """The guild lets only a video's requester (and moderators) rerun it."""

    def __init__(self) -> None:
        super().__init__(
            "On this server only the member who made a video, or a moderator, can rerun it."
            " Make your own with /pika!"
        )


class EffectDisabled(RequestRefused):
    """The moderators turned this Pikaffect off on the server."""

    def __init__(self, effect: Pikaffect, left: Iterable[Pikaffect]) -> None:
        others = ", ".join(e.value for e in left)
        super().__init__(
            f"The {effect.value} effect is turned off on this server."
            + (f" Try another: {others}." if others else "")
        )


class PromptBlocked(RequestRefused):
    """The prompt matched the guild's blocklist; the message never names the match."""

    def __init__(self) -> None:
        super().__init__(
            "This prompt can't be used on this server. Please rephrase it and try again."
        )


class TooManyRunning(RequestRefused):
    """The member already has as many jobs running as the guild allows."""

    def __init__(self, limit: int) -> None:
        jobs = "job" if limit == 1 else "jobs"
        super().__init__(
            f"You can have {limit} {jobs} running at once here. Wait for one to finish."
        )


class CoolingDown(RequestRefused):
    """The member's last job was too recent."""

    def __init__(self, ready_at: datetime) -> None:
        super().__init__(
            f"Slow down a little: you can start another video <t:{int(ready_at.timestamp())}:R>."
        )
        self.ready_at = ready_at


class MemberCapReached(RequestRefused):
    """The member's own credits for this period would be exceeded."""

    def __init__(self, cost: int, spent: int, cap: int, resets_at: datetime | None) -> None:
        when = f" Your credits reset <t:{int(resets_at.timestamp())}:R>." if resets_at else ""
        super().__init__(
            f"This clip costs {cost} credits; you have used {spent} of your {cap} this period."
            + when
        )


class SpendingCapReached(RequestRefused):
    """A hard cap in USD (the guild's or the whole bot's) would be passed this month.

    The message says what the clip costs and what the cap still allows, so a cap below the
    price of one clip does not read as a limit "reached" with nothing spent.
    """

    def __init__(
        self,
        whose: str,
        *,
        usd: Decimal,
        spent: Decimal,
        cap: Decimal,
        month_ends: datetime | None,
        who_raises: str,
    ) -> None:
        self.usd, self.spent, self.cap = usd, spent, cap
        price = f"This clip costs ${usd:.2f} at the provider"
        if usd > cap:
            text = (
                f"{price}, more than {whose} whole monthly spending limit of ${cap:.2f}."
                f" A shorter or lower-resolution clip may fit; otherwise ask {who_raises}"
                " about the limit."
            )
        else:
            left = max(cap - spent, Decimal(0))
            when = f" It resets <t:{int(month_ends.timestamp())}:R>." if month_ends else ""
            text = (
                f"{price}, but {whose} monthly spending limit of ${cap:.2f} has ${left:.2f}"
                f" left this month (${spent:.2f} spent).{when}"
            )
        super().__init__(text)


# -- the rules ---------------------------------------------------------------------------


def member_limits(policy: GuildPolicy, member: MemberContext) -> MemberLimits:
    """The member's cap, cooldown and running limit once roles and moderator status apply."""
    exempt = member.is_moderator or any(
        r.exempt and r.role_id in member.role_ids for r in policy.roles
    )
    if exempt:
        return MemberLimits(cap=None, cooldown_seconds=0, max_running=None, exempt=True)
    cap = policy.member_cap
    if cap is not None:
        raised = [
            r.cap
            for r in policy.roles
            if not r.exempt and r.cap is not None and r.role_id in member.role_ids
        ]
        cap = max([cap, *raised])
    return MemberLimits(
        cap=cap, cooldown_seconds=policy.cooldown_seconds, max_running=policy.max_running
    )


def check_member(
    policy: GuildPolicy,
    member: MemberContext,
    texts: Iterable[str],
    usage: MemberUsage,
    cost: int,
    now: datetime,
    *,
    tool: ToolInputs | None = None,
) -> None:
    """Rules 1-5: where, who, what, and how much this member may ask for now. ``texts``:
    everything the member typed; ``tool``: the Pika tool asked for, if any."""
    if policy.channels and member.channel_id not in policy.channels:
        raise ChannelNotAllowed(policy.channels)
    if policy.nsfw_only and not member.channel_nsfw:
        raise NsfwOnly()
    if (
        policy.required_role_id is not None
        and not member.is_moderator
        and policy.required_role_id not in member.role_ids
    ):
        raise RoleRequired(policy.required_role_id)
    if tool is not None and tool.effect is not None and tool.effect in policy.disabled_effects:
        left = [e for e in Pikaffect if e not in policy.disabled_effects]
        raise EffectDisabled(tool.effect, left)
    if blocked(policy.blocklist, texts):
        raise PromptBlocked()
    if (
        member.rerun_of_user is not None
        and policy.reruns_by is RerunsBy.REQUESTER
        and member.user_id != member.rerun_of_user
        and not member.is_moderator
    ):
        raise RerunNotAllowed()
    limits = member_limits(policy, member)
    if limits.max_running is not None and usage.running >= limits.max_running:
        raise TooManyRunning(limits.max_running)
    if limits.cooldown_seconds and usage.last_job_at is not None:
        ready_at = usage.last_job_at + timedelta(seconds=limits.cooldown_seconds)
        if now < ready_at:
            raise CoolingDown(ready_at)
    if limits.cap is not None and usage.spent + cost > limits.cap:
        raise MemberCapReached(cost, usage.spent, limits.cap, usage.resets_at)


def check_spend(policy: GuildPolicy | None, spend: SpendState, usd: Decimal) -> None:
    """Rule 6: the provider's price of this clip must fit under every USD cap this month."""
    cap = policy.monthly_usd_cap if policy is not None else None
    if cap is not None and spend.guild_usd + usd > cap:
        raise SpendingCapReached(
            "this server's",
            usd=usd,
            spent=spend.guild_usd,
            cap=cap,
            month_ends=spend.month_ends,
            who_raises="a moderator",
        )
    if spend.bot_cap is not None and spend.bot_usd + usd > spend.bot_cap:
        raise SpendingCapReached(
            "the bot's",
            usd=usd,
            spent=spend.bot_usd,
            cap=spend.bot_cap,
            month_ends=spend.month_ends,
            who_raises="the bot's operator",
        )


# -- blocklist ---------------------------------------------------------------------------


class BadPattern(ValueError):
    """A blocklist entry that is empty, too long or not a valid regular expression."""


def validate_pattern(entry: str) -> str:
    """The entry as stored (trimmed; words lower-cased), or :class:`BadPattern`."""
    entry = entry.strip()
    if not entry or entry == REGEX_PREFIX:
        raise BadPattern("a blocklist entry can't be empty")
    if len(entry) > MAX_PATTERN_CHARS:
        raise BadPattern(f"a blocklist entry is at most {MAX_PATTERN_CHARS} characters")
    if entry.startswith(REGEX_PREFIX):
        try:
            re.compile(entry[len(REGEX_PREFIX) :], re.IGNORECASE)
        except re.error as exc:
            raise BadPattern(f"not a valid regular expression: {exc}") from None
        return entry
    return entry.casefold()


@lru_cache(maxsize=1024)
def _compiled(entry: str) -> re.Pattern[str]:
    if entry.startswith(REGEX_PREFIX):
        return re.compile(entry[len(REGEX_PREFIX) :], re.IGNORECASE)
    # A word or phrase, matched whole and case-insensitively ("ass" does not block "class").
    return re.compile(rf"(?<!\w){re.escape(entry)}(?!\w)", re.IGNORECASE)


def blocked(entries: Iterable[str], texts: Iterable[str]) -> bool:
    """Whether any text matches any blocklist entry."""
    patterns = [_compiled(e) for e in entries]
    if not patterns:
        return False
    return any(p.search(text) for text in texts if text for p in patterns)
