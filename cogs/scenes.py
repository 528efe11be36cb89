"""``/pika-scenes``: several images (characters, objects, places) combined into one clip.

A separate command rather than a ``/pika`` subcommand: ``/pika`` stays one command with
options. Loaded only when the configured provider can make Scenes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX, Mode, PikaModel
from bot.requests import RequestOptions
from cogs.launcher import JobLauncher
from cogs.pika import ASPECTS, DURATIONS, RESOLUTIONS

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

INGREDIENTS = [
    app_commands.Choice(name="creative: blend freely", value="creative"),
    app_commands.Choice(name="precise: keep each image faithful", value="precise"),
]


class ScenesCog(commands.Cog):
    """The ``/pika-scenes`` command."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.services = bot.services
        self.launcher = JobLauncher(bot)

    @app_commands.command(
        name="pika-scenes", description="Combine up to six images into one Pika video."
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What happens in the scene",
        image1="First image (a character, an object, a place)",
        image2="Second image",
        image3="Third image",
        image4="Fourth image",
        image5="Fifth image",
        image6="Sixth image",
        ingredients="How strictly to keep each image (default creative)",
        negative_prompt="What the video should avoid",
        aspect="Aspect ratio (default 16:9)",
        duration="Length in seconds (default 5)",
        resolution="Resolution (default 720p)",
        seed="Seed for a reproducible result (random when left out)",
    )
    @app_commands.choices(ingredients=INGREDIENTS, aspect=ASPECTS, resolution=RESOLUTIONS)
    @app_commands.choices(duration=DURATIONS)
    async def scenes(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS + 200],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        ingredients: app_commands.Choice[str] | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_MAX_CHARS] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        duration: app_commands.Choice[int] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
    ) -> None:
        """Check the images and options before anything is reserved, then start the job."""
        images = [i for i in (image1, image2, image3, image4, image5, image6) if i is not None]
        await self.launcher.from_options(
            interaction,
            RequestOptions(
                prompt=prompt,
                negative_prompt=negative_prompt,
                aspect=aspect.value if aspect else None,
                duration=duration.value if duration else None,
                resolution=resolution.value if resolution else None,
                seed=seed,
                model=PikaModel.V2_2.value,
                mode=Mode.SCENES,
                ingredients_mode=ingredients.value if ingredients else "creative",
            ),
            images=images,
            default_model=PikaModel.V2_2,
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point: only where the provider makes Scenes."""
    if Mode.SCENES in bot.services.provider.capabilities.modes:
        await bot.add_cog(ScenesCog(bot))
    else:
        log.info("cog.skipped", extension="scenes", reason="provider has no Scenes")
