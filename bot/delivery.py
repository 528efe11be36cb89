"""Fetching the finished video: streamed to a temporary file under a size cap.

The video is never held whole in memory; only one chunk is. :mod:`bot.video` then makes
sure it fits the upload limit and plays inline (:attr:`DownloadedVideo.fitting` says what it
did); whether it is attached or linked is the front end's choice, from
:attr:`DownloadedVideo.size` and its upload limit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiohttp
import structlog

from bot.models import Job, OriginKind
from bot.providers.errors import ProviderError, TransientError
from bot.providers.http import RetryPolicy, with_retries
from bot.redact import safe_url

log = structlog.get_logger(__name__)

CHUNK_BYTES = 256 * 1024
FOLDER_PREFIX = "pikabot-"
"""Each download gets a temporary folder of its own, named so."""


class DownloadFailed(ProviderError):
    """The video was made but could not be fetched."""

    user_message = "The finished video could not be downloaded from the video service."


class TooLarge(DownloadFailed):
    """The video is over the bot's download cap."""

    user_message = "The finished video is larger than this bot accepts."


DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
"""Discord's per-attachment limit for bots in a guild without boosts."""
UPLOAD_LIMIT = "upload_limit"
"""``Job.extra`` key: the per-attachment limit in bytes the video must fit (Discord: the
interaction's ``attachment_size_limit``; ``pikabot generate --fit-discord``: ``--limit-mb``)."""


def attachment_limit(job: Job) -> int | None:
    """The bytes ``job``'s video may have as one attachment; None: any size (a terminal job
    without ``--fit-discord``). A Discord job with none stored gets Discord's default."""
    stored = job.extra.get(UPLOAD_LIMIT, "")
    if stored.isdigit() and int(stored) > 0:
        return int(stored)
    return DEFAULT_UPLOAD_LIMIT if job.origin.kind is OriginKind.DISCORD else None


def durable_link(url: str) -> bool:
    """Whether ``url`` may be shown to members as a lasting link to the original.

    Where the provider documents are silent on how long a file stays, a plain URL without a
    query is taken as durable: every signed or expiring URL the providers hand out (AIgateway,
    1min.ai's S3 links) carries its signature and expiry in the query, and a signature must
    never reach a message (:func:`bot.redact.safe_url` tells them apart the same way).
    """
    return url.startswith(("https://", "http://")) and safe_url(url) == url


class FitKind(StrEnum):
    """What was done to the video service's file before posting."""

    REPACKED = "repacked"  # the same picture in an MP4 with the index first
    REENCODED = "reencoded"  # a new H.264 version, under the limit
    UNFITTED = "unfitted"  # it needed fitting, but the fit failed or timed out


@dataclass(frozen=True, slots=True)
class Fitting:
    """How the posted file differs from the original, for the result message."""

    kind: FitKind
    original_size: int
    original_format: str
    """Member-safe ("HEVC", "H.264 with its index at the end")."""
    limit: int
    oversized: bool
    """The original was over ``limit`` (else it was changed only to play inline)."""
    full_quality_url: str | None = None
    """The original, where its URL is durable and unsigned (never a signed URL)."""
    width: int | None = None
    height: int | None = None

    def note(self, limit_name: str = "this server's upload limit") -> str:
        """One member-safe sentence for the result ("Re-encoded to fit …")."""
        original = f"the original is {_mb(self.original_size)}, {self.original_format}"
        if self.kind is FitKind.UNFITTED:
            why = (
                f"over {limit_name} of {_mb(self.limit)}"
                if self.oversized
                else f"{self.original_format}, which may not play here"
            )
            return (
                f"The video ({_mb(self.original_size)}) is {why}, and a version that plays"
                " here could not be made."
            )
        if self.kind is FitKind.REPACKED:
            return f"Repackaged so it plays here; the picture is untouched ({original})."
        size = f" at {self.width}x{self.height}" if self.width and self.height else ""
        if self.oversized:
            return f"Re-encoded{size} to fit {limit_name} of {_mb(self.limit)} ({original})."
        return f"Re-encoded{size} to H.264 so it plays here ({original})."


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True, slots=True)
class DownloadedVideo:
    """A video on local disk; delete it with :meth:`discard` once posted."""

    path: Path
    size: int
    content_type: str | None
    source_url: str
    fitting: Fitting | None = None
    """None: the video service's file as it came (it fits and plays)."""
    original: DownloadedVideo | None = None
    """The download a fitted file was made from (discarded with it)."""

    @property
    def filename(self) -> str:
        """A file name for the upload."""
        return self.path.name

    def discard(self) -> None:
        """Remove the temporary file (and the original, and their folder once empty)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.original is not None:
            self.original.discard()
        if self.path.parent.name.startswith(FOLDER_PREFIX):  # the download's own folder
            with contextlib.suppress(OSError):  # not empty (another file), or already gone
                self.path.parent.rmdir()


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    directory: Path | None = None,
    filename: str = "pika.mp4",
    retry: RetryPolicy | None = None,
) -> DownloadedVideo:
    """Stream ``url`` to a new temporary file; raise :class:`DownloadFailed` or ``TooLarge``."""

    async def attempt() -> DownloadedVideo:
        return await _download_once(session, url, max_bytes, directory, filename)

    return await with_retries(attempt, retry or RetryPolicy(attempts=3), idempotent=True)


async def _download_once(
    session: aiohttp.ClientSession,
    url: str,
    max_bytes: int,
    directory: Path | None,
    filename: str,
) -> DownloadedVideo:
    # The pid in the name lets a later start remove what a killed process left (sweep).
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=directory))
    path = folder / filename
    size = 0
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)
        async with session.get(url, timeout=timeout) as response:
            if response.status >= 500 or response.status == 429:
                raise TransientError(f"download answered {response.status}")
            if response.status != 200:
                raise DownloadFailed(f"download answered {response.status}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise TooLarge(f"declared {declared} bytes > cap {max_bytes}")
            # Plain writes: each is one chunk to the page cache, microseconds, so the event
            # loop is not held long enough to matter; a thread hop per chunk costs more.
            with path.open("wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"over the cap of {max_bytes} bytes")
                    out.write(chunk)
            content_type = response.headers.get("Content-Type")
    except (aiohttp.ClientError, TimeoutError) as exc:
        _remove(folder)
        raise TransientError(f"download of {safe_url(url)}: {type(exc).__name__}") from None
    except BaseException:
        _remove(folder)
        raise
    if size == 0:
        _remove(folder)
        raise DownloadFailed("the download was empty")
    log.info("video.downloaded", url=safe_url(url), bytes=size)
    return DownloadedVideo(path=path, size=size, content_type=content_type, source_url=url)


def sweep(directory: Path | None = None) -> int:
    """Remove the download folders of processes that are gone (killed mid-download or mid-fit:
    their job is downloaded again when it resumes); return how many. A folder whose process
    still runs (another bot, a ``pikabot generate``) is left alone."""
    root = Path(directory or tempfile.gettempdir())
    swept = 0
    try:
        folders = list(root.glob(f"{FOLDER_PREFIX}*-*"))
    except OSError:
        return 0
    for folder in folders:
        pid = folder.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            _remove(folder)
            swept += 1
    if swept:
        log.info("video.leftovers_swept", folders=swept, directory=str(root))
    return swept


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            child.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(folder)
