"""``/pikaffect``: one of Pika's 16 effects on a photo (it melts, squishes, explodes...).

Loaded only where the configured provider sells Pikaffects (fal); moderators can turn single
effects off for their server with ``/quota effects``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX
from bot.tool_requests import ToolOptions
from bot.tools import Pikaffect, Tool
from cogs.launcher import JobLauncher, remote_images

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

EFFECTS = [app_commands.Choice(name=effect.value, value=effect.value) for effect in Pikaffect]


class PikaffectsCog(commands.Cog):
    """The ``/pikaffect`` command."""

    def __init__(self, bot: PikaBot) -> None:
        self.launcher = JobLauncher(bot)

    @app_commands.command(name="pikaffect", description="Give a photo one of Pika's effects.")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The photo to change (PNG, JPEG or WebP)",
        effect="What happens to it",
        prompt="Anything to guide the effect",
        negative_prompt="What the video should avoid",
        seed="Seed for a reproducible result (random when left out)",
    )
    @app_commands.choices(effect=EFFECTS)
    async def pikaffect(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        effect: app_commands.Choice[str],
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS] | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
    ) -> None:
        """Check the photo by its bytes, price and reserve; the job then runs on its own."""
        structlog.contextvars.bind_contextvars(
            guild_id=interaction.guild_id, user_id=interaction.user.id
        )
        await self.launcher.from_tool(
            interaction,
            ToolOptions(
                Tool.PIKAFFECTS,
                effect=effect.value,
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
            ),
            images=remote_images([image]),
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point: only where the provider sells Pikaffects."""
    if Tool.PIKAFFECTS in bot.services.provider.capabilities.tools:
        await bot.add_cog(PikaffectsCog(bot))
    else:
        log.info("cog.skipped", extension="pikaffects", reason="provider has no Pikaffects")
