"""``/history``: a member's recent jobs in this server, with links, state and cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.models import Job, JobState
from cogs.embeds import COLOUR_WORKING, headline

if TYPE_CHECKING:
    from bot.app import PikaBot

STATE_ICONS = {
    JobState.DELIVERED: "✅",
    JobState.FAILED: "❌",
    JobState.CANCELLED: "🚫",
}


def history_line(job: Job) -> str:
    """One job as a line: icon, link, prompt, cost, when."""
    icon = STATE_ICONS.get(job.state, "⏳")
    message_id = job.result_message_id or job.status_message_id
    text = headline(job)
    prompt = text if len(text) <= 60 else text[:59] + "…"
    title = f"job {job.id}"
    if message_id:
        url = f"https://discord.com/channels/{job.origin.guild_id}/{job.origin.channel_id}/{message_id}"
        title = f"[{title}]({url})"
    charged = "refunded" if job.state in (JobState.FAILED, JobState.CANCELLED) else f"{job.cost} cr"
    when = f"<t:{int(job.created_at.timestamp())}:R>"
    return f"{icon} {title} · {job.state.value} · {charged} · {when}\n-# {prompt}"


class HistoryCog(commands.Cog):
    """The ``/history`` command."""

    def __init__(self, bot: PikaBot) -> None:
        self.services = bot.services

    @app_commands.command(name="history", description="Your recent Pika videos in this server.")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        """Show the member's ten latest jobs, privately."""
        assert interaction.guild_id is not None
        jobs = await self.services.jobs.recent_for_user(
            interaction.guild_id, interaction.user.id, limit=10
        )
        if not jobs:
            await interaction.response.send_message(
                "You haven't made any videos here yet. Try `/pika`!", ephemeral=True
            )
            return
        embed = discord.Embed(
            title="Your recent videos",
            description="\n".join(history_line(job) for job in jobs),
            colour=COLOUR_WORKING,
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(HistoryCog(bot))
