"""Shared pieces of the benchmarks: result rows, percentiles, samplers and the bot stack.

Everything listens on or connects to 127.0.0.1 only: the provider fakes and the Discord
double from ``tests/fakes`` bind there, and the bot is pointed at them through its settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bot.config import LogFormat
from bot.logs import configure_logging
from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import GUILD_ID, DiscordDouble
from tests.fakes.fal import FakeFal

MiB = 1024 * 1024
FAL_KEY = "fal-bench-key"


@dataclass(frozen=True, slots=True)
class Config:
    """How a run is sized: ``quick`` shrinks every count for a smoke run."""

    quick: bool
    workdir: Path


@dataclass(slots=True)
class Row:
    """One line of the result table. ``met`` is None where no target applies."""

    bench: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        """``met``, ``MISSED`` or blank."""
        if self.met is None:
            return ""
        return "met" if self.met else "MISSED"


@dataclass(slots=True)
class Rows:
    """Rows collected by one benchmark, plus free-form notes printed under the table."""

    items: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, bench: str, figure: str, value: str, target: str = "", met: bool | None = None
    ) -> None:
        """Append a row."""
        self.items.append(Row(bench, figure, value, target, met))


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    """Seconds shown with three decimals."""
    return "n/a" if math.isnan(seconds) else f"{seconds:.3f} s"


def mb(size: float) -> str:
    """Bytes shown in MiB."""
    return f"{size / MiB:.1f} MiB"


def render(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = ("benchmark", "figure", "measured", "target", "verdict")
    lines = [(r.bench, r.figure, r.value, r.target, r.verdict) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=False)]

    def fmt(cells: Sequence[str]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def log_to_file(path: Path) -> None:
    """Configure the bot's logging (JSON, INFO, as in production) into ``path``.

    In-process benchmarks pay the real logging cost but keep it off the terminal.
    """
    configure_logging(level="INFO", fmt=LogFormat.JSON, secrets=(FAL_KEY,))
    root = logging.getLogger()
    formatter = root.handlers[0].formatter
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(formatter)
    root.handlers[:] = [handler]


class LoopLag:
    """Samples event-loop lag: how late a ``sleep(interval)`` wakes up, every ``interval``."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - start - self.interval))

    def start(self) -> None:
        """Begin sampling on the running loop."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RssSampler:
    """Samples a process's RSS from a thread every ``interval`` seconds (bounded by stop)."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.process.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def start(self) -> None:
        """Begin sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (waits for the thread, bounded)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def peak(self, since: float = 0.0) -> int:
        """The largest RSS sampled at or after ``since`` (monotonic)."""
        return max((rss for at, rss in self.samples if at >= since), default=0)


@dataclass(slots=True)
class BotStack:
    """The real bot process, the Discord double and FakeFal, all on loopback."""

    discord: DiscordDouble
    fal: FakeFal
    bot: BotProcess
    db: Path

    @property
    def pid(self) -> int:
        """The bot process's pid."""
        assert self.bot.process is not None
        return self.bot.process.pid


@contextlib.asynccontextmanager
async def bot_stack(workdir: Path, name: str, fal: FakeFal, **env: str) -> AsyncIterator[BotStack]:
    """Start ``pikabot run`` (via tests/fakes/bot_process.py) against a fresh double and
    ``fal`` (already running); stop it with SIGTERM on exit. ``env`` adds settings."""
    async with DiscordDouble() as discord:
        db = workdir / f"{name}.sqlite3"
        settings = {
            "DISCORD_TOKEN": discord.token,
            "FAL_KEY": FAL_KEY,
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(db),
            "PIKABOT_DEV_GUILD_ID": str(GUILD_ID),
            "PIKABOT_DEFAULT_ALLOWANCE": "1000000",
            **env,
        }
        bot = BotProcess(discord.rest_base, settings, workdir / f"{name}-bot.log")
        await bot.start()
        try:
            await discord.wait_ready(timeout=60)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=60)
            yield BotStack(discord, fal, bot, db)
        finally:
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await bot.stop(timeout=30)
