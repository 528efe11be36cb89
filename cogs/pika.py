"""``/pika``: a member's prompt becomes a job; its status and video appear in the channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS, SEED_MAX, Mode, PikaModel
from bot.requests import RequestOptions
from cogs.launcher import JobLauncher

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
MODELS = [app_commands.Choice(name=model.label, value=model.value) for model in PikaModel]


def offer_only(command: app_commands.Command[Any, ..., Any], name: str, values: set[str]) -> None:
    """Keep only the choices of option ``name`` that the configured provider supports.

    discord.py fixes choices when the class is defined; the provider is known only at start,
    so the copy of the command that belongs to this cog instance is trimmed here. The synced
    command set changes with the provider, which triggers a re-sync.
    """
    parameter = command._params[name]  # no public setter for choices exists
    parameter.choices = [c for c in parameter.choices if str(c.value) in values]


class PikaCog(commands.Cog):
    """The ``/pika`` command."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.services = bot.services
        self.launcher = JobLauncher(bot)
        capabilities = self.services.provider.capabilities
        offer_only(self.pika, "model", {m.value for m in capabilities.models})
        offer_only(self.pika, "resolution", {r.value for r in capabilities.resolutions})
        offer_only(self.pika, "duration", {str(d) for d in capabilities.durations})
        offer_only(self.pika, "aspect", {a.value for a in capabilities.aspects})

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
        image="A first frame to animate (PNG, JPEG or WebP)",
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
        image: discord.Attachment | None = None,
    ) -> None:
        """Check, price and reserve within Discord's 3 seconds; the job then runs on its own."""
        # The prompt's Range leaves room for flags; the prompt without them is checked below.
        structlog.contextvars.bind_contextvars(
            guild_id=interaction.guild_id, user_id=interaction.user.id
        )
        await self.launcher.from_options(
            interaction,
            RequestOptions(
                prompt=prompt,
                negative_prompt=negative_prompt,
                aspect=aspect.value if aspect else None,
                duration=duration.value if duration else None,
                resolution=resolution.value if resolution else None,
                seed=seed,
                model=model.value if model else None,
                mode=Mode.IMAGE if image else Mode.TEXT,
            ),
            images=[image] if image else [],
            default_model=self.services.settings.default_model,
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(PikaCog(bot))
