"""``/pika``: a member's prompt becomes a job; its status and video appear in the channel."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.jobs import RequestRefused
from bot.models import (
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    SEED_MAX,
    Job,
    Origin,
    Progress,
)
from bot.requests import RequestOptions, build_request
from cogs.embeds import status_embed
from cogs.presenter import DiscordJobObserver

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

ASPECTS = [
    app_commands.Choice(name="16:9 landscape", value="16:9"),
    app_commands.Choice(name="9:16 vertical", value="9:16"),
    app_commands.Choice(name="1:1 square", value="1:1"),
    app_commands.Choice(name="4:5 portrait", value="4:5"),
    app_commands.Choice(name="5:4 landscape", value="5:4"),
    app_commands.Choice(name="3:2 photo", value="3:2"),
    app_commands.Choice(name="2:3 photo, tall", value="2:3"),
]
DURATIONS = [
    app_commands.Choice(name="5 seconds", value=5),
    app_commands.Choice(name="10 seconds", value=10),
]
RESOLUTIONS = [
    app_commands.Choice(name="720p", value="720p"),
    app_commands.Choice(name="1080p", value="1080p"),
]
MODELS = [
    app_commands.Choice(name="Pika 2.2", value="2.2"),
    app_commands.Choice(name="Pika 2.1", value="2.1"),
    app_commands.Choice(name="Pika 2 Turbo", value="2-turbo"),
]

REQUIRED_CHANNEL_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def _missing_permissions(interaction: discord.Interaction) -> list[str]:
    granted = interaction.app_permissions
    return [
        name.replace("_", " ")
        for name, needed in REQUIRED_CHANNEL_PERMISSIONS
        if needed and not getattr(granted, name)
    ]


class PikaCog(commands.Cog):
    """The ``/pika`` command and the jobs it starts."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.services = bot.services

    def observer(self, job: Job) -> DiscordJobObserver:
        """The Discord presenter for a job (also used for jobs resumed after a restart)."""
        return DiscordJobObserver(self.bot, self.services.jobs, job)

    @app_commands.command(name="pika", description="Make a short video from a prompt with Pika.")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt='What the video shows. Pika flags work too: -ar 9:16 -seed 42 -neg "blurry"',
        negative_prompt="What the video should avoid",
        aspect="Aspect ratio (default 16:9)",
        duration="Length in seconds (default 5)",
        resolution="Resolution (default 720p)",
        seed="Seed for a reproducible result (random when left out)",
        model="Pika model (default Pika 2.2)",
    )
    @app_commands.choices(aspect=ASPECTS, resolution=RESOLUTIONS, model=MODELS)
    @app_commands.choices(duration=DURATIONS)
    async def pika(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS + 200],
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        duration: app_commands.Choice[int] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        model: app_commands.Choice[str] | None = None,
    ) -> None:
        """Price, reserve, answer within Discord's 3 seconds, then run the job in the background."""
        # The prompt's Range allows room for flags; the flagless prompt is checked by the core.
        structlog.contextvars.bind_contextvars(
            guild_id=interaction.guild_id, user_id=interaction.user.id
        )
        missing = _missing_permissions(interaction)
        if missing:
            await interaction.response.send_message(
                "I can't post videos in this channel: I'm missing the "
                + ", ".join(missing)
                + " permission. Ask a moderator to grant it, or use another channel.",
                ephemeral=True,
            )
            return
        options = RequestOptions(
            prompt=prompt,
            negative_prompt=negative_prompt,
            aspect=aspect.value if aspect else None,
            duration=duration.value if duration else None,
            resolution=resolution.value if resolution else None,
            seed=seed,
            model=model.value if model else None,
        )
        assert interaction.guild_id is not None and interaction.channel_id is not None
        origin = Origin(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            user_name=interaction.user.display_name,
        )
        try:
            request = build_request(options, default_model=self.services.settings.default_model)
            job = await self.services.jobs.create(request, origin)
        except RequestRefused as refused:
            await interaction.response.send_message(refused.user_message, ephemeral=True)
            return
        try:
            await self._acknowledge(interaction, job)
        finally:
            # Whatever happened to the answer, the job runs: its credits are reserved.
            self.services.jobs.start(job, self.observer(job))

    async def _acknowledge(self, interaction: discord.Interaction, job: Job) -> None:
        """Answer the member privately, then post the public status message."""
        await self.services.jobs.jobs.update(
            job, extra={**job.extra, "upload_limit": str(interaction.filesize_limit)}
        )
        text = (
            f"Your clip is on its way: {job.cost} credits reserved, refunded if it fails."
            f" Seed {job.request.seed}."
        )
        await interaction.response.send_message(text, ephemeral=True)
        channel = self.bot.get_partial_messageable(
            job.origin.channel_id, guild_id=job.origin.guild_id
        )
        try:
            message = await channel.send(embed=status_embed(job, Progress(job.state)))
        except discord.HTTPException:
            # The job's presenter posts a status message itself on its first update.
            log.warning("status.post_failed", job_id=job.id, exc_info=True)
            return
        await self.services.jobs.attach_status_message(job, message.id)
        with contextlib.suppress(discord.HTTPException):  # a convenience link only
            await interaction.edit_original_response(
                content=f"{text} Follow it here: {message.jump_url}"
            )


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(PikaCog(bot))
