"""Carrying out a :class:`~bot.video.plan.FitPlan`: repackage or re-encode one clip to a file.

This runs in a worker process (:mod:`bot.video.fit_pool`), never on the event loop. It
streams: one packet in, one frame decoded, one frame encoded, so memory stays at the
codecs' own buffers whatever the file's size. ``should_stop`` is asked before every frame;
a True ends the work with :class:`FitStopped` and removes the output.

The output is H.264 (x264) yuv420p in MP4 with ``+faststart`` (the index moved before the
media once the file is written), audio as AAC, timestamps carried over from the source, so
the duration and the frame timing stay the same; the picture is scaled with the aspect
ratio kept. A re-encode over the plan's ceiling is done again, once or twice, at a bitrate
corrected by how far it missed (:func:`~bot.video.plan.corrected_bit_rate`): an encode,
a measure and a correction take less CPU than x264's two passes for the same guarantee.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from bot.video.plan import Action, FitPlan, corrected_bit_rate, video_bit_rate
from bot.video.probe import VideoInfo

X264_PRESET = "veryfast"
"""x264's speed/size trade-off; see bench/fit.py for what it costs on this machine."""
MAX_TRIES = 3
"""Re-encodes of one clip at most (the first, and up to two corrections)."""
MUXER_OPTIONS = {"movflags": "+faststart"}


class FitStopped(Exception):
    """The work was stopped from outside (time limit, cancel, the bot is gone)."""


class FitError(Exception):
    """The clip could not be made to fit (an encoder error, or still over after every try)."""


@dataclass(frozen=True, slots=True)
class FitOutput:
    """What a worker made."""

    action: Action
    size: int
    width: int
    height: int
    tries: int
    seconds: float
    cpu_seconds: float


def fit_file(
    source: Path,
    output: Path,
    plan: FitPlan,
    info: VideoInfo,
    *,
    should_stop: Callable[[], bool],
    threads: int = 0,
) -> FitOutput:
    """Make ``output`` from ``source`` as ``plan`` says; remove it on any failure."""
    started, cpu = time.monotonic(), time.process_time()
    try:
        current, tries = plan, 0
        if plan.action is Action.REPACK:
            _repack(source, output, plan, should_stop)
            tries = 1
            if os.path.getsize(output) <= plan.ceiling:
                return _output(Action.REPACK, output, plan, tries, started, cpu)
            # New audio made it too big: re-encode, as for any clip over the limit.
            first = video_bit_rate(info, plan.ceiling, plan.audio_bit_rate)
            current = plan.with_video_bit_rate(first, info)
        for attempt in range(1, MAX_TRIES + 1):
            tries += 1
            _reencode(source, output, current, should_stop, threads)
            produced = os.path.getsize(output)
            if produced <= current.ceiling:
                return _output(Action.REENCODE, output, current, tries, started, cpu)
            if attempt == MAX_TRIES:
                break
            corrected = corrected_bit_rate(current, info.duration, produced)
            current = current.with_video_bit_rate(corrected, info)
        raise FitError(f"still {os.path.getsize(output)} bytes > {plan.ceiling} after {tries}")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            output.unlink()
        raise


def _output(
    action: Action, output: Path, plan: FitPlan, tries: int, started: float, cpu: float
) -> FitOutput:
    return FitOutput(
        action=action,
        size=os.path.getsize(output),
        width=plan.width,
        height=plan.height,
        tries=tries,
        seconds=time.monotonic() - started,
        cpu_seconds=time.process_time() - cpu,
    )


def _repack(source: Path, output: Path, plan: FitPlan, should_stop: Callable[[], bool]) -> None:
    """Copy the H.264 stream into an MP4, index first; AAC audio copied, other audio encoded."""
    with (
        av.open(str(source), "r") as src,
        av.open(str(output), "w", format="mp4", options=MUXER_OPTIONS) as out,
    ):
        video_in = src.streams.video[0]
        audio_in = src.streams.audio[0] if src.streams.audio else None
        video_out = out.add_stream_from_template(video_in)
        audio_out: av.AudioStream | None = None
        copy_audio = audio_in is not None and audio_in.codec_context.name == "aac"
        if audio_in is not None:
            audio_out = (
                out.add_stream_from_template(audio_in)
                if copy_audio
                else _aac_stream(out, audio_in, plan.audio_bit_rate)
            )
        wanted = [video_in] + ([audio_in] if audio_in is not None else [])
        for packet in src.demux(wanted):
            if should_stop():
                raise FitStopped
            if packet.stream is video_in:
                if packet.dts is None:
                    continue
                packet.stream = video_out
                out.mux(packet)
            elif audio_out is not None:
                if copy_audio:
                    if packet.dts is None:
                        continue
                    packet.stream = audio_out
                    out.mux(packet)
                else:
                    for frame in packet.decode():
                        out.mux(audio_out.encode(frame))  # type: ignore[arg-type]
        if audio_out is not None and not copy_audio:
            out.mux(audio_out.encode(None))


def _reencode(
    source: Path,
    output: Path,
    plan: FitPlan,
    should_stop: Callable[[], bool],
    threads: int,
) -> None:
    """Decode ``source`` and encode it as the plan says: H.264 yuv420p, AAC, faststart."""
    with (
        av.open(str(source), "r") as src,
        av.open(str(output), "w", format="mp4", options=MUXER_OPTIONS) as out,
    ):
        video_in = src.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = src.streams.audio[0] if src.streams.audio else None
        time_base = video_in.time_base or Fraction(1, 90_000)
        rate = video_in.average_rate or Fraction(plan.fps).limit_denominator(1001)
        video_out = out.add_stream("libx264", rate=rate)
        video_out.width, video_out.height = plan.width, plan.height
        video_out.pix_fmt = "yuv420p"
        video_out.codec_context.time_base = time_base
        video_out.time_base = time_base
        video_out.bit_rate = plan.video_bit_rate
        video_out.codec_context.thread_count = threads
        # VBV keeps a busy second from borrowing far ahead of the average.
        video_out.options = {
            "preset": X264_PRESET,
            "maxrate": str(int(plan.video_bit_rate * 1.5)),
            "bufsize": str(int(plan.video_bit_rate * 2)),
            "x264-params": "log-level=none",
        }
        audio_out = (
            _aac_stream(out, audio_in, plan.audio_bit_rate) if audio_in is not None else None
        )
        wanted = [video_in] + ([audio_in] if audio_in is not None else [])
        count = 0
        for packet in src.demux(wanted):
            if packet.stream is video_in:
                for frame in packet.decode():
                    if should_stop():
                        raise FitStopped
                    assert isinstance(frame, av.VideoFrame)
                    picture = frame.reformat(plan.width, plan.height, "yuv420p")
                    pts = frame.pts
                    if pts is None:  # a demuxer without timestamps: count frames
                        pts = round(count / plan.fps / time_base)
                    picture.pts, picture.time_base = pts, time_base
                    count += 1
                    out.mux(video_out.encode(picture))
            elif audio_out is not None:
                for sound in packet.decode():
                    out.mux(audio_out.encode(sound))  # type: ignore[arg-type]
        out.mux(video_out.encode(None))
        if audio_out is not None:
            out.mux(audio_out.encode(None))
        if count == 0:
            raise FitError("no picture decoded")


def _aac_stream(
    out: av.container.OutputContainer, audio_in: av.AudioStream, bit_rate: int
) -> av.AudioStream:
    context = audio_in.codec_context
    stream = out.add_stream("aac", rate=context.sample_rate or 48_000)
    channels = context.channels or 2
    stream.codec_context.layout = "mono" if channels == 1 else "stereo"
    stream.bit_rate = bit_rate or 128_000
    return stream
