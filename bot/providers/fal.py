"""fal.ai's queue API: submit a Pika job, follow its status, fetch the result, cancel it.

Protocol (the platform notes, "fal.ai queue", and fal's queue reference):

* ``POST {base}/{endpoint}`` with ``Authorization: Key <FAL_KEY>`` and the model's input as
  JSON; the reply carries ``request_id``, ``status_url``, ``response_url`` and ``cancel_url``.
  Those URLs sit under the *app* (``fal-ai/pika/requests/{id}``), not under the version path,
  so we keep and use the returned URLs.
* ``GET {status_url}?logs=1``: ``IN_QUEUE`` (``queue_position``), ``IN_PROGRESS`` (``logs``),
  ``COMPLETED``; 202 while waiting and 200 when done (some deployments answer 200 throughout).
* ``GET {status_url}/stream?logs=1``: the same status objects as server-sent events; the server
  closes the stream after ``COMPLETED`` and sends a comment line every 15 s to keep it open.
* ``GET {response_url}``: the output, or the failure (a failed generation still reaches
  ``COMPLETED``) as a 4xx/5xx with ``detail`` and an ``error_type``.
* ``PUT {cancel_url}``.

Choices made where fal's documents are silent are marked "Choice:" in the comments below.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import structlog
from yarl import URL

from bot.models import AspectRatio, GenerationRequest, Mode, PikaModel, Resolution
from bot.pricing import PriceTable, scaled_table
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
)
from bot.tools import PerSecond, PerVideo, Tool

log = structlog.get_logger(__name__)

DEFAULT_QUEUE_URL = "https://queue.fal.run"

APP_ID = "fal-ai/pika"
"""fal's app id (owner/name): the first two segments of every Pika endpoint id."""

ENDPOINTS: Mapping[tuple[PikaModel, Mode], str] = {
    (PikaModel.V2_2, Mode.TEXT): "fal-ai/pika/v2.2/text-to-video",
    (PikaModel.V2_2, Mode.IMAGE): "fal-ai/pika/v2.2/image-to-video",
    (PikaModel.V2_2, Mode.SCENES): "fal-ai/pika/v2.2/pikascenes",
    (PikaModel.V2_1, Mode.TEXT): "fal-ai/pika/v2.1/text-to-video",
    (PikaModel.V2_1, Mode.IMAGE): "fal-ai/pika/v2.1/image-to-video",
    (PikaModel.V2_TURBO, Mode.TEXT): "fal-ai/pika/v2/turbo/text-to-video",
    (PikaModel.V2_TURBO, Mode.IMAGE): "fal-ai/pika/v2/turbo/image-to-video",
}
"""fal endpoint id per (model, mode)."""

TOOL_ENDPOINTS: Mapping[Tool, str] = {
    Tool.PIKAFFECTS: "fal-ai/pika/v1.5/pikaffects",
    Tool.PIKADDITIONS: "fal-ai/pika/v2/pikadditions",
    Tool.PIKASWAPS: "fal-ai/pika/v2/pikaswaps",
    Tool.PIKAFRAMES: "fal-ai/pika/v2.2/pikaframes",
}
"""fal endpoint id per Pika tool (the platform notes; schemas in the seeds' fal document,
"Other types", and fal's Pikaframes page)."""

FAL_PRICES = PriceTable(
    # 2.2: $0.20 per 5-second 720p clip, from fal's Pika 2.2 page (seed document; $0.45 for
    # 1080p, which scaled_table's 2.25 factor reproduces). 2.1 ($0.40) and 2 Turbo ($0.20):
    # the 5-second 720p prices on fal's model listing; fal lists no per-resolution or
    # per-duration price for them, so scaled_table applies 2.2's ratios (x2 for 10 s,
    # x2.25 for 1080p). Pikascenes is priced like text-to-video (no separate listing).
    usd=scaled_table(
        {
            PikaModel.V2_2: Decimal("0.20"),
            PikaModel.V2_1: Decimal("0.40"),
            PikaModel.V2_TURBO: Decimal("0.20"),
        }
    ),
    tools={
        # Pikaframes: fal's Pikaframes page: "$0.04 per second for 720p or $0.06 per second
        # for 1080p, with a minimum of 5 billable seconds"; the length is the sum of the
        # transitions (5 s each by default, 25 s at most).
        Tool.PIKAFRAMES: PerSecond(
            {"720p": Decimal("0.04"), "1080p": Decimal("0.06")}, min_seconds=5
        ),
        # Pikadditions: about $0.465 per video, the public figure for fal's Pikadditions.
        Tool.PIKADDITIONS: PerVideo(Decimal("0.465")),
        # Pikaffects and Pikaswaps: no public per-video figure was found. Choice: $0.50 each,
        # above the dearest per-video Pika tool price seen (Pikadditions, $0.465), so the
        # ledger never counts less than fal bills until their pages give a figure.
        Tool.PIKAFFECTS: PerVideo(Decimal("0.50")),
        Tool.PIKASWAPS: PerVideo(Decimal("0.50")),
    },
)

KEY_CHECK_REQUEST_ID = "00000000-0000-4000-8000-000000000000"
"""A well-formed request id (a UUID, like fal's) that no job has: see ``verify_key``."""

SCENES_MAX_IMAGES = 6
"""Choice: fal's CollectionToVideoRequest schema sets no maximum on ``images``; Pika's own
Scenes ("ingredients") UI takes up to six, so we offer six. Image mode uses only the first."""

FAL_CAPABILITIES = Capabilities(
    models=frozenset({PikaModel.V2_2, PikaModel.V2_1, PikaModel.V2_TURBO}),
    # Scenes exist only for 2.2 (submit() refuses others too, before anything is sent).
    modes=frozenset({Mode.TEXT, Mode.IMAGE, Mode.SCENES}),
    mode_models={Mode.SCENES: frozenset({PikaModel.V2_2})},
    durations=frozenset({5, 10}),
    resolutions=frozenset(Resolution),
    aspects=frozenset(AspectRatio),
    max_images=SCENES_MAX_IMAGES,
    can_cancel=True,
    # fal's "Files" section: an image input takes a public URL or a base64 data URI.
    data_uri_images=True,
    tools=frozenset(TOOL_ENDPOINTS),
    tool_resolutions={Tool.PIKAFRAMES: frozenset(Resolution)},
)

RESULT_RETRY_STATUSES = frozenset({502, 503, 504})
"""Result-time codes that mean "the gateway hiccupped", not "the generation failed"."""

_CONTENT_POLICY_MARKERS = ("content_policy", "content policy", "nsfw", "moderation", "safety")
"""Choice: fal documents ``content_policy_violation``; other models' error types and messages
use these words for the same refusal, so any of them counts as a content-policy refusal."""

_FIELD_LABELS: Mapping[str, str] = {
    "prompt": "prompt",
    "negative_prompt": "negative prompt",
    "aspect_ratio": "aspect ratio",
    "resolution": "resolution",
    "duration": "duration",
    "seed": "seed",
    "image_url": "image",
    "images": "images",
    "ingredients_mode": "ingredients mode",
    "image_urls": "keyframe images",
    "transitions": "transitions",
    "pikaffect": "effect",
    "video_url": "video",
    "modify_region": "region",
}
"""Fields we send, as members know them. Only these names ever reach a user message: fal's
validation ``msg`` texts and unknown field names stay in the log."""

_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
"""Choice: a stream lives as long as the job, so no total limit; fal sends a keep-alive comment
every 15 s, so 60 s of silence means the stream is dead and we fall back to polling."""

_STREAM_MAX_EVENT_BYTES = 1 << 20
"""Choice: an event larger than this (logs are cumulative) ends the stream; polling takes over."""

Phase = Literal["submit", "status", "result", "cancel"]


class _StreamTooLarge(Exception):
    """A server-sent event exceeded :data:`_STREAM_MAX_EVENT_BYTES`."""


_STREAM_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, _StreamTooLarge)


class FalProvider:
    """Pika through fal.ai's queue (``PIKA_PROVIDER=fal``).

    ``watch`` follows fal's status stream so completion is noticed at once, and falls back to
    polling ``status`` every ``poll_interval`` seconds when the stream is unavailable.
    """

    name = "fal"
    capabilities = FAL_CAPABILITIES
    prices = FAL_PRICES

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str,
        poll_interval: float = 1.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the fal API key is empty")
        self._session = session
        self._base = (base_url or DEFAULT_QUEUE_URL).rstrip("/")
        self._origin = URL(self._base).origin()
        self._headers = {"Authorization": f"Key {api_key}", "Accept": "application/json"}
        self.poll_interval = poll_interval
        self._retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"FalProvider(base_url={self._base!r})"

    # -- submit ------------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> ProviderHandle:
        """POST the request to its Pika endpoint; return once fal has queued it.

        Not retried after a 500 or a timeout (it may have been queued and would be billed
        twice); retried after 429, 503 or a connection that was never made.
        """
        reason = self.capabilities.unsupported(request)
        if reason is not None:
            raise RejectedInput(f"fal: unsupported request: {reason}", user_message=reason)
        endpoint = endpoint_for(request)
        body = request_body(request)
        url = f"{self._base}/{endpoint}"

        async def once() -> dict[str, Any]:
            try:
                async with self._session.post(url, json=body, headers=self._headers) as resp:
                    if resp.status >= 300:
                        raise await self._error(resp, phase="submit")
                    payload = await read_json(resp)
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="fal submit") from exc
            if not isinstance(payload, dict) or not isinstance(payload.get("request_id"), str):
                # The job may exist at fal, so this is not retried (TransientError is not
                # retried for non-idempotent calls) and the member is refunded.
                raise TransientError(f"fal submit: HTTP {resp.status} reply without request_id")
            return payload

        payload = await with_retries(once, self._retry, idempotent=False)
        request_id: str = payload["request_id"]
        data = {"endpoint": endpoint}
        for key in ("status_url", "response_url", "cancel_url"):
            value = self._trusted_url(payload.get(key))
            if value is not None:
                data[key] = value
        log.info("provider.submitted", provider=self.name, request_id=request_id, endpoint=endpoint)
        return ProviderHandle(request_id=request_id, data=data)

    def _trusted_url(self, value: object) -> str | None:
        """A returned URL we may send the key to: same origin as the configured queue URL.

        Choice: fal's URLs are on its queue host; a URL anywhere else (a misbehaving proxy) is
        ignored and rebuilt from the base URL, so the key never leaves the configured host.
        """
        if not isinstance(value, str) or not value:
            return None
        try:
            url = URL(value)
        except ValueError:
            return None
        if not url.is_absolute() or url.origin() != self._origin:
            log.warning(
                "provider.foreign_url",
                provider=self.name,
                host=url.host,
                expected=str(self._origin),
            )
            return None
        return value

    # -- URLs --------------------------------------------------------------------------------

    def _request_base(self, handle: ProviderHandle) -> str:
        # Fallback only: fal's documented layout {base}/{owner}/{app}/requests/{id}.
        endpoint = handle.data.get("endpoint", APP_ID)
        app = "/".join(endpoint.split("/")[:2])
        return f"{self._base}/{app}/requests/{handle.request_id}"

    def _status_url(self, handle: ProviderHandle) -> URL:
        raw = handle.data.get("status_url") or f"{self._request_base(handle)}/status"
        return URL(raw).update_query(logs="1")

    def _stream_url(self, handle: ProviderHandle) -> URL:
        raw = URL(handle.data.get("status_url") or f"{self._request_base(handle)}/status")
        return (
            raw.with_path(raw.path.rstrip("/") + "/stream")
            .with_query(raw.query)
            .update_query(logs="1")
        )

    def _response_url(self, handle: ProviderHandle) -> str:
        return handle.data.get("response_url") or self._request_base(handle)

    def _cancel_url(self, handle: ProviderHandle) -> str:
        return handle.data.get("cancel_url") or f"{self._request_base(handle)}/cancel"

    # -- status ------------------------------------------------------------------------------

    async def status(self, handle: ProviderHandle) -> ProviderStatus:
        """One ``GET status_url?logs=1``; retried on 429, 5xx and dropped connections."""
        url = self._status_url(handle)

        async def once() -> ProviderStatus:
            try:
                async with self._session.get(url, headers=self._headers) as resp:
                    # 202 while waiting, 200 when done; some deployments answer 200 throughout.
                    if resp.status not in (200, 202):
                        raise await self._error(resp, phase="status")
                    payload = await read_json(resp)
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="fal status") from exc
            parsed = parse_status(payload)
            if parsed is None:
                raise TransientError(f"fal status: HTTP {resp.status} reply without a status")
            return parsed

        return await with_retries(once, self._retry, idempotent=True)

    # -- watch -------------------------------------------------------------------------------

    async def watch(self, handle: ProviderHandle) -> AsyncIterator[ProviderStatus]:
        """Yield each change (state, queue position, new log lines), then COMPLETED + result.

        In the yielded statuses ``logs`` holds only the lines new since the previous yield.
        Raises a ``ProviderError`` when the generation failed.
        """
        tracker = _ChangeTracker()
        completed = False
        async with aclosing(self._stream(handle)) as events:
            async for observed in events:
                change = tracker.observe(observed)
                if observed.kind is StatusKind.COMPLETED:
                    completed = True
                    break
                if change is not None:
                    yield change
        if not completed:
            first = True
            while True:
                if not first:
                    await asyncio.sleep(self.poll_interval)
                first = False
                observed = await self.status(handle)
                change = tracker.observe(observed)
                if observed.kind is StatusKind.COMPLETED:
                    break
                if change is not None:
                    yield change
        result = await self.result(handle)
        yield ProviderStatus(kind=StatusKind.COMPLETED, logs=tracker.pending_logs, result=result)

    async def _stream(self, handle: ProviderHandle) -> AsyncGenerator[ProviderStatus, None]:
        """Statuses from ``{status_url}/stream``; ends quietly when the stream fails.

        Choice: any failure (non-200, dropped connection, silence, a malformed event) only
        ends the stream; the caller then polls, and polling reports real errors (401, 404...)
        through the usual mapping.
        """
        url = self._stream_url(handle)
        headers = {**self._headers, "Accept": "text/event-stream"}
        try:
            async with self._session.get(url, headers=headers, timeout=_STREAM_TIMEOUT) as resp:
                if resp.status != 200:
                    log.info("provider.stream_unavailable", provider=self.name, status=resp.status)
                    return
                async for data in _sse_data(resp):
                    try:
                        payload = json.loads(data)
                    except ValueError:
                        log.info("provider.stream_bad_event", provider=self.name)
                        return
                    parsed = parse_status(payload)
                    if parsed is None:
                        continue  # Choice: events without a status (pings) are skipped.
                    yield parsed
                    if parsed.kind is StatusKind.COMPLETED:
                        return
        except _STREAM_ERRORS as exc:
            log.info("provider.stream_dropped", provider=self.name, error=type(exc).__name__)
            return
        log.info("provider.stream_ended", provider=self.name)

    # -- result ------------------------------------------------------------------------------

    async def result(self, handle: ProviderHandle) -> ProviderResult:
        """``GET response_url``: the video, or the generation's failure as a ProviderError.

        Retried (bounded by the retry policy) only for 502/503/504 without a fal error type,
        429 and dropped connections; any other failure is the generation's and is final.
        """
        url = self._response_url(handle)

        async def once() -> ProviderResult:
            try:
                async with self._session.get(url, headers=self._headers) as resp:
                    if resp.status != 200:
                        raise await self._error(resp, phase="result")
                    payload = await read_json(resp)
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="fal result") from exc
            return parse_result(payload)

        return await with_retries(once, self._retry, idempotent=True)

    # -- cancel ------------------------------------------------------------------------------

    async def cancel(self, handle: ProviderHandle) -> bool:
        """``PUT cancel_url``; True when fal accepted the cancellation.

        False when fal answers 400 (``ALREADY_COMPLETED``) or 404, or a 2xx whose body says
        ``ALREADY_COMPLETED`` / ``NOT_FOUND``. Authentication and persistent transient errors
        are raised.
        """
        url = self._cancel_url(handle)

        async def once() -> bool:
            try:
                async with self._session.put(url, headers=self._headers) as resp:
                    if resp.status in (400, 404, 409):
                        log.info(
                            "provider.cancel_refused",
                            provider=self.name,
                            request_id=handle.request_id,
                            status=resp.status,
                        )
                        return False
                    if resp.status >= 300:
                        raise await self._error(resp, phase="cancel")
                    payload = await read_json(resp)
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="fal cancel") from exc
            state = payload.get("status") if isinstance(payload, dict) else None
            return state not in ("ALREADY_COMPLETED", "NOT_FOUND")

        return await with_retries(once, self._retry, idempotent=True)

    # -- key check ---------------------------------------------------------------------------

    async def verify_key(self) -> bool | None:
        """``GET`` the status of a well-formed request id that does not exist, under the app.

        Choice: fal has no "who am I" call, but every queue route checks the key before it
        looks the request up, so this read-only call costs nothing and creates nothing:
        401/403 means the key was refused, 404 (or 400/422 for an id it rejects) that the key
        was accepted.
        """
        url = f"{self._base}/{APP_ID}/requests/{KEY_CHECK_REQUEST_ID}/status"

        async def once() -> bool:
            try:
                async with self._session.get(
                    url, headers=self._headers, timeout=KEY_CHECK_TIMEOUT
                ) as resp:
                    return key_verdict(
                        resp.status,
                        resp.headers,
                        accepted=frozenset({400, 404, 422}),
                        where="fal key check",
                    )
            except CONNECTION_ERRORS as exc:
                raise connection_error(exc, where="fal key check") from exc

        return await with_retries(once, self._retry, idempotent=True)

    # -- errors ------------------------------------------------------------------------------

    async def _error(self, resp: aiohttp.ClientResponse, *, phase: Phase) -> ProviderError:
        """Translate a non-success reply; nothing from the body reaches ``user_message``."""
        body = await read_json(resp)
        return classify_error(resp.status, body, resp.headers, phase=phase)


def endpoint_for(request: GenerationRequest) -> str:
    """fal's endpoint id for ``request``; RejectedInput when fal has no such product."""
    if request.tool is not None:
        return TOOL_ENDPOINTS[request.tool.kind]
    if request.mode is Mode.SCENES and request.model is not PikaModel.V2_2:
        raise RejectedInput(
            f"fal: scenes requested on {request.model.value}",
            user_message="Scenes are available only with Pika 2.2.",
        )
    endpoint = ENDPOINTS.get((request.model, request.mode))
    if endpoint is None:  # pragma: no cover - every (model, mode) left is in the table
        raise RejectedInput(f"fal: no endpoint for {request.model.value} {request.mode.value}")
    if request.mode is not Mode.TEXT and not request.image_urls:
        raise RejectedInput(
            f"fal: {request.mode.value} request without images",
            user_message="This kind of clip needs at least one image.",
        )
    return endpoint


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON input for ``request``, with exactly the fields fal's schema names."""
    if request.tool is not None:
        return tool_body(request)
    body: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt is not None:
        # Omitted when None: fal's default negative prompt then applies.
        body["negative_prompt"] = request.negative_prompt
    if request.mode is not Mode.IMAGE:
        # Image-to-video takes its aspect ratio from the image; the schema has no field.
        body["aspect_ratio"] = request.aspect.value
    body["resolution"] = request.resolution.value
    body["duration"] = request.duration
    body["seed"] = request.seed
    if request.mode is Mode.IMAGE:
        body["image_url"] = request.image_urls[0]  # Choice: extra images are not sent.
    elif request.mode is Mode.SCENES:
        body["images"] = [{"image_url": url} for url in request.image_urls]
        if request.ingredients_mode is not None:
            # Omitted when None: fal's default ("creative") then applies.
            body["ingredients_mode"] = request.ingredients_mode
    return body


def tool_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON input of a Pika tool (fal's Pikaffects, Pikadditions, Pikaswaps and
    Pikaframes request schemas). Optional fields are left out when empty, so fal's defaults
    apply; the seed is always sent so a clip can be made again."""
    tool = request.tool
    assert tool is not None
    body: dict[str, Any] = {}
    match tool.kind:
        case Tool.PIKAFFECTS:
            assert tool.effect is not None
            body["image_url"] = request.image_urls[0]
            body["pikaffect"] = tool.effect.value
        case Tool.PIKADDITIONS:
            body["video_url"] = tool.video_url
            body["image_url"] = request.image_urls[0]
        case Tool.PIKASWAPS:
            body["video_url"] = tool.video_url
            body["modify_region"] = tool.region
            if request.image_urls:
                body["image_url"] = request.image_urls[0]
        case Tool.PIKAFRAMES:
            body["image_urls"] = list(request.image_urls)
            body["transitions"] = [
                {"duration": t.seconds, **({"prompt": t.prompt} if t.prompt else {})}
                for t in tool.transitions
            ]
            body["resolution"] = request.resolution.value
    if request.prompt:
        body["prompt"] = request.prompt
    if request.negative_prompt is not None:
        body["negative_prompt"] = request.negative_prompt
    body["seed"] = request.seed
    return body


_STATES = {
    "IN_QUEUE": StatusKind.QUEUED,
    "IN_PROGRESS": StatusKind.RUNNING,
    "COMPLETED": StatusKind.COMPLETED,
}


def parse_status(payload: object) -> ProviderStatus | None:
    """A fal status object as a ProviderStatus (all its log lines); None without a status."""
    if not isinstance(payload, dict):
        return None
    raw = payload.get("status")
    if not isinstance(raw, str):
        return None
    kind = _STATES.get(raw)
    if kind is None:
        # Choice: an unknown state is treated as running; the job deadline still applies.
        log.warning("provider.unknown_status", provider="fal", status=log_text(raw, 40))
        kind = StatusKind.RUNNING
    position = payload.get("queue_position")
    if not isinstance(position, int) or isinstance(position, bool) or kind is not StatusKind.QUEUED:
        position = None
    return ProviderStatus(kind=kind, queue_position=position, logs=_log_lines(payload))


def _log_lines(payload: Mapping[str, Any]) -> tuple[str, ...]:
    logs = payload.get("logs")
    if not isinstance(logs, list):
        return ()
    lines: list[str] = []
    for entry in logs:
        message = entry.get("message") if isinstance(entry, dict) else entry
        if isinstance(message, str) and message.strip():
            lines.append(message.strip())
    return tuple(lines)


def _log_keys(payload_logs: tuple[str, ...]) -> list[tuple[str, int]]:
    # A line's identity is its text and how many times that text came before it, so repeated
    # identical lines are still counted once each.
    seen: dict[str, int] = {}
    keys: list[tuple[str, int]] = []
    for line in payload_logs:
        count = seen.get(line, 0)
        seen[line] = count + 1
        keys.append((line, count))
    return keys


class _ChangeTracker:
    """Turns raw observations into "what changed" statuses for :meth:`FalProvider.watch`.

    Choice: fal does not say whether a stream event's ``logs`` are cumulative (as the status
    endpoint's are) or only the new lines. A line counts as new when an observation holds more
    copies of its text than any earlier one did, which reads both forms correctly.
    """

    def __init__(self) -> None:
        self._kind: StatusKind | None = None
        self._position: int | None = None
        self._seen: set[tuple[str, int]] = set()
        self.pending_logs: tuple[str, ...] = ()

    def observe(self, status: ProviderStatus) -> ProviderStatus | None:
        new = [line for line, n in _log_keys(status.logs) if (line, n) not in self._seen]
        self._seen.update(_log_keys(status.logs))
        changed = bool(new) or status.kind != self._kind or status.queue_position != self._position
        self._kind = status.kind
        self._position = status.queue_position
        self.pending_logs = tuple(new)
        if not changed:
            return None
        return ProviderStatus(
            kind=status.kind, queue_position=status.queue_position, logs=tuple(new)
        )


def parse_result(payload: object) -> ProviderResult:
    """The video from a result body; GenerationFailed when it holds none."""
    video = payload.get("video") if isinstance(payload, dict) else None
    url = video.get("url") if isinstance(video, dict) else None
    if not isinstance(video, dict) or not isinstance(url, str) or not url:
        raise GenerationFailed("fal result: no video url in the reply")
    content_type = video.get("content_type")
    file_size = video.get("file_size")
    return ProviderResult(
        video_url=url,
        content_type=content_type if isinstance(content_type, str) else None,
        file_size=file_size
        if isinstance(file_size, int) and not isinstance(file_size, bool)
        else None,
    )


def classify_error(
    status: int, body: object, headers: Mapping[str, str], *, phase: Phase
) -> ProviderError:
    """Map a fal error reply to our hierarchy. The log text holds the code and fal's error
    type, never the body; user messages are fixed sentences or our own field names."""
    detail = body.get("detail") if isinstance(body, dict) else None
    error_type = _error_type(body, headers)
    text = f"fal {phase}: HTTP {status}" + (f" error_type={error_type}" if error_type else "")
    fields = _invalid_fields(detail)
    if fields:
        text += f" fields={','.join(fields)}"

    if status == 401:
        return AuthenticationError(text)
    if status in (402, 403):
        # Choice (unverified): fal answers 403 "User is locked. Reason: Exhausted balance"
        # when the account is empty; 402 is the generic payment-required code.
        if status == 402 or _mentions_balance(detail):
            return OutOfProviderCredits(text)
        return AuthenticationError(text)
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(headers))
    if status == 404:
        return NotFound(text)
    if _is_content_policy(error_type, detail):
        return ContentPolicy(text)

    if phase == "result":
        if status in RESULT_RETRY_STATUSES and error_type is None:
            return TransientError(text)
        if status == 422 and fields:
            # Choice: fal validates the input in the runner, so invalid settings surface at
            # result time as a 422 validation list; that is the request's fault, as at submit.
            return RejectedInput(text, user_message=_fields_message(fields))
        # Any other 4xx/5xx after COMPLETED is a failed generation (5xx ones are not billed).
        return GenerationFailed(text)

    if status in (400, 422):
        return RejectedInput(text, user_message=_fields_message(fields))
    if status == 503 and phase == "submit":
        return RefusedAtTheDoor(text)
    if status >= 500:
        return TransientError(text)
    return ProviderError(text)


def _error_type(body: object, headers: Mapping[str, str]) -> str | None:
    raw = body.get("error_type") if isinstance(body, dict) else None
    if not isinstance(raw, str) or not raw:
        raw = headers.get("X-Fal-Error-Type")
    if not raw:
        return None
    # Only a short token-like value goes to the log.
    cleaned = "".join(ch for ch in raw[:64] if ch.isalnum() or ch in "_-.")
    return cleaned or None


def _detail_types(detail: object) -> list[str]:
    if not isinstance(detail, list):
        return []
    return [str(item["type"]) for item in detail if isinstance(item, dict) and "type" in item]


def _is_content_policy(error_type: str | None, detail: object) -> bool:
    candidates = [error_type or "", *_detail_types(detail)]
    if isinstance(detail, str):
        candidates.append(detail)
    return any(
        marker in candidate.lower()
        for candidate in candidates
        for marker in _CONTENT_POLICY_MARKERS
    )


def _mentions_balance(detail: object) -> bool:
    return isinstance(detail, str) and any(
        word in detail.lower() for word in ("balance", "billing", "credits")
    )


def _invalid_fields(detail: object) -> list[str]:
    """Our field names that a validation list blames, in order, without duplicates."""
    if not isinstance(detail, list):
        return []
    fields: list[str] = []
    for item in detail:
        loc = item.get("loc") if isinstance(item, dict) else None
        if not isinstance(loc, list):
            continue
        names = [part for part in loc if isinstance(part, str) and part in _FIELD_LABELS]
        if names and names[0] not in fields:
            fields.append(names[0])
    return fields


def _fields_message(fields: list[str]) -> str:
    if not fields:
        return RejectedInput.user_message
    labels = ", ".join(_FIELD_LABELS[name] for name in fields)
    return f"The video service rejected these settings: {labels}."


async def _sse_data(resp: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
    """The ``data`` of each server-sent event (multi-line data joined by newlines).

    Comment lines (``:``, fal's keep-alives) and other fields (``event``, ``id``) are skipped.
    Lines are split by hand so an event longer than aiohttp's line limit cannot break reading.
    """
    buffer = b""
    data_lines: list[str] = []
    async for chunk in resp.content.iter_any():
        buffer += chunk
        if len(buffer) > _STREAM_MAX_EVENT_BYTES:
            raise _StreamTooLarge
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            raw, buffer = buffer[:cut], buffer[cut + 1 :]
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if data_lines:
                    yield "\n".join(data_lines)
                    data_lines = []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name == "data":
                data_lines.append(value[1:] if value.startswith(" ") else value)
                if sum(map(len, data_lines)) > _STREAM_MAX_EVENT_BYTES:
                    raise _StreamTooLarge
    if data_lines:
        yield "\n".join(data_lines)
