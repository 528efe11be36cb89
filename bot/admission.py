"""Admission: the stored rules and usage a request is checked against, gathered in the
unit of work that will reserve its credits, then judged by the pure rules of :mod:`bot.policy`.

Reading and checking inside that one unit, after it locked the guild (and the bot, when a
bot-wide USD cap is set), is what makes the rules and caps race-free: two requests of one
member cannot both pass a cap that only one of them fits, even from two processes.
"""

from __future__ import annotations

from decimal import Decimal

from bot.models import GenerationRequest
from bot.periods import month_bounds, next_reset, period_key
from bot.policy import (
    GuildPolicy,
    MemberContext,
    MemberUsage,
    SpendState,
    check_member,
    check_spend,
)
from bot.pricing import Quote
from bot.quotas import TERMINAL_GUILD, Quotas
from bot.storage.base import UnitOfWork


class Admission:
    """Checks a request against its guild's rules, its member's limits and the USD caps."""

    def __init__(self, quotas: Quotas, *, bot_monthly_usd_cap: Decimal | None = None) -> None:
        self._quotas = quotas
        self.bot_monthly_usd_cap = bot_monthly_usd_cap

    async def check(
        self, uow: UnitOfWork, member: MemberContext, request: GenerationRequest, priced: Quote
    ) -> None:
        """Raise a :class:`~bot.refusals.RequestRefused` subclass if any rule refuses."""
        now = self._quotas.clock()
        policy: GuildPolicy | None = None
        if member.guild_id != TERMINAL_GUILD:
            policy = await self._quotas.guilds.load(uow, member.guild_id)
            tz = policy.tz
            key = period_key(policy.period, now, tz, policy.reset_hour)
            usage = MemberUsage(
                spent=await self._quotas.member_spent(uow, member.guild_id, member.user_id, key),
                running=await uow.jobs.running_count(member.guild_id, member.user_id),
                last_job_at=await uow.jobs.last_created_at(member.guild_id, member.user_id),
                resets_at=next_reset(policy.period, now, tz, policy.reset_hour),
            )
            texts = request.texts()  # the prompts and a tool's own fields (region, transitions)
            check_member(policy, member, texts, usage, priced.credits, now, tool=request.tool)
        start, end = month_bounds(now)
        guild_usd = bot_usd = Decimal(0)
        if policy is not None and policy.monthly_usd_cap is not None:
            guild_usd = await self._quotas.usd_spent(uow, start, end, guild_id=member.guild_id)
        if self.bot_monthly_usd_cap is not None:
            bot_usd = await self._quotas.usd_spent(uow, start, end)
        spend = SpendState(guild_usd, bot_usd, self.bot_monthly_usd_cap, end)
        check_spend(policy, spend, priced.usd)
