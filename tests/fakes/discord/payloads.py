"""Builders turning the double's world objects into Discord API v10 JSON payloads.

The fields are the ones discord.py 2.7.1 reads (several are indexed with ``data[...]`` and
would raise ``KeyError`` if missing: e.g. member ``flags`` and ``roles``, user
``discriminator`` and ``avatar``, message ``type`` and ``content``, attachment ``proxy_url``,
interaction ``version`` and ``attachment_size_limit``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .state import Attachment, Channel, Guild, Member, Message, Role, User, World


def user(u: User) -> dict[str, Any]:
    """A user object."""
    return {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": None,
        "bot": u.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def client_user(u: User) -> dict[str, Any]:
    """The bot's own user (``GET /users/@me`` and READY)."""
    data = user(u)
    data.update({"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None})
    return data


def role(r: Role) -> dict[str, Any]:
    """A role object."""
    return {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def member(
    m: Member, guild: Guild | None = None, *, with_permissions: bool = False
) -> dict[str, Any]:
    """A guild member object with its user (``permissions`` only inside interactions)."""
    data: dict[str, Any] = {
        "user": user(m.user),
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in m.roles],
        "joined_at": m.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_permissions and guild is not None:
        data["permissions"] = str(guild.permissions_of(m.user.id))
    return data


def channel(c: Channel, *, permissions: int | None = None) -> dict[str, Any]:
    """A guild text channel object."""
    data: dict[str, Any] = {
        "id": str(c.id),
        "type": c.type,
        "guild_id": str(c.guild_id),
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": c.topic,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def dm_channel(channel_id: int, recipient: User) -> dict[str, Any]:
    """A direct-message channel object (type 1) with its one recipient."""
    return {
        "id": str(channel_id),
        "type": 1,
        "last_message_id": None,
        "flags": 0,
        "recipients": [user(recipient)],
    }


def guild(g: Guild, *, full: bool = False, members: list[Member] | None = None) -> dict[str, Any]:
    """A guild object; ``full`` adds the GUILD_CREATE extras (channels, members, ...)."""
    data: dict[str, Any] = {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(g.premium_tier, 0),
        "preferred_locale": g.locale,
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "safety_alerts_channel_id": None,
    }
    if full:
        data.update(
            {
                "joined_at": "2024-01-01T00:00:00+00:00",
                "large": False,
                "unavailable": False,
                "member_count": len(g.members),
                "voice_states": [],
                "members": [member(m) for m in (members if members is not None else [])],
                "channels": [channel(c) for c in g.channels.values()],
                "threads": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
    return data


def attachment(a: Attachment, *, ephemeral: bool = False) -> dict[str, Any]:
    """An attachment object pointing at the double's CDN-like URL."""
    data: dict[str, Any] = {
        "id": str(a.id),
        "filename": a.filename,
        "size": a.size,
        "url": a.url,
        "proxy_url": a.url,
        "content_type": a.content_type,
        "flags": 0,
    }
    if a.description is not None:
        data["description"] = a.description
    if ephemeral:
        data["ephemeral"] = True
    return data


def reactions(m: Message, bot_id: int) -> list[dict[str, Any]]:
    """The ``reactions`` array of a message."""
    out = []
    for key, users in m.reactions.items():
        if not users:
            continue
        out.append(
            {
                "emoji": emoji(key),
                "count": len(users),
                "count_details": {"normal": len(users), "burst": 0},
                "me": bot_id in users,
                "me_burst": False,
                "burst_colors": [],
            }
        )
    return out


def emoji(key: str) -> dict[str, Any]:
    """A partial emoji from a reaction key (``👍`` or ``name:id``)."""
    if ":" in key:
        name, _, eid = key.rpartition(":")
        animated = name.startswith("a:")
        return {"id": eid, "name": name.removeprefix("a:") or None, "animated": animated}
    return {"id": None, "name": key}


def emoji_key(raw: str) -> str:
    """Normalise the (already URL-decoded) emoji from a reactions route to a reaction key."""
    raw = raw.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1]
    return raw.removeprefix(":")


def emoji_path(key: str) -> str:
    """URL-encode a reaction key the way discord.py does in the route."""
    return quote(key)


def message(m: Message, world: World) -> dict[str, Any]:
    """A message object."""
    data: dict[str, Any] = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "author": user(m.author),
        "content": m.content,
        "timestamp": m.timestamp,
        "edited_timestamp": m.edited_timestamp,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [attachment(a, ephemeral=m.ephemeral) for a in m.attachments],
        "embeds": m.embeds,
        "reactions": reactions(m, world.bot.id),
        "pinned": False,
        "type": m.type,
        "flags": m.flags,
        "components": m.components,
    }
    if m.guild_id is not None:
        data["guild_id"] = str(m.guild_id)
    if m.webhook_id is not None:
        data["webhook_id"] = str(m.webhook_id)
        data["application_id"] = str(world.application_id)
    if m.interaction_id is not None:
        it = world.interactions.get(m.interaction_id)
        if it is not None:
            data["interaction_metadata"] = {
                "id": str(it.id),
                "type": it.type,
                "user": user(world.users[it.user_id]),
                "authorizing_integration_owners": {"0": str(it.guild_id)} if it.guild_id else {},
            }
    return data


def application(world: World, owner: User) -> dict[str, Any]:
    """The bot's application (``GET /oauth2/applications/@me``)."""
    return {
        "id": str(world.application_id),
        "name": world.bot.username,
        "icon": None,
        "description": "Loopback test double application",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user(owner),
        "flags": 0,
        "team": None,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "approximate_guild_count": len(world.guilds),
        "bot": user(world.bot),
    }


def error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """A Discord-shaped JSON error body."""
    return {"code": code, "message": message, **extra}
