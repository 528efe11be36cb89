"""``/credits``: what the server has left, what a clip costs, and when the allowance resets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import RequestRefused
from bot.models import GenerationRequest
from cogs.embeds import credits_embed

if TYPE_CHECKING:
    from bot.app import PikaBot


class CreditsCog(commands.Cog):
    """Credits as members see them."""

    def __init__(self, bot: PikaBot) -> None:
        self.services = bot.services

    @app_commands.command(name="credits", description="See this server's video credits.")
    @app_commands.guild_only()
    async def credits(self, interaction: discord.Interaction) -> None:
        """Show the guild's balance, the price of a 5 s 720p clip, and the reset time."""
        assert interaction.guild_id is not None
        balance = await self.services.quotas.balance(interaction.guild_id)
        sample = GenerationRequest(prompt="sample", model=self.services.settings.default_model)
        try:
            cost: int | None = self.services.jobs.quote(sample).credits
        except RequestRefused:
            cost = None
        await interaction.response.send_message(embed=credits_embed(balance, cost), ephemeral=True)


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(CreditsCog(bot))
