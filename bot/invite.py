"""The OAuth2 link that invites the bot to a server, with the scopes and permissions it needs.

The permissions are those the README lists (and ``cogs.launcher`` checks in each channel):
View Channels, Send Messages, Embed Links, Attach Files, Read Message History and Add
Reactions; the scopes are ``bot`` and ``applications.commands`` (the slash commands). The
core imports nothing from ``discord``, so the bits are written out here; a test checks them
against discord.py's :class:`discord.Permissions`.
"""

from __future__ import annotations

from urllib.parse import urlencode

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
SCOPES = ("bot", "applications.commands")
PERMISSIONS = {
    "View Channels": 1 << 10,
    "Send Messages": 1 << 11,
    "Embed Links": 1 << 14,
    "Attach Files": 1 << 15,
    "Read Message History": 1 << 16,
    "Add Reactions": 1 << 6,
}
"""Discord's permission bits, by the names its developer portal shows."""
PERMISSION_BITS = sum(PERMISSIONS.values())


def invite_url(application_id: int) -> str:
    """The invite link of the application ``application_id`` (Discord's URL generator's)."""
    query = urlencode(
        {
            "client_id": str(application_id),
            "permissions": str(PERMISSION_BITS),
            "integration_type": "0",  # a server install (not a user install)
            "scope": " ".join(SCOPES),
        }
    )
    return f"{AUTHORIZE_URL}?{query}"


def invite_line(application_id: int) -> str:
    """One line for ``pikabot check``: the link and what it asks for."""
    return (
        f"invite the bot with {invite_url(application_id)}"
        f" (scopes {' and '.join(SCOPES)}; permissions {', '.join(PERMISSIONS)})"
    )
