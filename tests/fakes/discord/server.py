"""``DiscordDouble``: a loopback Discord (REST API v10 + gateway) for end-to-end tests.

One aiohttp application on ``127.0.0.1`` (port 0) serves:

* ``/api/v10/...`` - the REST routes discord.py uses (see ``_build_routes``); unknown routes answer
  404 ``{"message": "404: Not Found", "code": 0}`` and are recorded in ``unknown_routes``;
* ``/gateway`` - the gateway websocket (``gateway.py``);
* ``/attachments/{channel}/{id}/{filename}`` - a CDN stand-in serving stored file bytes.

Tests drive the bot with ``slash``, ``click``, ``react``, ``context_menu``, ``submit_modal``
(modals: ``modals.py``) and ``say`` and observe it through
``messages``, ``get_message``, ``wait_for`` and the ``requests`` log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from . import modals, payloads
from .gateway import (
    GUILD_MEMBERS,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    GUILD_PRESENCES,
    MESSAGE_CONTENT,
    PRIVILEGED,
    Gateway,
    GatewaySession,
)
from .state import (
    ADMINISTRATOR,
    DEFAULT_PERMISSIONS,
    Attachment,
    Callback,
    Channel,
    Edit,
    Event,
    Guild,
    Interaction,
    Member,
    Message,
    MiB,
    RequestRecord,
    Role,
    User,
    World,
    iso_now,
    snowflake,
)

# Fixed ids of the default world (valid snowflakes, easy to recognise in logs).
APPLICATION_ID = 1_300_000_000_000_000_001
BOT_ID = APPLICATION_ID
GUILD_ID = 1_300_000_000_000_000_100
CHANNEL_ID = 1_300_000_000_000_000_200
SECOND_CHANNEL_ID = 1_300_000_000_000_000_201
ADMIN_ID = 1_300_000_000_000_000_300
USER_ID = 1_300_000_000_000_000_301
ADMIN_ROLE_ID = 1_300_000_000_000_000_400
BOT_ROLE_ID = 1_300_000_000_000_000_401

_log = logging.getLogger(__name__)

DEFAULT_TOKEN = "fake-bot-token.loopback.double"

_OPTION_TYPES = {str: 3, int: 4, bool: 5, float: 10}


@dataclass
class Upload:
    """A file a test user attaches to a slash command option (type 11)."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class Fault:
    """A scripted failure: the next ``times`` requests matching ``method``/``regex`` fail."""

    method: str | None
    regex: re.Pattern[str]
    status: int
    times: int
    retry_after: float | None = None
    code: int | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request (and has uses left)."""
        if self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.regex.fullmatch(path) is not None


@dataclass
class Hold:
    """A scripted slow Discord: the next ``times`` matching requests wait for ``release``.

    ``arrived`` is set when a held request comes in, so a test can act while the bot waits
    for Discord's answer (deterministically, without timing). A held request is answered
    normally once released, or after ``timeout`` seconds so nothing hangs.
    """

    method: str | None
    regex: re.Pattern[str]
    times: int
    timeout: float
    hits: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str, path: str) -> bool:
        """Whether this hold applies to a request (and has uses left)."""
        if self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.regex.fullmatch(path) is not None

    def release(self) -> None:
        """Let the held requests (and later matching ones) through."""
        self.released.set()

    async def wait_arrived(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait (bounded) until a matching request is being held."""
        async with asyncio.timeout(timeout):
            await self.arrived.wait()


@dataclass
class _Upload:
    field: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class _Req:
    """A parsed REST request handed to route handlers."""

    request: web.Request
    method: str
    path: str
    params: dict[str, str]
    json: Any
    files: list[_Upload] = field(default_factory=list)
    record: RequestRecord | None = None

    @property
    def query(self) -> Any:
        return self.request.query


class _HTTPError(Exception):
    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = payloads.error(code, message, **extra)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only decodes JSON when Content-Type is exactly "application/json" (no
    # charset parameter, which aiohttp's json_response would add).
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def _no_content() -> web.Response:
    return web.Response(status=204)


def _pattern_to_regex(pattern: str) -> re.Pattern[str]:
    if pattern.startswith("re:"):
        return re.compile(pattern[3:])
    pattern = pattern.removeprefix("/api/v10")
    out = []
    for part in re.split(r"(\{[^}]*\}|\*)", pattern):
        if part == "*":
            out.append(".*")
        elif part.startswith("{") and part.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


class DiscordDouble:
    """A loopback Discord for end-to-end tests (async context manager).

    ``async with DiscordDouble() as discord:`` starts the server; point discord.py at
    ``discord.rest_base`` / ``discord.gateway_url`` with ``pointed_at(discord)`` (in-process)
    or ``launch.py`` (subprocess), log in with ``discord.token``.

    The default world has one guild ``GUILD_ID`` ("Pika Test Guild", premium tier from
    ``premium_tier``) with text channels ``CHANNEL_ID`` ("general") and ``SECOND_CHANNEL_ID``
    ("videos"), the bot (``BOT_ID`` == ``APPLICATION_ID``, role ``BOT_ROLE_ID``), the owner
    ``ADMIN_ID`` ("alice", role ``ADMIN_ROLE_ID`` with Administrator) and a plain member
    ``USER_ID`` ("bob", @everyone permissions only).

    Knobs (attributes, changeable at any time): ``interaction_token_ttl`` (seconds; then
    webhook routes answer 401 code 50027), ``callback_deadline`` (seconds to answer an
    interaction, ``None`` = no deadline; then the callback answers 404 code 10062),
    ``request_limit`` (whole-request cap, 25 MiB), ``attachment_url_ttl`` (CDN URL life),
    ``privileged_intents`` (which privileged intents the app may use; others close 4014);
    sharding: ``recommended_shards`` (what ``GET /gateway/bot`` says), ``required_shards``
    (fewer close 4011, "Sharding required", as Discord does past 2,500 guilds per shard) and
    ``max_concurrency``; each shard's session gets only its guilds' events;
    per guild: ``set_premium_tier``, ``set_upload_limit``, ``refuse_uploads_over``; scripted
    faults: ``fail``; scripted slowness: ``hold``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        premium_tier: int = 0,
        heartbeat_interval_ms: int = 2000,
        interaction_token_ttl: float = 15 * 60.0,
        callback_deadline: float | None = 3.0,
        request_limit: int = 25 * MiB,
        attachment_url_ttl: float = 24 * 3600.0,
        privileged_intents: int = PRIVILEGED,
        bot_name: str = "pikabot",
        recommended_shards: int = 1,
        required_shards: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        self.token = token
        self.recommended_shards = recommended_shards
        self.required_shards = required_shards
        self.max_concurrency = max_concurrency
        self.interaction_token_ttl = interaction_token_ttl
        self.callback_deadline = callback_deadline
        self.request_limit = request_limit
        self.attachment_url_ttl = attachment_url_ttl
        self.privileged_intents = privileged_intents
        self.requests: list[RequestRecord] = []
        self.unknown_routes: list[RequestRecord] = []
        self.events: list[Event] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.errors: list[str] = []
        self.command_syncs: list[tuple[int | None, float]] = []
        self._dm_channels: dict[int, int] = {}
        self.host = "127.0.0.1"
        self.port = 0
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self.world = self._default_world(bot_name, premium_tier)
        self._cond = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def _default_world(bot_name: str, premium_tier: int) -> World:
        bot = User(BOT_ID, bot_name, bot=True)
        alice = User(ADMIN_ID, "alice", global_name="Alice")
        bob = User(USER_ID, "bob", global_name="Bob")
        world = World(bot=bot, application_id=APPLICATION_ID)
        world.users = {u.id: u for u in (bot, alice, bob)}
        guild = Guild(GUILD_ID, "Pika Test Guild", owner_id=ADMIN_ID, premium_tier=premium_tier)
        guild.roles = {
            GUILD_ID: Role(GUILD_ID, "@everyone", DEFAULT_PERMISSIONS),
            ADMIN_ROLE_ID: Role(ADMIN_ROLE_ID, "Admin", ADMINISTRATOR, position=2),
            BOT_ROLE_ID: Role(BOT_ROLE_ID, bot_name, DEFAULT_PERMISSIONS, position=1),
        }
        guild.channels = {
            CHANNEL_ID: Channel(CHANNEL_ID, GUILD_ID, "general", 0),
            SECOND_CHANNEL_ID: Channel(SECOND_CHANNEL_ID, GUILD_ID, "videos", 1),
        }
        guild.members = {
            BOT_ID: Member(bot, [BOT_ROLE_ID]),
            ADMIN_ID: Member(alice, [ADMIN_ROLE_ID]),
            USER_ID: Member(bob, []),
        }
        world.guilds[GUILD_ID] = guild
        return world

    async def __aenter__(self) -> DiscordDouble:
        app = web.Application(client_max_size=256 * MiB)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._cdn)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close gateway sockets and stop the server."""
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def rest_base(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The websocket URL (``GET /gateway/bot`` and READY's ``resume_gateway_url``)."""
        return f"ws://{self.host}:{self.port}/gateway"

    def launch_argv(self, *cli_args: str) -> list[str]:
        """Command line running the real bot against this double in a subprocess (cwd must
        be the repository root): ``python -m tests.fakes.discord.launch BASE -- ARGS``."""
        return [sys.executable, "-m", "tests.fakes.discord.launch", self.rest_base, "--", *cli_args]

    # ------------------------------------------------------------------ world accessors

    @property
    def application_id(self) -> int:
        """The bot's application id (same as the bot user id)."""
        return self.world.application_id

    @property
    def bot_id(self) -> int:
        """The bot user's id."""
        return self.world.bot.id

    guild_id = GUILD_ID
    channel_id = CHANNEL_ID
    second_channel_id = SECOND_CHANNEL_ID
    admin_id = ADMIN_ID
    user_id = USER_ID
    admin_role_id = ADMIN_ROLE_ID

    def guild(self, guild_id: int = GUILD_ID) -> Guild:
        """The world's guild object (mutable)."""
        return self.world.guilds[guild_id]

    def messages(
        self, channel_id: int = CHANNEL_ID, *, include_deleted: bool = False
    ) -> list[Message]:
        """Messages of a channel, oldest first (ephemeral ones included, see ``.ephemeral``)."""
        out = [self.world.messages[m] for m in self.world.channel_messages.get(channel_id, [])]
        return out if include_deleted else [m for m in out if not m.deleted]

    def get_message(self, message_id: int) -> Message | None:
        """A message by id (``None`` if unknown)."""
        return self.world.messages.get(int(message_id))

    def interactions(self) -> list[Interaction]:
        """All interactions dispatched so far, oldest first."""
        return list(self.world.interactions.values())

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The synced command definitions (global, or of one guild)."""
        if guild_id is None:
            return list(self.world.global_commands)
        return list(self.world.guild_commands.get(guild_id, []))

    def sync_count(self, guild_id: int | None = None, *, any_scope: bool = False) -> int:
        """How many bulk overwrites (PUT) of commands happened (global, one guild or all)."""
        return sum(1 for g, _ in self.command_syncs if any_scope or g == guild_id)

    def requests_to(self, method: str, pattern: str) -> list[RequestRecord]:
        """Recorded requests whose method and path match ``pattern`` (see ``fail``)."""
        regex = _pattern_to_regex(pattern)
        return [r for r in self.requests if r.method == method and regex.fullmatch(r.path)]

    # ------------------------------------------------------------------ knobs

    def fail(
        self,
        route: str,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        *,
        code: int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Script ``times`` failures with ``status`` on requests matching ``route``.

        ``route`` is ``"METHOD /path/{placeholder}/..."`` or just a path (any method); ``{x}``
        matches one segment, ``*`` anything, ``re:...`` is a raw regex on the path below
        ``/api/v10``. A 429 carries ``retry_after`` (default 0.05 s), ``global: false``,
        ``X-RateLimit-*`` headers and ``Via`` (without ``Via`` discord.py treats a 429 as a
        Cloudflare ban and does not retry).
        """
        method: str | None = None
        head, _, rest = route.partition(" ")
        if rest and head.isupper():
            method, route = head, rest.strip()
        fault = Fault(method, _pattern_to_regex(route), status, times, retry_after, code, message)
        self.faults.append(fault)
        return fault

    def hold(self, route: str, times: int = 1, *, timeout: float = 30.0) -> Hold:
        """Hold the next ``times`` requests matching ``route`` (as in ``fail``) until released.

        Other requests are served meanwhile, so this is a Discord slow on one route.
        """
        method: str | None = None
        head, _, rest = route.partition(" ")
        if rest and head.isupper():
            method, route = head, rest.strip()
        held = Hold(method, _pattern_to_regex(route), times, timeout)
        self.holds.append(held)
        return held

    async def set_premium_tier(self, tier: int, guild_id: int = GUILD_ID) -> None:
        """Change a guild's boost tier (and upload limit); sends GUILD_UPDATE when connected."""
        guild = self.world.guilds[guild_id]
        guild.premium_tier = tier
        await self.gateway.dispatch("GUILD_UPDATE", payloads.guild(guild))

    def set_upload_limit(self, limit: int | None, guild_id: int = GUILD_ID) -> None:
        """Override a guild's per-attachment upload limit in bytes (``None``: by tier); the
        interactions advertise it as ``attachment_size_limit``."""
        self.world.guilds[guild_id].upload_limit_override = limit

    def refuse_uploads_over(self, limit: int | None, guild_id: int = GUILD_ID) -> None:
        """Refuse (413) uploads over ``limit`` bytes while still advertising the guild's
        usual limit: Discord changing its mind between the interaction and the post."""
        self.world.guilds[guild_id].refused_over = limit

    def expire_interactions(self) -> None:
        """Invalidate every interaction token issued so far."""
        for it in self.world.interactions.values():
            it.expired = True

    async def add_member(
        self, username: str, *, guild_id: int = GUILD_ID, roles: list[int] | None = None
    ) -> int:
        """Add a user to a guild and return the id (GUILD_MEMBER_ADD if GUILD_MEMBERS)."""
        user = User(snowflake(), username)
        self.world.users[user.id] = user
        member = Member(user, list(roles or []))
        self.world.guilds[guild_id].members[user.id] = member
        data = payloads.member(member)
        data["guild_id"] = str(guild_id)
        await self.gateway.dispatch("GUILD_MEMBER_ADD", data, GUILD_MEMBERS)
        return user.id

    async def add_channel(self, name: str, *, guild_id: int = GUILD_ID) -> int:
        """Add a text channel and return its id (CHANNEL_CREATE when connected)."""
        guild = self.world.guilds[guild_id]
        chan = Channel(snowflake(), guild_id, name, len(guild.channels))
        guild.channels[chan.id] = chan
        await self.gateway.dispatch("CHANNEL_CREATE", payloads.channel(chan))
        return chan.id

    async def add_guild(
        self, name: str, *, premium_tier: int = 0, guild_id: int | None = None
    ) -> int:
        """Add a guild (with a "general" channel, the bot, alice as owner and bob); returns
        its id (``guild_id``, say one chosen for its shard, or a new snowflake). The guild's
        "general" channel id is ``guild.channels`` first key. Sends GUILD_CREATE to the
        connected session of its shard."""
        gid = guild_id if guild_id is not None else snowflake()
        world = self.world
        guild = Guild(gid, name, owner_id=ADMIN_ID, premium_tier=premium_tier)
        admin_role = snowflake()
        guild.roles = {
            gid: Role(gid, "@everyone", DEFAULT_PERMISSIONS),
            admin_role: Role(admin_role, "Admin", ADMINISTRATOR, position=1),
        }
        cid = snowflake()
        guild.channels = {cid: Channel(cid, gid, "general")}
        guild.members = {
            BOT_ID: Member(world.bot, []),
            ADMIN_ID: Member(world.users[ADMIN_ID], [admin_role]),
            USER_ID: Member(world.users[USER_ID], []),
        }
        world.guilds[gid] = guild
        for session in self.gateway.live:
            if session.owns(gid):
                await session.dispatch("GUILD_CREATE", self.guild_create_payload(guild, session))
        return gid

    def guild_create_payload(self, guild: Guild, session: GatewaySession) -> dict[str, Any]:
        """GUILD_CREATE data: all members with GUILD_PRESENCES, otherwise only the bot
        (discord.py then requests the rest with op 8 when it has GUILD_MEMBERS)."""
        if session.wants(GUILD_PRESENCES):
            members = list(guild.members.values())
        else:
            members = [m for m in guild.members.values() if m.user.id == self.bot_id]
        return payloads.guild(guild, full=True, members=members)

    # ------------------------------------------------------------------ observation

    def cursor(self) -> int:
        """Index of the next event: pass as ``after=`` to ``wait_for`` to skip older ones."""
        return len(self.events)

    async def _emit(self, kind: str, **kw: Any) -> Event:
        event = Event(kind, time.monotonic(), **kw)
        async with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        return event

    async def wait_for(
        self,
        predicate: Callable[[Event], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the test-facing API takes a bound
        *,
        after: int = 0,
    ) -> Event:
        """Return the first recorded event (from index ``after``) satisfying ``predicate``.

        Events: message_create / message_update / message_delete (``.message``),
        reaction_add / reaction_remove (``.message``, ``.data`` with emoji and user_id),
        callback / followup (``.interaction``), command_sync, gateway_ready and
        gateway_resumed (``.data``). Waits on a condition
        (no polling); raises ``TimeoutError`` after ``timeout`` seconds.
        """
        index = after

        async def scan() -> Event:
            nonlocal index
            async with self._cond:
                while True:
                    while index < len(self.events):
                        event = self.events[index]
                        index += 1
                        if predicate(event):
                            return event
                    await self._cond.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            recent = ", ".join(e.kind for e in self.events[-10:])
            raise TimeoutError(
                f"no matching Discord event within {timeout}s (last events: {recent})"
            ) from None

    async def wait_for_message(
        self,
        predicate: Callable[[Message], bool] = lambda m: True,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        channel_id: int | None = None,
        after: int = 0,
        kinds: tuple[str, ...] = ("message_create",),
    ) -> Message:
        """Shortcut: wait for a message event (created by default) whose message matches."""
        event = await self.wait_for(
            lambda e: (
                e.kind in kinds
                and e.message is not None
                and (channel_id is None or e.message.channel_id == channel_id)
                and predicate(e.message)
            ),
            timeout,
            after=after,
        )
        assert event.message is not None
        return event.message

    async def wait_ready(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until a bot has IDENTIFYed and been sent READY and every GUILD_CREATE."""
        try:
            await asyncio.wait_for(self.gateway.ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"bot did not IDENTIFY within {timeout}s "
                f"(requests so far: {[(r.method, r.path, r.status) for r in self.requests]})"
            ) from None

    # ------------------------------------------------------------------ driving the bot

    def _find_command(
        self, name: str, guild_id: int | None, kind: int = 1
    ) -> dict[str, Any] | None:
        """A synced command by name and type (1 slash, 2 user menu, 3 message menu)."""
        scopes = []
        if guild_id is not None:
            scopes.append(self.world.guild_commands.get(guild_id, []))
        scopes.append(self.world.global_commands)
        for commands in scopes:
            for cmd in commands:
                if cmd["name"] == name and cmd.get("type", 1) == kind:
                    return cmd
        return None

    def _find_dm_command(self, name: str) -> dict[str, Any] | None:
        """The command a client could show in a DM: a global one, else (for a client that
        still lists it) any guild's, so its option types are known."""
        found = self._find_command(name, None)
        for guild_id in self.world.guild_commands:
            found = found or self._find_command(name, guild_id)
        return found

    @staticmethod
    def _offered_in_dms(definition: dict[str, Any] | None) -> bool:
        """Whether Discord offers a synced command in the bot's DMs (context 1)."""
        if definition is None or definition.get("guild_id"):
            return False
        contexts = definition.get("contexts")
        if contexts is not None:
            return 1 in contexts
        return definition.get("dm_permission") is not False

    def dm_channel_id(self, user_id: int) -> int:
        """The id of the DM channel between the bot and ``user_id`` (made on first use)."""
        return self._dm_channels.setdefault(user_id, snowflake())

    def _interaction_base(
        self, type_: int, guild_id: int | None, channel_id: int, user_id: int
    ) -> tuple[Interaction, dict[str, Any]]:
        iid = snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": type_,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
        }
        if guild_id is None:  # a DM with the bot: a user, no member, no guild
            channel_id = self.dm_channel_id(user_id)
            payload |= {
                "channel_id": str(channel_id),
                "channel": payloads.dm_channel(channel_id, self.world.users[user_id]),
                "user": payloads.user(self.world.users[user_id]),
                "app_permissions": str(DEFAULT_PERMISSIONS),
                "authorizing_integration_owners": {"0": str(user_id)},
                "context": 1,
                "attachment_size_limit": 10 * MiB,
            }
        else:
            guild = self.world.guilds[guild_id]
            channel = guild.channels[channel_id]
            member = guild.members[user_id]
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": guild.locale, "features": []},
                "channel_id": str(channel_id),
                "channel": payloads.channel(channel, permissions=guild.permissions_of(user_id)),
                "member": payloads.member(member, guild, with_permissions=True),
                "app_permissions": str(guild.permissions_of(self.bot_id)),
                "guild_locale": guild.locale,
                "authorizing_integration_owners": {"0": str(guild_id)},
                "context": 0,
                "attachment_size_limit": guild.upload_limit,
            }
        record = Interaction(iid, token, type_, payload, guild_id, channel_id, user_id)
        record._future = asyncio.get_running_loop().create_future()
        record._double = self
        self.world.interactions[iid] = record
        self.world.interactions_by_token[token] = record
        return record, payload

    def _store_upload(
        self, channel_id: int, filename: str, data: bytes, ctype: str | None
    ) -> Attachment:
        att = Attachment(snowflake(), filename, bytes(data), ctype)
        now = int(time.time())
        expires = now + int(self.attachment_url_ttl)
        att.url = (
            f"{self.base_url}/attachments/{channel_id}/{att.id}/{quote(filename)}"
            f"?ex={expires:x}&is={now:x}&hm={secrets.token_hex(32)}"
        )
        self.world.attachments[att.id] = att
        return att

    def _option_value(
        self,
        opt_type: int,
        name: str,
        value: Any,
        guild: Guild,
        channel_id: int,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        if opt_type == 3:
            return str(value)
        if opt_type == 4:
            return int(value)
        if opt_type == 5:
            return bool(value)
        if opt_type == 10:
            return float(value)
        if opt_type == 11:
            upload = value
            if isinstance(value, bytes | bytearray):
                upload = Upload(f"{name}.bin", bytes(value))
            elif isinstance(value, tuple):
                upload = Upload(*value)
            if not isinstance(upload, Upload):
                raise TypeError(f"option {name!r} is an attachment: pass an Upload")
            att = self._store_upload(channel_id, upload.filename, upload.data, upload.content_type)
            data = payloads.attachment(att, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = data
            return str(att.id)
        snow = int(getattr(value, "id", value))
        if opt_type in (6, 9) and snow in guild.members:
            m = guild.members[snow]
            resolved.setdefault("users", {})[str(snow)] = payloads.user(m.user)
            mdata = payloads.member(m, guild, with_permissions=True)
            mdata.pop("user")
            resolved.setdefault("members", {})[str(snow)] = mdata
        elif opt_type in (8, 9) and snow in guild.roles:
            resolved.setdefault("roles", {})[str(snow)] = payloads.role(guild.roles[snow])
        elif opt_type == 7 and snow in guild.channels:
            resolved.setdefault("channels", {})[str(snow)] = payloads.channel(
                guild.channels[snow], permissions=guild.permissions_of(self.bot_id)
            )
        return str(snow)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild_id: int | None = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        user_id: int = USER_ID,
        attachments: dict[str, Upload | tuple[str, bytes] | tuple[str, bytes, str]] | None = None,
        strict: bool = True,
    ) -> Interaction:
        """Dispatch a slash command (INTERACTION_CREATE type 2) as ``user_id`` and return its
        record (``await interaction.response()`` for the callback).

        ``name`` may name a subcommand: ``"group sub"``. Option types come from the synced
        definition (guild first, then global); with ``strict`` the command must be synced,
        option names must exist and required ones be given (like the Discord client).
        Attachment options (type 11) take an ``Upload`` (or ``(filename, bytes[, type])``),
        in ``options`` or ``attachments``; the file lands in ``data.resolved.attachments``
        and is served by the double's CDN URL.

        ``guild_id=None`` sends it from the member's DM with the bot (``channel_id`` is then
        ignored). With ``strict``, as in Discord's client, only a global command whose
        ``contexts`` include DMs can be sent there; ``strict=False`` sends it anyway, as a
        client with a stale command list would.
        """
        values: dict[str, Any] = dict(options or {})
        values.update(attachments or {})
        path = name.split()
        if guild_id is None:
            definition = self._find_dm_command(path[0])
            if strict and not self._offered_in_dms(definition):
                raise LookupError(f"/{path[0]} is not offered in direct messages")
        else:
            definition = self._find_command(path[0], guild_id)
        if definition is None and strict:
            known = [c["name"] for c in self.commands() + self.commands(guild_id)]
            raise LookupError(f"/{path[0]} is not synced (synced: {known})")
        record, payload = self._interaction_base(2, guild_id, channel_id, user_id)
        channel_id = record.channel_id
        guild = self.world.guilds[guild_id] if guild_id is not None else Guild(0, "DM", 0)
        resolved: dict[str, dict[str, Any]] = {}

        defs = (definition or {}).get("options", [])
        for sub in path[1:]:
            found = next((o for o in defs if o["name"] == sub and o["type"] in (1, 2)), None)
            if found is None:
                raise LookupError(f"/{name}: no subcommand {sub!r}")
            defs = found.get("options", [])
        by_name = {o["name"]: o for o in defs}
        leaf: list[dict[str, Any]] = []
        for opt_name, value in values.items():
            opt_def = by_name.get(opt_name)
            if opt_def is None:
                if strict:
                    raise LookupError(f"/{name} has no option {opt_name!r} (has {list(by_name)})")
                opt_type = 11 if isinstance(value, Upload) else _OPTION_TYPES.get(type(value), 3)
            else:
                opt_type = opt_def["type"]
            v = self._option_value(opt_type, opt_name, value, guild, channel_id, resolved)
            leaf.append({"name": opt_name, "type": opt_type, "value": v})
        if strict:
            missing = [o["name"] for o in defs if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"/{name}: required options missing: {missing}")
        opts = leaf
        for depth in range(len(path) - 1, 0, -1):
            kind = 1 if depth == len(path) - 1 else 2
            opts = [{"name": path[depth], "type": kind, "options": opts}]
        data: dict[str, Any] = {
            "id": str((definition or {}).get("id", snowflake())),
            "name": path[0],
            "type": 1,
            "options": opts,
        }
        if definition is not None and definition.get("guild_id") and guild_id is not None:
            data["guild_id"] = definition["guild_id"]
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    async def context_menu(
        self,
        name: str,
        message_id: int,
        *,
        user_id: int = USER_ID,
        strict: bool = True,
    ) -> Interaction:
        """Use a message context-menu command ("Apps" on a message) as ``user_id``:
        INTERACTION_CREATE type 2 whose data has type 3, the ``target_id`` and the message in
        ``resolved.messages`` (with its attachments' fresh URLs). With ``strict`` the command
        must be synced as a message command (type 3) in the message's guild or globally."""
        message = self.world.messages[int(message_id)]
        if message.deleted:
            raise LookupError(f"message {message_id} was deleted")
        assert message.guild_id is not None, "context menus here are on guild messages"
        definition = self._find_command(name, message.guild_id, kind=3)
        if definition is None and strict:
            menus = [
                c["name"]
                for c in self.commands() + self.commands(message.guild_id)
                if c.get("type") == 3
            ]
            raise LookupError(f"no message command {name!r} is synced (synced: {menus})")
        record, payload = self._interaction_base(2, message.guild_id, message.channel_id, user_id)
        data: dict[str, Any] = {
            "id": str((definition or {}).get("id", snowflake())),
            "name": name,
            "type": 3,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): payloads.message(message, self.world)}},
        }
        if definition is not None and definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        payload["data"] = data
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    async def submit_modal(
        self,
        opened: Interaction,
        values: dict[str, Any],
        *,
        strict: bool = True,
    ) -> Interaction:
        """The member fills in and submits the modal the bot answered ``opened`` with
        (callback type 9): INTERACTION_CREATE type 5 with the modal's ``custom_id``, its
        inputs' values in the modal's layout, and uploaded files (give an ``Upload``, or a
        list of them, for a file upload) in ``resolved.attachments``."""
        callback = opened.callback
        if callback is None or callback.type != 9:
            raise LookupError(f"interaction {opened.id} was not answered with a modal")
        modal = callback.data
        record, payload = self._interaction_base(
            5, opened.guild_id, opened.channel_id, opened.user_id
        )

        def store(upload: Any) -> dict[str, Any]:
            if isinstance(upload, tuple):
                upload = Upload(*upload)
            att = self._store_upload(
                opened.channel_id, upload.filename, upload.data, upload.content_type
            )
            return payloads.attachment(att, ephemeral=True)

        components, resolved = modals.submission(modal, values, store, strict=strict)
        data: dict[str, Any] = {"custom_id": modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    @staticmethod
    def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
        for comp in components:
            if comp.get("custom_id") == custom_id:
                return comp
            for key in ("components", "accessory"):
                child = comp.get(key)
                if isinstance(child, dict):
                    child = [child]
                if child:
                    found = DiscordDouble._find_component(child, custom_id)
                    if found is not None:
                        return found
        return None

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int = USER_ID,
        values: list[str] | None = None,
        strict: bool = True,
    ) -> Interaction:
        """Click a button / use a select on a message (INTERACTION_CREATE type 3).

        ``values`` are the chosen select options. With ``strict`` the message must carry a
        component with ``custom_id`` (the component type is taken from it).
        """
        message = self.world.messages[int(message_id)]
        comp = self._find_component(message.components, custom_id)
        if comp is None and strict:
            raise LookupError(f"message {message_id} has no component {custom_id!r}")
        assert message.guild_id is not None
        record, payload = self._interaction_base(3, message.guild_id, message.channel_id, user_id)
        record.message_id = message.id
        data: dict[str, Any] = {
            "custom_id": custom_id,
            "component_type": (comp or {}).get("type", 2),
        }
        if values is not None:
            data["values"] = list(values)
        payload["data"] = data
        payload["message"] = payloads.message(message, self.world)
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    async def react(
        self,
        channel_id: int,
        message_id: int,
        emoji: str,
        user_id: int = USER_ID,
    ) -> None:
        """A member adds a reaction (MESSAGE_REACTION_ADD, raw fields, member included)."""
        message = self.world.messages[int(message_id)]
        key = payloads.emoji_key(emoji)
        message.reactions.setdefault(key, set()).add(user_id)
        await self._emit("reaction_add", message=message, data={"emoji": key, "user_id": user_id})
        await self._dispatch_reaction("MESSAGE_REACTION_ADD", message, key, user_id)

    async def unreact(
        self, channel_id: int, message_id: int, emoji: str, user_id: int = USER_ID
    ) -> None:
        """A member removes a reaction (MESSAGE_REACTION_REMOVE)."""
        message = self.world.messages[int(message_id)]
        key = payloads.emoji_key(emoji)
        message.reactions.get(key, set()).discard(user_id)
        await self._emit(
            "reaction_remove", message=message, data={"emoji": key, "user_id": user_id}
        )
        await self._dispatch_reaction("MESSAGE_REACTION_REMOVE", message, key, user_id)

    async def _dispatch_reaction(
        self, event: str, message: Message, key: str, user_id: int
    ) -> None:
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": payloads.emoji(key),
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            if event == "MESSAGE_REACTION_ADD":
                guild = self.world.guilds[message.guild_id]
                if user_id in guild.members:
                    data["member"] = payloads.member(guild.members[user_id])
                data["message_author_id"] = str(message.author.id)
                data["burst_colors"] = []
        await self.gateway.dispatch(event, data, GUILD_MESSAGE_REACTIONS)

    async def say(
        self,
        content: str,
        *,
        channel_id: int = CHANNEL_ID,
        user_id: int = USER_ID,
        files: list[Upload] | None = None,
    ) -> Message:
        """A member posts a message (MESSAGE_CREATE; content only with MESSAGE_CONTENT),
        with ``files`` uploaded as its attachments (served by the double's CDN URLs)."""
        chan = self.world.channel(channel_id)
        assert chan is not None
        message = Message(
            snowflake(), channel_id, chan.guild_id, self.world.users[user_id], content
        )
        for upload in files or []:
            message.attachments.append(
                self._store_upload(channel_id, upload.filename, upload.data, upload.content_type)
            )
        self.world.add_message(message)
        await self._emit("message_create", message=message)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs the session."""
        await self.gateway.reconnect()

    async def _dispatch_message(self, event: str, message: Message) -> None:
        if message.ephemeral:
            return
        data = payloads.message(message, self.world)
        if message.guild_id is not None:
            guild = self.world.guilds[message.guild_id]
            member = guild.members.get(message.author.id)
            if member is not None and message.webhook_id is None:
                mdata = payloads.member(member)
                mdata.pop("user")
                data["member"] = mdata
        for session in self.gateway.live:
            if not session.wants(GUILD_MESSAGES) or not session.owns(message.guild_id):
                continue
            out = data
            own = message.author.id == self.bot_id
            mentioned = f"<@{self.bot_id}>" in message.content
            if not session.wants(MESSAGE_CONTENT) and not own and not mentioned:
                out = dict(data, content="", embeds=[], attachments=[], components=[])
            await session.dispatch(event, out)

    # ------------------------------------------------------------------ REST plumbing

    def _build_routes(
        self,
    ) -> list[tuple[str, re.Pattern[str], str, Callable[[_Req], Awaitable[web.Response]]]]:
        table = [
            ("GET", "/gateway", "none", self._get_gateway),
            ("GET", "/gateway/bot", "bot", self._get_gateway_bot),
            ("GET", "/users/@me", "bot", self._get_me),
            ("GET", "/users/{user_id}", "bot", self._get_user),
            ("GET", "/oauth2/applications/@me", "bot", self._get_application),
            ("GET", "/applications/@me", "bot", self._get_application),
            ("GET", "/applications/{app_id}/commands", "bot", self._get_commands),
            ("PUT", "/applications/{app_id}/commands", "bot", self._put_commands),
            ("POST", "/applications/{app_id}/commands", "bot", self._post_command),
            ("GET", "/applications/{app_id}/commands/{cmd_id}", "bot", self._get_command),
            ("DELETE", "/applications/{app_id}/commands/{cmd_id}", "bot", self._delete_command),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", "bot", self._get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", "bot", self._put_commands),
            (
                "POST",
                "/applications/{app_id}/guilds/{guild_id}/commands",
                "bot",
                self._post_command,
            ),
            (
                "GET",
                "/applications/{app_id}/guilds/{guild_id}/commands/{cmd_id}",
                "bot",
                self._get_command,
            ),
            (
                "DELETE",
                "/applications/{app_id}/guilds/{guild_id}/commands/{cmd_id}",
                "bot",
                self._delete_command,
            ),
            ("POST", "/interactions/{interaction_id}/{token}/callback", "none", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", "none", self._followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", "none", self._wh_get),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", "none", self._wh_edit),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", "none", self._wh_delete),
            ("GET", "/channels/{channel_id}", "bot", self._get_channel),
            ("GET", "/channels/{channel_id}/messages", "bot", self._get_messages),
            ("POST", "/channels/{channel_id}/messages", "bot", self._post_message),
            ("POST", "/channels/{channel_id}/typing", "bot", self._typing),
            ("GET", "/channels/{channel_id}/messages/{message_id}", "bot", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", "bot", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", "bot", self._delete_message),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}",
                "bot",
                self._put_reaction,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}",
                "bot",
                self._delete_reaction,
            ),
            (
                "GET",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
                "bot",
                self._get_reactions,
            ),
            ("GET", "/guilds/{guild_id}", "bot", self._get_guild),
            ("GET", "/guilds/{guild_id}/channels", "bot", self._get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", "bot", self._get_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", "bot", self._get_member),
        ]
        out = []
        for method, template, auth, handler in table:
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            out.append((method, re.compile(regex), auth, handler))
        return out

    async def _parse_body(self, request: web.Request) -> tuple[Any, list[_Upload], int]:
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            payload: Any = None
            files: list[_Upload] = []
            total = 0
            while True:
                part = await reader.next()
                if part is None:
                    break
                data = await part.read()  # type: ignore[union-attr]
                total += len(data)
                name = part.name or ""  # type: ignore[union-attr]
                if name == "payload_json":
                    payload = json.loads(bytes(data).decode())
                elif part.filename is not None:  # type: ignore[union-attr]
                    files.append(
                        _Upload(
                            name,
                            part.filename,  # type: ignore[union-attr]
                            bytes(data),
                            part.headers.get("Content-Type"),
                        )
                    )
            return payload, files, total
        body = await request.read()
        if not body:
            return None, [], 0
        try:
            return json.loads(body), [], len(body)
        except ValueError:
            return None, [], len(body)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        path = raw.removeprefix("/api/v10")
        method = request.method
        record = RequestRecord(method, unquote(path), dict(request.query), time.monotonic())
        self.requests.append(record)
        try:
            payload, files, size = await self._parse_body(request)
            record.json = payload
            response = await self._route(request, method, path, payload, files, size, record)
        except _HTTPError as exc:
            response = _json(exc.body, exc.status)
        except Exception as exc:  # a bug in the double: fail fast (4xx is not retried)
            _log.exception("DiscordDouble failed on %s %s", method, path)
            self.errors.append(f"{method} {path}: {exc!r}")
            response = _json(payloads.error(0, f"DiscordDouble internal error: {exc!r}"), 400)
        record.status = response.status
        return response

    async def _route(
        self,
        request: web.Request,
        method: str,
        path: str,
        payload: Any,
        files: list[_Upload],
        size: int,
        record: RequestRecord,
    ) -> web.Response:
        for held in self.holds:
            if held.matches(method, unquote(path)):
                held.hits += 1
                held.arrived.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(held.timeout):
                        await held.released.wait()
                break
        for fault in self.faults:
            if fault.matches(method, unquote(path)):
                fault.hits += 1
                return self._fault_response(fault)
        handler = None
        params: dict[str, str] = {}
        path_matched = False
        for r_method, regex, auth, func in self._routes:
            m = regex.fullmatch(path)
            if m is None:
                continue
            path_matched = True
            if r_method != method:
                continue
            handler = func
            params = {k: unquote(v) for k, v in m.groupdict().items()}
            record.route = f"{r_method} {regex.pattern}"
            if auth == "bot" and request.headers.get("Authorization") != f"Bot {self.token}":
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            break
        if handler is None:
            self.unknown_routes.append(record)
            if path_matched:
                return _json({"message": "405: Method Not Allowed", "code": 0}, 405)
            return _json({"message": "404: Not Found", "code": 0}, 404)
        if size > self.request_limit:
            return _json(payloads.error(40005, "Request entity too large"), 413)
        req = _Req(request, method, path, params, payload, files, record)
        return await handler(req)

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        if fault.status == 429:
            retry = 0.05 if fault.retry_after is None else fault.retry_after
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(retry + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": "loopback-double-bucket",
                "X-RateLimit-Scope": "user",
            }
            body = {
                "message": fault.message or "You are being rate limited.",
                "retry_after": retry,
                "global": False,
            }
            if fault.code is not None:
                body["code"] = fault.code
            return _json(body, 429, headers)
        message = fault.message or f"{fault.status}: scripted failure"
        return _json(payloads.error(fault.code or 0, message), fault.status)

    # ------------------------------------------------------------------ helpers for handlers

    def _channel_or_404(self, channel_id: str) -> Channel:
        chan = self.world.channel(int(channel_id))
        if chan is None:
            raise _HTTPError(404, 10003, "Unknown Channel")
        return chan

    def _message_or_404(self, channel_id: int, message_id: str) -> Message:
        msg = self.world.messages.get(int(message_id)) if message_id.isdigit() else None
        if msg is None or msg.deleted or msg.channel_id != channel_id:
            raise _HTTPError(404, 10008, "Unknown Message")
        return msg

    def _check_uploads(self, files: list[_Upload], guild_id: int | None) -> None:
        limit = (
            self.world.guilds[guild_id].enforced_upload_limit
            if guild_id in self.world.guilds
            else 10 * MiB
        )
        for f in files:
            if len(f.data) > limit:
                raise _HTTPError(413, 40005, "Request entity too large")

    def _apply(
        self,
        msg: Message,
        payload: dict[str, Any] | None,
        files: list[_Upload],
        *,
        creating: bool,
    ) -> None:
        """Apply a create/edit message payload (JSON part) and uploaded files to ``msg``."""
        payload = payload or {}
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = list(payload["embeds"] or [])
        elif "embed" in payload:
            msg.embeds = [payload["embed"]] if payload["embed"] else []
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg.flags & (64 if not creating else 0)
            msg.flags = int(payload["flags"]) | keep
        uploads = {f.field: f for f in files}
        used: set[str] = set()
        if "attachments" in payload:
            existing = {a.id: a for a in msg.attachments}
            new_list: list[Attachment] = []
            for entry in payload["attachments"] or []:
                aid = int(entry.get("id", -1))
                if aid in existing:
                    new_list.append(existing[aid])
                    continue
                up = uploads.get(f"files[{aid}]")
                if up is None:
                    continue
                used.add(up.field)
                att = self._store_upload(
                    msg.channel_id, entry.get("filename") or up.filename, up.data, up.content_type
                )
                att.description = entry.get("description")
                new_list.append(att)
            msg.attachments = new_list
        for f in files:
            if f.field not in used:
                msg.attachments.append(
                    self._store_upload(msg.channel_id, f.filename, f.data, f.content_type)
                )
        if not creating:
            msg.edited_timestamp = iso_now()
            msg.history.append(
                Edit(
                    time.monotonic(),
                    msg.edited_timestamp,
                    msg.content,
                    list(msg.embeds),
                    [a.id for a in msg.attachments],
                    list(msg.components),
                )
            )

    async def _create(
        self,
        channel_id: int,
        payload: Any,
        files: list[_Upload],
        *,
        webhook: bool = False,
        interaction: Interaction | None = None,
        msg_type: int = 0,
        flags: int = 0,
    ) -> Message:
        chan = self.world.channel(channel_id)
        guild_id = chan.guild_id if chan is not None else None
        msg = Message(snowflake(), channel_id, guild_id, self.world.bot, type=msg_type, flags=flags)
        if webhook:
            msg.webhook_id = self.application_id
        if interaction is not None:
            msg.interaction_id = interaction.id
        self._apply(msg, payload, files, creating=True)
        self.world.add_message(msg)
        await self._emit("message_create", message=msg, interaction=interaction)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    async def _edit(self, msg: Message, payload: Any, files: list[_Upload]) -> Message:
        self._apply(msg, payload, files, creating=False)
        await self._emit("message_update", message=msg)
        await self._dispatch_message("MESSAGE_UPDATE", msg)
        return msg

    async def _delete(self, msg: Message) -> None:
        msg.deleted = True
        await self._emit("message_delete", message=msg)
        if not msg.ephemeral:
            data = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            await self.gateway.dispatch("MESSAGE_DELETE", data, GUILD_MESSAGES)

    def _msg_json(self, msg: Message) -> web.Response:
        return _json(payloads.message(msg, self.world))

    # ------------------------------------------------------------------ REST handlers

    async def _get_gateway(self, req: _Req) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, req: _Req) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _get_me(self, req: _Req) -> web.Response:
        return _json(payloads.client_user(self.world.bot))

    async def _get_user(self, req: _Req) -> web.Response:
        user = self.world.users.get(int(req.params["user_id"]))
        if user is None:
            raise _HTTPError(404, 10013, "Unknown User")
        return _json(payloads.user(user))

    async def _get_application(self, req: _Req) -> web.Response:
        return _json(payloads.application(self.world, self.world.users[ADMIN_ID]))

    def _check_app(self, req: _Req) -> None:
        if int(req.params["app_id"]) != self.application_id:
            raise _HTTPError(403, 50001, "Missing Access")

    def _command_list(self, req: _Req) -> list[dict[str, Any]]:
        self._check_app(req)
        if "guild_id" in req.params:
            gid = int(req.params["guild_id"])
            if gid not in self.world.guilds:
                raise _HTTPError(403, 50001, "Missing Access")
            return self.world.guild_commands.setdefault(gid, [])
        return self.world.global_commands

    def _normalise_command(
        self, cmd: dict[str, Any], old: list[dict[str, Any]], gid: int | None
    ) -> dict[str, Any]:
        prev = next(
            (c for c in old if c["name"] == cmd["name"] and c.get("type", 1) == cmd.get("type", 1)),
            None,
        )
        out = dict(cmd)
        out.setdefault("type", 1)
        out.setdefault("description", "")
        out.setdefault("options", [])
        out["id"] = prev["id"] if prev else str(snowflake())
        out["application_id"] = str(self.application_id)
        out["version"] = str(snowflake())
        out.setdefault("default_member_permissions", None)
        out.setdefault("nsfw", False)
        if gid is not None:
            out["guild_id"] = str(gid)
        return out

    async def _get_commands(self, req: _Req) -> web.Response:
        return _json(self._command_list(req))

    async def _put_commands(self, req: _Req) -> web.Response:
        current = self._command_list(req)
        gid = int(req.params["guild_id"]) if "guild_id" in req.params else None
        if not isinstance(req.json, list):
            raise _HTTPError(400, 50035, "Invalid Form Body")
        new = [self._normalise_command(c, current, gid) for c in req.json]
        current[:] = new
        self.command_syncs.append((gid, time.monotonic()))
        await self._emit("command_sync", data={"guild_id": gid, "commands": new})
        return _json(new)

    async def _post_command(self, req: _Req) -> web.Response:
        current = self._command_list(req)
        gid = int(req.params["guild_id"]) if "guild_id" in req.params else None
        cmd = self._normalise_command(req.json or {}, current, gid)
        current[:] = [c for c in current if c["id"] != cmd["id"]] + [cmd]
        return _json(cmd, 201)

    async def _get_command(self, req: _Req) -> web.Response:
        for cmd in self._command_list(req):
            if cmd["id"] == req.params["cmd_id"]:
                return _json(cmd)
        raise _HTTPError(404, 10063, "Unknown application command")

    async def _delete_command(self, req: _Req) -> web.Response:
        current = self._command_list(req)
        current[:] = [c for c in current if c["id"] != req.params["cmd_id"]]
        return _no_content()

    # interactions --------------------------------------------------------------

    async def _callback(self, req: _Req) -> web.Response:
        it = self.world.interactions.get(int(req.params["interaction_id"]))
        if it is None or it.token != req.params["token"]:
            raise _HTTPError(404, 10062, "Unknown interaction")
        if it.callback is not None:
            raise _HTTPError(400, 40060, "Interaction has already been acknowledged.")
        late = self.callback_deadline is not None and (
            time.monotonic() - it.created > self.callback_deadline
        )
        if late or it.expired:
            raise _HTTPError(404, 10062, "Unknown interaction")
        body = req.json or {}
        cb_type = int(body.get("type", 0))
        data = body.get("data") or {}
        self._check_uploads(req.files, it.guild_id)
        loading = False
        message: Message | None = None
        msg_type = 20 if it.type == 2 else 0
        if cb_type == 4:
            flags = int(data.get("flags") or 0)
            message = await self._create(
                it.channel_id,
                data,
                req.files,
                webhook=True,
                interaction=it,
                msg_type=msg_type,
                flags=flags,
            )
            it.original_message_id = message.id
        elif cb_type == 5:
            loading = True
            flags = 128 | (int(data.get("flags") or 0) & 64)
            message = await self._create(
                it.channel_id, {}, [], webhook=True, interaction=it, msg_type=msg_type, flags=flags
            )
            it.original_message_id = message.id
        elif cb_type in (6, 7):
            if it.message_id is None:
                raise _HTTPError(400, 40004, "Interaction is not a component interaction")
            it.original_message_id = it.message_id
            if cb_type == 7:
                message = await self._edit(self.world.messages[it.message_id], data, req.files)
        elif cb_type == 9:
            if it.type not in (2, 3):  # no modal in answer to a modal submit or autocomplete
                raise _HTTPError(400, 50035, "Invalid Form Body", errors={"type": "9"})
            try:
                modals.check_modal(data)
            except modals.ModalError as bad:
                raise _HTTPError(400, 50035, "Invalid Form Body", errors=bad.errors) from None
        elif cb_type not in (1, 8, 10, 12):
            raise _HTTPError(400, 50035, "Invalid Form Body", errors={"type": str(cb_type)})
        files = [
            self._store_upload(it.channel_id, f.filename, f.data, f.content_type) for f in req.files
        ]
        it.callback = Callback(cb_type, data, files, time.monotonic())
        if it._future is not None and not it._future.done():
            it._future.set_result(it.callback)
        await self._emit("callback", interaction=it, message=message, data={"type": cb_type})
        if req.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        result: dict[str, Any] = {
            "interaction": {
                "id": str(it.id),
                "type": it.type,
                "response_message_loading": loading,
                "response_message_ephemeral": bool(message.ephemeral) if message else False,
            }
        }
        if message is not None:
            result["interaction"]["response_message_id"] = str(message.id)
            result["resource"] = {"type": cb_type, "message": payloads.message(message, self.world)}
        elif cb_type not in (1, 6, 8):
            result["resource"] = {"type": cb_type}
        return _json(result)

    def _webhook_interaction(self, req: _Req) -> Interaction:
        if int(req.params["app_id"]) != self.application_id:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        it = self.world.interactions_by_token.get(req.params["token"])
        if it is None:
            raise _HTTPError(401, 50027, "Invalid Webhook Token")
        if it.expired or time.monotonic() - it.created > self.interaction_token_ttl:
            it.expired = True
            raise _HTTPError(401, 50027, "Invalid Webhook Token")
        return it

    def _webhook_message(self, it: Interaction, message_id: str) -> Message:
        if message_id == "@original":
            mid = it.original_message_id
        else:
            mid = int(message_id) if message_id.isdigit() else None
            if mid not in it.followup_ids and mid != it.original_message_id:
                mid = None
        msg = self.world.messages.get(mid) if mid is not None else None
        if msg is None or msg.deleted:
            raise _HTTPError(404, 10008, "Unknown Message")
        return msg

    async def _followup(self, req: _Req) -> web.Response:
        it = self._webhook_interaction(req)
        if it.callback is None:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        self._check_uploads(req.files, it.guild_id)
        payload = req.json or {}
        flags = int(payload.get("flags") or 0)
        msg = await self._create(
            it.channel_id, payload, req.files, webhook=True, interaction=it,
            msg_type=20 if it.type == 2 else 0, flags=flags,
        )  # fmt: skip
        it.followup_ids.append(msg.id)
        await self._emit("followup", interaction=it, message=msg)
        if req.query.get("wait") in ("1", "true", "True"):
            return self._msg_json(msg)
        return _no_content()

    async def _wh_get(self, req: _Req) -> web.Response:
        it = self._webhook_interaction(req)
        return self._msg_json(self._webhook_message(it, req.params["message_id"]))

    async def _wh_edit(self, req: _Req) -> web.Response:
        it = self._webhook_interaction(req)
        msg = self._webhook_message(it, req.params["message_id"])
        self._check_uploads(req.files, it.guild_id)
        msg.flags &= ~128
        return self._msg_json(await self._edit(msg, req.json, req.files))

    async def _wh_delete(self, req: _Req) -> web.Response:
        it = self._webhook_interaction(req)
        await self._delete(self._webhook_message(it, req.params["message_id"]))
        return _no_content()

    # channels --------------------------------------------------------------------

    async def _get_channel(self, req: _Req) -> web.Response:
        return _json(payloads.channel(self._channel_or_404(req.params["channel_id"])))

    async def _get_messages(self, req: _Req) -> web.Response:
        chan = self._channel_or_404(req.params["channel_id"])
        limit = int(req.query.get("limit", 50))
        msgs = list(reversed(self.messages(chan.id)))
        msgs = [m for m in msgs if not m.ephemeral]
        if "before" in req.query:
            msgs = [m for m in msgs if m.id < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if m.id > int(req.query["after"])]
        return _json([payloads.message(m, self.world) for m in msgs[:limit]])

    async def _post_message(self, req: _Req) -> web.Response:
        chan = self._channel_or_404(req.params["channel_id"])
        self._check_uploads(req.files, chan.guild_id)
        payload = req.json or {}
        keys = ("content", "embeds", "components", "sticker_ids", "poll")
        if not req.files and not any(payload.get(k) for k in keys):
            raise _HTTPError(400, 50006, "Cannot send an empty message")
        msg = await self._create(chan.id, payload, req.files, flags=int(payload.get("flags") or 0))
        return self._msg_json(msg)

    async def _typing(self, req: _Req) -> web.Response:
        self._channel_or_404(req.params["channel_id"])
        return _no_content()

    async def _get_message(self, req: _Req) -> web.Response:
        chan = self._channel_or_404(req.params["channel_id"])
        return self._msg_json(self._message_or_404(chan.id, req.params["message_id"]))

    async def _edit_message(self, req: _Req) -> web.Response:
        chan = self._channel_or_404(req.params["channel_id"])
        msg = self._message_or_404(chan.id, req.params["message_id"])
        if msg.author.id != self.bot_id:
            raise _HTTPError(403, 50005, "Cannot edit a message authored by another user")
        self._check_uploads(req.files, chan.guild_id)
        return self._msg_json(await self._edit(msg, req.json, req.files))

    async def _delete_message(self, req: _Req) -> web.Response:
        chan = self._channel_or_404(req.params["channel_id"])
        await self._delete(self._message_or_404(chan.id, req.params["message_id"]))
        return _no_content()

    def _reaction_target(self, req: _Req) -> tuple[Message, str, int]:
        chan = self._channel_or_404(req.params["channel_id"])
        msg = self._message_or_404(chan.id, req.params["message_id"])
        key = payloads.emoji_key(req.params["emoji"])
        if not key:
            raise _HTTPError(400, 10014, "Unknown Emoji")
        user = req.params.get("user", "@me")
        user_id = self.bot_id if user == "@me" else int(user)
        return msg, key, user_id

    async def _put_reaction(self, req: _Req) -> web.Response:
        msg, key, user_id = self._reaction_target(req)
        if user_id != self.bot_id:
            return _json({"message": "405: Method Not Allowed", "code": 0}, 405)
        users = msg.reactions.setdefault(key, set())
        if user_id not in users:
            users.add(user_id)
            await self._emit("reaction_add", message=msg, data={"emoji": key, "user_id": user_id})
            await self._dispatch_reaction("MESSAGE_REACTION_ADD", msg, key, user_id)
        return _no_content()

    async def _delete_reaction(self, req: _Req) -> web.Response:
        msg, key, user_id = self._reaction_target(req)
        users = msg.reactions.get(key, set())
        if user_id in users:
            users.discard(user_id)
            await self._emit(
                "reaction_remove", message=msg, data={"emoji": key, "user_id": user_id}
            )
            await self._dispatch_reaction("MESSAGE_REACTION_REMOVE", msg, key, user_id)
        return _no_content()

    async def _get_reactions(self, req: _Req) -> web.Response:
        msg, key, _ = self._reaction_target(req)
        users = [
            self.world.users[u]
            for u in sorted(msg.reactions.get(key, set()))
            if u in self.world.users
        ]
        return _json([payloads.user(u) for u in users])

    # guilds ------------------------------------------------------------------------

    def _guild_or_404(self, guild_id: str) -> Guild:
        guild = self.world.guilds.get(int(guild_id))
        if guild is None:
            raise _HTTPError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, req: _Req) -> web.Response:
        return _json(payloads.guild(self._guild_or_404(req.params["guild_id"])))

    async def _get_guild_channels(self, req: _Req) -> web.Response:
        guild = self._guild_or_404(req.params["guild_id"])
        return _json([payloads.channel(c) for c in guild.channels.values()])

    async def _get_roles(self, req: _Req) -> web.Response:
        guild = self._guild_or_404(req.params["guild_id"])
        return _json([payloads.role(r) for r in guild.roles.values()])

    async def _get_member(self, req: _Req) -> web.Response:
        guild = self._guild_or_404(req.params["guild_id"])
        member = guild.members.get(int(req.params["user_id"]))
        if member is None:
            raise _HTTPError(404, 10007, "Unknown Member")
        return _json(payloads.member(member))

    # CDN ----------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        att = self.world.attachments.get(int(request.match_info["id"]))
        expires = request.query.get("ex")
        if att is None:
            return web.Response(status=404, text="Not Found")
        with contextlib.suppress(ValueError):
            if expires is not None and int(expires, 16) < time.time():
                return web.Response(status=404, text="This content is no longer available.")
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )
