"""Videos a tool edits (Pikadditions, Pikaswaps), checked before anything is reserved or sent.

The provider downloads the source video itself, so it must be a URL the provider can fetch
(a Discord attachment, a video the bot posted, or an operator's URL) and really a video: its
first bytes are read with one ranged GET and must carry an MP4, MOV or WebM signature, and its
size must be under :data:`MAX_VIDEO_BYTES`. A byte sniff, not a decode: whether the provider
can use the frames inside is its own check (a failure there is refunded like any other).

From the terminal (:func:`video_input`) a local file is sent inline as a ``data:`` URI where
the provider takes one (fal's "Files" section: a file input takes a URL or a data URI).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

from bot.probe import ProbeFailed, read_head
from bot.refusals import RequestRefused

log = structlog.get_logger(__name__)

MAX_VIDEO_BYTES = 50 * 1024 * 1024
"""Choice: 50 MB. fal documents no limit for ``video_url``; Pika's tools work on clips of a
few seconds, which are far smaller, and the provider must download it before it starts."""
MAX_INLINE_VIDEO_BYTES = 20 * 1024 * 1024
"""Choice: a local file sent inline grows by a third as base64 inside one JSON request;
fal warns that large data URIs slow the request, so the terminal sends at most 20 MB so."""
HEAD_BYTES = 64
"""Enough for the ``ftyp`` box (bytes 4-12) and a WebM header's ``DocType`` element."""
PROBE_SECONDS = 2.0
"""Choice: as for images, within Discord's 3 s window to defer; the CDN answers at once."""
_KINDS = "MP4, MOV or WebM"


class VideoRefused(RequestRefused):
    """The source video cannot be used; ``user_message`` says why and what to do."""


def video_type(head: bytes) -> str | None:
    """The MIME type of an MP4, MOV or WebM file from its first bytes; None otherwise.

    ISO base media files (MP4, MOV) start with a box whose type, at bytes 4-8, is ``ftyp``;
    its brand ``qt  `` marks QuickTime. WebM is Matroska (EBML magic ``1A 45 DF A3``) whose
    ``DocType`` is ``webm``; other Matroska files are refused (Pika's tools take WebM only).
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return "video/webm"
    return None


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """A video a provider will download: its name as the member sees it, its URL, and its
    size where known in advance (a Discord attachment's; None: read from the server)."""

    name: str
    url: str
    size: int | None = None


async def check_remote_video(
    session: aiohttp.ClientSession,
    video: RemoteVideo,
    *,
    timeout: float = PROBE_SECONDS,  # noqa: ASYNC109 - one bound for the probe
) -> str:
    """``video``'s URL once its first bytes say it is a video of a usable size;
    :class:`VideoRefused` saying why not."""
    _check_size(video.name, video.size)
    try:
        async with asyncio.timeout(timeout):
            head = await read_head(session, video.url, HEAD_BYTES)
    except TimeoutError:
        log.warning("video.probe_timeout", timeout=timeout)
        raise VideoRefused(
            f"`{video.name}` took too long to open; please try again in a moment."
        ) from None
    except ProbeFailed as failed:
        log.warning("video.probe_refused", status=failed.status)  # never the (signed) URL
        raise VideoRefused(
            f"I could not open the video `{video.name}` (it may have expired or been"
            " deleted); post it again and retry."
        ) from None
    if video.size is None:
        _check_size(video.name, head.total)
    if not head.data:
        raise VideoRefused(f"`{video.name}` is empty: use an {_KINDS} video.")
    if video_type(head.data) is None:
        raise VideoRefused(
            f"`{video.name}` is not an {_KINDS} video (whatever its name says): use one of those."
        )
    return video.url


def _check_size(name: str, size: int | None) -> None:
    if size is None:
        return
    if size == 0:
        raise VideoRefused(f"`{name}` is empty: use an {_KINDS} video.")
    if size > MAX_VIDEO_BYTES:
        raise VideoRefused(
            f"`{name}` is {size / 1_048_576:.1f} MB; videos must be under"
            f" {MAX_VIDEO_BYTES // 1_048_576} MB."
        )


def video_input(value: str, *, data_uri_ok: bool, provider: str) -> str | RemoteVideo:
    """An operator's video argument: a URL as a :class:`RemoteVideo` to probe, a local file
    checked by its bytes and returned as ``data:<type>;base64,...`` (where ``data_uri_ok``);
    :class:`VideoRefused` otherwise. Nothing here touches the network."""
    text = value.strip()
    if text.lower().startswith(("http://", "https://")):
        return RemoteVideo(text.rsplit("/", 1)[-1].split("?", 1)[0] or "the video", text)
    path = Path(text).expanduser()
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise VideoRefused(f"The video {value} {what} (give a file or an https:// URL).")
    if not data_uri_ok:
        raise VideoRefused(
            f"{provider} takes videos only as URLs it can download: put {path.name} somewhere"
            " public and pass its https:// URL."
        )
    try:
        size = path.stat().st_size
        if size > MAX_INLINE_VIDEO_BYTES:
            raise VideoRefused(
                f"The video {path.name} is {size / 1_048_576:.1f} MB; a local file can be at"
                f" most {MAX_INLINE_VIDEO_BYTES // 1_048_576} MB (pass a URL for larger ones)."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise VideoRefused(f"Could not read the video {value}: {exc.strerror or exc}.") from None
    if not data:
        raise VideoRefused(f"The video {path.name} is empty.")
    kind = video_type(data[:HEAD_BYTES])
    if kind is None or len(data) > MAX_INLINE_VIDEO_BYTES:
        raise VideoRefused(f"The video {path.name} is not an {_KINDS} file of a usable size.")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
