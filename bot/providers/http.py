"""HTTP plumbing shared by every provider: one retry policy and small response helpers.

Retries use tenacity: exponential backoff with full jitter, bounded in attempts and in total
time, and a 429's ``Retry-After`` wins over the computed delay.

A request that may have created something at the provider (a submit) is *not* retried blindly:
sending it twice could run, and bill, the clip twice. Callers mark such calls
``idempotent=False``; they are then retried only when the provider cannot have accepted them:
a 429 (refused before any work), a 503 (refused at the door), or a connection that was never
established. A timeout or a 500 after the body was sent is reported as a failure instead, and
the member's credits are refunded.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from bot.providers.errors import OutOfProviderCredits, ProviderError, RateLimited, TransientError

T = TypeVar("T")


class NotDelivered(TransientError):
    """The request never reached the provider (connection refused or reset before sending)."""


class RefusedAtTheDoor(TransientError):
    """503: the provider refused the request without starting any work."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds for one call's retries."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0
    total_seconds: float = 45.0


def parse_retry_after(headers: Mapping[str, str], *, cap: float = 120.0) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def _retryable(idempotent: bool) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, ProviderError) or not exc.retryable:
            return False
        if idempotent:
            return True
        return isinstance(exc, RateLimited | NotDelivered | RefusedAtTheDoor)

    return check


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(jitter(state))

    return wait


async def with_retries(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, idempotent: bool
) -> T:
    """Run ``call`` and retry it under ``policy``; re-raise the last error when out of tries."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total_seconds),
        wait=_wait(policy),
        retry=retry_if_exception(_retryable(idempotent)),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


async def read_json(response: aiohttp.ClientResponse) -> Any:
    """The body as JSON, or None when it is empty or not JSON (never raises)."""
    try:
        text = await response.text()
    except (aiohttp.ClientError, UnicodeDecodeError):
        return None
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def connection_error(exc: BaseException, *, where: str) -> TransientError:
    """Translate an aiohttp/timeout exception into our hierarchy, keeping whether it was sent."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return NotDelivered(f"{where}: could not connect ({type(exc).__name__})")
    return TransientError(f"{where}: {type(exc).__name__}")


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
"""What a dropped, refused or timed-out connection raises."""


KEY_CHECK_TIMEOUT = aiohttp.ClientTimeout(total=20, sock_connect=10)
"""Bound on one key-check call (``Provider.verify_key``)."""


def key_verdict(
    status: int,
    headers: Mapping[str, str],
    *,
    accepted: frozenset[int],
    where: str,
) -> bool:
    """Read the answer to a key check (a harmless call that names an unknown job).

    401/403: the key was refused (False). A code in ``accepted`` (the provider's "no such
    job"), or any 2xx: the key got past authentication (True). 402: the key is known but
    the account is empty (:class:`OutOfProviderCredits`). 429 and 5xx are raised as for any
    call (rate limited, or an outage); anything else is an unexpected answer
    (:class:`TransientError`), never read as a verdict on the key.
    """
    if status in (401, 403):
        return False
    if status in accepted or 200 <= status < 300:
        return True
    detail = f"{where}: HTTP {status}"
    if status == 402:
        raise OutOfProviderCredits(detail)
    if status == 429:
        raise RateLimited(detail, retry_after=parse_retry_after(headers))
    if status == 503:
        raise RefusedAtTheDoor(detail)
    raise TransientError(f"{detail} (unexpected answer to the key check)")


def log_text(value: object, limit: int = 200) -> str:
    """A bounded, single-line rendering of provider text for the log (never for members)."""
    return " ".join(str(value).split())[:limit]


def without_secret(text: str, secret: str) -> str:
    """``text`` with the API key blanked, should a provider echo it back."""
    return text.replace(secret, "[redacted]") if secret else text


def error_text(body: Any) -> str:
    """``error`` and ``message`` of a JSON error body (string fields only), for the log."""
    if not isinstance(body, Mapping):
        return ""
    parts = [str(body[key]) for key in ("error", "message") if body.get(key)]
    return ": ".join(parts)
