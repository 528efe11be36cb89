"""What a video file is: container, codecs, pixel format, size, duration, where its index sits.

Everything is read by FFmpeg's own demuxers and decoders through PyAV; nothing here parses
MP4 boxes by hand. Where the index (``moov``) sits is what FFmpeg's MP4 demuxer reports for
each top-level box it reads (its trace log, ``type:'moov' parent:'root' …``), captured for
this one open only. If that report is missing (another FFmpeg build words it differently),
the index counts as "not known to be first" and the file is repackaged: the safe side.

:func:`probe` blocks (it reads the whole file's packet index, not its pixels): call it from a
thread or a worker process. A file that is no video, is cut short or does not decode raises
:class:`BrokenVideo`, whose message the member sees.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import structlog

from bot.delivery import DownloadFailed

log = structlog.get_logger(__name__)

MP4_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
"""FFmpeg's name for the ISO base media (MP4, MOV) demuxer."""
VIDEO_DEMUXERS = frozenset({MP4_DEMUXER, "matroska,webm", "avi", "mpegts", "flv"})
"""Containers a video service may plausibly send; anything else (an HTML error page, an image
FFmpeg happens to open) is not a clip."""
QUICKTIME_BRAND = "qt  "
"""``major_brand`` of a QuickTime ``.mov``: the same demuxer, but browsers do not promise it."""
INLINE_VIDEO_CODEC = "h264"
INLINE_PIXEL_FORMAT = "yuv420p"
INLINE_AUDIO_CODEC = "aac"
TRUNCATION_TOLERANCE = 0.9
"""A clip whose packets cover less than this share of its declared length was cut short."""

_trace_lock = threading.Lock()
"""FFmpeg's log level is one per process: one traced open at a time."""


class BrokenVideo(DownloadFailed):
    """The downloaded file is not a playable video: not one at all, cut short, or undecodable."""

    user_message = (
        "The video service sent a file that is not a playable video (it is damaged or incomplete)."
    )


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What :func:`probe` found; plain values, so it crosses to a worker process as is."""

    size: int
    container: str
    brand: str | None
    video_codec: str
    pixel_format: str | None
    width: int
    height: int
    sample_aspect: tuple[int, int]
    """Pixel shape as ``(num, den)``: ``(1, 1)`` for square pixels."""
    fps: float | None
    duration: float
    bit_rate: int | None
    audio_codec: str | None
    index_first: bool | None
    """True: the MP4 index (``moov``) comes before the media (faststart). False: after it.
    None: not an MP4, or FFmpeg did not say."""

    @property
    def display_aspect(self) -> float:
        """Width over height as shown, pixel shape included."""
        num, den = self.sample_aspect
        return self.width * num / (self.height * den)

    @property
    def is_mp4(self) -> bool:
        """An MP4 (not a QuickTime ``.mov``, which browsers do not promise to play)."""
        return self.container == MP4_DEMUXER and self.brand != QUICKTIME_BRAND

    @property
    def inline_codecs(self) -> bool:
        """H.264 in yuv420p, with AAC audio or none: what Discord's player decodes."""
        return (
            self.video_codec == INLINE_VIDEO_CODEC
            and self.pixel_format == INLINE_PIXEL_FORMAT
            and self.audio_codec in (None, INLINE_AUDIO_CODEC)
        )

    @property
    def plays_inline(self) -> bool:
        """Discord plays it in the channel as it is: inline codecs in an MP4, index first."""
        return self.is_mp4 and self.inline_codecs and self.index_first is True

    def describe(self) -> str:
        """A short, member-safe account of the format ("HEVC in MP4", "H.264, index last")."""
        names = {"h264": "H.264", "hevc": "HEVC", "av1": "AV1", "vp9": "VP9", "vp8": "VP8"}
        codec = names.get(self.video_codec, self.video_codec.upper())
        if self.video_codec == INLINE_VIDEO_CODEC and self.pixel_format != INLINE_PIXEL_FORMAT:
            codec += f" ({self.pixel_format})"
        if not self.is_mp4:
            return f"{codec} in {self.container.split(',')[0].upper()}"
        if self.audio_codec not in (None, INLINE_AUDIO_CODEC):
            return f"{codec} with {self.audio_codec} audio"
        return codec if self.index_first else f"{codec} with its index at the end"


def probe(path: Path) -> VideoInfo:
    """Read what the video at ``path`` is; raise :class:`BrokenVideo` if it is no usable clip.

    Every packet of the video stream is read (not decoded) to find a file cut short, and the
    first frame is decoded to prove the codec works. Memory stays at one packet.
    """
    size = os.path.getsize(path)
    try:
        container, boxes = _open_traced(path)
    except av.FFmpegError as exc:
        raise BrokenVideo(f"not a video: {type(exc).__name__}") from None
    try:
        return _inspect(container, boxes, size)
    except av.FFmpegError as exc:
        raise BrokenVideo(f"unreadable: {type(exc).__name__}") from None
    finally:
        container.close()


def _open_traced(path: Path) -> tuple[av.container.InputContainer, list[str]]:
    """Open ``path``, capturing the top-level boxes FFmpeg's MP4 demuxer reports, in order."""
    with _trace_lock:
        before = av.logging.get_level()
        av.logging.set_level(av.logging.TRACE)
        try:
            with av.logging.Capture() as logs:
                container = av.open(str(path), "r")
        finally:
            av.logging.set_level(before)
    boxes: list[str] = []
    for _level, _name, message in logs:
        # "type:'moov' parent:'root' sz: 1163 40 435020"
        if "parent:'root'" in message and message.startswith("type:'"):
            boxes.append(message[6:10])
    return container, boxes


def _index_first(boxes: list[str]) -> bool | None:
    if "moov" not in boxes or "mdat" not in boxes:
        return None
    return boxes.index("moov") < boxes.index("mdat")


def _inspect(container: av.container.InputContainer, boxes: list[str], size: int) -> VideoInfo:
    name = container.format.name
    if name not in VIDEO_DEMUXERS or not container.streams.video:
        raise BrokenVideo(f"not a video container: {name}")
    stream = container.streams.video[0]
    context = stream.codec_context
    if not context.width or not context.height:
        raise BrokenVideo("the video stream has no picture size")
    audio = container.streams.audio[0] if container.streams.audio else None
    time_base = stream.time_base or Fraction(1, 1000)
    duration = _duration(container, stream)
    packets, first, end = 0, None, None
    decoded = False
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        packets += 1
        first = packet.pts if first is None else min(first, packet.pts)
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
        if not decoded:
            decoded = bool(context.decode(packet))
    if not decoded:
        decoded = bool(context.decode(None))
    if not packets or not decoded:
        raise BrokenVideo("no decodable picture")
    if stream.frames and packets < stream.frames:
        raise BrokenVideo(f"cut short: {packets} of {stream.frames} frames")
    covered = float((end - first) * time_base) if first is not None and end is not None else 0.0
    if duration and covered < duration * TRUNCATION_TOLERANCE - 0.1:
        raise BrokenVideo(f"cut short: {covered:.2f} s of {duration:.2f} s")
    sar = stream.sample_aspect_ratio or context.sample_aspect_ratio
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        size=size,
        container=name,
        brand=container.metadata.get("major_brand"),
        video_codec=context.name,
        pixel_format=context.pix_fmt,
        width=context.width,
        height=context.height,
        sample_aspect=(sar.numerator, sar.denominator) if sar else (1, 1),
        fps=float(rate) if rate else None,
        duration=duration or covered,
        bit_rate=container.bit_rate or None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        index_first=_index_first(boxes) if name == MP4_DEMUXER else None,
    )


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Seconds, from the video stream's header, else the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
