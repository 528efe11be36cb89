"""Real video files, made with PyAV for the tests and the fakes, and checks on what was posted.

Pictures are a moving pattern over noise, so the encoders have real work and the sizes are
steered by the bitrate asked for. Everything here is small unless asked otherwise: a default
clip is 320x180, 1 s, a few KB to a few hundred KB, made in tens of milliseconds.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

MiB = 1024 * 1024
QUIET = {"x264-params": "log-level=none", "x265-params": "log-level=none"}


def make_video(
    path: Path,
    *,
    codec: str = "libx264",
    width: int = 320,
    height: int = 180,
    seconds: float = 1.0,
    fps: int = 24,
    bit_rate: int | None = None,
    audio: bool = False,
    faststart: bool = True,
    pixel_format: str = "yuv420p",
    container: str | None = None,
    preset: str = "ultrafast",
) -> Path:
    """Write a clip to ``path`` and return it; ``bit_rate`` None leaves the encoder's default.

    ``faststart=False`` leaves the MP4 index at the end (FFmpeg's default).
    """
    options = {"movflags": "+faststart"} if faststart and path.suffix == ".mp4" else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pixel_format
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        opts = {"preset": preset} if codec in ("libx264", "libx265") else {}
        if codec == "libx264":
            opts["x264-params"] = QUIET["x264-params"]
        if codec == "libx265":
            opts["x265-params"] = QUIET["x265-params"]
        stream.options = opts
        sound = out.add_stream("aac", rate=48_000) if audio else None
        if sound is not None:
            sound.codec_context.layout = "stereo"
        noise = os.urandom(width * height * 2)
        frames = round(seconds * fps)
        for index in range(frames):
            frame = av.VideoFrame(width, height, pixel_format)
            for number, plane in enumerate(frame.planes):
                size = plane.buffer_size
                if number == 0:
                    start = (index * 7919) % (len(noise) - size) if len(noise) > size else 0
                    data = noise[start : start + size]
                    data = data + bytes(size - len(data))
                else:
                    data = bytes([(index * 5 + number * 60) % 256]) * size
                plane.update(data)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            _tone(out, sound, seconds)
    return path


def _tone(out: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    """A quiet square wave for ``seconds`` (float samples, stereo, 48 kHz)."""
    rate, chunk = 48_000, 1024
    total = round(seconds * rate)
    import array

    for start in range(0, total, chunk):
        count = min(chunk, total - start)
        samples = array.array(
            "f", [0.1 if ((start + i) // 55) % 2 else -0.1 for i in range(count) for _ in (0, 1)]
        )
        frame = av.AudioFrame(format="flt", layout="stereo", samples=count)
        frame.planes[0].update(samples.tobytes() + bytes(frame.planes[0].buffer_size - count * 8))
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))


def video_bytes(**options: object) -> bytes:
    """A clip made by :func:`make_video` (same options), as bytes."""
    with tempfile.TemporaryDirectory(prefix="pikatest-media-") as folder:
        suffix = ".webm" if options.get("container") == "webm" else ".mp4"
        path = make_video(Path(folder) / f"clip{suffix}", **options)  # type: ignore[arg-type]
        return path.read_bytes()


@functools.cache
def tiny_video() -> bytes:
    """The fakes' default clip: 160x90, half a second, H.264 yuv420p MP4, index first."""
    return video_bytes(width=160, height=90, seconds=0.5, fps=12, bit_rate=40_000)


def padded_chunks(video: bytes, size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """``video`` followed by one MP4 ``free`` box, ``size`` bytes in all, in chunks.

    Any MP4 reader skips a ``free`` box, so this is a real, playable clip of any size, made
    without encoding (and streamed without holding it): what the fakes serve when a test or a
    benchmark asks for a big video.
    """
    pad = size - len(video)
    if pad < 8 or size >= 2**32:
        raise ValueError(f"cannot pad a {len(video)}-byte clip to {size} bytes")
    yield video
    header = pad.to_bytes(4, "big") + b"free"
    zeros = bytes(chunk)
    remaining = pad - len(header)
    yield header
    while remaining > 0:
        step = min(chunk, remaining)
        yield zeros[:step]
        remaining -= step


def padded(video: bytes, size: int) -> bytes:
    """:func:`padded_chunks` as one bytes object (for small sizes)."""
    return b"".join(padded_chunks(video, size))


def corrupt(video: bytes) -> bytes:
    """``video`` cut at 60 %: the index (first) promises frames the file no longer holds."""
    return video[: len(video) * 3 // 5]


def garbled(video: bytes) -> bytes:
    """``video`` whole, its media bytes replaced by noise: it opens, but nothing decodes."""
    start = video.index(b"mdat") + 4
    return video[:start] + bytes((i * 151 + 7) % 256 for i in range(len(video) - start))


@dataclass(frozen=True)
class Seen:
    """What a posted file is, read back with PyAV (independently of the bot's probe)."""

    size: int
    container: str
    codec: str
    pixel_format: str | None
    width: int
    height: int
    duration: float
    frames_decoded: int
    audio_codec: str | None
    moov_before_mdat: bool

    @property
    def aspect(self) -> float:
        return self.width / self.height


def inspect(data: bytes) -> Seen:
    """Decode every frame of ``data`` and read its top-level MP4 boxes (test-side only)."""
    with tempfile.TemporaryDirectory(prefix="pikatest-seen-") as folder:
        path = Path(folder) / "posted.mp4"
        path.write_bytes(data)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            frames = sum(1 for _ in container.decode(stream))
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base is not None
                else (container.duration or 0) / av.time_base
            )
            seen = Seen(
                size=len(data),
                container=container.format.name,
                codec=stream.codec_context.name,
                pixel_format=stream.codec_context.pix_fmt,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration=duration,
                frames_decoded=frames,
                audio_codec=audio.codec_context.name if audio is not None else None,
                moov_before_mdat=_moov_first(data),
            )
    return seen


def _moov_first(data: bytes) -> bool:
    """The test's own reading of the top-level boxes (a check on the bot, not its method)."""
    order: list[bytes] = []
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        order.append(kind)
        if size < 8:
            break
        offset += size
    return b"moov" in order and b"mdat" in order and order.index(b"moov") < order.index(b"mdat")
