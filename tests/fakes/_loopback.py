"""What the AIgateway, 1min.ai and Pixazo fakes share: a loopback aiohttp server that records
every request, plays canned error replies, and serves the video bytes at ``/files/...``.

The public shape matches :class:`tests.fakes.fal.FakeFal` where they overlap (``key``,
``video``, ``url``, ``requests``, ``recorded(kind)``, ``count(kind)``, ``submit_replies``,
``status_replies``, ``video_url(...)``, ``video_length``, ``delay``), so one parametrised
suite can drive any of them. Request kinds are ``submit``, ``status``, ``file`` and ``other``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web

from tests.fakes.media import tiny_video

JSON_BODY: web.RequestKey[Any] = web.RequestKey("json_body", object)
"""Where the recording middleware leaves the parsed body: ``request[JSON_BODY]``."""

DEFAULT_VIDEO = tiny_video()
"""A tiny real clip (H.264 yuv420p MP4, index first, made with PyAV): it plays inline and fits
every upload limit, so the bot posts it untouched."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A canned HTTP reply: ``status``, a JSON ``body`` (None for empty) and ``headers``."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received; ``time`` is ``time.monotonic()`` at arrival."""

    kind: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any
    time: float
    request_id: str | None = None  # the provider's job id, where the fake knows it


class LoopbackFake:
    """Base for the provider fakes: lifecycle, recording, canned replies and file serving.

    Subclasses set ``name`` and implement :meth:`_routes` and :meth:`error_body`.
    """

    name: ClassVar[str] = "fake"

    def __init__(self, *, key: str, video: bytes = DEFAULT_VIDEO, delay: float = 0.0) -> None:
        self.key = key
        self.video = video
        self.delay = delay
        self.submit_replies: list[Reply] = []
        self.status_replies: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash); only while running."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._url

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application(middlewares=[self._record])
        self._routes(app.router)
        app.router.add_get("/files/{name:.+}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- helpers for tests -------------------------------------------------------------------

    def recorded(self, kind: str | None = None) -> list[RecordedRequest]:
        """Requests received, optionally only those of one ``kind``."""
        return [r for r in self.requests if kind is None or r.kind == kind]

    def count(self, kind: str) -> int:
        """How many requests of ``kind`` arrived."""
        return len(self.recorded(kind))

    def script_error(
        self,
        kind: str,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests of ``kind`` (``submit``/``status``) with
        ``status`` and the provider's documented error body (or ``body``; none for 304).

        ``retry_after`` adds a ``Retry-After`` header (seconds)."""
        queue = {"submit": self.submit_replies, "status": self.status_replies}[kind]
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        if body is None and status != 304:  # a 304 never has a body
            body = self.error_body(status)
        reply = Reply(status, body, headers)
        queue.extend([reply] * times)

    def error_body(self, status: int, message: str | None = None) -> Any:
        """The provider's error body for ``status``."""
        raise NotImplementedError

    def video_url(self, name: str) -> str:
        """Where the fake serves a job's video (no key needed, like a signed CDN URL)."""
        return f"{self.url}/files/{name}"

    @property
    def video_length(self) -> int:
        """How many bytes a video URL serves."""
        return len(self.video)

    # -- plumbing for subclasses ---------------------------------------------------------------

    def _routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def _kind(self, request: web.Request) -> str:
        """Classify a request for the record; subclasses name their submit/status routes."""
        return "file" if request.path.startswith("/files/") else "other"

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        request[JSON_BODY] = body  # handlers read the parsed body from here
        kind = self._kind(request)
        self.requests.append(
            RecordedRequest(
                kind=kind,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                json=body,
                time=time.monotonic(),
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        queue = {"submit": self.submit_replies, "status": self.status_replies}.get(kind)
        if queue:
            reply = queue.pop(0)
            return self._reply(reply)
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _reply(reply: Reply) -> web.Response:
        if reply.body is None:
            return web.Response(status=reply.status, headers=dict(reply.headers))
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.video, content_type="video/mp4")
