"""Pixazo (gateway.pixazo.ai): Pika 2.2 text-to-video, image-to-video and Scenes.

What the public document says, and what this module does with it:

* Three products, each submitted with ``POST`` and the ``Ocp-Apim-Subscription-Key`` header
  (plus ``Cache-Control: no-cache``):

  - text-to-video  ``/pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request``
    (prompt, seed, negative_prompt, aspect_ratio, resolution, duration);
  - image-to-video ``/pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request``
    (image_url, prompt, seed, negative_prompt, resolution, duration; no aspect ratio);
  - Scenes         ``/pika-scenes-2-2/v1/pika-scenes-2-2-request``
    (image_urls, prompt, negative_prompt, seed, aspect_ratio, resolution, duration,
    ingredients_mode).

* The answer is ``{"request_id", "status": "QUEUED", "polling_url"}``. The polling URL
  (``/v2/requests/status/{request_id}``) is polled with ``POST {"request_id"}`` every 2-3 s
  until ``COMPLETED`` (video at ``output.media_url[0]``), ``FAILED`` or ``ERROR``. Failed and
  errored requests are not charged; both raise :class:`GenerationFailed` (the job service
  refunds the member).
* Status codes 400, 401, 403, 404, 429, 500 with bodies ``{"error": "..."}`` or
  ``{"error": "Unauthorized", "message": "..."}``.
* Prices (all three products alike): 720p $0.20 / $0.40, 1080p $0.45 / $0.90 (5 s / 10 s).

Choices where the document is silent:

* The ``polling_url`` is followed only when it is on the same origin as ``base_url``;
  otherwise (or when it is missing) ``{base_url}/v2/requests/status/{request_id}`` is used, so
  the subscription key is never sent to a host we were not configured for.
* 402 (an empty wallet, unverified) and a 403 whose text mentions quota, credit or balance map
  to :class:`OutOfProviderCredits`; other 401/403 to :class:`AuthenticationError`. The
  gateway is Azure API Management, whose own 401 body is ``{"statusCode", "message"}``; both
  shapes are read for the log.
* A 400 on the status call means an invalid ``request_id`` (per the document) and maps to
  :class:`NotFound`, like a 404. On submit a 400 is :class:`RejectedInput`.
* 503 (not listed) is refused at the door and retried; a 500 on submit is not re-sent (the
  request may have been created, see :mod:`bot.providers.http`).
* Only Pika 2.2 is offered. Scenes takes "at least one" image and lists no maximum; we accept
  up to :data:`MAX_SCENE_IMAGES`.
* No cancel endpoint exists: :meth:`PixazoProvider.cancel` answers False.

Requests per job: one submit, then one status ``POST`` per ``poll_interval`` (2.5 s) until the
end: about ``1 + generation_seconds / 2.5 + 1`` (30-90 s typical, so 13-38 requests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

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
    error_text,
    key_verdict,
    log_text,
    parse_retry_after,
    read_json,
    with_retries,
    without_secret,
)
from bot.providers.polling import poll_changes

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://gateway.pixazo.ai"
DEFAULT_POLL_INTERVAL = 2.5
"""The middle of the documented 2-3 s."""
MAX_SCENE_IMAGES = 5
"""Assumed: the document only says "at least one" image for Scenes."""

SUBMIT_PATHS: Mapping[Mode, str] = {
    Mode.TEXT: "/pika-2-2-text-to-video/v1/pika-2-2-text-to-video-request",
    Mode.IMAGE: "/pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request",
    Mode.SCENES: "/pika-scenes-2-2/v1/pika-scenes-2-2-request",
}
STATUS_PATH = "/v2/requests/status/{request_id}"
KEY_CHECK_REQUEST_ID = "pika-2-2-text-to-video_00000000-0000-4000-8000-000000000000"
"""A request id in Pixazo's ``<product>_<uuid>`` shape that no request has (``verify_key``)."""

_PRICES: dict[PriceKey, Decimal] = {
    (PikaModel.V2_2, Resolution.HD, 5): Decimal("0.20"),
    (PikaModel.V2_2, Resolution.HD, 10): Decimal("0.40"),
    (PikaModel.V2_2, Resolution.FULL_HD, 5): Decimal("0.45"),
    (PikaModel.V2_2, Resolution.FULL_HD, 10): Decimal("0.90"),
}
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)
_CREDIT_WORDS = ("quota", "credit", "balance", "insufficient", "funds")


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
    text = without_secret(error_text(body), secret)
    detail = f"{where}: HTTP {status}: {log_text(text)}"
    mentions_credit = any(word in text.lower() for word in _CREDIT_WORDS)
    if status == 402 or (status == 403 and mentions_credit):
        return OutOfProviderCredits(detail)
    if status in (401, 403):
        return AuthenticationError(detail)
    if status == 429:
        return RateLimited(detail, retry_after=parse_retry_after(headers))
    if status == 404 or (status == 400 and not submitting):
        if submitting:
            return NotFound(detail, user_message="This Pika product is not available right now.")
        return NotFound(detail, user_message="The video service no longer knows this clip.")
    if status in (400, 422):
        return RejectedInput(detail)
    if status == 503:
        return RefusedAtTheDoor(detail)
    if status >= 500:
        return TransientError(detail)
    return ProviderError(detail)


class PixazoProvider:
    """Pika 2.2 through Pixazo's request/polling API."""

    name = "pixazo"
    capabilities = Capabilities(
        models=frozenset({PikaModel.V2_2}),
        modes=frozenset(SUBMIT_PATHS),
        max_images=MAX_SCENE_IMAGES,
        can_cancel=False,
        # The document: image_url "must be publicly accessible" and "uses HTTPS"; no data URI.
        data_uri_images=False,
    )
    # The document prices Scenes exactly like text- and image-to-video.
    prices = PriceTable(usd=_PRICES, scenes_usd=_PRICES)

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._api_key = api_key
        self._base = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self._retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"PixazoProvider(base_url={self._base!r})"

    def _headers(self) -> dict[str, str]:
        return {
            "Ocp-Apim-Subscription-Key": self._api_key,
            "Cache-Control": "no-cache",
            "Accept": "application/json",
        }

    async def _post(
        self, url: str, body: Mapping[str, Any], *, where: str, submitting: bool
    ) -> Any:
        try:
            async with self._session.post(
                url, json=body, headers=self._headers(), timeout=_REQUEST_TIMEOUT
            ) as response:
                answer = await read_json(response)
                if response.status >= 400:
                    raise http_error(
                        response.status,
                        answer,
                        response.headers,
                        where=where,
                        submitting=submitting,
                        secret=self._api_key,
                    )
                return answer
        except CONNECTION_ERRORS as exc:
            raise connection_error(exc, where=where) from exc

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``, with each product's own parameter names."""
        body: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed}
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.mode is Mode.IMAGE:
            body["image_url"] = request.image_urls[0]
        else:
            body["aspect_ratio"] = request.aspect.value
        if request.mode is Mode.SCENES:
            body["image_urls"] = list(request.image_urls)
            if request.ingredients_mode is not None:
                body["ingredients_mode"] = request.ingredients_mode
        # Sent always: Scenes defaults to 1080p, the others to 720p, and we price what we ask.
        body["resolution"] = request.resolution.value
        body["duration"] = request.duration
        return body

    def _status_url(self, request_id: str, polling_url: str | None) -> str:
        fallback = self._base + STATUS_PATH.format(request_id=quote(request_id, safe=""))
        if not polling_url:
            return fallback
        given, ours = urlsplit(polling_url), urlsplit(self._base)
        if (given.scheme, given.netloc) != (ours.scheme, ours.netloc):
            log.warning("provider.foreign_polling_url", provider=self.name, host=given.netloc)
            return fallback
        return polling_url

    async def submit(self, request: GenerationRequest) -> ProviderHandle:
        """Send the request to the product for its mode; never blindly re-sent."""
        reason = self.capabilities.unsupported(request)
        if reason is not None:
            raise RejectedInput(f"pixazo: unsupported request: {reason}", user_message=reason)
        if request.mode is Mode.IMAGE and len(request.image_urls) != 1:
            raise RejectedInput(
                "pixazo: image-to-video needs exactly one image",
                user_message="Image-to-video needs exactly one image.",
            )
        if request.mode is Mode.SCENES and not request.image_urls:
            raise RejectedInput(
                "pixazo: scenes need images",
                user_message="Scenes need at least one image.",
            )
        url = self._base + SUBMIT_PATHS[request.mode]
        body = self.payload(request)

        async def call() -> Any:
            return await self._post(url, body, where="pixazo.submit", submitting=True)

        answer = await with_retries(call, self._retry, idempotent=False)
        request_id = answer.get("request_id") if isinstance(answer, Mapping) else None
        if not isinstance(request_id, str) or not request_id:
            raise TransientError("pixazo.submit: answer without a request_id")
        polling_url = answer.get("polling_url")
        status_url = self._status_url(
            request_id, polling_url if isinstance(polling_url, str) else None
        )
        log.info("provider.submitted", provider=self.name, request_id=request_id)
        return ProviderHandle(request_id=request_id, data={"polling_url": status_url})

    async def status(self, handle: ProviderHandle) -> ProviderStatus:
        """One status ``POST``; raises :class:`GenerationFailed` for FAILED and ERROR."""
        url = self._status_url(handle.request_id, handle.data.get("polling_url"))
        body = {"request_id": handle.request_id}

        async def call() -> Any:
            return await self._post(url, body, where="pixazo.status", submitting=False)

        answer = await with_retries(call, self._retry, idempotent=True)
        if not isinstance(answer, Mapping):
            raise TransientError("pixazo.status: answer is not a JSON object")
        return self._interpret(answer, handle.request_id)

    def _interpret(self, body: Mapping[str, Any], request_id: str) -> ProviderStatus:
        state = str(body.get("status", "")).upper()
        if state == "QUEUED":
            return ProviderStatus(kind=StatusKind.QUEUED)
        if state == "PROCESSING":
            return ProviderStatus(kind=StatusKind.RUNNING)
        if state == "COMPLETED":
            output = body.get("output")
            if not isinstance(output, Mapping):
                output = {}
            urls = output.get("media_url")
            if isinstance(urls, str):  # tolerate a bare string where a list is documented
                urls = [urls]
            if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
                raise GenerationFailed(f"pixazo request {request_id} completed without media_url")
            media_type = output.get("media_type")
            return ProviderStatus(
                kind=StatusKind.COMPLETED,
                result=ProviderResult(
                    video_url=urls[0],
                    content_type=media_type if isinstance(media_type, str) else None,
                ),
            )
        if state == "FAILED":
            raise GenerationFailed(
                f"pixazo request {request_id} FAILED: {log_text(body.get('error'))}"
            )
        if state == "ERROR":
            raise GenerationFailed(
                f"pixazo request {request_id} ERROR: {log_text(body.get('error'))}",
                user_message="The video service had a system error and did not make this clip.",
            )
        log.warning("provider.unknown_status", provider=self.name, status=log_text(state, 40))
        return ProviderStatus(kind=StatusKind.RUNNING)

    async def watch(self, handle: ProviderHandle) -> AsyncIterator[ProviderStatus]:
        """Poll every ``poll_interval`` seconds; yield only changes; end with COMPLETED."""
        async for status in poll_changes(lambda: self.status(handle), self.poll_interval):
            yield status

    async def cancel(self, handle: ProviderHandle) -> bool:
        """Pixazo documents no way to cancel a request."""
        return False

    async def verify_key(self) -> bool | None:
        """``POST`` the status URL of a request id no request has: 401/403 is a bad key,
        400/404 ("invalid request_id" / "request_id not found") an accepted one.

        Choice: the status call is the only read-only call the document lists; the gateway
        (Azure API Management) checks the subscription key before anything else.
        """
        url = self._base + STATUS_PATH.format(request_id=KEY_CHECK_REQUEST_ID)
        body = {"request_id": KEY_CHECK_REQUEST_ID}

        async def once() -> bool:
            try:
                async with self._session.post(
                    url, json=body, headers=self._headers(), timeout=KEY_CHECK_TIMEOUT
                ) as response:
                    return key_verdict(
                        response.status,
                        response.headers,
                        accepted=frozenset({400, 404}),
                        where="pixazo key check",
                    )
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="pixazo key check") from exc

        return await with_retries(once, self._retry, idempotent=True)
