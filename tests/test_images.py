"""Images are checked by their bytes: members' attachments over HTTP before anything is
reserved; ``--image`` URLs pass through, local files become data URIs where allowed."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.images import (
    HEAD_BYTES,
    MAX_IMAGE_BYTES,
    ImageRefused,
    RemoteImage,
    check_remote_images,
    image_input,
    image_type,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "kind"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (b"GIF89a....", None)],
)
def test_image_type_by_magic_bytes(data: bytes, kind: str | None):
    assert image_type(data[:12]) == kind


def test_url_passes_through_for_every_provider():
    url = "https://cdn.example/first frame.png?sig=1"
    assert image_input(url, data_uri_ok=False, provider="pixazo") == url
    assert image_input(" HTTP://x.example/a.jpg ", data_uri_ok=True, provider="fal") == (
        "HTTP://x.example/a.jpg"
    )


@pytest.mark.parametrize(("data", "kind"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_local_file_becomes_a_data_uri(tmp_path: Path, data: bytes, kind: str):
    path = tmp_path / f"frame.{kind}"
    path.write_bytes(data)
    uri = image_input(str(path), data_uri_ok=True, provider="fal")
    prefix = f"data:image/{kind};base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri.removeprefix(prefix)) == data


def test_local_file_refused_where_only_urls_are_taken(tmp_path: Path):
    path = tmp_path / "frame.png"
    path.write_bytes(PNG)
    with pytest.raises(ImageRefused) as caught:
        image_input(str(path), data_uri_ok=False, provider="pixazo")
    assert "pixazo takes images only as URLs" in caught.value.user_message
    assert "https://" in caught.value.user_message


def test_missing_file_directory_wrong_type_and_too_big(tmp_path: Path):
    with pytest.raises(ImageRefused, match="does not exist"):
        image_input(str(tmp_path / "nope.png"), data_uri_ok=True, provider="fal")
    with pytest.raises(ImageRefused, match="not a file"):
        image_input(str(tmp_path), data_uri_ok=True, provider="fal")
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 64)
    with pytest.raises(ImageRefused, match="not a PNG, JPEG or WebP"):
        image_input(str(gif), data_uri_ok=True, provider="fal")
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * MAX_IMAGE_BYTES)
    with pytest.raises(ImageRefused, match="the limit is 10 MB"):
        image_input(str(big), data_uri_ok=True, provider="fal")
    exact = tmp_path / "exact.png"
    exact.write_bytes(PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG)))
    assert image_input(str(exact), data_uri_ok=True, provider="fal").startswith("data:image/png")


FILES = {
    "frame.png": PNG + b"\x00" * 4096,
    "photo.jpg": JPEG,
    "notes.png": b"just some text, not an image at all",
    "empty.png": b"",
    "anim.png": b"GIF89a" + b"\x00" * 64,
}


@dataclass
class Cdn:
    """A loopback stand-in for Discord's CDN and the Range headers it was asked for."""

    server: TestServer
    ranges: list[str | None] = field(default_factory=list)


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    """Serves ``FILES`` at ``/ok/<name>``; ``/slow/...`` never answers, ``/gone/...`` 404s."""
    ranges: list[str | None] = []
    never = asyncio.Event()

    async def serve(request: web.Request) -> web.StreamResponse:
        ranges.append(request.headers.get("Range"))
        if request.match_info["how"] == "slow":
            await never.wait()
        if request.match_info["how"] == "gone":
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=FILES[request.match_info["name"]])

    app = web.Application()
    app.router.add_get("/{how}/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Cdn(server, ranges)
    finally:
        never.set()
        await server.close()


def remote(cdn: Cdn, name: str, how: str = "ok", size: int | None = None) -> RemoteImage:
    url = str(cdn.server.make_url(f"/{how}/{name}"))
    return RemoteImage(name, url, len(FILES[name]) if size is None else size)


async def test_remote_images_pass_by_their_bytes(cdn: Cdn, session: aiohttp.ClientSession):
    """A PNG and a JPEG come back as their URLs; only their first bytes were asked for."""
    images = [remote(cdn, "frame.png"), remote(cdn, "photo.jpg")]
    assert await check_remote_images(session, images) == tuple(i.url for i in images)
    assert cdn.ranges == [f"bytes=0-{HEAD_BYTES - 1}"] * 2


@pytest.mark.parametrize(
    ("name", "size", "fragment"),
    [
        ("notes.png", None, "`notes.png` is not a PNG, JPEG or WebP image"),
        ("anim.png", None, "`anim.png` is not a PNG, JPEG or WebP image"),
        ("empty.png", None, "`empty.png` is empty"),
        ("empty.png", 1234, "`empty.png` is empty"),  # the declared size lies
        ("frame.png", MAX_IMAGE_BYTES + 1, "images must be under 10 MB"),
    ],
)
async def test_remote_image_refused_by_its_bytes(
    cdn: Cdn, session: aiohttp.ClientSession, name: str, size: int | None, fragment: str
):
    """Whatever the name or declared type, the bytes decide; a good image does not hide a
    bad one beside it."""
    with pytest.raises(ImageRefused) as refused:
        await check_remote_images(session, [remote(cdn, "frame.png"), remote(cdn, name, size=size)])
    assert fragment in refused.value.user_message


async def test_remote_image_unreachable_or_slow_is_refused(
    cdn: Cdn, session: aiohttp.ClientSession
):
    """A CDN that answers 404 or not at all is a refusal within the bound, not a hang."""
    with pytest.raises(ImageRefused, match="could not open `frame"):
        await check_remote_images(session, [remote(cdn, "frame.png", how="gone")])
    async with asyncio.timeout(5):
        with pytest.raises(ImageRefused, match="took too long"):
            await check_remote_images(session, [remote(cdn, "frame.png", how="slow")], timeout=0.2)
