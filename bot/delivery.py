"""Fetching the finished video: streamed to a temporary file under a size cap.

The video is never held whole in memory; only one chunk is. Whether it is then attached or
linked is the front end's choice, from :attr:`DownloadedVideo.size` and its upload limit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

from bot.providers.errors import ProviderError, TransientError
from bot.providers.http import RetryPolicy, with_retries
from bot.redact import safe_url

log = structlog.get_logger(__name__)

CHUNK_BYTES = 256 * 1024


class DownloadFailed(ProviderError):
    """The video was made but could not be fetched."""

    user_message = "The finished video could not be downloaded from the video service."


class TooLarge(DownloadFailed):
    """The video is over the bot's download cap."""

    user_message = "The finished video is larger than this bot accepts."


@dataclass(frozen=True, slots=True)
class DownloadedVideo:
    """A video on local disk; delete it with :meth:`discard` once posted."""

    path: Path
    size: int
    content_type: str | None
    source_url: str

    @property
    def filename(self) -> str:
        """A file name for the upload."""
        return self.path.name

    def discard(self) -> None:
        """Remove the temporary file."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


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
    folder = Path(tempfile.mkdtemp(prefix="pikabot-", dir=directory))
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


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            child.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(folder)
