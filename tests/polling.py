"""Waiting for a fact another process makes true: poll it, bounded, and assert it.

The bot under test runs in its own process and writes its own database, so a test has no event
to await for "the charge is committed". Polling a read until it gives the expected value (and
failing with the last value seen) replaces a fixed sleep, which is either too short on a busy
machine or wasted time on an idle one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    read: Callable[[], T], expected: T, *, within: float = 10.0, every: float = 0.02
) -> None:
    """Poll ``read()`` until it equals ``expected``; fail after ``within`` seconds with the last."""
    last = read()
    for _ in range(max(1, int(within / every))):
        if last == expected:
            return
        await asyncio.sleep(every)
        last = read()
    assert last == expected, f"after {within} s still {last!r}, expected {expected!r}"
