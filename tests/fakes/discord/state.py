"""In-memory world of the Discord double: guilds, channels, members, messages, interactions.

Everything here is plain data; the HTTP and gateway layers (``server.py``, ``gateway.py``)
mutate it and turn it into Discord-shaped JSON with the builders in ``payloads.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits used by the double (values from Discord's documentation).
ADD_REACTIONS = 1 << 6
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 53) - 1
DEFAULT_PERMISSIONS = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)

# Per-attachment upload limit by premium tier (bots: 10 MiB by default since January 2025).
TIER_UPLOAD_LIMITS = {0: 10 * MiB, 1: 10 * MiB, 2: 50 * MiB, 3: 100 * MiB}

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def snowflake(at: float | None = None) -> int:
    """Return a fresh, time-based snowflake (discord.py derives ``created_at`` from it)."""
    ms = int((time.time() if at is None else at) * 1000)
    with _counter_lock:
        inc = next(_counter) & 0x3FFFFF
    return ((ms - DISCORD_EPOCH_MS) << 22) | inc


def iso_now() -> str:
    """Current UTC time as Discord's ISO 8601 timestamp."""
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class Role:
    """A guild role."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0


@dataclass
class User:
    """A Discord user (human or bot)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass
class Member:
    """A user's membership in one guild."""

    user: User
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)


@dataclass
class Channel:
    """A guild text channel."""

    id: int
    guild_id: int
    name: str
    position: int = 0
    type: int = 0
    topic: str | None = None


@dataclass
class Guild:
    """A guild with its roles, channels and members."""

    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    upload_limit_override: int | None = None
    refused_over: int | None = None
    """Uploads over this many bytes are refused (413) whatever the advertised limit says."""
    locale: str = "en-US"
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)

    @property
    def upload_limit(self) -> int:
        """Per-attachment upload limit in bytes (override, else by premium tier)."""
        if self.upload_limit_override is not None:
            return self.upload_limit_override
        return TIER_UPLOAD_LIMITS.get(self.premium_tier, 10 * MiB)

    @property
    def enforced_upload_limit(self) -> int:
        """What an upload may really weigh: the advertised limit, or less where scripted."""
        if self.refused_over is not None:
            return min(self.refused_over, self.upload_limit)
        return self.upload_limit

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions of a member (no channel overwrites are modelled)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = self.roles[self.id].permissions if self.id in self.roles else 0
        for role_id in member.roles:
            role = self.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms


@dataclass
class Attachment:
    """A stored file: its metadata and bytes (served under ``/attachments/``)."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    url: str = ""

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass
class Edit:
    """One entry of a message's edit history: the state *after* the edit."""

    at: float
    timestamp: str
    content: str
    embeds: list[dict[str, Any]]
    attachments: list[int]
    components: list[dict[str, Any]]


@dataclass
class Message:
    """A message in a channel, as the double stores it."""

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None
    webhook_id: int | None = None
    interaction_id: int | None = None
    reactions: dict[str, set[int]] = field(default_factory=dict)
    history: list[Edit] = field(default_factory=list)
    deleted: bool = False
    created: float = field(default_factory=time.monotonic)

    @property
    def ephemeral(self) -> bool:
        """Whether the message carries the EPHEMERAL flag (64)."""
        return bool(self.flags & 64)

    @property
    def loading(self) -> bool:
        """Whether the message is a deferred "thinking" placeholder (flag 128)."""
        return bool(self.flags & 128)

    def reaction_users(self, emoji: str) -> set[int]:
        """Ids of users who reacted with ``emoji`` (unicode or ``name:id``)."""
        return set(self.reactions.get(emoji, set()))


@dataclass
class Callback:
    """The bot's answer to an interaction (``POST /interactions/{id}/{token}/callback``)."""

    type: int
    data: dict[str, Any]
    files: list[Attachment]
    at: float

    @property
    def ephemeral(self) -> bool:
        """Whether flags 64 was set in the callback data."""
        return bool(int(self.data.get("flags") or 0) & 64)


@dataclass
class Interaction:
    """An interaction the double dispatched, and what the bot did with it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    guild_id: int | None
    channel_id: int
    user_id: int
    message_id: int | None = None
    created: float = field(default_factory=time.monotonic)
    expired: bool = False
    callback: Callback | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    _future: asyncio.Future[Callback] | None = field(default=None, repr=False)
    _double: Any = field(default=None, repr=False)

    async def response(self, timeout: float = 5.0) -> Callback:  # noqa: ASYNC109
        """Wait (bounded) for the bot's callback to this interaction and return it."""
        if self.callback is not None:
            return self.callback
        assert self._future is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError:
            raise TimeoutError(f"interaction {self.id} got no callback within {timeout}s") from None

    async def answer(self, timeout: float = 5.0) -> Callback:  # noqa: ASYNC109
        """The bot's answer as the member ends up seeing it (bounded wait): the callback
        itself, or, after a deferred "thinking…" callback (type 5), the original message once
        the bot has edited it (content, embeds and flags as a type-4 callback would carry)."""
        callback = await self.response(timeout)
        if callback.type != 5:
            return callback
        for _ in range(max(1, int(timeout / 0.01))):
            message = self.original
            if message is not None and not message.loading:
                data = {"content": message.content, "embeds": message.embeds}
                data["flags"] = message.flags & 64
                return Callback(4, data, list(message.attachments), time.monotonic())
            await asyncio.sleep(0.01)
        raise TimeoutError(f"interaction {self.id} was deferred but not answered in {timeout}s")

    @property
    def followups(self) -> list[Message]:
        """Follow-up messages sent through the interaction webhook, in order."""
        return [self._double.world.messages[mid] for mid in self.followup_ids]

    @property
    def original(self) -> Message | None:
        """The original response message (or the component's message after type 6/7)."""
        if self.original_message_id is None:
            return None
        return self._double.world.messages.get(self.original_message_id)

    def expire(self) -> None:
        """Make the interaction token invalid now (webhook routes answer 401, code 50027)."""
        self.expired = True


@dataclass
class RequestRecord:
    """One REST request the double served."""

    method: str
    path: str
    query: dict[str, str]
    at: float
    status: int = 0
    json: Any = None
    route: str | None = None


@dataclass
class Event:
    """Something observable happened: ``kind`` is one of message_create, message_update,
    message_delete, reaction_add, reaction_remove, callback, followup, command_sync,
    gateway_ready, gateway_resumed."""

    kind: str
    at: float
    message: Message | None = None
    interaction: Interaction | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    """All state the double holds."""

    bot: User
    application_id: int
    guilds: dict[int, Guild] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    channel_messages: dict[int, list[int]] = field(default_factory=dict)
    attachments: dict[int, Attachment] = field(default_factory=dict)
    interactions: dict[int, Interaction] = field(default_factory=dict)
    interactions_by_token: dict[str, Interaction] = field(default_factory=dict)
    global_commands: list[dict[str, Any]] = field(default_factory=list)
    guild_commands: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def channel(self, channel_id: int) -> Channel | None:
        """Find a channel in any guild."""
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        return None

    def add_message(self, message: Message) -> Message:
        """Store a new message."""
        self.messages[message.id] = message
        self.channel_messages.setdefault(message.channel_id, []).append(message.id)
        return message
