"""Images a clip starts from, checked by their bytes before anything is reserved or sent.

Two ways in:

* a member's Discord attachments (:func:`check_remote_images`): the declared type and file
  name prove nothing (a text file named ``.png``, a 0-byte file, GIF bytes labelled PNG), so
  the first bytes of each are downloaded, bounded in size and time, over the bot's HTTP
  session, and must be a PNG, JPEG or WebP;
* an operator's ``--image`` argument (:func:`image_input`): a URL is passed through as given
  (the provider downloads it); a local file is checked (it exists, is a PNG, JPEG or WebP by
  its first bytes, and is at most :data:`MAX_IMAGE_BYTES`) and sent inline as a base64
  ``data:`` URI, but only to providers whose documents say they take one
  (``Capabilities.data_uri_images``); the others need a URL, and the operator is told so.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

from bot.jobs import RequestRefused
from bot.probe import Head, ProbeFailed, read_head

log = structlog.get_logger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""Choice: 10 MB. fal warns that large inline files slow the request; Pika's own image
inputs are photos, well under this."""

_URL_SCHEMES = ("http://", "https://")
HEAD_BYTES = 16
"""How much of a remote image is read to tell its type (the signatures need 12 bytes)."""
PROBE_SECONDS = 2.0
"""Choice: all images of one command are probed at once within 2 s, which leaves room in
Discord's 3 s to reserve and answer. Discord's CDN answers a ranged GET in milliseconds."""


class ImageRefused(RequestRefused):
    """The image argument cannot be used; ``user_message`` says why and what to do."""


def image_type(head: bytes) -> str | None:
    """The MIME type of a PNG, JPEG or WebP file from its first 12 bytes; None otherwise."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_url(value: str) -> bool:
    """True for an ``http://`` or ``https://`` URL."""
    return value.strip().lower().startswith(_URL_SCHEMES)


def image_input(value: str, *, data_uri_ok: bool, provider: str) -> str:
    """``value`` as an image reference for ``provider``, or :class:`ImageRefused`.

    A URL comes back unchanged; a local file as ``data:<type>;base64,...`` when
    ``data_uri_ok``. Nothing here touches the network.
    """
    if is_url(value):
        return value.strip()
    path = Path(value).expanduser()
    if not path.exists():
        raise ImageRefused(f"The image {value} does not exist (give a file or an https:// URL).")
    if not path.is_file():
        raise ImageRefused(f"The image {value} is not a file.")
    if not data_uri_ok:
        raise ImageRefused(
            f"{provider} takes images only as URLs it can download: put {path.name} somewhere"
            " public and pass its https:// URL to --image."
        )
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageRefused(
                f"The image {path.name} is {size / 1_048_576:.1f} MB; the limit is"
                f" {MAX_IMAGE_BYTES // 1_048_576} MB."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRefused(f"Could not read the image {value}: {exc.strerror or exc}.") from None
    if len(data) > MAX_IMAGE_BYTES:  # it grew after the stat
        raise ImageRefused(
            f"The image {path.name} is over the {MAX_IMAGE_BYTES // 1_048_576} MB limit."
        )
    kind = image_type(data[:12])
    if kind is None:
        raise ImageRefused(f"The image {path.name} is not a PNG, JPEG or WebP file.")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class RemoteImage:
    """An image a provider will download: its name as the member sees it, URL and size
    (None: not known before it is read, like a URL a member typed)."""

    name: str
    url: str
    size: int | None


async def check_remote_images(
    session: aiohttp.ClientSession,
    images: Sequence[RemoteImage],
    *,
    timeout: float = PROBE_SECONDS,  # noqa: ASYNC109 - one bound for every download
) -> tuple[str, ...]:
    """The URLs of ``images`` once each is known to be a PNG, JPEG or WebP of a usable size
    by its first bytes; :class:`ImageRefused` naming the first that is not."""
    for image in images:
        _check_size(image)
    try:
        async with asyncio.timeout(timeout):
            heads = await asyncio.gather(*(_head(session, image) for image in images))
    except TimeoutError:
        log.warning("image.probe_timeout", images=len(images), timeout=timeout)
        raise ImageRefused(
            "Discord took too long to let me look at your image; please try again."
        ) from None
    for image, head in zip(images, heads, strict=True):
        if isinstance(head, ImageRefused):
            raise head
        if image.size is None and head.total is not None:
            _check_size(RemoteImage(image.name, image.url, head.total))
        if not head.data:
            raise ImageRefused(f"`{image.name}` is empty: send a PNG, JPEG or WebP image.")
        if image_type(head.data[:12]) is None:
            raise ImageRefused(
                f"`{image.name}` is not a PNG, JPEG or WebP image (whatever its name says):"
                " send one of those."
            )
    return tuple(image.url for image in images)


def _check_size(image: RemoteImage) -> None:
    if image.size is None:
        return
    if image.size == 0:
        raise ImageRefused(f"`{image.name}` is empty: send a PNG, JPEG or WebP image.")
    if image.size > MAX_IMAGE_BYTES:
        raise ImageRefused(
            f"`{image.name}` is {image.size / 1_048_576:.1f} MB;"
            f" images must be under {MAX_IMAGE_BYTES // 1_048_576} MB."
        )


async def _head(session: aiohttp.ClientSession, image: RemoteImage) -> Head | ImageRefused:
    """The first :data:`HEAD_BYTES` of ``image`` (fewer if it is shorter), or why not.

    The refusal is returned, not raised, so that one failed download does not leave the
    others of the same command running unawaited.
    """
    try:
        return await read_head(session, image.url, HEAD_BYTES)
    except ProbeFailed as failed:
        # The URL is signed: log only the kind of failure, never the URL.
        log.warning("image.probe_refused", status=failed.status)
        if failed.status is None:
            return ImageRefused(f"I could not open `{image.name}`; please try again.")
        return ImageRefused(f"I could not open `{image.name}`; please attach it again.")
