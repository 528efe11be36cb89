"""``pikabot generate``'s terminal front end: a live line that ticks, logs above it, plain
lines where stderr is no terminal, sizes in human units."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from bot.clock import utcnow
from bot.config import LogFormat
from bot.delivery import DownloadedVideo
from bot.logs import configure_logging
from bot.models import GenerationRequest, Job, JobState, Origin, Progress
from bot.terminal import TerminalObserver

CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def a_job() -> Job:
    now = utcnow()
    return Job(
        id=1,
        origin=Origin.terminal(),
        request=GenerationRequest(prompt="a fox", seed=5),
        provider="fal",
        cost=20,
        reservation_id=None,
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
    )


def segments(output: str) -> list[str]:
    """What a terminal shows line by line, roughly: control codes dropped, split at CR/LF."""
    return [part for part in re.split(r"[\r\n]", CONTROL.sub("\n", output)) if part.strip()]


async def test_live_line_elapsed_ticks_between_states(tmp_path: Path):
    """On a terminal the elapsed time moves on while the state stays the same."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80, color_system=None)
    clock = Clock()
    with TerminalObserver(tmp_path / "x.mp4", console=console, clock=clock) as observer:
        await observer.progress(a_job(), Progress(JobState.QUEUED, queue_position=1))
        observer.refresh()
        clock.now += 7
        observer.refresh()  # no new state: only the time passed
    shown = segments(screen.getvalue())
    assert any("queued, position 2" in s and "0:00:00" in s for s in shown), shown
    assert any("queued, position 2" in s and "0:00:07" in s for s in shown), shown


async def test_log_lines_print_above_the_live_line(tmp_path: Path):
    """A log record during the live line stands on its own line, whole."""
    configure_logging(level="INFO", fmt=LogFormat.JSON)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=400, color_system=None)
    with TerminalObserver(tmp_path / "x.mp4", console=console, clock=Clock()) as observer:
        await observer.progress(a_job(), Progress(JobState.QUEUED, queue_position=0))
        observer.refresh()
        structlog.get_logger("t").warning("terminal.test_event", detail="above")
        observer.refresh()
    logged = [s for s in segments(screen.getvalue()) if "terminal.test_event" in s]
    assert logged, screen.getvalue()
    for line in logged:
        assert "queued" not in line
        assert json.loads(line)["detail"] == "above"


async def test_plain_lines_without_a_terminal(tmp_path: Path):
    """Not a terminal: one plain line per change, no control codes, sizes in human units."""
    stream = io.StringIO()
    console = Console(file=stream, width=80)
    clock = Clock()
    job = a_job()
    video = tmp_path / "download.mp4"
    video.write_bytes(b"\x00" * 1500)
    out = tmp_path / "clips" / "fox.mp4"
    with TerminalObserver(out, console=console, clock=clock) as observer:
        await observer.progress(job, Progress(JobState.PENDING))
        clock.now += 3
        await observer.progress(job, Progress(JobState.QUEUED, queue_position=0))
        await observer.progress(job, Progress(JobState.QUEUED, queue_position=0))  # same
        clock.now += 9
        await observer.delivered(job, DownloadedVideo(video, 1500, "video/mp4", "http://x/v"))
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == [
        "[    0s] starting",
        "[    3s] queued, position 1",
        f"saved {out} (1.5 kB, seed 5)",
    ]
    assert out.read_bytes() == b"\x00" * 1500
