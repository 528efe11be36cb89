"""The double's gateway: one websocket per bot connection, JSON text frames, no compression.

discord.py asks for ``compress=zlib-stream`` in the query string but handles ``str`` (TEXT)
frames without decompressing them, so the double always answers with plain JSON text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads

if TYPE_CHECKING:
    from .server import DiscordDouble

GUILD_EVENTS_BY_ID = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})
"""Events whose guild is the payload's own ``id`` (the others carry ``guild_id``)."""


def guild_of(event: str, data: dict[str, Any]) -> int | None:
    """The guild an event belongs to, for routing it to its shard (None: no guild)."""
    raw = data.get("id") if event in GUILD_EVENTS_BY_ID else data.get("guild_id")
    return int(raw) if raw is not None else None


# Opcodes
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE = 3
RESUME = 6
RECONNECT = 7
REQUEST_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Intent bits the double looks at.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
MESSAGE_CONTENT = 1 << 15
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that receives a guild's events (Discord's rule)."""
    return (guild_id >> 22) % shard_count


class GatewaySession:
    """State of one gateway session (survives a RESUME on a new socket).

    A session identified with ``shard: [id, count]`` receives only the events of the guilds
    on its shard (and, on shard 0, those of no guild: direct messages), as Discord sends them.
    """

    def __init__(self, session_id: str, intents: int, shard: tuple[int, int] = (0, 1)) -> None:
        self.session_id = session_id
        self.intents = intents
        self.shard_id, self.shard_count = shard
        self.seq = 0
        self.ws: web.WebSocketResponse | None = None
        self.lock = asyncio.Lock()

    def wants(self, intent: int) -> bool:
        """Whether the bot identified with ``intent``."""
        return bool(self.intents & intent)

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives the events of ``guild_id`` (None: no guild)."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one frame if the socket is open (events while disconnected are dropped)."""
        ws = self.ws
        if ws is None or ws.closed:
            return
        async with self.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) frame with the next sequence number."""
        self.seq += 1
        await self.send({"op": DISPATCH, "t": event, "s": self.seq, "d": data})


class Gateway:
    """Accepts gateway websockets at ``/gateway`` and speaks Discord's protocol on them."""

    def __init__(self, double: DiscordDouble, heartbeat_interval_ms: int) -> None:
        self.double = double
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, GatewaySession] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.heartbeats = 0
        self.ready = asyncio.Event()
        self.refusing = False
        """While True, every new gateway connection is refused (HTTP 503, as Discord's edge
        answers during an outage): see :meth:`drop`."""

    @property
    def live(self) -> list[GatewaySession]:
        """Sessions with an open socket."""
        return [s for s in self.sessions.values() if s.ws is not None and not s.ws.closed]

    async def dispatch(self, event: str, data: dict[str, Any], intent: int | None = None) -> None:
        """Send an event to every live session whose shard owns its guild (optionally only
        those with ``intent``)."""
        guild_id = guild_of(event, data)
        for session in self.live:
            if (intent is None or session.wants(intent)) and session.owns(guild_id):
                await session.dispatch(event, data)

    async def close_all(self, code: int = 1001) -> None:
        """Close every open socket."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=b"double shutting down")

    async def drop(self) -> None:
        """A gateway outage: close every connection (1001, so the bot tries to resume) and
        refuse new ones until :meth:`restore`."""
        self.refusing = True
        await self.close_all(code=1001)

    def restore(self) -> None:
        """End the outage: connections are accepted again (the bot reconnects by itself)."""
        self.refusing = False

    async def reconnect(self) -> None:
        """Ask connected bots to reconnect (op 7); discord.py then RESUMEs."""
        for session in self.live:
            await session.send({"op": RECONNECT, "d": None})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``GET /gateway`` (websocket upgrade)."""
        if self.refusing:
            return web.Response(status=503, text="gateway unavailable (DiscordDouble.drop)")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        session: GatewaySession | None = None
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                        "s": None,
                        "t": None,
                    }
                )
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                data = frame.get("d")
                if op == HEARTBEAT:
                    self.heartbeats += 1
                    await ws.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None}))
                elif op == IDENTIFY:
                    session = await self._identify(ws, data)
                    if session is None:
                        break
                elif op == RESUME:
                    session = await self._resume(ws, data)
                    if session is None:
                        break
                elif op == REQUEST_MEMBERS and session is not None:
                    await self._request_members(session, data)
                # PRESENCE_UPDATE (3), VOICE_STATE_UPDATE (4), ... are accepted and ignored.
        finally:
            self.sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
        return ws

    async def _identify(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        double = self.double
        self.identifies.append(data)
        if data.get("token") != double.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED & ~double.privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = data.get("shard") or [0, 1]
        shard_id, shard_count = int(shard[0]), int(shard[1])
        if not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return None
        if shard_count < double.required_shards:
            await ws.close(code=4011, message=b"Sharding required.")
            return None
        session = GatewaySession(secrets.token_hex(16), intents, (shard_id, shard_count))
        session.ws = ws
        self.sessions[session.session_id] = session
        world = double.world
        await session.dispatch(
            "READY",
            {
                "v": 10,
                "user": payloads.client_user(world.bot),
                "guilds": [
                    {"id": str(g), "unavailable": True} for g in world.guilds if session.owns(g)
                ],
                "session_id": session.session_id,
                "resume_gateway_url": double.gateway_url,
                "shard": [shard_id, shard_count],
                "application": {"id": str(world.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "session_type": "normal",
                "auth_session_id_hash": "",
                "_trace": ["loopback-discord-double"],
            },
        )
        for guild in world.guilds.values():
            if session.owns(guild.id):
                await session.dispatch("GUILD_CREATE", double.guild_create_payload(guild, session))
        self.ready.set()
        await double._emit(
            "gateway_ready",
            data={"session_id": session.session_id, "shard": [shard_id, shard_count]},
        )
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.double.token:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        self.resumes += 1
        session.ws = ws
        await session.dispatch("RESUMED", {"_trace": ["loopback-discord-double"]})
        await self.double._emit("gateway_resumed", data={"session_id": session.session_id})
        return session

    async def _request_members(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.double.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        wanted = {int(u) for u in (data.get("user_ids") or [])}
        members = [m for m in guild.members.values() if not wanted or m.user.id in wanted]
        query = (data.get("query") or "").lower()
        if query:
            members = [m for m in members if m.user.username.lower().startswith(query)]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [payloads.member(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
