"""``/credits``: what the server has left, what a clip costs, and when the allowance resets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import RequestRefused
from bot.models import GenerationRequest
from cogs.embeds import credits_embed
from cogs.launcher import member_of

if TYPE_CHECKING:
    from bot.app import PikaBot


class CreditsCog(commands.Cog):
    """Credits as members see them."""

    def __init__(self, bot: PikaBot) -> None:
        self.services = bot.services

    @app_commands.command(name="credits", description="See this server's video credits.")
    @app_commands.guild_only()
    async def credits(self, interaction: discord.Interaction) -> None:
        """Show the guild's balance, the price of a 5 s 720p clip, the reset time, and the
        member's own use and cap."""
        assert interaction.guild_id is not None
        balance = await self.services.moderation.balance(interaction.guild_id)
        member = member_of(
            interaction.user,
            interaction.guild_id,
            interaction.channel or discord.Object(interaction.channel_id or 0),
            is_moderator=interaction.permissions.manage_guild,
        )
        standing = await self.services.moderation.standing(member)
        sample = GenerationRequest(prompt="sample", model=self.services.settings.default_model)
        try:
            cost: int | None = self.services.jobs.quote(sample).credits
        except RequestRefused:
            cost = None
        await interaction.response.send_message(
            embed=credits_embed(balance, cost, standing), ephemeral=True
        )


async def setup(bot: PikaBot) -> None:
    """Extension entry point."""
    await bot.add_cog(CreditsCog(bot))
