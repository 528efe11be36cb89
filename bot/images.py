"""An operator's ``--image`` argument (a URL or a local file) as something a provider accepts.

A URL is passed through as given: the provider downloads it. A local file is checked (it
exists, is a PNG, JPEG or WebP image by its first bytes, and is at most
:data:`MAX_IMAGE_BYTES`) and sent inline as a base64 ``data:`` URI, but only to providers whose
documents say they take one (``Capabilities.data_uri_images``); the others need a URL, and the
operator is told so before anything is reserved or sent.
"""

from __future__ import annotations

import base64
from pathlib import Path

from bot.jobs import RequestRefused

MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""Choice: 10 MB. fal warns that large inline files slow the request; Pika's own image
inputs are photos, well under this."""

_URL_SCHEMES = ("http://", "https://")


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
