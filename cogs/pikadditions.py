"""Pikadditions: add something (an image of it) into a video.

Two ways in: the message context menu **Add to this video** on any message with a video (a
member's upload or a video the bot posted), which opens a modal for the image and the prompt,
and ``/pika-add video image [prompt]`` for a video at hand. Loaded only where the configured
provider sells Pikadditions (fal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX
from bot.tool_requests import ToolOptions
from bot.tools import Tool
from cogs.launcher import JobLauncher, answer_privately, permissions_refusal, remote_images
from cogs.tool_modals import AddModal
from cogs.tool_sources import NO_VIDEO, message_video, remote_video

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

MENU = "Add to this video"


class PikadditionsCog(commands.Cog):
    """``/pika-add`` and the **Add to this video** context menu."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.launcher = JobLauncher(bot)
        self.menu = app_commands.guild_only(
            app_commands.ContextMenu(name=MENU, callback=self.add_to_video)
        )

    async def cog_load(self) -> None:
        """Context menus cannot live in a cog's class body: registered with the cog."""
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        """Take the context menu away with the cog."""
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def add_to_video(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Open the modal for the image and prompt; a message without a usable video is told
        so at once (a modal must be Discord's first answer, so nothing is deferred here)."""
        refusal = permissions_refusal(interaction.app_permissions)
        video = await message_video(self.bot, message) if refusal is None else None
        if refusal is not None or video is None:
            await answer_privately(interaction, refusal or NO_VIDEO)
            return
        await interaction.response.send_modal(AddModal(self.bot, video, message.jump_url))

    @app_commands.command(name="pika-add", description="Add something from an image into a video.")
    @app_commands.guild_only()
    @app_commands.describe(
        video="The video to add to (MP4, MOV or WebM)",
        image="What to add (PNG, JPEG or WebP)",
        prompt="How it joins the scene",
        negative_prompt="What the video should avoid",
        seed="Seed for a reproducible result (random when left out)",
    )
    async def pika_add(
        self,
        interaction: discord.Interaction,
        video: discord.Attachment,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS] | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
    ) -> None:
        """Check the video and image by their bytes before anything is reserved."""
        await self.launcher.from_tool(
            interaction,
            ToolOptions(
                Tool.PIKADDITIONS, prompt=prompt, negative_prompt=negative_prompt, seed=seed
            ),
            images=remote_images([image]),
            video=remote_video(video),
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point: only where the provider sells Pikadditions."""
    if Tool.PIKADDITIONS in bot.services.provider.capabilities.tools:
        await bot.add_cog(PikadditionsCog(bot))
    else:
        log.info("cog.skipped", extension="pikadditions", reason="provider has no Pikadditions")
