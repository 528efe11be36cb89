"""Pikaswaps: replace a region of a video (the red car) with something else (an image of a
horse, or a prompt).

Two ways in: the message context menu **Swap in this video** on any message with a video,
which opens a modal for the region, the prompt and the image, and
``/pika-swap video region [image] [prompt]``. Loaded only where the configured provider sells
Pikaswaps (fal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX
from bot.tool_requests import ToolOptions
from bot.tools import REGION_MAX_CHARS, Tool
from cogs.launcher import JobLauncher, answer_privately, permissions_refusal, remote_images
from cogs.tool_modals import SwapModal
from cogs.tool_sources import NO_VIDEO, message_video, remote_video

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

MENU = "Swap in this video"


class PikaswapsCog(commands.Cog):
    """``/pika-swap`` and the **Swap in this video** context menu."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.launcher = JobLauncher(bot)
        self.menu = app_commands.guild_only(
            app_commands.ContextMenu(name=MENU, callback=self.swap_in_video)
        )

    async def cog_load(self) -> None:
        """Context menus cannot live in a cog's class body: registered with the cog."""
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        """Take the context menu away with the cog."""
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def swap_in_video(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Open the modal for the region, prompt and image (a modal must be Discord's first
        answer); a message without a usable video is told so at once."""
        refusal = permissions_refusal(interaction.app_permissions)
        video = await message_video(self.bot, message) if refusal is None else None
        if refusal is not None or video is None:
            await answer_privately(interaction, refusal or NO_VIDEO)
            return
        await interaction.response.send_modal(SwapModal(self.bot, video, message.jump_url))

    @app_commands.command(name="pika-swap", description="Replace something in a video.")
    @app_commands.guild_only()
    @app_commands.describe(
        video="The video to change (MP4, MOV or WebM)",
        region="What to replace, e.g. the red car",
        image="What goes there (PNG, JPEG or WebP)",
        prompt="What goes there, in words",
        negative_prompt="What the video should avoid",
        seed="Seed for a reproducible result (random when left out)",
    )
    async def pika_swap(
        self,
        interaction: discord.Interaction,
        video: discord.Attachment,
        region: app_commands.Range[str, 1, REGION_MAX_CHARS],
        image: discord.Attachment | None = None,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS] | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
    ) -> None:
        """Check the video (and image) by their bytes before anything is reserved."""
        await self.launcher.from_tool(
            interaction,
            ToolOptions(
                Tool.PIKASWAPS,
                region=region,
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
            ),
            images=remote_images([image] if image else []),
            video=remote_video(video),
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point: only where the provider sells Pikaswaps."""
    if Tool.PIKASWAPS in bot.services.provider.capabilities.tools:
        await bot.add_cog(PikaswapsCog(bot))
    else:
        log.info("cog.skipped", extension="pikaswaps", reason="provider has no Pikaswaps")
