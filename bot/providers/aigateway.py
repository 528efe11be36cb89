"""AIgateway (api.aigateway.sh): an OpenAI-style gateway that runs Pika as asynchronous jobs.

What the public model page documents, and what this module does with it:

* ``POST /v1/videos/generations`` with ``Authorization: Bearer <key>`` and a JSON body
  ``{"model", "prompt", "duration", "aspect_ratio"}`` answers a job ``{"id", "status":
  "queued", ...}``.
* ``GET /v1/jobs/{id}`` is polled until ``completed`` or ``failed``; PLATFORM.md adds
  ``running``/``processing`` and ``cancelled``, a 304 for polls faster than every 3 s, the
  result under ``result.url``, ``result.file_url`` or a top-level ``result_url`` (signed, about
  24 h), and an ``error`` that is a string or ``{code, message}``. Failed jobs are not charged.
* Errors answer ``{"error": {"type", "message"}}``: 401 authentication_error, 402
  insufficient_credits (wallet empty), 404 not_found (unknown model or endpoint), 429
  rate_limit_error with ``Retry-After``, 500 server_error and 503 service_unavailable (both
  "retryable").

Choices where the document is silent (each also marked where it is made):

* Model slugs. Only ``pika/pika-v2.1-text-to-video`` is documented. The gateway mirrors the
  upstream catalogue (fal lists 2.2 and 2.1, text and image), so the same naming scheme is
  assumed for ``pika-v2.2-text-to-video`` and the two ``-image-to-video`` slugs. Pika 2 Turbo
  and Pikascenes are *not* claimed: nothing suggests the gateway carries them. An unknown slug
  would come back as a 404 and surface as :class:`NotFound` ("model not available").
* Extra request fields (``negative_prompt``, ``seed``, ``resolution``, ``image_url``) use the
  upstream (fal) names; the documented example sends only model, prompt, duration and
  aspect ratio.
* A 500 on *submit* is not re-sent even though the page calls it retryable: the job may have
  been created, and sending again could bill twice (the rule in :mod:`bot.providers.http`).
  A 503 ("saturated") is treated as refused at the door and is retried.
* No cancel endpoint is documented, so :meth:`AIGatewayProvider.cancel` answers False.
* 400/422 (not listed) map to :class:`RejectedInput`; 403 (not listed) to
  :class:`AuthenticationError`; an error type or job error code that mentions content,
  moderation, safety or NSFW maps to :class:`ContentPolicy`.

Requests per job: one submit, then one ``GET`` per ``poll_interval`` (3 s) until the job ends:
about ``1 + generation_seconds / 3 + 1``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from bot.models import GenerationRequest, Mode, PikaModel, Resolution
from bot.pricing import PriceKey, PriceTable
from bot.providers.base import (
    Capabilities,
    ProviderHandle,
    ProviderResult,
    ProviderStatus,
    StatusKind,
)
from bot.providers.errors import (
    AuthenticationError,
    ContentPolicy,
    GenerationFailed,
    NotFound,
    OutOfProviderCredits,
    ProviderError,
    RateLimited,
    RejectedInput,
    TransientError,
)
from bot.providers.http import (
    CONNECTION_ERRORS,
    KEY_CHECK_TIMEOUT,
    RefusedAtTheDoor,
    RetryPolicy,
    connection_error,
    key_verdict,
    log_text,
    parse_retry_after,
    read_json,
    with_retries,
    without_secret,
)
from bot.providers.polling import poll_changes

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.aigateway.sh"
MIN_POLL_INTERVAL = 3.0
"""The documented minimum between two polls of one job; faster polls may answer 304."""

SLUGS: Mapping[tuple[PikaModel, Mode], str] = {
    (PikaModel.V2_1, Mode.TEXT): "pika/pika-v2.1-text-to-video",  # documented
    (PikaModel.V2_1, Mode.IMAGE): "pika/pika-v2.1-image-to-video",  # assumed, same scheme
    (PikaModel.V2_2, Mode.TEXT): "pika/pika-v2.2-text-to-video",  # assumed, same scheme
    (PikaModel.V2_2, Mode.IMAGE): "pika/pika-v2.2-image-to-video",  # assumed, same scheme
}
"""Gateway model slug per (model, mode); see the module docstring for what is assumed."""

USD_PER_VIDEO_SECOND: Mapping[PikaModel, Decimal] = {
    PikaModel.V2_1: Decimal("0.40"),  # documented: "$0.400 per second"
    # Assumed: no 2.2 page was seen. The gateway is pass-through and Pika's own 2.2 prices are
    # below 2.1's, so charging 2.1's rate can only over-count spend, never under-count it.
    PikaModel.V2_2: Decimal("0.40"),
}
"""Per-second price; one rate for 720p and 1080p (the page lists one, its example is 1080p)."""

_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)
KEY_CHECK_JOB_ID = "job_pikabot_key_check"
"""A job id in the gateway's ``job_…`` shape that no job has: see ``verify_key``."""
_UNCHANGED = object()
"""Marker for a 304 answer: the job has not changed since the last poll."""
_POLICY_WORDS = ("content", "moderation", "safety", "nsfw", "policy")


def _price_table() -> dict[PriceKey, Decimal]:
    table: dict[PriceKey, Decimal] = {}
    for model, per_second in USD_PER_VIDEO_SECOND.items():
        for resolution in Resolution:
            for duration in (5, 10):
                table[(model, resolution, duration)] = per_second * duration
    return table


def _error_fields(body: Any) -> tuple[str, str]:
    """``(type, message)`` from ``{"error": {"type", "message"}}`` or a looser variant."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("type") or error.get("code") or ""), str(error.get("message", ""))
        if isinstance(error, str):
            return "", error
        if "message" in body:
            return "", str(body["message"])
    return "", ""


def _is_policy(code: str) -> bool:
    lowered = code.lower()
    return any(word in lowered for word in _POLICY_WORDS)


def http_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    where: str,
    submitting: bool,
    secret: str = "",
) -> ProviderError:
    """Translate an error response into our hierarchy; the body goes to the log text only."""
    kind, message = (without_secret(part, secret) for part in _error_fields(body))
    detail = f"{where}: HTTP {status} {log_text(kind)}: {log_text(message)}"
    if status in (401, 403):
        return AuthenticationError(detail)
    if status == 402:
        return OutOfProviderCredits(detail)
    if status == 404:
        if submitting:
            return NotFound(
                detail, user_message="This Pika model is not available on the video service."
            )
        return NotFound(detail, user_message="The video service no longer knows this clip.")
    if status == 429:
        return RateLimited(detail, retry_after=parse_retry_after(headers))
    if status in (400, 422):
        if _is_policy(kind):
            return ContentPolicy(detail)
        return RejectedInput(detail)
    if status == 503:
        return RefusedAtTheDoor(detail)
    if status >= 500:
        return TransientError(detail)
    return ProviderError(detail)


def _result_url(body: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The video URL from any of the three documented places, and the result object."""
    result = body.get("result")
    if isinstance(result, Mapping):
        for key in ("url", "file_url"):
            value = result.get(key)
            if isinstance(value, str) and value:
                return value, result
    else:
        result = {}
    value = body.get("result_url")
    if isinstance(value, str) and value:
        return value, result
    return None, result


def _job_failure(body: Mapping[str, Any], *, job_id: str) -> ProviderError:
    """The error for a ``failed`` job; ``error`` is a string or ``{code, message}``."""
    error = body.get("error")
    code, message = "", ""
    if isinstance(error, Mapping):
        code, message = (
            str(error.get("code") or error.get("type") or ""),
            str(error.get("message", "")),
        )
    elif error is not None:
        message = str(error)
    detail = f"aigateway job {job_id} failed: {log_text(code)}: {log_text(message)}"
    if _is_policy(code):
        return ContentPolicy(detail)
    return GenerationFailed(detail)


class AIGatewayProvider:
    """Pika through AIgateway's asynchronous job API (submit, then poll every 3 s)."""

    name = "aigateway"
    capabilities = Capabilities(
        models=frozenset(model for model, _ in SLUGS),
        modes=frozenset(mode for _, mode in SLUGS),
        max_images=1,  # image-to-video takes one first frame
        can_cancel=False,  # no cancel endpoint is documented
        # The document shows no image input at all, so nothing says a data URI would do:
        # images go as URLs only.
        data_uri_images=False,
    )
    prices = PriceTable(usd=_price_table())

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        poll_interval: float = MIN_POLL_INTERVAL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._api_key = api_key
        self._base = base_url.rstrip("/")
        # The default is the documented minimum. Smaller values are for loopback tests only;
        # the gateway would answer them with 304, which is read as "unchanged".
        self.poll_interval = poll_interval
        self._retry = retry or RetryPolicy()
        self._last_seen: dict[str, ProviderStatus] = {}

    def __repr__(self) -> str:
        return f"AIGatewayProvider(base_url={self._base!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    async def _call(
        self, method: str, url: str, *, json: Any = None, where: str, submitting: bool
    ) -> Any:
        try:
            async with self._session.request(
                method, url, json=json, headers=self._headers, timeout=_REQUEST_TIMEOUT
            ) as response:
                if response.status == 304:
                    return _UNCHANGED
                body = await read_json(response)
                if response.status >= 400:
                    raise http_error(
                        response.status,
                        body,
                        response.headers,
                        where=where,
                        submitting=submitting,
                        secret=self._api_key,
                    )
                return body
        except CONNECTION_ERRORS as exc:
            raise connection_error(exc, where=where) from exc

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body sent for ``request`` (public so tests and the CLI can show it)."""
        body: dict[str, Any] = {
            "model": SLUGS[(request.model, request.mode)],
            "prompt": request.prompt,
            "duration": request.duration,
            "resolution": request.resolution.value,
            "seed": request.seed,
        }
        if request.mode is Mode.IMAGE:
            # The first frame decides the shape; upstream image-to-video takes no aspect ratio.
            body["image_url"] = request.image_urls[0]
        else:
            body["aspect_ratio"] = request.aspect.value
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body

    async def submit(self, request: GenerationRequest) -> ProviderHandle:
        """Create the job; retried only when the gateway cannot have accepted it."""
        reason = self.capabilities.unsupported(request)
        if reason is not None:
            raise RejectedInput(f"aigateway: unsupported request: {reason}", user_message=reason)
        if request.mode is Mode.IMAGE and len(request.image_urls) != 1:
            raise RejectedInput(
                "aigateway: image-to-video needs exactly one image",
                user_message="Image-to-video needs exactly one image.",
            )
        body = self.payload(request)
        url = f"{self._base}/v1/videos/generations"

        async def call() -> Any:
            return await self._call(
                "POST", url, json=body, where="aigateway.submit", submitting=True
            )

        answer = await with_retries(call, self._retry, idempotent=False)
        job_id = answer.get("id") if isinstance(answer, Mapping) else None
        if not isinstance(job_id, str) or not job_id:
            # The job may exist, but without an id we cannot follow it; do not re-send.
            raise TransientError("aigateway.submit: answer without a job id")
        log.info("provider.submitted", provider=self.name, request_id=job_id)
        return ProviderHandle(request_id=job_id, data={"model": body["model"]})

    async def status(self, handle: ProviderHandle) -> ProviderStatus:
        """One ``GET /v1/jobs/{id}``; a 304 repeats the last observation (QUEUED if none)."""
        observed = await self._observe(handle.request_id)
        if observed is None:
            return self._last_seen.get(handle.request_id, ProviderStatus(kind=StatusKind.QUEUED))
        return observed

    async def _observe(self, job_id: str) -> ProviderStatus | None:
        """One poll; None when the gateway answered 304 (nothing new since the last poll)."""
        url = f"{self._base}/v1/jobs/{quote(job_id, safe='')}"

        async def call() -> Any:
            return await self._call("GET", url, where="aigateway.status", submitting=False)

        body = await with_retries(call, self._retry, idempotent=True)
        if body is _UNCHANGED:
            return None
        if not isinstance(body, Mapping):
            raise TransientError("aigateway.status: answer is not a JSON object")
        try:
            current = self._interpret(body, job_id)
        except ProviderError:
            self._last_seen.pop(job_id, None)
            raise
        if current.kind is StatusKind.COMPLETED:
            self._last_seen.pop(job_id, None)
        else:
            self._last_seen[job_id] = current
        return current

    def _interpret(self, body: Mapping[str, Any], job_id: str) -> ProviderStatus:
        state = str(body.get("status", "")).lower()
        if state == "queued":
            position = body.get("queue_position")
            return ProviderStatus(
                kind=StatusKind.QUEUED,
                queue_position=position if isinstance(position, int) else None,
            )
        if state in ("running", "processing", "in_progress"):
            return ProviderStatus(kind=StatusKind.RUNNING)
        if state in ("completed", "succeeded"):
            url, result = _result_url(body)
            if url is None:
                raise GenerationFailed(f"aigateway job {job_id} completed without a result URL")
            content_type = result.get("content_type")
            size = result.get("file_size")
            return ProviderStatus(
                kind=StatusKind.COMPLETED,
                result=ProviderResult(
                    video_url=url,
                    content_type=content_type if isinstance(content_type, str) else None,
                    file_size=size if isinstance(size, int) else None,
                ),
            )
        if state == "failed":
            raise _job_failure(body, job_id=job_id)
        if state in ("cancelled", "canceled"):
            raise GenerationFailed(
                f"aigateway job {job_id} was cancelled",
                user_message="The video service cancelled this clip.",
            )
        # Not documented: keep waiting rather than fail a job that may still finish.
        log.warning("provider.unknown_status", provider=self.name, status=log_text(state, 40))
        return ProviderStatus(kind=StatusKind.RUNNING)

    async def watch(self, handle: ProviderHandle) -> AsyncIterator[ProviderStatus]:
        """Poll every ``poll_interval`` seconds; yield only changes; end with COMPLETED.

        A 304 yields nothing: not even a guess, e.g. right after a restart.
        """
        async for status in poll_changes(
            lambda: self._observe(handle.request_id), self.poll_interval
        ):
            yield status

    async def cancel(self, handle: ProviderHandle) -> bool:
        """AIgateway documents no way to cancel a job."""
        return False

    async def verify_key(self) -> bool | None:
        """``GET /v1/jobs/<an id no job has>``: 401 means a bad key, 404 an accepted one.

        Choice: the gateway documents 401 ``authentication_error`` for a bad key and 404
        ``not_found`` for unknown things; a job read creates nothing and costs nothing.
        """
        url = f"{self._base}/v1/jobs/{KEY_CHECK_JOB_ID}"

        async def once() -> bool:
            try:
                async with self._session.get(
                    url, headers=self._headers, timeout=KEY_CHECK_TIMEOUT
                ) as response:
                    return key_verdict(
                        response.status,
                        response.headers,
                        accepted=frozenset({400, 404}),
                        where="aigateway key check",
                    )
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="aigateway key check") from exc

        return await with_retries(once, self._retry, idempotent=True)
