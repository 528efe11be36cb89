"""The work after a first answer waits for the other first answers in flight (bounded)."""

from __future__ import annotations

import asyncio

from cogs.answers_first import AnswersFirst


async def test_work_waits_until_every_first_answer_in_flight_is_sent():
    gate = AnswersFirst()
    order: list[str] = []
    sent = asyncio.Event()

    async def slow_answer() -> None:
        async with gate.answering():
            await sent.wait()
            order.append("second member answered")

    async def first_member() -> None:
        async with gate.answering():
            order.append("first member answered")
        await gate.wait_turn(within=10)
        order.append("first member's work")

    other = asyncio.create_task(slow_answer())
    await asyncio.sleep(0)  # the second member's answer is in flight
    first = asyncio.create_task(first_member())
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["first member answered"] and gate.sending == 1
    sent.set()
    async with asyncio.timeout(5):
        await asyncio.gather(first, other)
    assert order == ["first member answered", "second member answered", "first member's work"]
    assert gate.sending == 0


async def test_work_waits_no_longer_than_its_bound():
    gate = AnswersFirst()
    never = asyncio.Event()

    async def stuck_answer() -> None:
        async with gate.answering():
            await never.wait()

    stuck = asyncio.create_task(stuck_answer())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await gate.wait_turn(within=0.01)  # returns although an answer is still in flight
    assert gate.sending == 1
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert gate.sending == 0
    await gate.wait_turn(within=10)  # idle: at once
