"""Embeds of ``/quota``: a guild's rules and credits, usage, the ledger and the audit trail."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.audit_text import describe
from bot.guild_settings import OPERATOR_ID, AuditEntry
from bot.moderation import Overview, Page, UsageReport
from bot.policy import GuildPolicy
from bot.quotas import LedgerEntry
from bot.reruns import RerunsBy
from bot.tools import Tool

COLOUR = discord.Colour.gold()


def _ts(when: datetime, style: str = "R") -> str:
    return f"<t:{int(when.timestamp())}:{style}>"


def _who(user_id: int | None) -> str:
    if user_id is None:
        return "the bot"
    return "the operator" if user_id == OPERATOR_ID else f"<@{user_id}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rules_lines(policy: GuildPolicy) -> list[str]:
    """The guild's member and channel rules, one per line."""
    lines = []
    cap = f"{policy.member_cap} credits per period" if policy.member_cap else "no cap"
    lines.append(f"Member cap: {cap}")
    for rule in policy.roles:
        lines.append(
            f"· <@&{rule.role_id}>: " + ("no member limits" if rule.exempt else f"cap {rule.cap}")
        )
    lines.append(
        f"Cooldown: {policy.cooldown_seconds} s" if policy.cooldown_seconds else "No cooldown"
    )
    lines.append(
        f"Jobs at once per member: {policy.max_running}"
        if policy.max_running
        else "No limit on jobs at once"
    )
    if policy.required_role_id:
        lines.append(f"/pika needs <@&{policy.required_role_id}>")
    if policy.channels:
        lines.append("Channels: " + ", ".join(f"<#{c}>" for c in sorted(policy.channels)))
    else:
        lines.append("Channels: all")
    if policy.nsfw_only:
        lines.append("Only in age-restricted channels")
    lines.append(
        "Reruns: anyone"
        if policy.reruns_by is RerunsBy.ANYONE
        else "Reruns: only each video's requester (and moderators)"
    )
    lines.append(f"Blocklist: {len(policy.blocklist)} entries")
    if policy.disabled_effects:
        off = ", ".join(sorted(e.value for e in policy.disabled_effects))
        lines.append(f"Pikaffects turned off: {off}")
    return lines


def overview_embed(overview: Overview) -> discord.Embed:
    """``/quota show``: credits, period, money and rules."""
    b, p = overview.balance, overview.policy
    embed = discord.Embed(title="Video credits: server settings", colour=COLOUR)
    embed.add_field(name="Left", value=f"**{b.remaining}** of {b.allowance}", inline=True)
    embed.add_field(name="In use", value=str(b.reserved), inline=True)
    embed.add_field(name="Spent", value=str(b.spent), inline=True)
    embed.add_field(name="Granted", value=str(b.granted), inline=True)
    embed.add_field(name="Carried over", value=str(b.carried), inline=True)
    embed.add_field(name="Resets / adjustments", value=str(b.adjusted), inline=True)
    embed.add_field(
        name="Period",
        value=f"{b.period.value}, from {b.reset_hour:02d}:00 {b.time_zone}"
        f" · next {_ts(b.resets_at)} · rollover {'on' if b.rollover else 'off'}",
        inline=False,
    )
    cap = f" of ${p.monthly_usd_cap:.2f} cap" if p.monthly_usd_cap is not None else " (no cap)"
    embed.add_field(
        name="Provider spend this month",
        value=f"${overview.usd_this_month:.2f}{cap} · month ends {_ts(overview.month_ends)}",
        inline=False,
    )
    embed.add_field(name="Rules", value=_clip("\n".join(rules_lines(p)), 1024), inline=False)
    return embed


def usage_embed(report: UsageReport) -> discord.Embed:
    """``/quota usage``: top members by spend this period, and the latest jobs."""
    embed = discord.Embed(title=f"Usage in {report.period_key}", colour=COLOUR)
    members = [
        f"{i}. <@{m.user_id}>: {m.credits} credits (${m.usd:.2f}), {m.jobs} jobs"
        for i, m in enumerate(report.members, start=1)
    ]
    embed.add_field(
        name="Top members", value=_clip("\n".join(members) or "Nobody yet.", 1024), inline=False
    )
    jobs = [
        f"job {j.id} · <@{j.origin.user_id}> · {j.cost} credits · {j.state.value}"
        f" · {_ts(j.created_at)}"
        for j in report.recent
    ]
    embed.add_field(
        name="Recent jobs", value=_clip("\n".join(jobs) or "None yet.", 1024), inline=False
    )
    if report.tools_this_month:
        used = ", ".join(
            f"{Tool(name).label if name in set(Tool) else name} {count}"
            for name, count in report.tools_this_month.items()
        )
        embed.add_field(name="Pika tools this month", value=_clip(used, 1024), inline=False)
    embed.set_footer(text=f"Provider spend this month: ${report.usd_this_month:.2f}")
    return embed


def ledger_embed(page: Page[LedgerEntry]) -> discord.Embed:
    """``/quota ledger``: every credit movement with who and why, newest first."""
    lines = []
    for e in page.items:
        line = f"`#{e.id}` {_ts(e.created_at)} **{e.kind}** {e.amount:+d}"
        if e.user_id is not None:
            line += f" · for <@{e.user_id}>"
        if e.kind in ("grant", "reset", "adjust", "rollover"):
            line += f" · by {_who(e.actor_id)}"
        if e.job_id is not None:
            line += f" · job {e.job_id}"
        if e.reason:
            line += f" · {_clip(e.reason, 80)}"
        lines.append(line)
    embed = discord.Embed(
        title="Credit ledger",
        description=_clip("\n".join(lines) or "No credit movements yet.", 4000),
        colour=COLOUR,
    )
    embed.set_footer(text=f"page {page.page} of {page.pages} · {page.total} entries")
    return embed


def audit_embed(page: Page[AuditEntry]) -> discord.Embed:
    """``/quota ledger entries:rules``: every rule change, newest first."""
    lines = []
    for e in page.items:
        change = describe(e, role=lambda i: f"<@&{i}>", channel=lambda i: f"<#{i}>")
        lines.append(
            f"`#{e.id}` {_ts(e.created_at)} {_who(e.actor_id)}: **{change.subject}**"
            f" {change.old} → {change.new}" + (f" · {_clip(e.reason, 80)}" if e.reason else "")
        )
    embed = discord.Embed(
        title="Rule changes",
        description=_clip("\n".join(lines) or "No changes yet.", 4000),
        colour=COLOUR,
    )
    embed.set_footer(text=f"page {page.page} of {page.pages} · {page.total} entries")
    return embed
