"""bot.video.plan: post, repackage or re-encode, and at what size, from a clip's facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.video.plan import (
    AIM,
    MIN_BITS_PER_PIXEL,
    Action,
    CannotFit,
    ceiling_for,
    corrected_bit_rate,
    plan,
)
from bot.video.probe import MP4_DEMUXER, VideoInfo

MiB = 1024 * 1024

CLIP = VideoInfo(
    size=30 * MiB,
    container=MP4_DEMUXER,
    brand="isom",
    video_codec="h264",
    pixel_format="yuv420p",
    width=1920,
    height=1080,
    sample_aspect=(1, 1),
    fps=24.0,
    duration=10.0,
    bit_rate=24_000_000,
    audio_codec=None,
    index_first=True,
)
"""A 1080p 10 s Pika clip of 30 MB."""


def test_plan_inline_clip_under_the_limit_is_posted_as_is():
    """H.264 MP4, index first, under a 50 MiB limit: untouched."""
    assert plan(CLIP, 50 * MiB).action is Action.AS_IS


def test_plan_over_the_limit_reencodes_at_a_bitrate_from_limit_and_duration():
    """30 MB over 10 MiB: re-encoded at 1080p with a bitrate that aims under the ceiling."""
    decided = plan(CLIP, 10 * MiB)
    assert decided.action is Action.REENCODE and decided.oversized
    assert decided.ceiling == ceiling_for(10 * MiB) < 10 * MiB
    assert (decided.width, decided.height) == (1920, 1080)
    expected_bits = decided.ceiling * AIM * 8
    assert decided.video_bit_rate * CLIP.duration <= expected_bits
    assert decided.video_bit_rate * CLIP.duration > expected_bits * 0.9


def test_plan_scales_down_when_the_bitrate_would_be_too_low():
    """A tight limit for 1080p: a smaller picture, aspect kept, enough bits per pixel."""
    decided = plan(CLIP, 2 * MiB)
    assert decided.height < 1080
    assert decided.width / decided.height == pytest.approx(16 / 9, rel=0.01)
    assert decided.width % 2 == 0 and decided.height % 2 == 0
    bpp = decided.video_bit_rate / (decided.width * decided.height * decided.fps)
    assert bpp >= MIN_BITS_PER_PIXEL


def test_plan_portrait_keeps_its_aspect():
    """9:16 scaled by its short side."""
    tall = replace(CLIP, width=1080, height=1920)
    decided = plan(tall, 2 * MiB)
    assert decided.width < decided.height
    assert decided.height / decided.width == pytest.approx(16 / 9, rel=0.01)


def test_plan_hevc_under_the_limit_is_reencoded_at_a_modest_bitrate():
    """Only the codec is wrong: re-encoded, not inflated to fill the whole limit."""
    hevc = replace(CLIP, video_codec="hevc", size=2 * MiB, bit_rate=1_600_000)
    decided = plan(hevc, 10 * MiB)
    assert decided.action is Action.REENCODE and not decided.oversized
    assert decided.video_bit_rate <= 1_600_000 * 1.5


def test_plan_index_at_the_end_is_repacked():
    """H.264 yuv420p with the index last: the picture is copied, not re-encoded."""
    late = replace(CLIP, index_first=False, size=3 * MiB)
    assert plan(late, 10 * MiB).action is Action.REPACK


def test_plan_audio_gets_aac_bitrate():
    """With audio, part of the budget goes to AAC."""
    sound = replace(CLIP, audio_codec="aac")
    decided = plan(sound, 10 * MiB)
    assert decided.audio_bit_rate == 128_000
    silent = plan(CLIP, 10 * MiB)
    assert decided.video_bit_rate == silent.video_bit_rate - 128_000


def test_plan_refuses_a_limit_no_clip_can_meet():
    """100 bytes for a 10 s clip: CannotFit (the caller links or fails)."""
    with pytest.raises(CannotFit):
        plan(CLIP, 100)


def test_corrected_bit_rate_lowers_after_an_overshoot():
    """A try 10 % over the ceiling: the next aims lower, by about as much."""
    decided = plan(CLIP, 10 * MiB)
    over = int(decided.ceiling * 1.1)
    corrected = corrected_bit_rate(decided, CLIP.duration, over)
    assert corrected < decided.video_bit_rate * AIM
    assert corrected > decided.video_bit_rate * 0.7
