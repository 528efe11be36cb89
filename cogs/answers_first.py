"""First answers before the work they promise: Discord's 3 s window, however busy the loop is.

A burst of interactions (hundreds of ``/pika`` at once) used to interleave: the first members'
defers went out, and their reserving writes, status posts and edits then took the event loop
while later members' defers still waited to be sent, so the last ones of a burst were answered
after everybody's work. :class:`AnswersFirst` counts the first answers being sent; the work
after a first answer waits until none is in flight (bounded by ``MAX_WAIT``, so a steady
stream of new interactions cannot hold the work back for long). Nothing changes but the order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

MAX_WAIT = 2.0
"""The longest the work after a first answer waits for other first answers (seconds)."""


class AnswersFirst:
    """A count of first answers in flight, and a way to wait until there are none."""

    def __init__(self) -> None:
        self._sending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def sending(self) -> int:
        """First answers being sent now."""
        return self._sending

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        """Hold for the sending of one first answer."""
        self._sending += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._sending -= 1
            if self._sending == 0:
                self._idle.set()

    async def wait_turn(self, within: float = MAX_WAIT) -> None:
        """Return once no first answer is being sent, or after ``within`` seconds."""
        if self._sending == 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()


FIRST_ANSWERS = AnswersFirst()
"""The bot process's count (one event loop per process)."""
