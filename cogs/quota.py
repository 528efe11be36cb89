"""``/quota``: moderators run the server's video spending from Discord.

Every subcommand is hidden from members without Manage Server (``default_permissions``, a
hint Discord's client honours) *and* checked when it runs (``has_permissions``), because the
hint can be changed by anyone who edits the server's integration settings. A refused member
gets the friendly message of :mod:`cogs.errors`; nothing is changed. A moderator's bad input
(:class:`~bot.moderation.ModerationError`) is explained there too. Each change is recorded
with the moderator's id in the ledger (credits) or the audit trail (rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.reruns import RerunsBy
from bot.tools import Pikaffect, Tool
from cogs.quota_embeds import audit_embed, ledger_embed, overview_embed, rules_lines, usage_embed

if TYPE_CHECKING:
    from bot.app import PikaBot

PERIODS = [app_commands.Choice(name=p, value=p) for p in ("daily", "weekly", "monthly")]
CHANNEL_ACTIONS = [app_commands.Choice(name=a, value=a) for a in ("add", "remove", "clear", "list")]
BLOCK_ACTIONS = [app_commands.Choice(name=a, value=a) for a in ("add", "remove", "list")]
EFFECT_ACTIONS = [
    app_commands.Choice(name="turn off", value="off"),
    app_commands.Choice(name="turn on", value="on"),
    app_commands.Choice(name="list", value="list"),
]
EFFECTS = [app_commands.Choice(name=e.value, value=e.value) for e in Pikaffect]
ENTRIES = [
    app_commands.Choice(name="credit movements", value="credits"),
    app_commands.Choice(name="rule changes", value="rules"),
]

moderators_only = app_commands.checks.has_permissions(manage_guild=True)


async def _say(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaCog(commands.GroupCog, group_name="quota", group_description="Video credits and rules"):
    """The ``/quota`` group: show, set, grant, reset, usage, ledger and the member rules."""

    def __init__(self, bot: PikaBot) -> None:
        self.services = bot.services
        self.moderation = bot.services.moderation
        super().__init__()
        if Tool.PIKAFFECTS not in bot.services.provider.capabilities.tools:
            # Like /pikaffect itself, its switch exists only where the provider sells it.
            group = self.app_command
            assert group is not None  # a GroupCog always has its group
            group.remove_command("effects")

    @staticmethod
    def _guild(interaction: discord.Interaction) -> int:
        assert interaction.guild_id is not None
        return interaction.guild_id

    async def _rules(self, interaction: discord.Interaction, done: str) -> None:
        policy = (await self.moderation.show(self._guild(interaction))).policy
        await _say(interaction, done + "\n" + "\n".join(rules_lines(policy)))

    @app_commands.command(name="show", description="Credits, period, spend and rules")
    @moderators_only
    async def show(self, interaction: discord.Interaction) -> None:
        """Show the server's credits, period, provider spend and rules."""
        overview = await self.moderation.show(self._guild(interaction))
        await interaction.response.send_message(embed=overview_embed(overview), ephemeral=True)

    @app_commands.command(name="set", description="Change allowance, period, reset time, caps")
    @app_commands.describe(
        allowance="Credits per period",
        period="How often the allowance starts again",
        reset_hour="Hour of the day (0-23) the period starts, in the time zone",
        timezone="IANA time zone, like Europe/Berlin (default UTC)",
        rollover="Carry unused credits into the next period (at most one allowance)",
        usd_cap="Most the server may spend at the provider per month, in USD (none: no cap)",
        reason="Why (kept in the audit trail)",
    )
    @app_commands.choices(period=PERIODS)
    @moderators_only
    async def set_(
        self,
        interaction: discord.Interaction,
        allowance: app_commands.Range[int, 0, 10_000_000] | None = None,
        period: app_commands.Choice[str] | None = None,
        reset_hour: app_commands.Range[int, 0, 23] | None = None,
        timezone: app_commands.Range[str, 1, 64] | None = None,
        rollover: bool | None = None,
        usd_cap: app_commands.Range[str, 1, 20] | None = None,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Change the allowance and its period (a period change never adds credits)."""
        overview = await self.moderation.set(
            self._guild(interaction),
            interaction.user.id,
            allowance=allowance,
            period=period.value if period else None,
            reset_hour=reset_hour,
            time_zone=timezone,
            rollover=rollover,
            usd_cap=usd_cap,
            reason=reason,
        )
        await interaction.response.send_message(
            "Saved.", embed=overview_embed(overview), ephemeral=True
        )

    @app_commands.command(name="grant", description="Give the server extra credits this period")
    @app_commands.describe(amount="Credits to add", reason="Why (kept in the ledger)")
    @moderators_only
    async def grant(
        self,
        interaction: discord.Interaction,
        amount: app_commands.Range[int, 1, 10_000_000],
        reason: app_commands.Range[str, 1, 200],
    ) -> None:
        """Add credits to the current period, with a reason."""
        balance = await self.moderation.grant(
            self._guild(interaction), interaction.user.id, amount, reason
        )
        await _say(
            interaction, f"Granted {amount} credits. The server now has {balance.remaining} left."
        )

    @app_commands.command(name="reset", description="Start this period over at the allowance")
    @app_commands.describe(reason="Why (kept in the ledger)")
    @moderators_only
    async def reset(
        self,
        interaction: discord.Interaction,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Reset the balance to the allowance (running jobs keep what they hold)."""
        balance = await self.moderation.reset(
            self._guild(interaction), interaction.user.id, reason or ""
        )
        await _say(interaction, f"Reset. The server has {balance.remaining} credits left.")

    @app_commands.command(name="usage", description="Top members, spend per member, recent jobs")
    @moderators_only
    async def usage(self, interaction: discord.Interaction) -> None:
        """Who spent what this period, and the latest jobs."""
        report = await self.moderation.usage(self._guild(interaction))
        await interaction.response.send_message(embed=usage_embed(report), ephemeral=True)

    @app_commands.command(name="ledger", description="Every credit movement or rule change")
    @app_commands.describe(page="Page (1 is the newest)", entries="Credits (default) or rules")
    @app_commands.choices(entries=ENTRIES)
    @moderators_only
    async def ledger(
        self,
        interaction: discord.Interaction,
        page: app_commands.Range[int, 1, 100_000] = 1,
        entries: app_commands.Choice[str] | None = None,
    ) -> None:
        """One page of the ledger (or of the audit trail), newest first."""
        guild = self._guild(interaction)
        if entries is not None and entries.value == "rules":
            embed = audit_embed(await self.moderation.audit(guild, page))
        else:
            embed = ledger_embed(await self.moderation.ledger(guild, page))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="member-cap", description="Per-member limits and role exceptions")
    @app_commands.describe(
        credits="Credits a member may use per period (0: no cap)",
        running="Jobs a member may have running at once (0: no limit)",
        role="A role whose cap is role_credits instead",
        role_credits="The role's cap (0 removes the role's rule)",
        exempt_role="A role free of member limits",
    )
    @moderators_only
    async def member_cap(
        self,
        interaction: discord.Interaction,
        credits: app_commands.Range[int, 0, 10_000_000] | None = None,
        running: app_commands.Range[int, 0, 1000] | None = None,
        role: discord.Role | None = None,
        role_credits: app_commands.Range[int, 0, 10_000_000] | None = None,
        exempt_role: discord.Role | None = None,
    ) -> None:
        """Set the member cap, the running limit and role exceptions."""
        await self.moderation.member_cap(
            self._guild(interaction),
            interaction.user.id,
            credits=credits,
            running=running,
            role_id=role.id if role else None,
            role_credits=role_credits,
            exempt_role_id=exempt_role.id if exempt_role else None,
        )
        await self._rules(interaction, "Saved.")

    @app_commands.command(name="cooldown", description="Seconds a member waits between videos")
    @app_commands.describe(seconds="0 turns the cooldown off")
    @moderators_only
    async def cooldown(
        self, interaction: discord.Interaction, seconds: app_commands.Range[int, 0, 604_800]
    ) -> None:
        """Set the cooldown between two jobs of one member."""
        await self.moderation.cooldown(self._guild(interaction), interaction.user.id, seconds)
        await self._rules(interaction, "Saved.")

    @app_commands.command(name="required-role", description="A role members need for /pika")
    @app_commands.describe(role="Leave out to let everyone use /pika")
    @moderators_only
    async def required_role(
        self, interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        """Require a role for /pika, or lift the requirement."""
        await self.moderation.required_role(
            self._guild(interaction), interaction.user.id, role.id if role else None
        )
        await self._rules(interaction, "Saved.")

    @app_commands.command(name="channels", description="Channels where /pika works")
    @app_commands.describe(action="add, remove, clear (all channels) or list", channel="Channel")
    @app_commands.choices(action=CHANNEL_ACTIONS)
    @moderators_only
    async def channels(
        self,
        interaction: discord.Interaction,
        action: app_commands.Choice[str],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Edit the allow-list of channels (empty: every channel)."""
        guild, actor = self._guild(interaction), interaction.user.id
        if action.value in ("add", "remove"):
            if channel is None:
                await _say(interaction, f"Name the channel to {action.value}.")
                return
            await self.moderation.channel(guild, actor, channel.id, allowed=action.value == "add")
        elif action.value == "clear":
            await self.moderation.clear_channels(guild, actor)
        await self._rules(interaction, "Saved." if action.value != "list" else "Current rules:")

    @app_commands.command(
        name="nsfw-only", description="Allow /pika only in age-restricted channels"
    )
    @moderators_only
    async def nsfw_only(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Turn the NSFW-only rule on or off."""
        await self.moderation.nsfw_only(self._guild(interaction), interaction.user.id, enabled)
        await self._rules(interaction, "Saved.")

    @app_commands.command(name="reruns", description="Who may rerun a finished video")
    @app_commands.describe(who="Anyone in the server (default), or only each video's requester")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="anyone", value="anyone"),
            app_commands.Choice(name="only the requester (and moderators)", value="requester"),
        ]
    )
    @moderators_only
    async def reruns(self, interaction: discord.Interaction, who: app_commands.Choice[str]) -> None:
        """Set who may rerun finished videos with 🔁 or the buttons."""
        await self.moderation.reruns_by(
            self._guild(interaction), interaction.user.id, RerunsBy(who.value)
        )
        await self._rules(interaction, "Saved.")

    @app_commands.command(name="effects", description="Turn single Pikaffects off or on here")
    @app_commands.describe(action="turn off, turn on, or list", effect="The Pikaffect")
    @app_commands.choices(action=EFFECT_ACTIONS, effect=EFFECTS)
    @moderators_only
    async def effects(
        self,
        interaction: discord.Interaction,
        action: app_commands.Choice[str],
        effect: app_commands.Choice[str] | None = None,
    ) -> None:
        """Turn one Pikaffect off on this server (or back on); members who pick it are told."""
        guild = self._guild(interaction)
        if action.value == "list":
            policy = (await self.moderation.show(guild)).policy
        elif effect is None:
            await _say(interaction, f"Name the effect to turn {action.value}.")
            return
        else:
            policy = await self.moderation.effect(
                guild, interaction.user.id, effect.value, enabled=action.value == "on"
            )
        off = sorted(e.value for e in policy.disabled_effects)
        text = "Turned off here: " + ", ".join(off) if off else "Every Pikaffect is on here."
        await _say(interaction, ("" if action.value == "list" else "Saved. ") + text)

    @app_commands.command(name="blocklist", description="Words or re: patterns refused in prompts")
    @app_commands.describe(
        action="add, remove or list", entry="A word or phrase, or re:regular-expression"
    )
    @app_commands.choices(action=BLOCK_ACTIONS)
    @moderators_only
    async def blocklist(
        self,
        interaction: discord.Interaction,
        action: app_commands.Choice[str],
        entry: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Edit the blocklist; members who hit it get a generic message."""
        guild = self._guild(interaction)
        if action.value == "list":
            policy = (await self.moderation.show(guild)).policy
            listed = "\n".join(f"`{e}`" for e in policy.blocklist) or "The blocklist is empty."
            await _say(interaction, listed[:1900])
            return
        if entry is None:
            await _say(interaction, f"Give the entry to {action.value}.")
            return
        policy = await self.moderation.blocklist(
            guild, interaction.user.id, entry, blocked=action.value == "add"
        )
        await _say(interaction, f"Saved. The blocklist has {len(policy.blocklist)} entries.")


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(QuotaCog(bot))
