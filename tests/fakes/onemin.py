"""A loopback stand-in for 1min.ai's ``/api/features`` (Pika text-to-video).

Usage::

    async with FakeOneMin(key="k", block_seconds=0.2) as om:
        provider = OneMinProvider(session, api_key="k", base_url=om.url, accept_window=0.05)
        ...
        assert om.count("submit") == 1

What it serves, as 1min.ai's document describes it:

* ``POST /api/features`` (``API-KEY: <key>``) with ``{"type": "TEXT_TO_VIDEO", "model":
  "pika", "conversationId": "TEXT_TO_VIDEO", "promptObject": {...}}``. The connection is held
  for ``block_seconds`` (the generation; cut short by :meth:`release`), then the answer is
  ``{"aiRecord": {"uuid", "model", "type", "status": "SUCCESS", "createdAt",
  "aiRecordDetail": {"promptObject", "resultObject": ["development/videos/<uuid>.mp4"]},
  "temporaryUrl": "<fake>/files/development/videos/<uuid>.mp4?X-Amz-…"}}``. With
  ``include_temporary_url=False`` only ``resultObject`` is given; the fake serves those keys
  under :attr:`asset_base_url`.
* ``GET /files/...``: the video bytes, no key.

Undocumented, assumed: a failed generation is still HTTP 200 with ``aiRecord.status`` set to
the failure status (``FAILED``) and an empty ``resultObject``; errors are NestJS-style
``{"statusCode", "message", "error"}``; a bad body answers 400 before any hold. There is no
status route: :meth:`script_error` accepts only ``"submit"``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes._loopback import DEFAULT_VIDEO, JSON_BODY, LoopbackFake, RecordedRequest, Reply

__all__ = ["DEFAULT_VIDEO", "TASK_TYPES", "FakeOneMin", "RecordedRequest", "Reply"]

TASK_TYPES = ("pika-v2-turbo", "pika-v2.1", "pika-v2.2")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FakeOneMin(LoopbackFake):
    """1min.ai on 127.0.0.1 (a random port). Knobs are plain attributes:

    * ``key``: the key expected in ``API-KEY``.
    * ``block_seconds``: how long each accepted call holds its connection.
    * ``include_temporary_url``: False answers with ``resultObject`` only.
    * ``failure``: set by :meth:`fail_jobs`; ``None`` answers SUCCESS.
    * ``video``, ``delay``, ``submit_replies``: see :class:`LoopbackFake`.

    ``holding`` counts calls currently held open; ``answered`` counts finished ones;
    ``call_held`` is an event set once the first call is held; ``done_at`` maps each answered
    record's ``uuid`` to the ``time.monotonic()`` at which its hold ended (the job was done).
    """

    name: ClassVar[str] = "onemin"

    def __init__(
        self,
        *,
        key: str = "onemin-test-key",
        video: bytes = DEFAULT_VIDEO,
        block_seconds: float = 0.05,
        include_temporary_url: bool = True,
        delay: float = 0.0,
    ) -> None:
        super().__init__(key=key, video=video, delay=delay)
        self.block_seconds = block_seconds
        self.include_temporary_url = include_temporary_url
        self.failure: tuple[str, Any] | None = None
        self.holding = 0
        self.answered = 0
        self.done_at: dict[str, float] = {}
        self.call_held = asyncio.Event()
        """Set once a call is being held (await it to know the call has arrived)."""
        self._released = asyncio.Event()

    @property
    def asset_base_url(self) -> str:
        """Where ``resultObject`` keys are served (the stand-in for the asset bucket)."""
        return f"{self.url}/files/"

    def fail_jobs(self, error: Any = "Generation failed", *, status: str = "FAILED") -> None:
        """Answer every call with ``aiRecord.status`` = ``status`` and no video."""
        self.failure = (status, error)

    def release(self) -> None:
        """End every current and future hold at once."""
        self._released.set()

    async def close(self) -> None:
        """Release held calls, then stop listening."""
        self.release()
        await super().close()

    def script_error(
        self,
        kind: str,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """As :meth:`LoopbackFake.script_error`; 1min.ai has only the ``submit`` call."""
        if kind != "submit":
            raise ValueError("1min.ai has no status call; only 'submit' can be scripted")
        super().script_error(kind, status, retry_after=retry_after, body=body, times=times)

    def error_body(self, status: int, message: str | None = None) -> Any:
        """NestJS-style ``{"statusCode", "message", "error"}`` (assumed)."""
        reason = REASONS.get(status, "Error")
        return {"statusCode": status, "message": message or reason, "error": reason}

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/features", self._features)

    def _kind(self, request: web.Request) -> str:
        if request.method == "POST" and request.path == "/api/features":
            return "submit"
        return super()._kind(request)

    def _error(self, status: int, message: str | None = None) -> web.Response:
        return web.json_response(self.error_body(status, message), status=status)

    @staticmethod
    def _invalid(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Body must be a JSON object"
        if body.get("type") != "TEXT_TO_VIDEO" or body.get("model") != "pika":
            return "Unsupported feature type or model"
        if not body.get("conversationId"):
            return "conversationId is required"
        prompt = body.get("promptObject")
        if not isinstance(prompt, dict):
            return "promptObject is required"
        if prompt.get("task_type") not in TASK_TYPES:
            return "Invalid task_type"
        text = prompt.get("prompt")
        if not isinstance(text, str) or not text.strip():
            return "prompt is required"
        if prompt.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return "Invalid aspect_ratio"
        if prompt.get("resolution", "720p") not in ("720p", "1080p"):
            return "Invalid resolution"
        if prompt.get("duration", 5) not in (5, 10):
            return "Invalid duration"
        return None

    async def _features(self, request: web.Request) -> web.Response:
        if request.headers.get("API-KEY") != self.key:
            return self._error(401, "Invalid API key")
        body = request[JSON_BODY]
        problem = self._invalid(body)
        if problem is not None:
            return self._error(400, problem)
        self.holding += 1
        self.call_held.set()
        try:
            async with asyncio.timeout(self.block_seconds):
                await self._released.wait()
        except TimeoutError:
            pass
        finally:
            self.holding -= 1
        self.answered += 1
        record_id = str(uuid.uuid4())
        self.done_at[record_id] = time.monotonic()
        key = f"development/videos/{record_id}.mp4"
        record: dict[str, Any] = {
            "uuid": record_id,
            "userId": "c937fbcc-fa8f-4565-a440-c4d87f56fcb2",
            "teamId": "a4e176b2-dabb-451e-9c58-62b451fa9630",
            "model": "pika",
            "type": "TEXT_TO_VIDEO",
            "status": "SUCCESS",
            "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "aiRecordDetail": {"promptObject": body["promptObject"], "resultObject": [key]},
        }
        if self.failure is not None:
            record["status"], error = self.failure
            record["aiRecordDetail"]["resultObject"] = []
            record["error"] = error
        elif self.include_temporary_url:
            record["temporaryUrl"] = self.video_url(
                f"{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=fake"
            )
        return web.json_response({"aiRecord": record})
