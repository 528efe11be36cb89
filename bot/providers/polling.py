"""Following a job by polling: the loop the polling providers share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.providers.base import ProviderStatus, StatusKind


async def poll_changes(
    observe: Callable[[], Awaitable[ProviderStatus | None]], interval: float
) -> AsyncIterator[ProviderStatus]:
    """Call ``observe`` every ``interval`` seconds; yield only changes; end after COMPLETED.

    ``observe`` may answer None for "unchanged, nothing to say" (AIgateway's 304), which
    yields nothing, not even a guess. The pause comes after each answer, so request starts
    are at least an interval apart too, however slow the provider answers.
    """
    last: ProviderStatus | None = None
    while True:
        current = await observe()
        if current is not None and current != last:
            yield current
            last = current
        if current is not None and current.kind is StatusKind.COMPLETED:
            return
        await asyncio.sleep(interval)
