"""Source videos for Pikadditions and Pikaswaps: told apart by their first bytes over a real
socket (a ranged GET), sizes capped, local files inlined for the terminal; and the guard that
keeps a member's typed URL off the bot's own network."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.probe import public_url_problem
from bot.videos import (
    MAX_INLINE_VIDEO_BYTES,
    MAX_VIDEO_BYTES,
    RemoteVideo,
    VideoRefused,
    check_remote_video,
    video_input,
    video_type,
)
from tests.fakes._loopback import DEFAULT_VIDEO
from tests.fakes.fal import FakeFal

MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00" * 40
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 40
MKV = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska" + b"\x00" * 40


@pytest.fixture
async def host() -> AsyncIterator[FakeFal]:
    async with FakeFal() as server:
        yield server


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (DEFAULT_VIDEO, "video/mp4"),
        (MOV, "video/quicktime"),
        (WEBM, "video/webm"),
        (MKV, None),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, None),
        (b"GIF89a", None),
        (b"", None),
    ],
)
def test_video_type_by_signature(head: bytes, kind: str | None) -> None:
    """MP4/MOV by their ``ftyp`` box, WebM by its EBML header and DocType; nothing else."""
    assert video_type(head) == kind


async def test_remote_video_passes_by_its_bytes(
    host: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A video whose size is unknown in advance: read by its first bytes and its length."""
    url = host.host_file("clip.webm", WEBM, "application/octet-stream")
    assert await check_remote_video(session, RemoteVideo("clip.webm", url)) == url


async def test_remote_non_video_is_refused_whatever_its_name(
    host: FakeFal, session: aiohttp.ClientSession
) -> None:
    """A PNG named .mp4 is not a video."""
    url = host.host_file("fake.mp4", b"\x89PNG\r\n\x1a\n" + b"\x00" * 80, "video/mp4")
    with pytest.raises(VideoRefused, match=r"`fake.mp4` is not an MP4, MOV or WebM video"):
        await check_remote_video(session, RemoteVideo("fake.mp4", url, 88))


async def test_remote_video_size_caps(host: FakeFal, session: aiohttp.ClientSession) -> None:
    """Declared sizes are capped before any request; a server's length is checked after."""
    url = host.host_file("big.mp4", DEFAULT_VIDEO)
    with pytest.raises(VideoRefused, match="videos must be under 50 MB"):
        await check_remote_video(session, RemoteVideo("big.mp4", url, MAX_VIDEO_BYTES + 1))
    with pytest.raises(VideoRefused, match="is empty"):
        await check_remote_video(session, RemoteVideo("none.mp4", url, 0))
    assert host.count("hosted") == 0  # refused before anything was fetched


async def test_gone_video_is_a_friendly_refusal(
    host: FakeFal, session: aiohttp.ClientSession
) -> None:
    """An expired or deleted file says to post it again; the URL is never in the message."""
    url = f"{host.url}/files/inputs/expired.mp4?ex=1&hm=secret"
    with pytest.raises(VideoRefused) as caught:
        await check_remote_video(session, RemoteVideo("expired.mp4", url))
    assert "post it again" in caught.value.user_message
    assert "secret" not in caught.value.user_message


async def test_a_redirect_is_not_followed(host: FakeFal, session: aiohttp.ClientSession) -> None:
    """A URL that redirects (say, from a public address into the bot's network) fails the
    probe instead of being followed."""
    target = host.host_file("clip.mp4", DEFAULT_VIDEO)

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound(target)

    app = web.Application()
    app.router.add_get("/go", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(VideoRefused, match="could not open the video"):
            await check_remote_video(session, RemoteVideo("go", f"http://127.0.0.1:{port}/go"))
    finally:
        await runner.cleanup()
    assert host.count("hosted") == 0


def test_local_video_is_inlined_where_the_provider_takes_data_uris(tmp_path: Path) -> None:
    """A local MP4 becomes a data URI; a URL is left to probe; others are refused clearly."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(DEFAULT_VIDEO)
    inline = video_input(str(clip), data_uri_ok=True, provider="fal")
    assert isinstance(inline, str) and inline.startswith("data:video/mp4;base64,")
    assert base64.b64decode(inline.partition(",")[2]) == DEFAULT_VIDEO
    remote = video_input("https://cdn.example/v/clip.mp4?sig=1", data_uri_ok=True, provider="fal")
    assert remote == RemoteVideo("clip.mp4", "https://cdn.example/v/clip.mp4?sig=1")
    with pytest.raises(VideoRefused, match="takes videos only as URLs"):
        video_input(str(clip), data_uri_ok=False, provider="pixazo")
    with pytest.raises(VideoRefused, match="does not exist"):
        video_input(str(tmp_path / "nope.mp4"), data_uri_ok=True, provider="fal")
    text = tmp_path / "notes.mp4"
    text.write_text("hello, not a video")
    with pytest.raises(VideoRefused, match="not an MP4, MOV or WebM file"):
        video_input(str(text), data_uri_ok=True, provider="fal")
    big = tmp_path / "big.mp4"
    big.write_bytes(DEFAULT_VIDEO + b"\x00" * MAX_INLINE_VIDEO_BYTES)
    with pytest.raises(VideoRefused, match="at most 20 MB"):
        video_input(str(big), data_uri_ok=True, provider="fal")


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:8080/x.png", "private networks"),
        ("http://localhost/x.png", "private networks"),
        ("https://10.1.2.3/x.png", "private networks"),
        ("http://169.254.169.254/latest/meta-data", "private networks"),
        ("https://[::1]/x.png", "private networks"),
        ("ftp://example.com/x.png", "https://"),
        ("cat.png", "https://"),
        ("https://93.184.216.34/cat.png", None),
    ],
)
async def test_typed_urls_must_lead_to_the_public_internet(url: str, refused: str | None) -> None:
    """A member's URL is sniffed by the bot, so it must not point into the bot's network."""
    problem = await public_url_problem(url)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem
