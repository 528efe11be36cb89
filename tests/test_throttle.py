"""Status updates: latest state wins, at most one send per interval, failures don't spread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.throttle import LatestWins


async def test_latest_wins_coalesces_bursts():
    """A burst of values within one interval sends the first and the last only."""
    sent: list[int] = []
    last_sent = asyncio.Event()

    async def send(value: int) -> None:
        sent.append(value)
        if value == 9:
            last_sent.set()

    throttle = LatestWins(send, min_interval=0.05)
    for value in range(10):
        throttle.publish(value)
        await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await last_sent.wait()
    assert sent[0] == 0 and sent[-1] == 9
    assert len(sent) <= 3
    await throttle.close()


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Yield to the loop until ``condition()`` holds; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_latest_wins_skips_unchanged_values():
    """Publishing what was last sent sends nothing; the next new value still goes out."""
    sent: list[str] = []

    async def send(value: str) -> None:
        sent.append(value)

    throttle = LatestWins(send, min_interval=0.0)
    throttle.publish("queued")
    await until(lambda: sent == ["queued"])
    throttle.publish("queued")
    throttle.publish("generating")
    await until(lambda: len(sent) >= 2)
    # Values go out in order, so a re-sent "queued" would stand before "generating".
    assert sent == ["queued", "generating"]
    await throttle.close()


async def test_latest_wins_survives_a_failed_send():
    """A failing send is logged and the next value still goes out."""
    tried: list[int] = []
    sent: list[int] = []

    async def send(value: int) -> None:
        tried.append(value)
        if value == 1:
            raise RuntimeError("discord said no")
        sent.append(value)

    throttle = LatestWins(send, min_interval=0.0)
    throttle.publish(1)
    await until(lambda: tried == [1])
    throttle.publish(2)
    await until(lambda: tried == [1, 2])
    assert sent == [2]
    assert throttle.sent == 1
    await throttle.close()


async def test_latest_wins_close_waits_for_a_send_in_flight():
    """close() lets an edit already on its way finish (cut off, it could land after "done")."""
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def send(value: str) -> None:
        started.set()
        await release.wait()
        finished.append(value)

    throttle = LatestWins(send, min_interval=0.0)
    throttle.publish("downloading")
    async with asyncio.timeout(2):
        await started.wait()
    closing = asyncio.create_task(throttle.close())
    for _ in range(5):  # let close() run as far as it would without the send finishing
        await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    async with asyncio.timeout(2):
        await closing
    assert finished == ["downloading"]
