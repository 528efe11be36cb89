"""bot.video.probe on real files made with PyAV: what a clip is, and what is no clip at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.video.probe import MP4_DEMUXER, BrokenVideo, probe
from tests.fakes.media import corrupt, garbled, make_video, padded, tiny_video


def test_probe_faststart_h264_plays_inline(tmp_path: Path):
    """H.264 yuv420p MP4 with the index first: every fact read, and it plays as it is."""
    info = probe(make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1.0, fps=24))
    assert info.container == MP4_DEMUXER
    assert (info.video_codec, info.pixel_format) == ("h264", "yuv420p")
    assert (info.width, info.height) == (320, 180)
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.fps == pytest.approx(24.0)
    assert info.index_first is True
    assert info.audio_codec is None
    assert info.plays_inline
    assert info.size == (tmp_path / "a.mp4").stat().st_size


def test_probe_index_at_the_end_is_seen(tmp_path: Path):
    """Without faststart the MP4 index follows the media: not inline-ready."""
    info = probe(make_video(tmp_path / "late.mp4", faststart=False))
    assert info.index_first is False
    assert info.inline_codecs and not info.plays_inline
    assert "index at the end" in info.describe()


def test_probe_hevc_is_not_inline(tmp_path: Path):
    """HEVC (libx265, bundled with PyAV's FFmpeg) shows a still frame in Discord."""
    info = probe(make_video(tmp_path / "hevc.mp4", codec="libx265"))
    assert info.video_codec == "hevc"
    assert info.index_first is True
    assert not info.plays_inline
    assert info.describe() == "HEVC"


def test_probe_audio_track(tmp_path: Path):
    """An AAC track is found and keeps the clip inline-ready."""
    info = probe(make_video(tmp_path / "sound.mp4", audio=True))
    assert info.audio_codec == "aac"
    assert info.plays_inline


def test_probe_webm_vp9_is_not_mp4(tmp_path: Path):
    """VP9 in WebM is a video, but not the MP4 Discord plays."""
    info = probe(make_video(tmp_path / "clip.webm", codec="libvpx-vp9", container="webm"))
    assert info.video_codec == "vp9"
    assert not info.is_mp4 and info.index_first is None
    assert info.describe() == "VP9 in MATROSKA"


def test_probe_padded_clip_is_still_a_clip(tmp_path: Path):
    """The fakes' big videos (a clip and a ``free`` box) are real, playable clips."""
    path = tmp_path / "big.mp4"
    path.write_bytes(padded(tiny_video(), 3_000_000))
    info = probe(path)
    assert info.size == 3_000_000
    assert info.plays_inline


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("html", b"<html><body>502 Bad Gateway</body></html>"),
        ("noise", bytes(range(256)) * 40),
        ("empty-ftyp", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 1000),
        ("truncated", corrupt(tiny_video())),
        ("undecodable", garbled(tiny_video())),
    ],
)
def test_probe_refuses_what_is_no_playable_clip(name: str, data: bytes, tmp_path: Path):
    """Not a video, an MP4 shell with no media, a clip cut short, one whose pictures do not
    decode: BrokenVideo, with a member-safe message."""
    path = tmp_path / f"{name}.mp4"
    path.write_bytes(data)
    with pytest.raises(BrokenVideo) as raised:
        probe(path)
    assert "not a playable video" in raised.value.user_message


def test_probe_truncated_with_index_at_the_end(tmp_path: Path):
    """Cut short before its index (which came last): refused as no video."""
    whole = make_video(tmp_path / "late.mp4", faststart=False).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(corrupt(whole))
    with pytest.raises(BrokenVideo):
        probe(path)
