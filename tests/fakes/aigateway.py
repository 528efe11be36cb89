"""A loopback stand-in for AIgateway's video job API.

Usage::

    async with FakeAIGateway(key="k", min_poll_interval=0.05) as gw:
        provider = AIGatewayProvider(session, api_key="k", base_url=gw.url, poll_interval=0.05)
        ...
        assert gw.count("submit") == 1

What it serves, as AIgateway's model page and PLATFORM.md describe it:

* ``POST /v1/videos/generations`` (``Authorization: Bearer <key>``): ``{"model", "prompt",
  ...}`` → 200 ``{"id": "job_…", "status": "queued", "model", "created"}``. An unknown model
  slug answers 404 ``not_found``; a missing prompt or an out-of-range duration or aspect ratio
  answers 400 ``invalid_request_error`` (the 400 is not documented; assumed).
* ``GET /v1/jobs/{id}``: ``queued`` on the first poll, then ``running_status`` (``processing``
  by default, or ``running``) until ``polls_before_done`` polls were answered, then
  ``completed`` with the video URL under ``result.url`` / ``result.file_url`` / top-level
  ``result_url`` (``result_shape``), or the failure set by :meth:`fail_jobs`. A poll of the
  same job sooner than ``min_poll_interval`` (3 s) after the last answered one gets 304 with
  no body and does not advance the job. Unknown ids answer 404.
* ``GET /files/{id}.mp4?expires=…&signature=…``: the video bytes, no key (a signed URL).

Every error body is ``{"error": {"type", "message"}}`` with the documented types; a canned
reply from :meth:`script_error` uses the same body (429 may carry ``Retry-After``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes._loopback import DEFAULT_VIDEO, JSON_BODY, LoopbackFake, RecordedRequest, Reply

__all__ = ["DEFAULT_VIDEO", "MODELS", "FakeAIGateway", "RecordedRequest", "Reply"]

MODELS: frozenset[str] = frozenset(
    {
        "pika/pika-v2.1-text-to-video",  # the documented slug
        "pika/pika-v2.1-image-to-video",  # the slugs below follow the same scheme (assumed)
        "pika/pika-v2.2-text-to-video",
        "pika/pika-v2.2-image-to-video",
    }
)
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")

ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "Invalid or missing API key"),
    402: ("insufficient_credits", "Wallet empty"),
    404: ("not_found", "Unknown model or endpoint"),
    429: ("rate_limit_error", "Over per-minute limit"),
    500: ("server_error", "Upstream provider failed"),
    503: ("service_unavailable", "Upstream saturated"),
}
"""The documented error types (400 assumed)."""


@dataclass(slots=True)
class FakeJob:
    """One job: the request body, how many polls it answered and when it was last answered."""

    id: str
    body: dict[str, Any]
    created: int
    polls: int = 0
    last_answered: float | None = None
    ready_at: float | None = None
    """With ``FakeAIGateway.ready_after``: the ``time.monotonic()`` at which the job is done."""


class FakeAIGateway(LoopbackFake):
    """AIgateway on 127.0.0.1 (a random port). Knobs are plain attributes:

    * ``key``: the key expected in ``Authorization: Bearer <key>``.
    * ``polls_before_done``: answered polls that report queued/running before the last one.
    * ``running_status``: ``"processing"`` or ``"running"``.
    * ``result_shape``: ``"url"``, ``"file_url"`` or ``"result_url"`` (top level).
    * ``min_poll_interval``: seconds under which a repeat poll answers 304 (3.0).
    * ``models``: the accepted model slugs (others answer 404).
    * ``failure``: set by :meth:`fail_jobs`; ``None`` lets jobs complete.
    * ``ready_after``: None (default) for the counted progression; a number of seconds also
      keeps a job running until that long after its submit (``FakeJob.ready_at``).
    * ``video``, ``delay``, ``submit_replies``, ``status_replies``: see :class:`LoopbackFake`.
    """

    name: ClassVar[str] = "aigateway"

    def __init__(
        self,
        *,
        key: str = "aig-test-key",
        video: bytes = DEFAULT_VIDEO,
        polls_before_done: int = 2,
        running_status: str = "processing",
        result_shape: str = "url",
        min_poll_interval: float = 3.0,
        models: Iterable[str] = MODELS,
        delay: float = 0.0,
        ready_after: float | None = None,
    ) -> None:
        super().__init__(key=key, video=video, delay=delay)
        self.polls_before_done = polls_before_done
        self.ready_after = ready_after
        self.running_status = running_status
        self.result_shape = result_shape
        self.min_poll_interval = min_poll_interval
        self.models = frozenset(models)
        self.failure: tuple[str, Any] | None = None
        self.jobs: dict[str, FakeJob] = {}
        self.not_modified = 0
        """How many polls were answered 304."""

    def fail_jobs(
        self, error: Any = "Upstream generation failed", *, status: str = "failed"
    ) -> None:
        """End every job with ``status`` (``failed`` or ``cancelled``) and ``error`` (a string
        or ``{"code", "message"}``) instead of ``completed``."""
        self.failure = (status, error)

    def error_body(self, status: int, message: str | None = None) -> Any:
        """``{"error": {"type", "message"}}`` with the documented type for ``status``."""
        kind, default = ERROR_TYPES.get(status, ("server_error", "Error"))
        return {"error": {"type": kind, "message": message or default}}

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/videos/generations", self._submit)
        router.add_get("/v1/jobs/{job_id}", self._status)

    def _kind(self, request: web.Request) -> str:
        if request.method == "POST" and request.path == "/v1/videos/generations":
            return "submit"
        if request.method == "GET" and request.path.startswith("/v1/jobs/"):
            return "status"
        return super()._kind(request)

    def _error(self, status: int, message: str | None = None) -> web.Response:
        return web.json_response(self.error_body(status, message), status=status)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.key}"

    async def _submit(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401)
        body = request[JSON_BODY]
        if not isinstance(body, dict):
            return self._error(400, "Body must be a JSON object")
        if body.get("model") not in self.models:
            return self._error(404, "Unknown model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self._error(400, "prompt is required")
        if body.get("duration", 5) not in (5, 10):
            return self._error(400, "duration must be 5 or 10")
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return self._error(400, "unsupported aspect_ratio")
        job = FakeJob(id=f"job_{uuid.uuid4().hex[:12]}", body=body, created=int(time.time()))
        if self.ready_after is not None:
            job.ready_at = time.monotonic() + self.ready_after
        self.jobs[job.id] = job
        return web.json_response(
            {"id": job.id, "status": "queued", "model": body["model"], "created": job.created}
        )

    async def _status(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401)
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return self._error(404, "Unknown job")
        now = time.monotonic()
        if job.last_answered is not None and now - job.last_answered < self.min_poll_interval:
            self.not_modified += 1
            return web.Response(status=304)
        job.last_answered = now
        job.polls += 1
        answer: dict[str, Any] = {"id": job.id, "model": job.body["model"], "created": job.created}
        held = job.ready_at is not None and now < job.ready_at
        if job.polls <= self.polls_before_done or held:
            answer["status"] = "queued" if job.polls == 1 else self.running_status
        elif self.failure is not None:
            answer["status"], answer["error"] = self.failure
        else:
            answer["status"] = "completed"
            url = self.video_url(f"{job.id}.mp4?expires=86400&signature=fake")
            if self.result_shape == "result_url":
                answer["result_url"] = url
            else:
                answer["result"] = {
                    self.result_shape: url,
                    "duration": job.body.get("duration", 5),
                    "resolution": "1920x1080",
                }
        return web.json_response(answer)
