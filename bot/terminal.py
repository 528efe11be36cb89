"""The terminal front end of a job (``pikabot generate``): a live status line and a file.

On a terminal, rich draws one live line (spinner, state, queue position, elapsed time that
ticks on its own) and log lines are printed above it, never glued onto it. Where stderr is
not a terminal (a pipe, CI, tests) each change of state is one plain line, without control
codes. A terminal job whose ``generate`` process is gone is carried on by
:class:`HeadlessObserver`, which only saves the file and logs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import structlog
from rich.console import Console
from rich.filesize import decimal
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from bot.delivery import DownloadedVideo
from bot.models import Job, JobState, Progress
from bot.providers.errors import AuthenticationError

log = structlog.get_logger(__name__)

OUT = "out"
"""``Job.extra`` key: the absolute path a terminal job's video is saved to."""

_WORDS = {
    JobState.PENDING: "starting",
    JobState.SUBMITTING: "sending",
    JobState.QUEUED: "queued",
    JobState.GENERATING: "generating",
    JobState.DOWNLOADING: "downloading",
    JobState.FITTING: "making it fit Discord",
    JobState.POSTING: "saving",
}


def describe(progress: Progress) -> str:
    """A job's state in words, with its queue position where known ("queued, position 2")."""
    text = _WORDS.get(progress.state, progress.state.value)
    if progress.queue_position is not None and progress.state in (
        JobState.PENDING,
        JobState.QUEUED,
        JobState.FITTING,
    ):
        text += f", position {progress.queue_position + 1}"
    return text


def save(video: DownloadedVideo, out: Path) -> None:
    """Move the downloaded file to ``out`` (creating its folder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(video.path, out)


class TerminalObserver:
    """Shows one job on ``console`` (stderr by default) and saves the video to ``out``.

    Use it as a context manager: the live line runs between enter and exit.
    ``key_settings`` maps a provider's name to the setting that holds its key, so a refused
    key is reported as the operator fixes it (``FAL_KEY``), not in a member's words.
    """

    def __init__(
        self,
        out: Path,
        *,
        console: Console | None = None,
        key_settings: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.console = console or Console(stderr=True)
        self.error: str | None = None
        self._key_settings = dict(key_settings or {})
        self._clock = clock
        self._started = clock()
        self._live = self.console.is_terminal
        self._last: str | None = None
        self._bar = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            get_time=clock,
            redirect_stdout=True,
            redirect_stderr=True,  # stray prints and log lines go above the live line
        )
        self._task = self._bar.add_task(_WORDS[JobState.PENDING], total=None)

    def __enter__(self) -> TerminalObserver:
        if self._live:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Remove the live line (idempotent); what is printed next stands on its own line."""
        if self._live:
            self._bar.stop()
            self._live = False

    def refresh(self) -> None:
        """Redraw the live line now (it also redraws itself, several times a second)."""
        if self._live:
            self._bar.refresh()

    def _show(self, text: str) -> None:
        if self._live:
            self._bar.update(self._task, description=text)
        elif text != self._last:
            self._print(f"[{self._clock() - self._started:5.0f}s] {text}")
        self._last = text

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    async def progress(self, job: Job, progress: Progress) -> None:
        """Update the status line."""
        self._show(describe(progress))

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Move the downloaded (or fitted) file to ``out``; say what fitting did to it."""
        save(video, self.out)
        self.stop()
        self._print(f"saved {self.out} ({decimal(video.size)}, seed {job.request.seed})")
        if video.fitting is not None:
            self._print(video.fitting.note("the upload limit"))
            if video.fitting.full_quality_url:
                self._print(f"full quality: {video.fitting.full_quality_url}")
        return None

    async def already_delivered(self, job: Job) -> int | None:
        """Nothing was posted anywhere: after a restart the video is fetched again."""
        return None

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """The "saved" line was printed when the file was moved: nothing more to show."""

    async def failed(self, job: Job, reason: str) -> None:
        """Print the reason, in the operator's terms."""
        if reason == AuthenticationError.user_message:
            setting = self._key_settings.get(job.provider, "the provider's key setting")
            reason = f"{job.provider} refused the key in {setting}: set {setting} to a valid key."
        self.error = reason
        self.stop()
        self._print(f"failed: {reason}")


class HeadlessObserver:
    """Finishes a terminal job whose ``generate`` is gone: saves its file, logs, shows nothing.

    The file is the one the job was started with (``Job.extra["out"]``); if it cannot be
    written there the video is still charged (the provider made and billed it) and the
    failure is logged with the path.
    """

    async def progress(self, job: Job, progress: Progress) -> None:
        """Nobody watches: nothing to show."""

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Save the video where the terminal run meant to."""
        out = job.extra.get(OUT)
        if out is None:
            log.warning("terminal.video_not_saved", job_id=job.id, reason="no output path")
            return None
        try:
            save(video, Path(out))
        except OSError as exc:
            log.warning("terminal.video_not_saved", job_id=job.id, path=out, error=str(exc))
            return None
        log.info("terminal.video_saved", job_id=job.id, path=out, size=video.size)
        return None

    async def already_delivered(self, job: Job) -> int | None:
        """Nothing was posted anywhere: the video is fetched again."""
        return None

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """Nobody watches: the saved file is the whole result."""

    async def failed(self, job: Job, reason: str) -> None:
        """Log the user-safe reason."""
        log.warning("terminal.job_failed", job_id=job.id, reason=reason)


def headless(job: Job) -> HeadlessObserver:
    """The observer :class:`~bot.jobs.JobService` resumes a left-over terminal job with."""
    return HeadlessObserver()
