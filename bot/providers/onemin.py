"""1min.ai (api.1min.ai): Pika text-to-video through one long, blocking call.

What the public document says:

* ``POST /api/features`` with the ``API-KEY`` header and ``{"type": "TEXT_TO_VIDEO", "model":
  "pika", "conversationId": "TEXT_TO_VIDEO", "promptObject": {task_type, prompt,
  negative_prompt, aspect_ratio, resolution, duration, seed}}``; ``task_type`` is
  ``pika-v2-turbo``, ``pika-v2.1`` or ``pika-v2.2``. Text-to-video only.
* The answer is ``{"aiRecord": {"uuid", "status": "SUCCESS", "aiRecordDetail": {"resultObject":
  ["development/videos/….mp4"]}, "temporaryUrl": "https://…/asset.1min.ai/…mp4?X-Amz-…"}}``.
* Credits per video: turbo 600,000; 2.1 1,200,000; 2.2 600,000 / 1,350,000 (5 s 720p / 1080p)
  and 1,200,000 / 2,700,000 (10 s).

No job id or polling endpoint is documented, so the call holds its connection until the video
is ready (PLATFORM.md, unverified). Design:

* :meth:`OneMinProvider.submit` starts that call as a background task and waits at most
  ``accept_window`` seconds (2 s). A real gateway refuses a bad key, an empty account or bad
  settings at once, so those errors are raised by ``submit`` as for any provider. If the video
  is already done within the window, the handle carries it (``data["result"] == "known"`` and
  ``data["video_url"]``); otherwise the handle says ``data["result"] == "pending"`` and the
  task goes on in the background. The job service persists the handle and moves the job on.
* :meth:`OneMinProvider.watch` yields RUNNING at once (so the job shows "generating"), then
  awaits the call and yields COMPLETED with the result, or raises its error. It shields the
  call: a cancelled watcher does not abort the generation, and a later ``watch`` picks it up.
* Restart rule: a ``pending`` handle whose call is not running in *this* process (the bot
  restarted mid-call) cannot be recovered: there is nothing to poll, and sending the request
  again could bill the operator twice. ``watch``/``status`` then raise
  :class:`GenerationFailed` (the member is refunded; the operator may still have been charged
  by 1min.ai, which is logged). A ``known`` handle survives a restart: ``watch`` yields its
  stored result immediately.

Choices where the document is silent:

* Errors. Nothing is documented; mapped plausibly: 401 → :class:`AuthenticationError`; 403 →
  :class:`AuthenticationError` unless the text mentions credits; 402, or a 400/403 whose text
  mentions credits/balance/insufficient → :class:`OutOfProviderCredits`; other 400/422 →
  :class:`RejectedInput` (or :class:`ContentPolicy` when the text says so); 404 →
  :class:`NotFound`; 429 → :class:`RateLimited` (``Retry-After`` honoured); 503 → refused at
  the door (retried); 500/502/504 → :class:`TransientError`, never re-sent (the generation may
  be running and billed). Bodies are read as ``{"message", "error", "statusCode"}``.
* The result URL is ``aiRecord.temporaryUrl``; without it, the first ``resultObject`` entry is
  joined to :data:`ASSET_BASE_URL` (the bucket named in ``temporaryUrl``). A status other
  than ``SUCCESS`` is :class:`GenerationFailed`.
* Credits are converted to USD at :data:`USD_PER_CREDIT` (assumed). Turbo and 2.1 are priced
  "per video": the same credits for every duration and resolution, as the document says.
* ``cancel`` answers False: there is no endpoint, and dropping our connection would not stop
  (or refund) the generation.

Requests per job: exactly one (the blocking ``POST``), plus a retry only when it was refused
before any work (429, 503, connection refused).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

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
    RefusedAtTheDoor,
    RetryPolicy,
    connection_error,
    error_text,
    log_text,
    parse_retry_after,
    read_json,
    with_retries,
    without_secret,
)

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.1min.ai"
DEFAULT_REQUEST_TIMEOUT = 900.0
"""Seconds the blocking call may take (15 minutes; generations take one to a few)."""
DEFAULT_ACCEPT_WINDOW = 2.0
"""Seconds ``submit`` waits for an immediate refusal (or an instant result)."""
ASSET_BASE_URL = "https://asset.1min.ai/"
"""Assumed public base for ``resultObject`` keys (the S3 bucket in ``temporaryUrl``)."""
USD_PER_CREDIT = Decimal("0.000001")
"""Assumed: about one US dollar per million 1min.ai credits (their top-up packs; unverified).

At this rate Pika 2.2 5 s 720p (600,000 credits) costs $0.60.
"""

TASK_TYPES: Mapping[PikaModel, str] = {
    PikaModel.V2_TURBO: "pika-v2-turbo",
    PikaModel.V2_1: "pika-v2.1",
    PikaModel.V2_2: "pika-v2.2",
}

CREDITS: Mapping[PriceKey, int] = {
    **{
        (PikaModel.V2_TURBO, resolution, duration): 600_000
        for resolution in Resolution
        for duration in (5, 10)
    },
    **{
        (PikaModel.V2_1, resolution, duration): 1_200_000
        for resolution in Resolution
        for duration in (5, 10)
    },
    (PikaModel.V2_2, Resolution.HD, 5): 600_000,
    (PikaModel.V2_2, Resolution.FULL_HD, 5): 1_350_000,
    (PikaModel.V2_2, Resolution.HD, 10): 1_200_000,
    (PikaModel.V2_2, Resolution.FULL_HD, 10): 2_700_000,
}
"""1min.ai credits per video, from the document."""

_CREDIT_WORDS = ("credit", "balance", "insufficient", "funds", "quota")
_POLICY_WORDS = ("content policy", "moderation", "nsfw", "safety")
_LOST = (
    "The bot restarted while the video service was making this clip, and the clip "
    "cannot be recovered."
)


def http_error(
    status: int, body: Any, headers: Mapping[str, str], *, secret: str = ""
) -> ProviderError:
    """Translate an error response into our hierarchy; the body goes to the log text only."""
    text = without_secret(error_text(body), secret)
    lowered = text.lower()
    detail = f"onemin.generate: HTTP {status}: {log_text(text)}"
    mentions_credit = any(word in lowered for word in _CREDIT_WORDS)
    if status == 402 or (status in (400, 403) and mentions_credit):
        return OutOfProviderCredits(detail)
    if status in (401, 403):
        return AuthenticationError(detail)
    if status == 404:
        return NotFound(detail, user_message="Pika is not available on the video service now.")
    if status == 429:
        return RateLimited(detail, retry_after=parse_retry_after(headers))
    if status in (400, 422):
        if any(word in lowered for word in _POLICY_WORDS):
            return ContentPolicy(detail)
        return RejectedInput(detail)
    if status == 503:
        return RefusedAtTheDoor(detail)
    if status >= 500:
        return TransientError(detail)
    return ProviderError(detail)


def _handle_result(handle: ProviderHandle) -> ProviderResult | None:
    if handle.data.get("result") != "known" or not handle.data.get("video_url"):
        return None
    return ProviderResult(
        video_url=handle.data["video_url"], content_type=handle.data.get("content_type")
    )


def _retrieve(task: asyncio.Task[ProviderResult]) -> None:
    """Mark a finished call's exception as seen; the watcher re-raises it when it asks."""
    if not task.cancelled():
        task.exception()


class OneMinProvider:
    """Pika through 1min.ai's blocking ``/api/features`` call (text-to-video only)."""

    name = "onemin"
    capabilities = Capabilities(
        models=frozenset(TASK_TYPES),
        modes=frozenset({Mode.TEXT}),
        can_cancel=False,
        data_uri_images=False,  # text-to-video only: no image input at all
    )
    prices = PriceTable(usd={key: credits * USD_PER_CREDIT for key, credits in CREDITS.items()})
    poll_interval = 0.0
    """Nothing is polled: ``watch`` awaits the one call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        accept_window: float = DEFAULT_ACCEPT_WINDOW,
        asset_base_url: str = ASSET_BASE_URL,
    ) -> None:
        self._session = session
        self._api_key = api_key
        self._base = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=30)
        self._accept_window = accept_window
        self._asset_base = asset_base_url if asset_base_url.endswith("/") else asset_base_url + "/"
        self._calls: dict[str, asyncio.Task[ProviderResult]] = {}

    def __repr__(self) -> str:
        return f"OneMinProvider(base_url={self._base!r})"

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        prompt: dict[str, Any] = {
            "task_type": TASK_TYPES[request.model],
            "prompt": request.prompt,
            "aspect_ratio": request.aspect.value,
            "resolution": request.resolution.value,
            "duration": request.duration,
            "seed": request.seed,
        }
        if request.negative_prompt:
            prompt["negative_prompt"] = request.negative_prompt
        return {
            "type": "TEXT_TO_VIDEO",
            "model": "pika",
            "conversationId": "TEXT_TO_VIDEO",
            "promptObject": prompt,
        }

    async def _post_once(self, body: Mapping[str, Any]) -> Any:
        url = f"{self._base}/api/features"
        headers = {"API-KEY": self._api_key, "Accept": "application/json"}
        try:
            async with self._session.post(
                url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                answer = await read_json(response)
                if response.status >= 400:
                    raise http_error(
                        response.status, answer, response.headers, secret=self._api_key
                    )
                return answer
        except CONNECTION_ERRORS as exc:
            raise connection_error(exc, where="onemin.generate") from exc

    async def _generate(self, body: Mapping[str, Any], call_id: str) -> ProviderResult:
        async def call() -> Any:
            return await self._post_once(body)

        answer = await with_retries(call, self._retry, idempotent=False)
        return self._result(answer, call_id)

    def _result(self, answer: Any, call_id: str) -> ProviderResult:
        record = answer.get("aiRecord") if isinstance(answer, Mapping) else None
        if not isinstance(record, Mapping):
            raise TransientError(f"onemin {call_id}: answer without aiRecord")
        state = str(record.get("status", ""))
        if state.upper() != "SUCCESS":
            raise GenerationFailed(f"onemin {call_id}: aiRecord status {log_text(state, 40)}")
        url = record.get("temporaryUrl")
        if not isinstance(url, str) or not url:
            detail = record.get("aiRecordDetail")
            keys = detail.get("resultObject") if isinstance(detail, Mapping) else None
            if isinstance(keys, str):
                keys = [keys]
            if not isinstance(keys, list) or not keys or not isinstance(keys[0], str):
                raise GenerationFailed(f"onemin {call_id}: SUCCESS without a video")
            url = urljoin(self._asset_base, keys[0].lstrip("/"))
        return ProviderResult(video_url=url, content_type="video/mp4")

    async def submit(self, request: GenerationRequest) -> ProviderHandle:
        """Start the blocking call; return within ``accept_window`` (see the module doc)."""
        reason = self.capabilities.unsupported(request)
        if reason is not None:
            raise RejectedInput(f"onemin: unsupported request: {reason}", user_message=reason)
        call_id = f"onemin-{uuid.uuid4().hex}"
        task = asyncio.create_task(self._generate(self.payload(request), call_id), name=call_id)
        task.add_done_callback(_retrieve)
        self._calls[call_id] = task
        await asyncio.wait({task}, timeout=self._accept_window)
        if not task.done():
            log.info("provider.submitted", provider=self.name, request_id=call_id, result="pending")
            return ProviderHandle(request_id=call_id, data={"result": "pending"})
        del self._calls[call_id]
        result = task.result()  # raises the call's ProviderError: the submit failed
        log.info("provider.submitted", provider=self.name, request_id=call_id, result="known")
        data = {"result": "known", "video_url": result.video_url}
        if result.content_type:
            data["content_type"] = result.content_type
        return ProviderHandle(request_id=call_id, data=data)

    def _lost(self, handle: ProviderHandle) -> GenerationFailed:
        log.warning("provider.call_lost", provider=self.name, request_id=handle.request_id)
        return GenerationFailed(
            f"onemin {handle.request_id}: call not running in this process", user_message=_LOST
        )

    async def status(self, handle: ProviderHandle) -> ProviderStatus:
        """RUNNING while the call is open, then COMPLETED or the call's error."""
        known = _handle_result(handle)
        if known is not None:
            return ProviderStatus(kind=StatusKind.COMPLETED, result=known)
        task = self._calls.get(handle.request_id)
        if task is None:
            raise self._lost(handle)
        if not task.done():
            return ProviderStatus(kind=StatusKind.RUNNING)
        return ProviderStatus(kind=StatusKind.COMPLETED, result=task.result())

    async def watch(self, handle: ProviderHandle) -> AsyncIterator[ProviderStatus]:
        """Yield RUNNING, await the call, then yield COMPLETED (or raise its error)."""
        known = _handle_result(handle)
        if known is not None:
            yield ProviderStatus(kind=StatusKind.COMPLETED, result=known)
            return
        task = self._calls.get(handle.request_id)
        if task is None:
            raise self._lost(handle)
        if not task.done():
            yield ProviderStatus(kind=StatusKind.RUNNING)
        try:
            # Shielded: a cancelled watcher leaves the (billed) generation running for a
            # later watch in this process.
            result = await asyncio.shield(task)
        finally:
            if task.done():
                self._calls.pop(handle.request_id, None)
        yield ProviderStatus(kind=StatusKind.COMPLETED, result=result)

    async def cancel(self, handle: ProviderHandle) -> bool:
        """1min.ai has no cancel; closing our connection would not stop the billing."""
        return False

    async def verify_key(self) -> bool | None:
        """None: 1min.ai documents no read-only call, so the key cannot be checked cheaply.

        Choice: the only documented call is ``POST /api/features``, which starts (and may
        bill) a generation even when sent just to test the key, so nothing is sent.
        """
        return None
