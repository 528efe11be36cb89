"""Fitting real clips in real worker processes: bot.video.fit_pool and bot.video.stage.

Every posted file is read back independently (tests.fakes.media.inspect: every frame decoded,
the top-level boxes read by the test itself): under the limit, H.264 yuv420p, index before
the media, the same duration and aspect ratio. Clips are small so they are quick to make on
two cores; the 1080p case keeps a 30 MB / 10 MiB ratio over 2 s instead of 10.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bot.delivery import DownloadedVideo, FitKind
from bot.video.fit_pool import FitFailed, FitLine, FitPool, FitTimedOut
from bot.video.plan import plan
from bot.video.probe import BrokenVideo, probe
from bot.video.stage import FitUnavailable, VideoStage
from tests.fakes.media import MiB, Seen, corrupt, inspect, make_video, padded, tiny_video

DURABLE = "https://cdn.example/files/abc/output.mp4"
SIGNED = "https://cdn.example/files/abc.mp4?expires=86400&signature=s3cr3t"


@pytest.fixture(scope="module")
def pool() -> Iterator[FitPool]:
    """One pool of worker processes for the module (each spawn costs a moment)."""
    shared = FitPool(concurrency=2, timeout=120)
    yield shared
    asyncio.run(shared.close())


def downloaded(folder: Path, source: Path, url: str = DURABLE) -> DownloadedVideo:
    """``source`` as the job service hands it over: alone in a ``pikabot-`` folder."""
    home = Path(tempfile.mkdtemp(prefix="pikabot-", dir=folder))
    path = home / "pika-1.mp4"
    os.replace(source, path)
    return DownloadedVideo(path=path, size=path.stat().st_size, content_type=None, source_url=url)


async def prepared(
    stage: VideoStage, video: DownloadedVideo, limit: int | None
) -> tuple[DownloadedVideo, list[str], list[int | None]]:
    """``stage.prepare`` recording the fitting callbacks."""
    events: list[str] = []
    places: list[int | None] = []

    async def fitting() -> None:
        events.append("fitting")

    result = await stage.prepare(video, limit, on_fitting=fitting, on_position=places.append)
    return result, events, places


def assert_playable(seen: Seen, *, limit: int, duration: float, aspect: float) -> None:
    """What Discord needs to take and play a clip, and what the member must not lose."""
    assert seen.size <= limit
    assert (seen.codec, seen.pixel_format) == ("h264", "yuv420p")
    assert seen.moov_before_mdat
    assert seen.frames_decoded > 0
    assert seen.duration == pytest.approx(duration, abs=0.1)
    assert seen.aspect == pytest.approx(aspect, rel=0.01)


async def test_fit_over_the_limit_with_audio(pool: FitPool, tmp_path: Path):
    """An H.264 clip with sound, over the limit: re-encoded under it, AAC kept, and the
    original's durable URL kept as the full-quality link."""
    source = make_video(
        tmp_path / "s.mp4", width=640, height=360, seconds=2, bit_rate=4_000_000, audio=True
    )
    video = downloaded(tmp_path, source)
    limit = 400 * 1024
    assert video.size > limit
    result, events, places = await prepared(VideoStage(pool), video, limit)
    assert events == ["fitting"] and places[-1] is None
    assert result.fitting is not None and result.fitting.kind is FitKind.REENCODED
    assert result.fitting.oversized and result.fitting.full_quality_url == DURABLE
    seen = inspect(result.path.read_bytes())
    assert_playable(seen, limit=limit, duration=2.0, aspect=16 / 9)
    assert seen.audio_codec == "aac"
    assert "Re-encoded" in result.fitting.note() and "0.4 MB" in result.fitting.note()
    folder = result.path.parent
    result.discard()
    assert not folder.exists(), "the download, the fitted file and their folder are gone"


async def test_fit_1080p_clip_over_a_ten_mib_style_limit(pool: FitPool, tmp_path: Path):
    """1080p at 24 Mbit/s (a 30 MB 10 s clip's rate) for 2 s under 2 MiB (10 MiB scaled by
    the same 2/10): fitted on the first or second try, still 16:9."""
    source = make_video(
        tmp_path / "hd.mp4", width=1920, height=1080, seconds=2, bit_rate=24_000_000
    )
    video = downloaded(tmp_path, source)
    limit = 2 * MiB
    assert video.size > 2.5 * limit
    result, _, _ = await prepared(VideoStage(pool), video, limit)
    assert result.fitting is not None and result.fitting.kind is FitKind.REENCODED
    seen = inspect(result.path.read_bytes())
    assert_playable(seen, limit=limit, duration=2.0, aspect=16 / 9)
    assert seen.size > limit * 0.5, "the budget is used, not wasted"
    result.discard()


async def test_fit_hevc_is_reencoded_to_play(pool: FitPool, tmp_path: Path):
    """HEVC under the limit: H.264 so it plays inline; not oversized, so said so."""
    source = make_video(tmp_path / "h.mp4", codec="libx265", width=480, height=270)
    video = downloaded(tmp_path, source, url=SIGNED)
    result, _, _ = await prepared(VideoStage(pool), video, 10 * MiB)
    assert result.fitting is not None and result.fitting.kind is FitKind.REENCODED
    assert not result.fitting.oversized
    assert result.fitting.full_quality_url is None, "a signed URL is never shown"
    assert "HEVC" in result.fitting.note()
    assert_playable(inspect(result.path.read_bytes()), limit=10 * MiB, duration=1, aspect=16 / 9)
    result.discard()


async def test_fit_vp9_webm_is_reencoded_to_mp4(pool: FitPool, tmp_path: Path):
    """VP9 in WebM (another codec Discord's player does not promise): H.264 MP4."""
    source = make_video(tmp_path / "v.webm", codec="libvpx-vp9", container="webm")
    video = downloaded(tmp_path, source)
    result, _, _ = await prepared(VideoStage(pool), video, 10 * MiB)
    assert result.fitting is not None and result.fitting.kind is FitKind.REENCODED
    assert_playable(inspect(result.path.read_bytes()), limit=10 * MiB, duration=1, aspect=16 / 9)
    result.discard()


async def test_fit_index_at_the_end_is_repacked_untouched(pool: FitPool, tmp_path: Path):
    """H.264 with the index last: the same frames, moved behind an index in front."""
    source = make_video(tmp_path / "late.mp4", faststart=False, audio=True)
    before = inspect(source.read_bytes())
    assert not before.moov_before_mdat
    video = downloaded(tmp_path, source)
    result, _, _ = await prepared(VideoStage(pool), video, 10 * MiB)
    assert result.fitting is not None and result.fitting.kind is FitKind.REPACKED
    assert result.fitting.full_quality_url is None, "nothing better to link to"
    after = inspect(result.path.read_bytes())
    assert_playable(after, limit=10 * MiB, duration=before.duration, aspect=before.aspect)
    assert after.frames_decoded == before.frames_decoded
    assert abs(after.size - before.size) < 4096
    result.discard()


async def test_stage_posts_a_fitting_clip_untouched(pool: FitPool, tmp_path: Path):
    """A 30 MB inline-ready clip under a tier-2 guild's 50 MiB: the very same file."""
    source = tmp_path / "big.mp4"
    source.write_bytes(padded(tiny_video(), 30 * 1000 * 1000))
    video = downloaded(tmp_path, source)
    result, events, _ = await prepared(VideoStage(pool), video, 50 * MiB)
    assert result is video and events == []
    video.discard()


async def test_stage_without_a_limit_only_checks_the_clip(tmp_path: Path):
    """``pikabot generate`` without --fit-discord: an HEVC clip is saved as it came."""
    source = make_video(tmp_path / "h.mp4", codec="libx265")
    video = downloaded(tmp_path, source)
    result, events, _ = await prepared(VideoStage(FitPool(concurrency=1, timeout=1)), video, None)
    assert result is video and events == []
    video.discard()


async def test_stage_refuses_a_corrupt_clip(tmp_path: Path):
    """A clip cut short is refused before any fit (the job fails and is refunded)."""
    source = tmp_path / "cut.mp4"
    source.write_bytes(corrupt(make_video(tmp_path / "whole.mp4").read_bytes()))
    video = downloaded(tmp_path, source)
    with pytest.raises(BrokenVideo):
        await prepared(VideoStage(FitPool(concurrency=1, timeout=1)), video, 10 * MiB)
    video.discard()


async def test_stage_time_limit_falls_back_to_a_durable_link(tmp_path: Path):
    """A fit out of time: the original, linked (its URL is durable); no file left over."""
    timed = FitPool(concurrency=1, timeout=1e-9)  # over before the first frame
    try:
        source = make_video(tmp_path / "s.mp4", width=640, height=360, bit_rate=3_000_000)
        video = downloaded(tmp_path, source)
        result, _, _ = await prepared(VideoStage(timed), video, 200 * 1024)
        assert result.fitting is not None and result.fitting.kind is FitKind.UNFITTED
        assert result.path == video.path and result.fitting.full_quality_url == DURABLE
        assert "could not be made" in result.fitting.note()
        assert sorted(p.name for p in video.path.parent.iterdir()) == ["pika-1.mp4"]
        result.discard()
        assert not video.path.parent.exists()
    finally:
        await timed.close()


async def test_stage_time_limit_with_a_signed_url_fails(tmp_path: Path):
    """Out of time, over the limit and only a signed URL: FitUnavailable (fail, refund)."""
    timed = FitPool(concurrency=1, timeout=1e-9)
    try:
        source = make_video(tmp_path / "s.mp4", width=640, height=360, bit_rate=3_000_000)
        video = downloaded(tmp_path, source, url=SIGNED)
        with pytest.raises(FitUnavailable) as raised:
            await prepared(VideoStage(timed), video, 200 * 1024)
        assert "signature" not in raised.value.user_message
        assert sorted(p.name for p in video.path.parent.iterdir()) == ["pika-1.mp4"]
        video.discard()
    finally:
        await timed.close()


def _children() -> dict[int, psutil.Process]:
    return {child.pid: child for child in psutil.Process().children(recursive=True)}


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_pool_kills_a_stuck_worker_and_recovers(tmp_path: Path):
    """A worker that never begins nor answers (stopped by SIGSTOP: as if stuck in FFmpeg) is
    killed once the graces are over; the output is removed; the next fit works."""
    stuck = FitPool(concurrency=1, timeout=30, workers=1, stop_grace=0.5, start_grace=60)
    try:
        source = make_video(tmp_path / "s.mp4")
        info = probe(source)
        decided = plan(info, 200 * 1024)
        before = _children()
        await stuck.fit(source, tmp_path / "warm.mp4", decided, info, lambda _: None)
        frozen = [
            child
            for pid, child in _children().items()
            if pid not in before and "resource_tracker" not in " ".join(child.cmdline())
        ]
        assert len(frozen) == 1, "the pool's one worker"
        for worker in frozen:
            worker.send_signal(signal.SIGSTOP)
        output = tmp_path / "out.mp4"
        stuck.start_grace = 0.5  # the one worker is there: a begin takes milliseconds
        with pytest.raises(FitTimedOut):
            await stuck.fit(source, output, decided, info, lambda _: None)
        assert not output.exists()
        for _ in range(200):  # the kill is delivered at once; bounded wait for the exit
            if all(_gone(worker) for worker in frozen):
                break
            await asyncio.sleep(0.05)
        assert all(_gone(worker) for worker in frozen)
        stuck.start_grace = 60  # a new worker process starts for the next fit
        made = await stuck.fit(source, output, decided, info, lambda _: None)
        assert made.size <= decided.ceiling and output.exists()
    finally:
        await stuck.close()


async def test_pool_cancel_stops_the_worker_and_removes_the_output(pool: FitPool, tmp_path: Path):
    """Cancelling the job stops its fit at the next frame; its place is free again."""
    source = make_video(tmp_path / "s.mp4", width=1280, height=720, seconds=2, bit_rate=8_000_000)
    info = probe(source)
    decided = plan(info, 300 * 1024)
    output = tmp_path / "out.mp4"
    started = asyncio.Event()

    def place(ahead: int | None) -> None:
        if ahead is None:
            started.set()

    task = asyncio.create_task(pool.fit(source, output, decided, info, place))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not output.exists()
    small = decided.with_video_bit_rate(decided.video_bit_rate, info)
    made = await pool.fit(source, output, small, info, lambda _: None)
    assert made.size <= small.ceiling


async def test_pool_refuses_after_close(tmp_path: Path):
    """A closed pool takes no more fits (shutdown): FitFailed, not a hang."""
    closed = FitPool(concurrency=1, timeout=10)
    await closed.close()
    source = make_video(tmp_path / "s.mp4")
    info = probe(source)
    with pytest.raises(FitFailed):
        await closed.fit(source, tmp_path / "o.mp4", plan(info, 200 * 1024), info, lambda _: None)


async def test_fit_line_gives_places_first_come_first_served():
    """One place: the others wait, told how many are ahead, and move up as places free;
    one leaving the line moves those behind it up."""
    line = FitLine(1)
    seen: dict[str, list[int | None]] = {"a": [], "b": [], "c": []}
    order: list[str] = []
    release = asyncio.Event()

    async def fit(name: str) -> None:
        async with line.turn(seen[name].append):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(fit("a"))
    await asyncio.sleep(0)
    second = asyncio.create_task(fit("b"))
    third = asyncio.create_task(fit("c"))
    await asyncio.sleep(0)
    assert seen == {"a": [None], "b": [0], "c": [1]} and line.waiting == 2
    second.cancel()
    await asyncio.sleep(0)
    assert seen["c"] == [1, 0]
    release.set()
    await asyncio.gather(first, third)
    assert order == ["a", "c"] and seen["c"][-1] is None
    with pytest.raises(asyncio.CancelledError):
        await second
