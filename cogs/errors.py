"""One error path for every app command: a friendly private message, details in the log."""

from __future__ import annotations

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.moderation import ModerationError

log = structlog.get_logger(__name__)

GENERIC = "Sorry, something went wrong on my side. Nothing was charged; please try again."


PERMISSION_NAMES = {"manage_guild": "Manage Server", "manage_messages": "Manage Messages"}
"""Discord's names for permissions as members see them in their client."""


def _permissions(names: list[str]) -> str:
    return ", ".join(PERMISSION_NAMES.get(n, n.replace("_", " ").title()) for n in names)


def server_only(command: object) -> bool:
    """Whether ``command`` (or the group it belongs to) is marked ``guild_only``."""
    root = getattr(command, "root_parent", None) or command
    return bool(getattr(root, "guild_only", False))


class ServerOnly(app_commands.NoPrivateMessage):
    """A server-only command arrived from a DM (a client with a stale command list)."""

    def __init__(self, command: object) -> None:
        name = getattr(command, "qualified_name", None)
        what = f"/{name}" if name else "This command"
        super().__init__(
            f"{what} works in servers only, not in direct messages: use it in a channel of a"
            " server that has the bot."
        )


def friendly_message(error: app_commands.AppCommandError) -> str:
    """What the member reads for each kind of error, in the order they are checked."""
    if isinstance(error, app_commands.CommandInvokeError) and isinstance(
        error.original, ModerationError
    ):
        return f"Nothing changed: {error.original}."
    if isinstance(error, ServerOnly):
        return str(error)
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in servers only, not in direct messages."
    if isinstance(error, app_commands.MissingPermissions):
        return f"You need the {_permissions(error.missing_permissions)} permission for this."
    if isinstance(error, app_commands.BotMissingPermissions):
        return "I'm missing the " + ", ".join(error.missing_permissions) + " permission here."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.TransformerError):
        return "One of the options has a value I can't use. Please check it and try again."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return GENERIC


async def reply_privately(interaction: discord.Interaction, text: str) -> None:
    """Answer ephemerally whether or not the interaction was already answered."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("command.error_reply_failed", exc_info=True)


class PikaTree(app_commands.CommandTree[commands.Bot]):
    """A command tree whose failures reach the member as a friendly private message.

    Server-only commands are synced with ``contexts=[0]`` so Discord does not offer them in
    DMs; ``guild_only`` is not a check in discord.py, so one that still arrives from a DM is
    answered here, before the command runs.
    """

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Refuse, kindly and privately, a server-only command used outside a server."""
        command = interaction.command
        if interaction.guild_id is None and command is not None and server_only(command):
            log.info("command.refused_in_dm", command=command.qualified_name)
            await reply_privately(interaction, friendly_message(ServerOnly(command)))
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Route each error to a message; unexpected ones are logged with their traceback."""
        text = friendly_message(error)
        if text is GENERIC:
            command = interaction.command.qualified_name if interaction.command else None
            log.error("command.failed", command=command, exc_info=error)
        await reply_privately(interaction, text)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (the tree itself is installed by the bot's constructor)."""
