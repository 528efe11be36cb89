"""The one step the job service takes between download and post: make the clip postable.

:meth:`VideoStage.prepare` probes the download (a file that is no playable video fails the
job, refunded), then, when Discord would refuse it (over the per-attachment limit) or not
play it (not H.264 yuv420p in an MP4 with the index first), has a version made that it takes
and plays (:mod:`bot.video.fit_pool`). What comes back is what to post:

====================================  ==================================================
the clip                              what is posted
====================================  ==================================================
fits and plays                        the original, untouched
fitted                                the fitted file; a "full quality" link to the
                                      original only where its URL is durable and unsigned
fit failed or timed out, URL durable  the original if it is under the limit, else a link
fit failed, URL signed, over limit    nothing: :class:`FitUnavailable` (fail, refund)
====================================  ==================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from bot.delivery import DownloadedVideo, DownloadFailed, FitKind, Fitting, durable_link
from bot.video.fit_pool import FitFailed, FitPool, PositionCallback
from bot.video.plan import Action, CannotFit, FitPlan, plan
from bot.video.probe import VideoInfo, probe

log = structlog.get_logger(__name__)

FITTED_SUFFIX = "-discord.mp4"


class FitUnavailable(DownloadFailed):
    """Too big to upload, no version that fits could be made, and its link is private."""

    user_message = (
        "The video is larger than this server's upload limit, a smaller version could not be"
        " made, and the video service's link is private, so it cannot be shown here."
    )


class VideoStage:
    """Probe, decide, fit. ``pool`` None: probe only (nothing is ever fitted)."""

    def __init__(self, pool: FitPool | None) -> None:
        self.pool = pool

    async def prepare(
        self,
        video: DownloadedVideo,
        limit: int | None,
        *,
        on_fitting: Callable[[], Awaitable[None]],
        on_position: PositionCallback,
    ) -> DownloadedVideo:
        """What to post for ``video`` under ``limit`` bytes (None: any size, as it is).

        ``on_fitting`` is awaited once a fit is needed, before it starts (the job service
        records the FITTING state); ``on_position`` is told the place in the fitting line.
        Raises :class:`~bot.video.probe.BrokenVideo` or :class:`FitUnavailable`.
        """
        info = await asyncio.to_thread(probe, video.path)
        log.info(
            "video.probed",
            bytes=info.size,
            codec=info.video_codec,
            pixel_format=info.pixel_format,
            size=f"{info.width}x{info.height}",
            seconds=round(info.duration, 2),
            index_first=info.index_first,
            audio=info.audio_codec,
        )
        if limit is None or self.pool is None:
            return video
        try:
            decided = plan(info, limit)
        except CannotFit as exc:
            log.warning("video.cannot_fit", reason=str(exc))
            return self._unfitted(video, info, limit)
        if decided.action is Action.AS_IS:
            return video
        await on_fitting()
        return await self._fit(video, info, decided, on_position)

    async def _fit(
        self,
        video: DownloadedVideo,
        info: VideoInfo,
        decided: FitPlan,
        on_position: PositionCallback,
    ) -> DownloadedVideo:
        assert self.pool is not None
        output = video.path.with_name(video.path.stem + FITTED_SUFFIX)
        try:
            made = await self.pool.fit(video.path, output, decided, info, on_position)
        except FitFailed as exc:
            log.warning("video.fit_failed", error=type(exc).__name__, detail=str(exc))
            return self._unfitted(video, info, decided.limit)
        log.info(
            "video.fitted",
            action=made.action.value,
            bytes=made.size,
            original_bytes=info.size,
            size=f"{made.width}x{made.height}",
            tries=made.tries,
            seconds=round(made.seconds, 2),
            cpu_seconds=round(made.cpu_seconds, 2),
        )
        kind = FitKind.REPACKED if made.action is Action.REPACK else FitKind.REENCODED
        fitting = Fitting(
            kind=kind,
            original_size=info.size,
            original_format=info.describe(),
            limit=decided.limit,
            oversized=decided.oversized,
            # A repackaged file is the original picture: no "full quality" to link to.
            full_quality_url=(
                video.source_url
                if kind is FitKind.REENCODED and durable_link(video.source_url)
                else None
            ),
            width=made.width,
            height=made.height,
        )
        return DownloadedVideo(
            path=output,
            size=made.size,
            content_type="video/mp4",
            source_url=video.source_url,
            fitting=fitting,
            original=video,
        )

    def _unfitted(self, video: DownloadedVideo, info: VideoInfo, limit: int) -> DownloadedVideo:
        """No fitted version: the original if it is small enough or linkable, else fail."""
        if info.size > limit and not durable_link(video.source_url):
            raise FitUnavailable(f"{info.size} bytes over limit {limit}; no fit; link is signed")
        fitting = Fitting(
            kind=FitKind.UNFITTED,
            original_size=info.size,
            original_format=info.describe(),
            limit=limit,
            oversized=info.size > limit,
            full_quality_url=video.source_url if durable_link(video.source_url) else None,
        )
        return DownloadedVideo(
            path=video.path,
            size=video.size,
            content_type=video.content_type,
            source_url=video.source_url,
            fitting=fitting,
        )
