"""One process of :mod:`bench.shared`: reserve through ``JobService.create`` on a shared
database when told to go, then print what it was granted as one JSON line.

``python -m bench.reservations_worker URL GUILD WORKERS ATTEMPTS FIRST_USER``: prints
``BENCH ready`` once the services are open, waits for a line on stdin, runs ``WORKERS`` coroutines
of ``ATTEMPTS`` requests each (members from ``FIRST_USER`` on), and prints
``BENCH {"granted": [costs], "at": [unix times], "refused": n}`` (other lines are logs).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bot.config import load_settings
from bot.models import GenerationRequest, Origin
from bot.refusals import RequestRefused
from bot.services import Services

REQUEST = GenerationRequest(prompt="a benchmark clip", seed=1)  # 20 credits on fal's table


async def main(url: str, guild: int, workers: int, attempts: int, first_user: int) -> None:
    settings = load_settings(
        need_discord=False,
        need_provider=True,
        FAL_KEY="bench-key",
        FAL_QUEUE_URL="http://127.0.0.1:9/",  # never called: jobs are created, not started
        PIKABOT_DATABASE_URL=url,
        PIKABOT_LOG_LEVEL="WARNING",
        PIKABOT_MAX_CONCURRENT_JOBS="100000",  # only credits may refuse
        PIKABOT_MAX_QUEUE="100000",
        PIKABOT_GUILD_MAX_QUEUE="100000",
    )
    services = await Services.open(settings)
    granted: list[int] = []
    at: list[float] = []
    refused = 0

    async def reserver(worker: int) -> None:
        nonlocal refused
        origin = Origin(guild_id=guild, channel_id=1, user_id=first_user + worker)
        for _ in range(attempts):
            try:
                job = await services.jobs.create(REQUEST, origin)
            except RequestRefused:
                refused += 1
            else:
                granted.append(job.cost)
                at.append(time.time())

    try:
        print("BENCH ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(reserver(w) for w in range(workers)))
    finally:
        await services.close()
    print("BENCH " + json.dumps({"granted": granted, "at": at, "refused": refused}), flush=True)


if __name__ == "__main__":
    url, guild, workers, attempts, first = sys.argv[1:6]
    asyncio.run(main(url, int(guild), int(workers), int(attempts), int(first)))
