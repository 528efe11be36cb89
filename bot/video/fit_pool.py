"""Running fits off the event loop: worker processes, a line with places, a time limit.

A :class:`FitPool` owns a ``ProcessPoolExecutor`` of ``os.cpu_count()`` worker processes
(started on first use, with ``spawn``: no fork of a threaded event loop), of which at most
``concurrency`` fit at once; the others wait in a first-come :class:`FitLine` and are told
their place whenever it changes. Workers run at a lower CPU priority (``nice``), so the bot
itself (interactions must be answered within 3 s) always gets the processor first.

Every fit ends, one way or another, within its time limit:

* the worker checks before each frame whether its time is up, whether it was asked to stop
  (a flag per running place, in memory shared with the workers), or whether the bot that
  started it is gone (its parent changed), and then stops and removes its output;
* a worker still busy :data:`STOP_GRACE` seconds past its time limit (counted from when it
  began, which it writes in shared memory too), or that does not answer a stop within that
  grace (stuck inside FFmpeg), is killed with the pool, which starts again for the next fit;
* the output file is removed here too whenever a fit does not succeed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import structlog

from bot.video.fit import FitError, FitOutput, FitStopped, fit_file
from bot.video.plan import FitPlan
from bot.video.probe import VideoInfo

log = structlog.get_logger(__name__)

STOP_GRACE = 10.0
"""Seconds a worker gets to notice a stop (it checks before every frame) before it is killed."""
START_GRACE = 30.0
"""Seconds a fit may wait for its worker to begin (a new worker process starts, imports PyAV)
before it counts as stuck."""
WORKER_NICENESS = 10
"""How much lower the workers' CPU priority is than the bot's."""

PositionCallback = Callable[[int | None], None]
"""Told the number of fits ahead in line (0: next), then None once this one runs."""


class FitFailed(Exception):
    """The fit did not produce a file: an encoder error, a crashed worker, or still too big."""


class FitTimedOut(FitFailed):
    """The fit ran out of its time limit and was stopped."""


class _Waiter:
    """One fit waiting for a place: how to tell it its place, and where to hand the place."""

    def __init__(self, on_position: PositionCallback) -> None:
        self.on_position = on_position
        self.turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()


class FitLine:
    """``slots`` places to fit in, handed out first come, first served, with places shown."""

    def __init__(self, slots: int) -> None:
        self._free = list(range(slots - 1, -1, -1))
        self._waiting: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        """Fits waiting for a place."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self, on_position: PositionCallback) -> AsyncIterator[int]:
        """Wait for a place (its number is yielded); hand it on when the block ends."""
        if self._free and not self._waiting:
            slot = self._free.pop()
        else:
            waiter = _Waiter(on_position)
            self._waiting.append(waiter)
            on_position(len(self._waiting) - 1)
            try:
                slot = await waiter.turn
            except asyncio.CancelledError:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                    self._announce()
                elif waiter.turn.done() and not waiter.turn.cancelled():
                    self._release(waiter.turn.result())  # handed over as it was cancelled
                raise
        on_position(None)
        try:
            yield slot
        finally:
            self._release(slot)

    def _release(self, slot: int) -> None:
        if self._waiting:
            self._waiting.popleft().turn.set_result(slot)
            self._announce()
        else:
            self._free.append(slot)

    def _announce(self) -> None:
        for ahead, waiter in enumerate(self._waiting):
            waiter.on_position(ahead)


class FitPool:
    """Fits clips in worker processes: at most ``concurrency`` at once, each within ``timeout``."""

    def __init__(
        self,
        *,
        concurrency: int,
        timeout: float,
        workers: int | None = None,
        stop_grace: float = STOP_GRACE,
        start_grace: float = START_GRACE,
    ) -> None:
        """``workers`` defaults to ``os.cpu_count()``; ``concurrency`` is capped by it.
        ``stop_grace``: seconds a worker gets to stop before it is killed; ``start_grace``:
        seconds it may take to begin."""
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.stop_grace = stop_grace
        self.start_grace = start_grace
        self.concurrency = max(1, min(concurrency, self.workers))
        self.timeout = timeout
        self.threads = max(1, (os.cpu_count() or 1) // self.concurrency)
        """x264 threads per fit: the machine's cores shared between the fits at once."""
        self.line = FitLine(self.concurrency)
        self._context = multiprocessing.get_context("spawn")
        self._flags: Any = None  # multiprocessing.Array of stop flags, one per place
        self._begun: Any = None  # multiprocessing.Array: when each place's worker began
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._closed:
            raise FitFailed("the fit pool is closed")
        if self._executor is None:
            self._flags = self._context.Array("b", self.concurrency, lock=False)
            self._begun = self._context.Array("d", self.concurrency, lock=False)
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=self._context,
                initializer=_start_worker,
                initargs=(self._flags, self._begun, os.getpid()),
            )
        return self._executor

    async def fit(
        self,
        source: Path,
        output: Path,
        plan: FitPlan,
        info: VideoInfo,
        on_position: PositionCallback,
    ) -> FitOutput:
        """Wait in line, then make ``output``; raise :class:`FitFailed` or ``FitTimedOut``.

        Cancelling the caller stops the worker (bounded by :data:`STOP_GRACE`) before the
        place is handed on, so no more than ``concurrency`` fits ever run.
        """
        async with self.line.turn(on_position) as slot:
            pool = self._pool()
            self._flags[slot], self._begun[slot] = 0, 0.0
            job = pool.submit(
                _work, str(source), str(output), plan, info, slot, self.timeout, self.threads
            )
            running = asyncio.wrap_future(job)
            running.add_done_callback(_retrieved)  # also once nobody waits for it any more
            try:
                return await self._watch(slot, running)
            except FitStopped:
                raise FitTimedOut(f"over the time limit of {self.timeout:.0f} s") from None
            except TimeoutError:
                log.warning("video.fit_stuck", timeout=self.timeout)
                await self._stop(slot, running, pool)
                raise FitTimedOut(f"stuck past the time limit of {self.timeout:.0f} s") from None
            except (FitError, BrokenProcessPool, OSError) as exc:
                raise FitFailed(f"{type(exc).__name__}: {exc}") from None
            except asyncio.CancelledError:
                await self._stop(slot, running, pool)
                raise
            except Exception as exc:  # an FFmpeg error inside the worker, and the like
                raise FitFailed(f"{type(exc).__name__}: {exc}") from None
            finally:
                if not running.done() or running.cancelled() or running.exception():
                    _remove(output)

    async def _watch(self, slot: int, running: asyncio.Future[FitOutput]) -> FitOutput:
        """The worker's result; TimeoutError once it is ``stop_grace`` past its time limit,
        or has not begun within ``start_grace``.

        The limit counts from when the worker began (it writes the moment, on the machine's
        monotonic clock, which all processes share).
        """
        submitted = time.monotonic()
        while True:
            begun = self._begun[slot]
            if begun:
                remaining = begun + self.timeout + self.stop_grace - time.monotonic()
            else:
                remaining = submitted + self.start_grace - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({running}, timeout=min(remaining, 1.0))
            if done:
                return running.result()

    async def _stop(
        self,
        slot: int,
        running: asyncio.Future[FitOutput],
        pool: concurrent.futures.ProcessPoolExecutor,
    ) -> None:
        """Ask the worker in ``slot`` to stop; kill the pool if it does not within the grace."""
        self._flags[slot] = 1
        done, _ = await asyncio.wait({running}, timeout=self.stop_grace)
        if done:
            return
        log.warning("video.fit_worker_killed", slot=slot)
        self._kill(pool)

    def _kill(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        # The executor has no public way to end a running task; its processes are killed
        # directly and a new pool starts on the next fit.
        processes = dict(getattr(pool, "_processes", None) or {})
        for process in processes.values():
            with contextlib.suppress(Exception):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._executor is pool:
            self._executor = None

    async def close(self) -> None:
        """Stop every running fit and the workers (bounded); the pool takes no more fits."""
        self._closed = True
        pool, self._executor = self._executor, None
        if pool is None:
            return
        for slot in range(self.concurrency):
            self._flags[slot] = 1
        try:
            await asyncio.wait_for(
                asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True), self.stop_grace
            )
        except TimeoutError:
            self._kill(pool)


def _retrieved(future: asyncio.Future[FitOutput]) -> None:
    if not future.cancelled():
        future.exception()


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# -- inside a worker process ---------------------------------------------------------------

_flags: Any = None
_begun: Any = None
_parent = 0


def _start_worker(flags: Any, begun: Any, parent: int) -> None:
    """Worker set-up: the stop flags, the parent to outlive never, a lower priority."""
    global _flags, _begun, _parent
    _flags, _begun, _parent = flags, begun, parent
    # Ctrl-C in `pikabot generate` reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _work(
    source: str,
    output: str,
    plan: FitPlan,
    info: VideoInfo,
    slot: int,
    timeout: float,
    threads: int,
) -> FitOutput:
    _begun[slot] = started = time.monotonic()
    deadline = started + timeout

    def should_stop() -> bool:
        return bool(_flags[slot]) or time.monotonic() > deadline or os.getppid() != _parent

    return fit_file(
        Path(source), Path(output), plan, info, should_stop=should_stop, threads=threads
    )
