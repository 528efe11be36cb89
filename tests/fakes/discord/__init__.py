"""A loopback Discord (REST API v10 + gateway) that an unmodified discord.py bot can use.

Use ``DiscordDouble`` as an async context manager, point discord.py at it with
``pointed_at(double)`` (same process) or ``python -m tests.fakes.discord.launch`` (subprocess),
then drive the bot with ``slash`` / ``click`` / ``react`` / ``context_menu`` (message
commands) / ``submit_modal`` and observe it with ``messages`` / ``wait_for``.
"""

from .launch import pointed_at
from .server import (
    ADMIN_ID,
    ADMIN_ROLE_ID,
    APPLICATION_ID,
    BOT_ID,
    CHANNEL_ID,
    DEFAULT_TOKEN,
    GUILD_ID,
    SECOND_CHANNEL_ID,
    USER_ID,
    DiscordDouble,
    Fault,
    Hold,
    Upload,
)
from .state import Callback, Event, Interaction, Message, RequestRecord

__all__ = [
    "ADMIN_ID",
    "ADMIN_ROLE_ID",
    "APPLICATION_ID",
    "BOT_ID",
    "CHANNEL_ID",
    "DEFAULT_TOKEN",
    "GUILD_ID",
    "SECOND_CHANNEL_ID",
    "USER_ID",
    "Callback",
    "DiscordDouble",
    "Event",
    "Fault",
    "Hold",
    "Interaction",
    "Message",
    "RequestRecord",
    "Upload",
    "pointed_at",
]
