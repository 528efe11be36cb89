"""Reruns (🔁 reactions and buttons), Cancel and Delete: what members do with a job's messages.

Buttons are persistent ``DynamicItem``s (``cogs.views``) and reactions arrive as raw events,
so both work on messages posted before a restart: the job is found in SQLite by message id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord.ext import commands

from bot.jobs import CannotCancel
from bot.models import Job
from bot.reruns import Variant, rerun_request
from cogs.launcher import JobLauncher
from cogs.views import DYNAMIC_ITEMS

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

RERUN_EMOJI = "🔁"


def _bot(interaction: discord.Interaction) -> PikaBot:
    from bot.app import PikaBot

    client = interaction.client
    assert isinstance(client, PikaBot)
    return client


def may_manage(interaction: discord.Interaction, job: Job) -> bool:
    """The job's requester, or a member who may manage messages in its channel."""
    return interaction.user.id == job.origin.user_id or interaction.permissions.manage_messages


async def _job_or_tell(interaction: discord.Interaction, job_id: int) -> Job | None:
    job = await _bot(interaction).services.jobs.get(job_id)
    if job is None or job.origin.guild_id != interaction.guild_id:
        await interaction.response.send_message("I can't find that video any more.", ephemeral=True)
        return None
    return job


async def rerun_from_button(
    interaction: discord.Interaction, job_id: int, variant: Variant
) -> None:
    """Rerun a finished job as a new job for the member who clicked."""
    job = await _job_or_tell(interaction, job_id)
    if job is None:
        return
    await JobLauncher(_bot(interaction)).from_interaction(
        interaction, rerun_request(job.request, variant), rerun_of=job
    )


async def delete_from_button(interaction: discord.Interaction, job_id: int) -> None:
    """Delete a result message: its requester or a moderator only."""
    job = await _job_or_tell(interaction, job_id)
    if job is None:
        return
    if not may_manage(interaction, job):
        await interaction.response.send_message(
            "Only the member who asked for this video, or a moderator, can delete it.",
            ephemeral=True,
        )
        return
    await interaction.response.defer()
    if interaction.message is not None:
        await interaction.message.delete()
    log.info("result.deleted", job_id=job.id, by=interaction.user.id)


async def cancel_from_button(interaction: discord.Interaction, job_id: int) -> None:
    """Cancel a queued or running job and refund it: its requester or a moderator only."""
    job = await _job_or_tell(interaction, job_id)
    if job is None:
        return
    if not may_manage(interaction, job):
        await interaction.response.send_message(
            "Only the member who asked for this video, or a moderator, can cancel it.",
            ephemeral=True,
        )
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    reason = f"Cancelled by {interaction.user.display_name}. {job.cost} credits were refunded."
    try:
        await _bot(interaction).services.jobs.cancel(job.id, reason=reason)
    except CannotCancel as refused:
        await interaction.followup.send(refused.user_message, ephemeral=True)
        return
    await interaction.followup.send(f"Cancelled; {job.cost} credits refunded.", ephemeral=True)


class ControlsCog(commands.Cog):
    """Registers the persistent buttons and answers 🔁 reactions."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.launcher = JobLauncher(bot)

    async def cog_load(self) -> None:
        """Buttons on old messages must work from the first second after a start."""
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)

    async def cog_unload(self) -> None:
        """Stop routing the buttons here."""
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """🔁 on a finished video reruns it with a new seed for the member who reacted."""
        me = self.bot.user
        if payload.guild_id is None or me is None or payload.user_id == me.id:
            return
        if str(payload.emoji) != RERUN_EMOJI or payload.member is None or payload.member.bot:
            return
        job = await self.bot.services.jobs.find_by_message(payload.message_id)
        if job is None or job.result_message_id != payload.message_id:
            return
        structlog.contextvars.bind_contextvars(guild_id=payload.guild_id, user_id=payload.user_id)
        log.info("job.rerun_by_reaction", original_job_id=job.id)
        await self.launcher.from_reaction(
            job, user=payload.member, request=rerun_request(job.request, Variant.NEW_SEED)
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ControlsCog(bot))
