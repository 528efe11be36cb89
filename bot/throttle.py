"""Coalescing progress updates: the latest state wins, at most one send per interval.

Discord rate-limits message edits and a status message that flickers helps nobody, so a
job's progress is forwarded only when it differs from what was last shown, and never more
often than ``min_interval`` seconds. Updates arriving in between replace each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class LatestWins(Generic[T]):
    """Forward values to ``send`` at most once per ``min_interval``, dropping stale ones."""

    def __init__(
        self,
        send: Callable[[T], Awaitable[None]],
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._min_interval = min_interval
        self._clock = clock
        self._last_sent: T | None = None
        self._last_sent_at: float | None = None
        self._pending: T | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = False
        self.sent = 0

    def publish(self, value: T) -> None:
        """Offer a new value; it is sent now, later, or replaced by a newer one."""
        if value == self._last_sent and self._pending is None:
            return
        self._pending = value
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending is not None:
            if self._last_sent_at is not None:
                wait = self._last_sent_at + self._min_interval - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            value, self._pending = self._pending, None
            if value is None or value == self._last_sent:
                continue
            self._last_sent, self._last_sent_at = value, self._clock()
            self._sending = True
            try:
                await self._send(value)
                self.sent += 1
            except Exception:
                # A status edit that fails must never fail the job; the next one may work.
                log.warning("status.update_failed", exc_info=True)
            finally:
                self._sending = False

    async def close(self, grace: float = 10.0) -> None:
        """Drop whatever is pending and wait (up to ``grace`` seconds) for a send in progress.

        A send cut off half-way could still land after whatever the caller shows next (a
        failure notice, "done"), so it is waited for, not cancelled; only a wait for the next
        interval is cut short. A send still running after ``grace`` is cancelled.
        """
        self._pending = None
        task = self._task
        if task is None or task.done():
            return
        if self._sending:
            # ``asyncio.wait`` does not cancel the send if the caller itself is cancelled.
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
