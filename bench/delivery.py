"""Benchmark 3: provider done -> video posted in Discord, on the real bot process.

A ``/pika`` goes to ``pikabot run`` through the Discord double; FakeFal (timed mode) marks the
job done at a known moment and pushes COMPLETED on the open status stream. The figure ends
when the double has stored the message carrying the attachment. The time is split, from the
fakes' request logs and the bot's own ``video.downloaded`` log line, into

* detect: done -> the bot's download request reaches the fake CDN (stream event, result fetch);
* download: the transfer to the bot's temporary file;
* prepare: downloaded -> the upload request reaches the double (state write, status edit);
* upload: the multipart upload until the double has stored the message.

"Overhead" is detect + prepare: everything that is not moving the video's bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.common import FAL_KEY, BotStack, Config, MiB, Rows, bot_stack, median, secs
from tests.fakes.discord import CHANNEL_ID, USER_ID
from tests.fakes.fal import FakeFal

NAME = "delivery"
OVERHEAD_TARGET = 0.5
BIG_REQUEST_LIMIT = 256 * MiB


@dataclass(frozen=True, slots=True)
class Delivery:
    """Timings of one delivered job (seconds)."""

    total: float
    detect: float
    download: float
    prepare: float
    upload: float
    attached: bool

    @property
    def overhead(self) -> float:
        """Everything but the transfers."""
        return self.detect + self.prepare


def _downloaded_at(log_path: Path, request_id: str) -> float | None:
    """The bot's ``video.downloaded`` moment for ``request_id``, on this process's clock."""
    offset = time.time() - time.monotonic()
    for line in log_path.read_text(errors="replace").splitlines():
        if '"video.downloaded"' not in line or request_id not in line:
            continue
        with_ts = json.loads(line)
        wall = datetime.fromisoformat(with_ts["timestamp"]).timestamp()
        return wall - offset
    return None


async def deliver(stack: BotStack, size: int, prompt: str) -> Delivery:
    """Run one ``/pika`` whose video is ``size`` bytes; return its timings."""
    fal, discord = stack.fal, stack.discord
    fal.video_size = size
    before = set(fal.jobs)
    cursor = discord.cursor()
    it = await discord.slash("pika", {"prompt": prompt}, channel_id=CHANNEL_ID, user_id=USER_ID)
    await it.response(timeout=10)
    event = await discord.wait_for(
        lambda e: (
            e.kind == "message_create"
            and e.message is not None
            and (bool(e.message.attachments) or "/files/" in e.message.content)
        ),
        timeout=120,
        after=cursor,
    )
    posted = event.at
    job = next(j for j in fal.jobs.values() if j.request_id not in before)
    assert job.ready_at is not None
    fetched = min(r.time for r in fal.recorded("file") if r.request_id == job.request_id)
    path = f"/channels/{CHANNEL_ID}/messages"
    upload_start = max(
        r.at for r in discord.requests if r.method == "POST" and r.path == path and r.at <= posted
    )
    await asyncio.sleep(0.2)  # let the bot's log line land
    downloaded = _downloaded_at(stack.bot.log_path, job.request_id) or upload_start
    assert event.message is not None
    return Delivery(
        total=posted - job.ready_at,
        detect=fetched - job.ready_at,
        download=downloaded - fetched,
        prepare=upload_start - downloaded,
        upload=posted - upload_start,
        attached=bool(event.message.attachments),
    )


def _report(rows: Rows, label: str, runs: list[Delivery]) -> None:
    overhead = median([r.overhead for r in runs])
    n = len(runs)
    total = median([r.total for r in runs])
    rows.add(NAME, f"{label}: done -> posted, median (n={n})", secs(total))
    rows.add(
        NAME,
        f"{label}: overhead (detect + prepare), median",
        secs(overhead),
        f"<= {OVERHEAD_TARGET} s + transfer",
        overhead <= OVERHEAD_TARGET,
    )
    parts = ", ".join(
        f"{part} {median([getattr(r, part) for r in runs]):.3f}"
        for part in ("detect", "download", "prepare", "upload")
    )
    rows.add(NAME, f"{label}: split (s, medians)", parts)
    if not all(r.attached for r in runs):
        rows.add(NAME, f"{label}: posted as", "a link (not attached)")


async def run(cfg: Config) -> Rows:
    """Deliver 5 MiB clips (default server) and 50 MiB clips (tier 3 server)."""
    rows = Rows()
    small_runs, big_runs = (1, 1) if cfg.quick else (5, 3)
    async with (
        FakeFal(key=FAL_KEY, queue_positions=(), progress_logs=(), ready_after=1.0) as fal,
        bot_stack(cfg.workdir, NAME, fal, PIKABOT_STATUS_EDIT_INTERVAL="1.0") as stack,
    ):
        fal.stream_interval = 0.25
        small = [await deliver(stack, 5 * MiB, f"small clip {i}") for i in range(small_runs)]
        _report(rows, "5 MiB, attached", small)

        await stack.discord.set_premium_tier(3)  # 100 MiB per attachment
        stack.discord.request_limit = BIG_REQUEST_LIMIT
        await asyncio.sleep(0.5)  # GUILD_UPDATE reaches the bot's cache
        big = [await deliver(stack, 50 * MiB, f"big clip {i}") for i in range(big_runs)]
        _report(rows, "50 MiB, attached (tier 3)", big)

        if not cfg.quick:
            # The double's default 25 MiB whole-request cap (PLATFORM.md) with a tier 3 guild.
            stack.discord.request_limit = 25 * MiB
            capped = await deliver(stack, 50 * MiB, "big clip, capped request")
            how = "attached" if capped.attached else "413, then posted as a link"
            rows.add(
                NAME,
                "50 MiB, tier 3 but 25 MiB request cap: done -> posted",
                f"{capped.total:.3f} s ({how})",
            )
    rows.notes.append(
        f"delivery: 50 MiB runs raise the double's whole-request cap to "
        f"{BIG_REQUEST_LIMIT // MiB} MiB (default 25 MiB) besides set_premium_tier(3)."
    )
    return rows
