"""What to do with a downloaded clip so it plays inside Discord: post it, repackage it, or
re-encode it, and at what size and bitrate. Pure arithmetic over :class:`VideoInfo`.

The target: H.264 yuv420p in MP4 with the index first ("faststart"), audio as AAC, under
the per-attachment limit with a safety margin. The bitrate comes from the limit and the
duration; when it would be too low for the picture size to look decent, the picture is
scaled down (aspect ratio kept) until each pixel gets enough bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.video.probe import VideoInfo

MiB = 1024 * 1024
SAFETY_MARGIN = 0.02
"""Share of the limit kept free (at least ``MIN_MARGIN_BYTES``): the output must land under
``limit - margin`` (the ceiling)."""
MIN_MARGIN_BYTES = 32 * 1024
AIM = 0.92
"""The first encode aims at this share of the ceiling: x264's average bitrate overshoots by a
few per cent on short, busy clips. A result over the ceiling is re-encoded once at a
bitrate corrected by how far it missed (:func:`corrected_bit_rate`)."""
CONTAINER_BYTES = 16 * 1024
"""The MP4 index and headers of a 10 s clip: a few KiB; kept aside before the bitrate."""
MIN_BITS_PER_PIXEL = 0.06
"""Below this many bits per pixel per frame H.264 turns to mush; scale down instead."""
MIN_VIDEO_BIT_RATE = 48_000
"""Under this (a 10 s clip in 75 KB) no picture is worth sending: the clip cannot fit."""
SHORT_SIDES = (2160, 1440, 1080, 720, 540, 480, 360, 240, 144)
"""The picture sizes tried when scaling down, by the short side (never scaled up)."""
DEFAULT_FPS = 30.0
CODEC_FACTOR = 1.5
"""A clip re-encoded only to play inline gets this many times its own bitrate (at most)."""


class Action(StrEnum):
    """What becomes of the downloaded file."""

    AS_IS = "as_is"  # posted untouched
    REPACK = "repack"  # streams copied into an MP4 with the index first (audio made AAC)
    REENCODE = "reencode"  # a new H.264 yuv420p version, sized under the limit


class CannotFit(Exception):
    """No decent version of this clip fits the limit (far too small a limit for its length)."""


@dataclass(frozen=True, slots=True)
class FitPlan:
    """One decision, with everything a worker needs to carry it out."""

    action: Action
    limit: int
    """The per-attachment limit in bytes."""
    ceiling: int
    """The output must be at most this many bytes (the limit less the safety margin)."""
    width: int
    height: int
    video_bit_rate: int
    audio_bit_rate: int
    """0: no audio track."""
    fps: float
    oversized: bool
    """The original is over the limit (else it was fitted only to play inline)."""

    def with_video_bit_rate(self, bit_rate: int, info: VideoInfo) -> FitPlan:
        """The same plan at another video bitrate, the picture size chosen for it again."""
        width, height = picture_size(info, bit_rate, self.fps)
        return FitPlan(
            action=Action.REENCODE,
            limit=self.limit,
            ceiling=self.ceiling,
            width=width,
            height=height,
            video_bit_rate=bit_rate,
            audio_bit_rate=self.audio_bit_rate,
            fps=self.fps,
            oversized=self.oversized,
        )


def ceiling_for(limit: int) -> int:
    """The most bytes an output may have under ``limit``."""
    return limit - max(int(limit * SAFETY_MARGIN), MIN_MARGIN_BYTES)


def plan(info: VideoInfo, limit: int) -> FitPlan:
    """Decide for the clip ``info`` under ``limit`` bytes; raise :class:`CannotFit`."""
    fps = info.fps if info.fps and 1.0 <= info.fps <= 240.0 else DEFAULT_FPS
    ceiling = ceiling_for(limit)
    oversized = info.size > limit
    audio = audio_bit_rate(info, ceiling)
    if info.plays_inline and not oversized:
        return _keep(Action.AS_IS, info, limit, ceiling, fps, audio)
    if info.video_codec == "h264" and info.pixel_format == "yuv420p" and info.size <= ceiling:
        # Only the packaging is wrong (index last, MKV, MP3 audio): copy the picture as is.
        return _keep(Action.REPACK, info, limit, ceiling, fps, audio)
    video = video_bit_rate(info, ceiling, audio)
    if not oversized and info.bit_rate:
        # Only the codec is wrong: H.264 needs about half again HEVC's or VP9's bitrate for
        # the same picture; more would only spend the member's bandwidth.
        video = min(video, max(int(info.bit_rate * CODEC_FACTOR), MIN_VIDEO_BIT_RATE))
    if video < MIN_VIDEO_BIT_RATE:
        raise CannotFit(f"{video} bit/s for {info.duration:.1f} s under {limit} bytes")
    width, height = picture_size(info, video, fps)
    return FitPlan(Action.REENCODE, limit, ceiling, width, height, video, audio, fps, oversized)


def _keep(
    action: Action, info: VideoInfo, limit: int, ceiling: int, fps: float, audio: int
) -> FitPlan:
    width, height = _square_pixels(info)
    video = info.bit_rate or 0
    return FitPlan(action, limit, ceiling, width, height, video, audio, fps, info.size > limit)


def audio_bit_rate(info: VideoInfo, ceiling: int) -> int:
    """AAC bitrate for the clip's audio (0 without audio): 128 kb/s, less on a tight budget."""
    if info.audio_codec is None:
        return 0
    budget = _budget_bits_per_second(info, ceiling)
    for rate in (128_000, 96_000, 64_000):
        if rate <= budget * 0.15:
            return rate
    return 48_000


def video_bit_rate(info: VideoInfo, ceiling: int, audio: int) -> int:
    """The first try's video bitrate: the aimed size over the duration, less the audio."""
    return int(_budget_bits_per_second(info, ceiling) - audio)


def corrected_bit_rate(plan: FitPlan, duration: float, produced: int) -> int:
    """A video bitrate that should land under the ceiling, after a try made ``produced`` bytes.

    The overshoot is the video's (the audio and the index barely move between tries), so
    the video's share is scaled by how far the whole missed, with the aim's margin again.
    """
    audio_bytes = plan.audio_bit_rate * duration / 8
    made_video = max(produced - audio_bytes - CONTAINER_BYTES, 1.0)
    room_video = max(plan.ceiling * AIM - audio_bytes - CONTAINER_BYTES, 0.0)
    return int(plan.video_bit_rate * room_video / made_video)


def picture_size(info: VideoInfo, video_bit_rate: int, fps: float) -> tuple[int, int]:
    """The largest picture (aspect kept, never scaled up) with enough bits per pixel."""
    width, height = _square_pixels(info)
    short = min(width, height)
    sides = [short] + [side for side in SHORT_SIDES if side < short]
    for side in sides:
        scaled = _scaled(width, height, side)
        if video_bit_rate / (scaled[0] * scaled[1] * fps) >= MIN_BITS_PER_PIXEL:
            return scaled
    return _scaled(width, height, min(sides))


def _budget_bits_per_second(info: VideoInfo, ceiling: int) -> float:
    duration = max(info.duration, 0.1)
    return max(ceiling * AIM - CONTAINER_BYTES, 0) * 8 / duration


def _square_pixels(info: VideoInfo) -> tuple[int, int]:
    """The picture as shown: non-square pixels widened (or narrowed) to square ones."""
    num, den = info.sample_aspect
    if num <= 0 or den <= 0 or num == den:
        return _even(info.width), _even(info.height)
    return _even(round(info.width * num / den)), _even(info.height)


def _scaled(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``width`` x ``height`` with its short side at ``short_side``, both even (yuv420p)."""
    if min(width, height) <= short_side:
        return _even(width), _even(height)
    factor = short_side / min(width, height)
    return _even(round(width * factor)), _even(round(height * factor))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
