"""A loopback stand-in for Pixazo's Pika 2.2 gateway.

Usage::

    async with FakePixazo(key="k") as px:
        provider = PixazoProvider(session, api_key="k", base_url=px.url, poll_interval=0.05)
        ...
        assert px.count("status") == 3

What it serves, as Pixazo's document describes it (``Ocp-Apim-Subscription-Key`` on every
route but ``/files``):

* ``POST /pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request``,
  ``POST /pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request`` and
  ``POST /pika-scenes-2-2/v1/pika-scenes-2-2-request``: validate the body (400
  ``{"error": "Missing required field: prompt"}``, ``"Missing required parameter:
  image_url"``, or for Scenes ``{"error": "Bad Request", "message", "details"}``) and answer
  ``{"request_id": "<product>_<uuid>", "status": "QUEUED", "polling_url"}``, the polling URL
  pointing back at the fake (or at ``polling_url_base`` when set).
* ``POST /v2/requests/status/{request_id}`` with ``{"request_id"}``: ``QUEUED`` on the first
  poll, then ``PROCESSING`` until ``polls_before_done`` polls were answered, then
  ``COMPLETED`` with ``output.media_url[0]`` (the fake's ``/files/...`` URL), or ``FAILED`` /
  ``ERROR`` with ``error`` when :meth:`fail_jobs` was called. A body whose ``request_id`` does
  not match the path answers 400; an unknown id 404 ``{"error": "Request not found"}``.
* ``GET /files/{request_id}/output.mp4``: the video bytes, no key.

401 answers ``{"error": "Invalid or missing subscription key"}`` (Scenes: ``{"error":
"Unauthorized", "message": ...}``); canned replies from :meth:`script_error` use
``{"error": "..."}`` (402 is unverified: "Insufficient balance").
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes._loopback import DEFAULT_VIDEO, JSON_BODY, LoopbackFake, RecordedRequest, Reply

__all__ = ["DEFAULT_VIDEO", "PRODUCTS", "FakePixazo", "RecordedRequest", "Reply"]

PRODUCTS: dict[str, str] = {
    "/pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request": "pika-2-2-text-to-video",
    "/pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request": "pika-2-2-image-to-video",
    "/pika-scenes-2-2/v1/pika-scenes-2-2-request": "pika-scenes-2-2",
}
"""Submit path → product (model_id)."""
STATUS_PREFIX = "/v2/requests/status/"
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")

MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: "Invalid or missing subscription key",
    402: "Insufficient balance",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(slots=True)
class FakeJob:
    """One request: its product, the body as received and how many polls it answered."""

    request_id: str
    product: str
    body: dict[str, Any]
    created_at: str = field(default_factory=_now)
    polls: int = 0
    ready_at: float | None = None
    """With ``FakePixazo.ready_after``: the ``time.monotonic()`` at which the job is done."""


class FakePixazo(LoopbackFake):
    """Pixazo on 127.0.0.1 (a random port). Knobs are plain attributes:

    * ``key``: the key expected in ``Ocp-Apim-Subscription-Key``.
    * ``polls_before_done``: answered polls that report QUEUED/PROCESSING before the last one.
    * ``polling_url_base``: where returned polling URLs point (default: the fake itself).
    * ``include_polling_url``: False leaves ``polling_url`` out of the submit answer.
    * ``failure``: set by :meth:`fail_jobs`; ``None`` lets requests complete.
    * ``ready_after``: None (default) for the counted progression; a number of seconds also
      keeps a request processing until that long after its submit (``FakeJob.ready_at``).
    * ``video``, ``delay``, ``submit_replies``, ``status_replies``: see :class:`LoopbackFake`.
    """

    name: ClassVar[str] = "pixazo"

    def __init__(
        self,
        *,
        key: str = "pixazo-test-key",
        video: bytes = DEFAULT_VIDEO,
        polls_before_done: int = 2,
        polling_url_base: str | None = None,
        include_polling_url: bool = True,
        delay: float = 0.0,
        ready_after: float | None = None,
    ) -> None:
        super().__init__(key=key, video=video, delay=delay)
        self.polls_before_done = polls_before_done
        self.ready_after = ready_after
        self.polling_url_base = polling_url_base
        self.include_polling_url = include_polling_url
        self.failure: tuple[str, Any] | None = None
        self.jobs: dict[str, FakeJob] = {}

    def fail_jobs(self, error: Any = "Generation failed", *, status: str = "FAILED") -> None:
        """End every request with ``status`` (``FAILED`` or ``ERROR``) and ``error``."""
        self.failure = (status, error)

    def error_body(self, status: int, message: str | None = None) -> Any:
        """``{"error": "..."}``, the document's error shape."""
        return {"error": message or MESSAGES.get(status, "Error")}

    def _routes(self, router: web.UrlDispatcher) -> None:
        for path in PRODUCTS:
            router.add_post(path, self._submit)
        router.add_post(STATUS_PREFIX + "{request_id}", self._status)

    def _kind(self, request: web.Request) -> str:
        if request.method == "POST" and request.path in PRODUCTS:
            return "submit"
        if request.method == "POST" and request.path.startswith(STATUS_PREFIX):
            return "status"
        return super()._kind(request)

    def _error(self, status: int, message: str | None = None) -> web.Response:
        return web.json_response(self.error_body(status, message), status=status)

    def _unauthorised(self, request: web.Request, product: str | None) -> web.Response | None:
        if request.headers.get("Ocp-Apim-Subscription-Key") == self.key:
            return None
        if product == "pika-scenes-2-2":
            return web.json_response(
                {
                    "error": "Unauthorized",
                    "message": "Invalid or missing Ocp-Apim-Subscription-Key header",
                },
                status=401,
            )
        return self._error(401)

    def _invalid(self, product: str, body: dict[str, Any]) -> web.Response | None:
        prompt = body.get("prompt")
        if product == "pika-scenes-2-2":
            urls = body.get("image_urls")
            problems = []
            if not isinstance(prompt, str) or not prompt.strip():
                problems.append({"field": "prompt", "message": "Required parameter is missing"})
            if not isinstance(urls, list) or not urls:
                problems.append(
                    {"field": "image_urls", "message": "Array must contain at least one URL"}
                )
            if problems:
                return web.json_response(
                    {
                        "error": "Bad Request",
                        "message": f"Required parameter '{problems[0]['field']}' is missing",
                        "details": problems,
                    },
                    status=400,
                )
        if not isinstance(prompt, str) or not prompt.strip():
            return self._error(400, "Missing required field: prompt")
        if product == "pika-2-2-image-to-video":
            if not isinstance(body.get("image_url"), str):
                return self._error(400, "Missing required parameter: image_url")
            if "aspect_ratio" in body:
                return self._error(400, "Unknown parameter: aspect_ratio")
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return self._error(400, "Invalid aspect_ratio")
        if body.get("resolution", "720p") not in ("720p", "1080p"):
            return self._error(400, "Invalid resolution")
        if body.get("duration", 5) not in (5, 10):
            return self._error(400, "Invalid duration")
        return None

    def polling_url(self, request_id: str) -> str:
        """The polling URL handed out for ``request_id``."""
        return f"{self.polling_url_base or self.url}{STATUS_PREFIX}{request_id}"

    async def _submit(self, request: web.Request) -> web.Response:
        product = PRODUCTS[request.path]
        denied = self._unauthorised(request, product)
        if denied is not None:
            return denied
        body = request[JSON_BODY]
        if not isinstance(body, dict):
            return self._error(400, "Body must be a JSON object")
        invalid = self._invalid(product, body)
        if invalid is not None:
            return invalid
        job = FakeJob(request_id=f"{product}_{uuid.uuid4()}", product=product, body=body)
        if self.ready_after is not None:
            job.ready_at = time.monotonic() + self.ready_after
        self.jobs[job.request_id] = job
        answer: dict[str, Any] = {"request_id": job.request_id, "status": "QUEUED"}
        if self.include_polling_url:
            answer["polling_url"] = self.polling_url(job.request_id)
        return web.json_response(answer)

    async def _status(self, request: web.Request) -> web.Response:
        denied = self._unauthorised(request, None)
        if denied is not None:
            return denied
        request_id = request.match_info["request_id"]
        body = request[JSON_BODY]
        if not isinstance(body, dict) or body.get("request_id") != request_id:
            return self._error(400, "Invalid request_id")
        job = self.jobs.get(request_id)
        if job is None:
            return self._error(404, "Request not found")
        job.polls += 1
        answer: dict[str, Any] = {
            "request_id": job.request_id,
            "model_id": job.product,
            "error": None,
            "output": None,
            "created_at": job.created_at,
            "updated_at": _now(),
            "completed_at": None,
        }
        held = job.ready_at is not None and time.monotonic() < job.ready_at
        if job.polls <= self.polls_before_done or held:
            answer["status"] = "QUEUED" if job.polls == 1 else "PROCESSING"
        elif self.failure is not None:
            answer["status"], answer["error"] = self.failure
            answer["completed_at"] = answer["updated_at"]
        else:
            answer["status"] = "COMPLETED"
            answer["output"] = {
                "media_url": [self.video_url(f"{job.request_id}/output.mp4")],
                "media_type": "video/mp4",
            }
            answer["completed_at"] = answer["updated_at"]
        return web.json_response(answer)
