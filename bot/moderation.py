"""What moderators (``/quota``) and the operator (``pikabot quota``) do to a guild's credits.

Every operation runs in one unit of work that locks the guild first (so two moderators, or a
moderator and a reserving ``/pika`` in another process, never interleave), and leaves a trace
carrying the actor's id: credit movements are ledger rows (grant, reset, adjust, rollover),
rule changes are audit rows (value before and after). Bad input raises
:class:`ModerationError` with a sentence for the person who typed it; nothing is changed then.

Changing the period, time zone or reset hour (``set``) can move the guild into a period with
a new key. So that switching back and forth never mints credits, the new period's balance is
set, by one ``adjust`` row, to the lower of the balance before and the new allowance. Changing
only the allowance needs no row: the balance is the allowance plus the period's rows, so a
higher allowance gives the difference at once, and a lower one takes it away (the balance
may read below zero until the next period; nothing can be reserved meanwhile).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

from bot.config import Period
from bot.guild_settings import AuditEntry, usd_to_micros
from bot.models import Job
from bot.periods import UnknownTimeZone, month_bounds, period_key, zone
from bot.policy import (
    BadPattern,
    GuildPolicy,
    MemberContext,
    member_limits,
    validate_pattern,
)
from bot.quotas import Balance, LedgerEntry, MemberSpend, Quotas
from bot.reruns import RerunsBy
from bot.storage.base import Storage, UnitOfWork
from bot.storage.records import LedgerKind
from bot.tools import Pikaffect, find_effect

T = TypeVar("T")

PER_PAGE = 10
MAX_ALLOWANCE = 10_000_000
MAX_COOLDOWN_SECONDS = 7 * 24 * 3600


class ModerationError(ValueError):
    """Input a moderator or operator must correct; the message says how."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first."""

    items: list[T]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class Overview:
    """A guild's rules and credits at a glance (``/quota show``)."""

    policy: GuildPolicy
    balance: Balance
    usd_this_month: Decimal
    month_ends: datetime


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Who spent what this period, the latest jobs, and the Pika tools used this month
    (``/quota usage``)."""

    period_key: str
    members: list[MemberSpend]
    recent: list[Job]
    usd_this_month: Decimal
    tools_this_month: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """Where one member stands this period (``/credits``)."""

    spent: int
    cap: int | None
    exempt: bool


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def parse_usd(text: str) -> Decimal | None:
    """A USD amount typed by a person (``"25"``, ``"$12.50"``; ``"none"`` or ``"0"``: no cap)."""
    cleaned = text.strip().lstrip("$").strip()
    if cleaned.lower() in ("", "none", "off", "0"):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ModerationError(f"{text!r} is not an amount in USD (like 25 or 12.50)") from None
    if not value.is_finite() or value < 0:
        raise ModerationError("a USD cap must be a positive amount")
    return value.quantize(Decimal("0.01"))


class Moderation:
    """The moderators' operations on one database."""

    def __init__(self, storage: Storage, quotas: Quotas) -> None:
        self._storage = storage
        self._quotas = quotas
        self._guilds = quotas.guilds

    @contextlib.asynccontextmanager
    async def _unit(self, guild_id: int) -> AsyncIterator[UnitOfWork]:
        """One unit of work that holds the guild's lock until it ends."""
        async with self._storage.unit() as uow:
            await uow.lock_guild(guild_id)
            yield uow

    async def balance(self, guild_id: int) -> Balance:
        """The guild's balance now (``/credits``)."""
        async with self._unit(guild_id) as uow:
            return await self._quotas.balance(uow, guild_id)

    async def show(self, guild_id: int) -> Overview:
        """The guild's rules, balance and provider spend this month."""
        async with self._unit(guild_id) as uow:
            return await self._overview(uow, guild_id)

    async def _overview(self, uow: UnitOfWork, guild_id: int) -> Overview:
        balance = await self._quotas.balance(uow, guild_id)
        policy = await self._guilds.load(uow, guild_id)
        start, end = month_bounds(self._quotas.clock())
        usd = await self._quotas.usd_spent(uow, start, end, guild_id=guild_id)
        return Overview(policy, balance, usd, end)

    async def set(
        self,
        guild_id: int,
        actor_id: int,
        *,
        allowance: int | None = None,
        period: Period | str | None = None,
        reset_hour: int | None = None,
        time_zone: str | None = None,
        rollover: bool | None = None,
        usd_cap: str | None = None,
        reason: str | None = None,
    ) -> Overview:
        """Change the allowance, period, reset time, rollover or the guild's USD cap."""
        changes: dict[str, object] = {}
        if allowance is not None:
            if not 0 <= allowance <= MAX_ALLOWANCE:
                raise ModerationError(f"the allowance must be between 0 and {MAX_ALLOWANCE}")
            changes["allowance"] = allowance
        if period is not None:
            try:
                changes["period"] = Period(str(period).lower())
            except ValueError:
                raise ModerationError("the period must be daily, weekly or monthly") from None
        if reset_hour is not None:
            if not 0 <= reset_hour <= 23:
                raise ModerationError("the reset hour must be between 0 and 23")
            changes["reset_hour"] = reset_hour
        if time_zone is not None:
            try:
                zone(time_zone)
            except UnknownTimeZone as exc:
                raise ModerationError(str(exc)) from None
            changes["time_zone"] = "UTC" if time_zone.upper() == "UTC" else time_zone
        if usd_cap is not None:
            cap = parse_usd(usd_cap)
            changes["monthly_usd_cap_micros"] = None if cap is None else usd_to_micros(cap)
        if not changes and rollover is None:
            raise ModerationError("nothing to change: give at least one option")
        async with self._unit(guild_id) as uow:
            before = await self._quotas.balance(uow, guild_id)
            await self._guilds.change(uow, guild_id, actor_id, changes, reason=reason)
            after = await self._quotas.balance(uow, guild_id)
            if after.period_key != before.period_key:
                target = min(before.remaining, after.allowance)
                if target != after.remaining:
                    await self._quotas.move(
                        uow,
                        guild_id,
                        LedgerKind.ADJUST,
                        target - after.remaining,
                        actor_id=actor_id,
                        reason=f"period changed ({before.period_key} to {after.period_key}):"
                        f" balance kept at {target}",
                    )
            if rollover is not None and rollover != after.rollover:
                if rollover:
                    # Carry starts with the next period: mark this one as already rolled over.
                    await self._quotas.move(
                        uow,
                        guild_id,
                        LedgerKind.ROLLOVER,
                        0,
                        actor_id=actor_id,
                        reason="rollover turned on: unused credits carry from the next period",
                    )
                await self._guilds.change(
                    uow, guild_id, actor_id, {"rollover": rollover}, reason=reason
                )
            return await self._overview(uow, guild_id)

    async def grant(self, guild_id: int, actor_id: int, amount: int, reason: str) -> Balance:
        """Give the guild ``amount`` extra credits this period."""
        if not 0 < amount <= MAX_ALLOWANCE:
            raise ModerationError(f"a grant must be between 1 and {MAX_ALLOWANCE} credits")
        if not reason.strip():
            raise ModerationError("say why (a reason is kept in the ledger)")
        async with self._unit(guild_id) as uow:
            return await self._quotas.grant(
                uow, guild_id, amount, actor_id=actor_id, reason=reason.strip()
            )

    async def reset(self, guild_id: int, actor_id: int, reason: str = "") -> Balance:
        """Start the current period over (running jobs keep what they hold)."""
        async with self._unit(guild_id) as uow:
            return await self._quotas.reset(
                uow, guild_id, actor_id=actor_id, reason=reason.strip() or "reset by a moderator"
            )

    async def usage(self, guild_id: int, *, top: int = 10, recent: int = 5) -> UsageReport:
        """Top members by spend this period, the latest jobs, and USD this month."""
        async with self._unit(guild_id) as uow:
            balance = await self._quotas.balance(uow, guild_id)
            members = await self._quotas.usage(uow, guild_id, balance.period_key, limit=top)
            jobs = await uow.jobs.recent(guild_id, None, recent)
            start, end = month_bounds(self._quotas.clock())
            usd = await self._quotas.usd_spent(uow, start, end, guild_id=guild_id)
            tools = await uow.jobs.tool_counts(guild_id, start, end)
        return UsageReport(balance.period_key, members, jobs, usd, tools)

    async def ledger(
        self, guild_id: int, page: int = 1, per_page: int = PER_PAGE
    ) -> Page[LedgerEntry]:
        """One page of every credit movement, newest first."""
        page = max(1, page)
        async with self._storage.read() as uow:
            items, total = await self._quotas.ledger_page(
                uow, guild_id, offset=(page - 1) * per_page, limit=per_page
            )
        return Page(items, page, _pages(total, per_page), total)

    async def audit(
        self, guild_id: int, page: int = 1, per_page: int = PER_PAGE
    ) -> Page[AuditEntry]:
        """One page of every rule change, newest first."""
        page = max(1, page)
        async with self._storage.read() as uow:
            items, total = await self._guilds.audit_page(
                uow, guild_id, offset=(page - 1) * per_page, limit=per_page
            )
        return Page(items, page, _pages(total, per_page), total)

    async def member_cap(
        self,
        guild_id: int,
        actor_id: int,
        *,
        credits: int | None = None,
        running: int | None = None,
        role_id: int | None = None,
        role_credits: int | None = None,
        exempt_role_id: int | None = None,
    ) -> GuildPolicy:
        """Per-member limits: ``credits`` per period and ``running`` jobs at once (0: none);
        ``role_id`` with ``role_credits`` raises that role's cap (0 drops its rule);
        ``exempt_role_id`` frees a role from member limits."""
        if credits is None and running is None and role_id is None and exempt_role_id is None:
            raise ModerationError("nothing to change: give at least one option")
        if role_id is not None and role_credits is None:
            raise ModerationError("give role_credits with role (0 removes the role's rule)")
        for value in (credits, running, role_credits):
            if value is not None and not 0 <= value <= MAX_ALLOWANCE:
                raise ModerationError("limits must be between 0 and 10,000,000")
        changes: dict[str, object] = {}
        if credits is not None:
            changes["member_cap"] = credits or None
        if running is not None:
            changes["max_running"] = running or None
        async with self._unit(guild_id) as uow:
            await self._guilds.change(uow, guild_id, actor_id, changes)
            if role_id is not None:
                await self._guilds.set_role(
                    uow, guild_id, actor_id, role_id, cap=role_credits or None
                )
            if exempt_role_id is not None:
                await self._guilds.set_role(uow, guild_id, actor_id, exempt_role_id, exempt=True)
            return await self._guilds.load(uow, guild_id)

    async def cooldown(self, guild_id: int, actor_id: int, seconds: int) -> GuildPolicy:
        """Seconds a member waits between two jobs (0: none)."""
        if not 0 <= seconds <= MAX_COOLDOWN_SECONDS:
            raise ModerationError("the cooldown must be between 0 s and 7 days")
        return await self._change(guild_id, actor_id, {"cooldown_seconds": seconds})

    async def required_role(self, guild_id: int, actor_id: int, role_id: int | None) -> GuildPolicy:
        """The role a member needs for /pika (None: anyone)."""
        return await self._change(guild_id, actor_id, {"required_role_id": role_id})

    async def reruns_by(self, guild_id: int, actor_id: int, who: RerunsBy) -> GuildPolicy:
        """Who may rerun finished videos: anyone, or each video's requester (and moderators)."""
        return await self._change(guild_id, actor_id, {"reruns_by": who})

    async def nsfw_only(self, guild_id: int, actor_id: int, enabled: bool) -> GuildPolicy:
        """Allow /pika only in age-restricted channels, or everywhere."""
        return await self._change(guild_id, actor_id, {"nsfw_only": enabled})

    async def channel(
        self, guild_id: int, actor_id: int, channel_id: int, *, allowed: bool
    ) -> GuildPolicy:
        """Add a channel to the allow-list or take it off."""
        async with self._unit(guild_id) as uow:
            await self._guilds.set_channel(uow, guild_id, actor_id, channel_id, allowed=allowed)
            return await self._guilds.load(uow, guild_id)

    async def clear_channels(self, guild_id: int, actor_id: int) -> GuildPolicy:
        """Let /pika work in every channel again."""
        async with self._unit(guild_id) as uow:
            await self._guilds.clear_channels(uow, guild_id, actor_id)
            return await self._guilds.load(uow, guild_id)

    async def blocklist(
        self, guild_id: int, actor_id: int, entry: str, *, blocked: bool
    ) -> GuildPolicy:
        """Add a word (or ``re:`` regular expression) to the blocklist, or remove one."""
        try:
            pattern = validate_pattern(entry)
        except BadPattern as exc:
            raise ModerationError(str(exc)) from None
        async with self._unit(guild_id) as uow:
            changed = await self._guilds.set_blocked(
                uow, guild_id, actor_id, pattern, blocked=blocked
            )
            if not changed and not blocked:
                raise ModerationError("that entry is not on the blocklist")
            return await self._guilds.load(uow, guild_id)

    async def effect(
        self, guild_id: int, actor_id: int, effect: str, *, enabled: bool
    ) -> GuildPolicy:
        """Turn one Pikaffect off on the server (members who pick it are told so) or back on."""
        found = find_effect(effect)
        if found is None:
            names = ", ".join(e.value for e in Pikaffect)
            raise ModerationError(f"{effect!r} is not a Pikaffect (they are {names})")
        async with self._unit(guild_id) as uow:
            await self._guilds.set_effect(uow, guild_id, actor_id, found, enabled=enabled)
            return await self._guilds.load(uow, guild_id)

    async def standing(self, member: MemberContext) -> MemberStanding:
        """The member's spend this period and the cap that applies to them."""
        async with self._unit(member.guild_id) as uow:
            policy = await self._guilds.load(uow, member.guild_id)
            key = period_key(policy.period, self._quotas.clock(), policy.tz, policy.reset_hour)
            spent = await self._quotas.member_spent(uow, member.guild_id, member.user_id, key)
        limits = member_limits(policy, member)
        return MemberStanding(spent, limits.cap, limits.exempt)

    async def _change(
        self, guild_id: int, actor_id: int, changes: dict[str, object]
    ) -> GuildPolicy:
        async with self._unit(guild_id) as uow:
            await self._guilds.change(uow, guild_id, actor_id, changes)
            return await self._guilds.load(uow, guild_id)
