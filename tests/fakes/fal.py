"""A loopback stand-in for fal.ai's queue API, for provider, end-to-end and benchmark tests.

Usage::

    async with FakeFal(key="k") as fal:
        provider = FalProvider(session, api_key="k", base_url=fal.url)
        ...
        assert fal.count("submit") == 1

What it serves (all under ``fal.url``), as fal documents it:

* ``POST /fal-ai/pika/<version>/<product>`` for every Pika endpoint: validates the body like
  fal's input schemas (422 with a ``detail`` list of ``{loc, msg, type}``) and queues a job.
  The reply holds ``request_id``, ``status_url``, ``response_url``, ``cancel_url`` (under
  ``/fal-ai/pika/requests/{id}``, the app path, not the version path) and ``queue_position``.
* ``GET .../requests/{id}/status[?logs=1]``: ``IN_QUEUE`` with ``queue_position``, then
  ``IN_PROGRESS`` (with ``logs`` when ``logs=1``), then ``COMPLETED``; 202 while waiting, 200
  when done.
* ``GET .../requests/{id}/status/stream[?logs=1]``: the same status objects as server-sent
  events (``data: {...}``), closed after ``COMPLETED``.
* ``GET .../requests/{id}``: ``{"video": {"url", "content_type", "file_name", "file_size"}}``.
* ``PUT .../requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED``, or 400
  ``ALREADY_COMPLETED`` once the job is done.
* ``GET /files/{id}/output.mp4``: the video bytes, streamed, no key needed (fal's CDN).
* ``GET /files/inputs/{name}``: files a test hosted with :meth:`FakeFal.host_file` (a
  stand-in for fal's own storage, where a caller may upload inputs), no key needed.

The Pika tools (``v1.5/pikaffects``, ``v2/pikadditions``, ``v2/pikaswaps``,
``v2.2/pikaframes``) are validated against their schemas in the seeds' fal document ("Other
types") and fal's Pikaframes page: required fields, the 16 effects, 2-5 keyframes, one
transition between each two (25 s at most in all). As the real service does, the fake then
fetches every input file URL (``video_url``, ``image_url``, ``image_urls``; a ``data:`` URI is
decoded): one it cannot download fails the job at result time with a 422 naming the field.

Every queue route checks ``Authorization: Key <key>`` (401 ``{"detail": ...}`` otherwise).

Progression is deterministic and counted, not timed: each status observation (one poll, or
one stream event) moves a job one step along ``queue_positions`` (one ``IN_QUEUE`` step per
entry), then ``progress_logs`` (one ``IN_PROGRESS`` step per entry, each adding its log line;
``None`` adds none), then ``COMPLETED``.

Choices where fal's documents are silent: a status/result request on the *version* path
answers 404; a cancelled job reports ``COMPLETED`` and its result is a 400 with
``error_type: "request_cancelled"``; a disabled stream answers 404.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes._loopback import DEFAULT_VIDEO, RecordedRequest, Reply
from tests.fakes.media import padded_chunks

TOOL_ENDPOINTS: frozenset[str] = frozenset(
    {
        "fal-ai/pika/v1.5/pikaffects",
        "fal-ai/pika/v2/pikadditions",
        "fal-ai/pika/v2/pikaswaps",
        "fal-ai/pika/v2.2/pikaframes",
    }
)
PIKA_ENDPOINTS: frozenset[str] = TOOL_ENDPOINTS | frozenset(
    {
        "fal-ai/pika/v2.2/text-to-video",
        "fal-ai/pika/v2.2/image-to-video",
        "fal-ai/pika/v2.2/pikascenes",
        "fal-ai/pika/v2.2/pikaframes",
        "fal-ai/pika/v2.1/text-to-video",
        "fal-ai/pika/v2.1/image-to-video",
        "fal-ai/pika/v2/turbo/text-to-video",
        "fal-ai/pika/v2/turbo/image-to-video",
    }
)
"""Every Pika endpoint id fal lists; submits to any other path answer 404."""

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
RESOLUTIONS = ("720p", "1080p")
DURATIONS = (5, 10)
INGREDIENTS_MODES = ("creative", "precise")
PIKAFFECTS = (
    "Cake-ify",
    "Crumble",
    "Crush",
    "Decapitate",
    "Deflate",
    "Dissolve",
    "Explode",
    "Eye-pop",
    "Inflate",
    "Levitate",
    "Melt",
    "Peel",
    "Poke",
    "Squish",
    "Ta-da",
    "Tear",
)
"""fal's PikaffectEnum, as its schema spells the values."""
FRAMES_TOTAL_SECONDS = 25
FILE_FIELDS = ("video_url", "image_url", "image_urls")
"""Input fields that name a file fal downloads before it starts."""

# Reply and DEFAULT_VIDEO are the other fakes' own, so one suite can script any of them.


@dataclass(slots=True)
class FakeJob:
    """A queued request: its endpoint, the body as received and how often it was observed."""

    request_id: str
    endpoint: str
    body: dict[str, Any]
    observations: int = 0
    cancelled: bool = False
    completed: bool = False
    ready_at: float | None = None
    """With ``FakeFal.ready_after``: the ``time.monotonic()`` at which the job turns done."""
    completed_at: float | None = None
    """``time.monotonic()`` when COMPLETED was first reported for the job."""
    fetched: dict[str, bytes] | None = None
    """Tool endpoints: the first bytes of each input file fetched at submit, by field
    (``image_urls[1]`` for a list item)."""
    failure: Reply | None = None
    """This job's own result failure (an input file fal could not download)."""


class FakeFal:
    """fal's queue on 127.0.0.1 (a random port); see the module docstring for the protocol.

    Knobs are plain attributes, settable before or during a test:

    * ``key``: the key expected in ``Authorization: Key <key>``.
    * ``queue_positions`` / ``progress_logs``: the steps a job goes through (see module doc).
    * ``waiting_status_code``: 202 (fal's default) or 200 while a job is not done.
    * ``stream_enabled``: False makes ``/status/stream`` answer 404.
    * ``stream_max_events``: end the stream after this many events even before COMPLETED.
    * ``stream_interval``: seconds between stream events (0 by default).
    * ``ready_after``: None (default) for the counted progression above; a number of seconds
      makes it timed too: a job also stays ``IN_PROGRESS`` until that long after its submit
      (``FakeJob.ready_at``), and an open stream pushes ``COMPLETED`` at that moment.
    * ``include_urls``: False leaves the URLs out of the submit reply.
    * ``requests_path``: where the returned status/result/cancel URLs point (default the app
      path ``/fal-ai/pika/requests``); the fake serves jobs only there.
    * ``delay``: seconds to wait before answering any request.
    * ``video`` / ``video_size``: the bytes served at the video URL; with ``video_size``
      ``video`` padded to that many bytes with an MP4 ``free`` box (still a real, playable
      clip, streamed, never held whole) is served instead.
    * ``submit_replies`` / ``status_replies`` / ``result_replies`` / ``cancel_replies``: canned
      replies, each used once, in order, before the normal handling of that kind of request.
    * ``result_failure``: a reply every result request gets (a failed generation); see
      :meth:`fail_result`.
    """

    def __init__(
        self,
        *,
        key: str = "fal-test-key",
        queue_positions: Sequence[int] = (2, 1),
        progress_logs: Sequence[str | None] = ("Starting generation", "Rendering frames"),
        waiting_status_code: int = 202,
        stream_enabled: bool = True,
        stream_max_events: int | None = None,
        stream_interval: float = 0.0,
        include_urls: bool = True,
        requests_path: str = "/fal-ai/pika/requests",
        delay: float = 0.0,
        video: bytes = DEFAULT_VIDEO,
        video_size: int | None = None,
        ready_after: float | None = None,
    ) -> None:
        self.key = key
        self.queue_positions = tuple(queue_positions)
        self.progress_logs = tuple(progress_logs)
        self.waiting_status_code = waiting_status_code
        self.stream_enabled = stream_enabled
        self.stream_max_events = stream_max_events
        self.stream_interval = stream_interval
        self.include_urls = include_urls
        self.requests_path = "/" + requests_path.strip("/")
        self.delay = delay
        self.video = video
        self.video_size = video_size
        self.ready_after = ready_after
        self.submit_replies: list[Reply] = []
        self.status_replies: list[Reply] = []
        self.result_replies: list[Reply] = []
        self.cancel_replies: list[Reply] = []
        self.result_failure: Reply | None = None
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, FakeJob] = {}
        self.hosted: dict[str, tuple[bytes, str]] = {}
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash); only while running."""
        if self._url is None:
            raise RuntimeError("FakeFal is not running")
        return self._url

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFal:
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

    def fail_result(
        self,
        status: int,
        detail: Any,
        *,
        error_type: str | None = None,
        header_error_type: str | None = None,
    ) -> None:
        """Make every result request fail: ``{"detail": detail, "error_type": ...}`` with
        ``status``; ``header_error_type`` goes to the ``X-Fal-Error-Type`` header."""
        body: dict[str, Any] = {"detail": detail}
        if error_type is not None:
            body["error_type"] = error_type
        headers = {"X-Fal-Error-Type": header_error_type} if header_error_type else {}
        self.result_failure = Reply(status, body, headers)

    def host_file(self, name: str, data: bytes, content_type: str = "video/mp4") -> str:
        """Serve ``data`` at a public-looking URL of the fake (no key needed); its URL."""
        self.hosted[name] = (data, content_type)
        return f"{self.url}/files/inputs/{name}"

    def video_url(self, request_id: str) -> str:
        """Where the fake serves a job's video."""
        return f"{self.url}/files/{request_id}/output.mp4"

    @property
    def video_length(self) -> int:
        """How many bytes the video URL serves."""
        return self.video_size if self.video_size is not None else len(self.video)

    # -- dispatch ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        kind, request_id = self._classify(request.method, path)
        self.requests.append(
            RecordedRequest(
                kind=kind,
                method=request.method,
                path=path,
                query=dict(request.query),
                headers=dict(request.headers),
                json=body,
                time=time.monotonic(),
                request_id=request_id,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if kind == "file":
            return await self._file(request, request_id or "")
        if kind == "hosted":
            return self._hosted(request_id or "")
        if request.headers.get("Authorization") != f"Key {self.key}":
            return _json(401, {"detail": "Invalid or missing key in the Authorization header."})
        if kind == "submit":
            return await self._submit(path.lstrip("/"), body)
        if request_id is None or request_id not in self.jobs:
            return _json(404, {"detail": "Request not found"})
        job = self.jobs[request_id]
        logs = request.query.get("logs") == "1"
        if kind == "status":
            if self.status_replies:
                return _reply(self.status_replies.pop(0))
            return self._status(job, logs=logs)
        if kind == "stream":
            return await self._stream(request, job, logs=logs)
        if kind == "result":
            return self._result(job)
        return self._cancel(job)

    def _classify(self, method: str, path: str) -> tuple[str, str | None]:
        if method == "POST" and path.lstrip("/") in PIKA_ENDPOINTS:
            return "submit", None
        match = re.fullmatch(r"/files/inputs/([^/]+)", path)
        if match and method in ("GET", "HEAD"):
            return "hosted", match.group(1)
        match = re.fullmatch(r"/files/([^/]+)/output\.mp4", path)
        if match and method in ("GET", "HEAD"):
            return "file", match.group(1)
        prefix = re.escape(self.requests_path)
        match = re.fullmatch(prefix + r"/([^/]+)(/status|/status/stream|/cancel)?", path)
        if match is None:
            return "other", None
        suffix = match.group(2) or ""
        kind = {
            ("GET", "/status"): "status",
            ("GET", "/status/stream"): "stream",
            ("GET", ""): "result",
            ("PUT", "/cancel"): "cancel",
        }.get((method, suffix), "other")
        return kind, match.group(1) if kind != "other" else None

    # -- queue -------------------------------------------------------------------------------

    def _urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.url}{self.requests_path}/{request_id}"
        return {
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }

    async def _submit(self, endpoint: str, body: Any) -> web.Response:
        if self.submit_replies:
            return _reply(self.submit_replies.pop(0))
        errors = validate(endpoint, body)
        if errors:
            return _json(422, {"detail": errors})
        request_id = str(uuid.uuid4())
        ready_at = None if self.ready_after is None else time.monotonic() + self.ready_after
        job = FakeJob(request_id=request_id, endpoint=endpoint, body=body, ready_at=ready_at)
        if endpoint in TOOL_ENDPOINTS:
            await self._fetch_inputs(job)
        self.jobs[request_id] = job
        reply: dict[str, Any] = {"request_id": request_id, "status": "IN_QUEUE"}
        if self.include_urls:
            reply.update(self._urls(request_id))
        reply["queue_position"] = self.queue_positions[0] if self.queue_positions else 0
        return _json(200, reply)

    async def _fetch_inputs(self, job: FakeJob) -> None:
        """Download each input file as fal does before it starts; a failure fails the job
        (at result time, as fal's runner reports it) with a 422 naming the field."""
        job.fetched = {}
        for field in FILE_FIELDS:
            value = job.body.get(field)
            items = value if isinstance(value, list) else [value] if value is not None else []
            for index, url in enumerate(items):
                where = f"{field}[{index}]" if isinstance(value, list) else field
                data = await self._download(str(url))
                if data is None:
                    loc: list[str | int] = ["body", field] + (
                        [index] if isinstance(value, list) else []
                    )
                    detail = [
                        {
                            "loc": loc,
                            "msg": "Failed to download the file",
                            "type": "file_download_error",
                        }
                    ]
                    job.failure = Reply(422, {"detail": detail})
                    return
                job.fetched[where] = data[:64]

    async def _download(self, url: str) -> bytes | None:
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            try:
                return base64.b64decode(payload, validate=True)
            except ValueError:
                return None
        assert self._client is not None
        try:
            async with self._client.get(url) as response:
                if response.status != 200:
                    return None
                return await response.read()
        except aiohttp.ClientError:
            return None

    def _hosted(self, name: str) -> web.Response:
        found = self.hosted.get(name)
        if found is None:
            return _json(404, {"detail": "File not found"})
        return web.Response(body=found[0], content_type=found[1])

    def _observe(self, job: FakeJob, *, logs: bool) -> dict[str, Any]:
        """Advance ``job`` one step and return its status object."""
        step = job.observations
        job.observations += 1
        queued = len(self.queue_positions)
        running = len(self.progress_logs)
        payload: dict[str, Any] = {"request_id": job.request_id, **self._urls(job.request_id)}
        ready = job.ready_at is None or time.monotonic() >= job.ready_at
        if job.cancelled or (step >= queued + running and ready):
            if not job.completed:
                job.completed_at = time.monotonic()
            job.completed = True
            payload["status"] = "COMPLETED"
            shown = self.progress_logs
        elif step < queued:
            payload["status"] = "IN_QUEUE"
            payload["queue_position"] = self.queue_positions[step]
            shown = ()
        else:  # a running step, or a timed job held until ready_at
            payload["status"] = "IN_PROGRESS"
            shown = self.progress_logs[: step - queued + 1]
        if logs:
            payload["logs"] = [_log_entry(line) for line in shown if line is not None]
        else:
            payload["logs"] = None
        payload["metrics"] = {}
        return payload

    def _status(self, job: FakeJob, *, logs: bool) -> web.Response:
        payload = self._observe(job, logs=logs)
        code = 200 if payload["status"] == "COMPLETED" else self.waiting_status_code
        return _json(code, payload)

    async def _stream(
        self, request: web.Request, job: FakeJob, *, logs: bool
    ) -> web.StreamResponse:
        if not self.stream_enabled:
            return _json(404, {"detail": "Not Found"})
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await response.write(b": connected\n\n")
            for sent in itertools.count(1):
                payload = self._observe(job, logs=logs)
                await response.write(f"data: {json.dumps(payload)}\n\n".encode())
                if payload["status"] == "COMPLETED":
                    break
                if self.stream_max_events is not None and sent >= self.stream_max_events:
                    break
                await asyncio.sleep(self._stream_wait(job))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    def _stream_wait(self, job: FakeJob) -> float:
        """Seconds to the next stream event: ``stream_interval``, but a timed job whose counted
        steps are done gets its next event no later than ``ready_at`` (pushed at once)."""
        wait = self.stream_interval
        steps = len(self.queue_positions) + len(self.progress_logs)
        if job.ready_at is not None and job.observations >= steps:
            left = job.ready_at - time.monotonic()
            if left > 0:
                wait = min(wait, left) if wait > 0 else left
        return wait

    def _result(self, job: FakeJob) -> web.Response:
        if self.result_replies:
            return _reply(self.result_replies.pop(0))
        if not job.completed:
            return _json(400, {"detail": "Request is still in progress"})
        if job.cancelled:
            return _json(
                400, {"detail": "Request was cancelled", "error_type": "request_cancelled"}
            )
        if self.result_failure is not None:
            return _reply(self.result_failure)
        if job.failure is not None:
            return _reply(job.failure)
        return _json(
            200,
            {
                "video": {
                    "url": self.video_url(job.request_id),
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": self.video_length,
                }
            },
        )

    def _cancel(self, job: FakeJob) -> web.Response:
        if self.cancel_replies:
            return _reply(self.cancel_replies.pop(0))
        if job.completed:
            return _json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        return _json(202, {"status": "CANCELLATION_REQUESTED"})

    async def _file(self, request: web.Request, request_id: str) -> web.StreamResponse:
        if request_id not in self.jobs:
            return _json(404, {"detail": "File not found"})
        size = self.video_length
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "video/mp4", "Content-Length": str(size)}
        )
        await response.prepare(request)
        if request.method == "GET":
            chunk = 64 * 1024
            if self.video_size is None:
                for start in range(0, size, chunk):
                    await response.write(self.video[start : start + chunk])
            else:
                for part in padded_chunks(self.video, size, chunk):
                    await response.write(part)
        await response.write_eof()
        return response


def validate(endpoint: str, body: Any) -> list[dict[str, Any]]:
    """fal-style validation errors (``{loc, msg, type}``) for ``body`` on ``endpoint``."""
    if not isinstance(body, dict):
        return [_err((), "Input should be a valid dictionary", "dict_type")]
    if endpoint in TOOL_ENDPOINTS:
        return validate_tool(endpoint, body)
    errors: list[dict[str, Any]] = []
    prompt = body.get("prompt")
    if "prompt" not in body:
        errors.append(_err(("prompt",), "Field required", "missing"))
    elif not isinstance(prompt, str) or not prompt.strip():
        errors.append(_err(("prompt",), "Input should be a non-empty string", "string_type"))
    if "negative_prompt" in body and not isinstance(body["negative_prompt"], str):
        errors.append(_err(("negative_prompt",), "Input should be a valid string", "string_type"))
    takes_aspect = not endpoint.endswith("image-to-video")
    if takes_aspect and "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
        errors.append(_enum_err("aspect_ratio", ASPECT_RATIOS))
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        errors.append(_enum_err("resolution", RESOLUTIONS))
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or duration not in DURATIONS:
        errors.append(_enum_err("duration", DURATIONS))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        errors.append(_err(("seed",), "Input should be a valid integer", "int_type"))
    image_url = body.get("image_url")
    if endpoint.endswith("image-to-video") and (not isinstance(image_url, str) or not image_url):
        errors.append(_err(("image_url",), "Field required", "missing"))
    if endpoint.endswith("pikascenes"):
        images = body.get("images")
        if not isinstance(images, list) or not images:
            errors.append(_err(("images",), "Field required", "missing"))
        else:
            for index, image in enumerate(images):
                if not isinstance(image, dict) or not isinstance(image.get("image_url"), str):
                    errors.append(_err(("images", index, "image_url"), "Field required", "missing"))
        mode = body.get("ingredients_mode", "creative")
        if mode not in INGREDIENTS_MODES:
            errors.append(_enum_err("ingredients_mode", INGREDIENTS_MODES))
    return errors


_TOOL_FIELDS: dict[str, dict[str, bool]] = {
    # field -> required, per the schemas ("*" marks a required field there)
    "fal-ai/pika/v1.5/pikaffects": {
        "image_url": True,
        "pikaffect": True,
        "prompt": False,
        "negative_prompt": False,
        "seed": False,
    },
    "fal-ai/pika/v2/pikadditions": {
        "video_url": True,
        "image_url": True,
        "prompt": False,
        "negative_prompt": False,
        "seed": False,
    },
    "fal-ai/pika/v2/pikaswaps": {
        "video_url": True,
        "image_url": False,
        "modify_region": False,
        "prompt": False,
        "negative_prompt": False,
        "seed": False,
    },
    "fal-ai/pika/v2.2/pikaframes": {
        "image_urls": True,
        "transitions": False,
        "prompt": False,
        "negative_prompt": False,
        "seed": False,
        "resolution": False,
    },
}


def validate_tool(endpoint: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """fal-style validation of a Pika tool's input (its request schema)."""
    fields = _TOOL_FIELDS[endpoint]
    errors: list[dict[str, Any]] = []
    for name in body:
        if name not in fields:  # fal's models forbid unknown fields
            errors.append(_err((name,), "Extra inputs are not permitted", "extra_forbidden"))
    for name, required in fields.items():
        if required and name not in body:
            errors.append(_err((name,), "Field required", "missing"))
    for name in ("prompt", "negative_prompt", "modify_region"):
        if name in body and not isinstance(body[name], str):
            errors.append(_err((name,), "Input should be a valid string", "string_type"))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        errors.append(_err(("seed",), "Input should be a valid integer", "int_type"))
    for name in ("video_url", "image_url"):
        if name in body and not _file_url(body[name]):
            errors.append(_err((name,), "Input should be a valid URL", "url_parsing"))
    if "pikaffect" in body and body["pikaffect"] not in PIKAFFECTS:
        errors.append(_enum_err("pikaffect", PIKAFFECTS))
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        errors.append(_enum_err("resolution", RESOLUTIONS))
    if endpoint.endswith("pikaframes"):
        errors.extend(_frames_errors(body))
    return errors


def _frames_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    images = body.get("image_urls")
    if "image_urls" in body:
        if not isinstance(images, list):
            return [_err(("image_urls",), "Input should be a valid list", "list_type")]
        if len(images) < 2:
            errors.append(_err(("image_urls",), "List should have at least 2 items", "too_short"))
        if len(images) > 5:
            errors.append(_err(("image_urls",), "List should have at most 5 items", "too_long"))
        for index, url in enumerate(images):
            if not _file_url(url):
                errors.append(
                    _err(("image_urls", index), "Input should be a valid URL", "url_parsing")
                )
    transitions = body.get("transitions")
    if transitions is None:
        return errors
    if not isinstance(transitions, list):
        return [*errors, _err(("transitions",), "Input should be a valid list", "list_type")]
    total = 0
    for index, item in enumerate(transitions):
        if not isinstance(item, dict):
            errors.append(
                _err(("transitions", index), "Input should be a valid dictionary", "dict_type")
            )
            continue
        duration = item.get("duration", 5)
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
            errors.append(
                _err(
                    ("transitions", index, "duration"),
                    "Input should be greater than or equal to 1",
                    "greater_than_equal",
                )
            )
        else:
            total += duration
        if "prompt" in item and not isinstance(item["prompt"], str):
            errors.append(
                _err(
                    ("transitions", index, "prompt"),
                    "Input should be a valid string",
                    "string_type",
                )
            )
    if isinstance(images, list) and len(transitions) != len(images) - 1:
        errors.append(
            _err(
                ("transitions",),
                "Value error, transitions must have len(image_urls) - 1 items",
                "value_error",
            )
        )
    if total > FRAMES_TOTAL_SECONDS:
        errors.append(
            _err(
                ("transitions",),
                "Value error, total duration must not exceed 25 seconds",
                "value_error",
            )
        )
    return errors


def _file_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", "data:"))


def _err(loc: tuple[str | int, ...], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _enum_err(name: str, allowed: Sequence[object]) -> dict[str, Any]:
    choices = ", ".join(repr(a) for a in allowed)
    return _err((name,), f"Input should be {choices}", "enum")


def _log_entry(message: str) -> dict[str, str]:
    return {
        "message": message,
        "level": "INFO",
        "source": "user",
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=dict(headers or {}))


def _reply(reply: Reply) -> web.Response:
    if isinstance(reply.body, bytes):  # raw bytes, e.g. malformed JSON
        return web.Response(
            status=reply.status, body=reply.body, headers={"Content-Type": "application/json"}
        )
    if reply.body is None:
        return web.Response(status=reply.status, headers=dict(reply.headers))
    return _json(reply.status, reply.body, reply.headers)
