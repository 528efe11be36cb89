"""``/pika-frames``: 2 to 5 keyframe images joined into one video, with a prompt for the whole
and, optionally, one per transition and their lengths. Loaded only where the configured
provider sells Pikaframes (fal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX
from bot.tool_requests import ToolOptions
from bot.tools import TRANSITION_PROMPT_MAX_CHARS, Tool
from cogs.launcher import JobLauncher, remote_images
from cogs.pika import RESOLUTIONS, offer_only

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

Transition = app_commands.Range[str, 1, TRANSITION_PROMPT_MAX_CHARS]


class PikaframesCog(commands.Cog):
    """The ``/pika-frames`` command."""

    def __init__(self, bot: PikaBot) -> None:
        self.launcher = JobLauncher(bot)
        capabilities = bot.services.provider.capabilities
        offered = capabilities.tool_resolutions.get(Tool.PIKAFRAMES, capabilities.resolutions)
        offer_only(self.frames, "resolution", {r.value for r in offered})

    @app_commands.command(
        name="pika-frames", description="Join 2 to 5 keyframe images into one Pika video."
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What happens from the first keyframe to the last",
        image1="First keyframe",
        image2="Second keyframe",
        image3="Third keyframe",
        image4="Fourth keyframe",
        image5="Fifth keyframe",
        transition1="What happens from keyframe 1 to 2 (else the prompt)",
        transition2="What happens from keyframe 2 to 3",
        transition3="What happens from keyframe 3 to 4",
        transition4="What happens from keyframe 4 to 5",
        durations="Seconds of each transition, like 5 3 4 (default 5 each, 25 in all)",
        resolution="Resolution (default 720p)",
        negative_prompt="What the video should avoid",
        seed="Seed for a reproducible result (random when left out)",
    )
    @app_commands.choices(resolution=RESOLUTIONS)
    async def frames(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        transition1: Transition | None = None,
        transition2: Transition | None = None,
        transition3: Transition | None = None,
        transition4: Transition | None = None,
        durations: app_commands.Range[str, 1, 40] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
    ) -> None:
        """Check every keyframe by its bytes and the transitions before anything is reserved."""
        images = [i for i in (image1, image2, image3, image4, image5) if i is not None]
        await self.launcher.from_tool(
            interaction,
            ToolOptions(
                Tool.PIKAFRAMES,
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
                transition_prompts=(transition1, transition2, transition3, transition4),
                durations=durations,
                resolution=resolution.value if resolution else None,
            ),
            images=remote_images(images),
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point: only where the provider sells Pikaframes."""
    if Tool.PIKAFRAMES in bot.services.provider.capabilities.tools:
        await bot.add_cog(PikaframesCog(bot))
    else:
        log.info("cog.skipped", extension="pikaframes", reason="provider has no Pikaframes")
