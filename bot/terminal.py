"""The terminal front end of a job (``pikabot generate``): a live status line and a file."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from bot.delivery import DownloadedVideo
from bot.models import Job, JobState, Progress

_WORDS = {
    JobState.PENDING: "starting",
    JobState.SUBMITTING: "sending",
    JobState.QUEUED: "queued",
    JobState.GENERATING: "generating",
    JobState.DOWNLOADING: "downloading",
    JobState.POSTING: "saving",
}


class TerminalObserver:
    """Prints the job's progress to ``stream`` and saves the video to ``out``."""

    def __init__(self, out: Path, stream: TextIO = sys.stderr) -> None:
        self.out = out
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self.error: str | None = None

    def _line(self, text: str, *, final: bool = False) -> None:
        elapsed = time.monotonic() - self._started
        text = f"[{elapsed:5.0f}s] {text}"
        if self._tty:
            width = shutil.get_terminal_size((80, 20)).columns
            self._stream.write("\r" + text[: width - 1].ljust(width - 1) + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    async def progress(self, job: Job, progress: Progress) -> None:
        """Update the status line."""
        text = _WORDS.get(progress.state, progress.state.value)
        if progress.state is JobState.QUEUED and progress.queue_position is not None:
            text += f" (position {progress.queue_position + 1})"
        self._line(text)

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Move the downloaded file to ``out``."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(video.path, self.out)
        self._line(
            f"saved {self.out} ({video.size / 1_048_576:.1f} MB, seed {job.request.seed})",
            final=True,
        )
        return None

    async def already_delivered(self, job: Job) -> int | None:
        """A terminal run is never resumed elsewhere."""
        return None

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """The "saved" line was printed when the file was moved: nothing more to show."""

    async def failed(self, job: Job, reason: str) -> None:
        """Print the reason."""
        self.error = reason
        self._line(f"failed: {reason}", final=True)
