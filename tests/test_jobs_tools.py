"""The job service with Pika's tools, in process over the loopback fal and a real database (both
backends): priced and reserved like any clip, every server rule applied (a disabled Pikaffect,
the blocklist on a tool's own fields), settled once, and never failed over to a provider
that does not sell the tool."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.config import Period
from bot.jobs import JobLimits, JobService, RequestRefused
from bot.moderation import Moderation
from bot.policy import EffectDisabled, PromptBlocked
from bot.providers.aigateway import AIGatewayProvider
from bot.providers.fal import FalProvider
from bot.quotas import Quotas
from bot.storage import open_storage
from bot.storage.records import LedgerKind
from bot.tool_requests import SourceVideo, ToolOptions, build_tool_request
from bot.tools import Tool
from tests.fakes._loopback import DEFAULT_VIDEO
from tests.fakes.aigateway import FakeAIGateway
from tests.fakes.fal import FakeFal
from tests.test_jobs import FAST, ORIGIN, RecordingFrontEnd, World, request, world
from tests.units import ledger_rows

__all__ = ["world"]  # the fixture, shared with tests/test_jobs.py

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def melt(fal: FakeFal, **overrides: object) -> object:
    image = fal.host_file("cat.png", PNG, "image/png")
    values: dict[str, object] = {"effect": "Melt", "image_urls": (image,), "seed": 1}
    values.update(overrides)
    return build_tool_request(ToolOptions(Tool.PIKAFFECTS, **values))  # type: ignore[arg-type]


async def test_tool_job_is_priced_run_and_charged_once(world: World) -> None:
    """A Pikaffects job: 50 credits reserved, sent to its endpoint, delivered, one charge."""
    job = await world.service.create(melt(world.fal), ORIGIN)  # type: ignore[arg-type]
    assert job.cost == 50
    front = RecordingFrontEnd()
    async with asyncio.timeout(10):
        await world.service.run(job, front)
    assert front.delivered_bytes == world.fal.video
    assert [r.path for r in world.fal.recorded("submit")] == ["/fal-ai/pika/v1.5/pikaffects"]
    kinds = [r.kind for r in await ledger_rows(world.storage, ORIGIN.guild_id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.CHARGE]


async def test_disabled_effect_is_refused_before_anything_is_reserved(world: World) -> None:
    """A moderator turned Melt off: the member is told, nothing is held or sent."""
    moderation = Moderation(world.storage, world.quotas.quotas)
    await moderation.effect(ORIGIN.guild_id, 1, "melt", enabled=False)
    try:
        await world.service.create(melt(world.fal), ORIGIN)  # type: ignore[arg-type]
    except EffectDisabled as refused:
        assert "Melt effect is turned off" in refused.user_message
        assert "Crush" in refused.user_message  # the effects still on are offered
    else:
        raise AssertionError("a disabled effect was accepted")
    assert await ledger_rows(world.storage, ORIGIN.guild_id) == []
    assert world.fal.count("submit") == 0
    await moderation.effect(ORIGIN.guild_id, 1, "Melt", enabled=True)
    job = await world.service.create(melt(world.fal), ORIGIN)  # type: ignore[arg-type]
    assert job.cost == 50


async def test_blocklist_reads_a_tools_own_fields(world: World) -> None:
    """A blocked word in a Pikaswaps region is refused like one in a prompt."""
    moderation = Moderation(world.storage, world.quotas.quotas)
    await moderation.blocklist(ORIGIN.guild_id, 1, "flag", blocked=True)
    video = world.fal.host_file("v.mp4", DEFAULT_VIDEO)
    swap = build_tool_request(
        ToolOptions(
            Tool.PIKASWAPS, region="the flag", prompt="a banner", video=SourceVideo(video, "v")
        )
    )
    try:
        await world.service.create(swap, ORIGIN)
    except PromptBlocked:
        pass
    else:
        raise AssertionError("the blocklist missed the region")
    assert world.fal.count("submit") == 0


async def test_fallback_without_the_tool_never_takes_a_tool_job(
    storage_url: str, session: aiohttp.ClientSession
) -> None:
    """fal's circuit open, AIgateway (no tools) as fallback: a tool job is refused with
    nothing reserved; a plain clip still fails over."""
    async with FakeFal() as fal, FakeAIGateway(min_poll_interval=0.0) as gateway:
        store = await open_storage(storage_url)
        try:
            service = JobService(
                storage=store,
                quotas=Quotas(default_allowance=1000, default_period=Period.DAILY),
                provider=FalProvider(session, api_key=fal.key, base_url=fal.url, retry=FAST),
                fallback=AIGatewayProvider(
                    session, api_key=gateway.key, base_url=gateway.url, retry=FAST
                ),
                session=session,
                credits_per_usd=100,
                limits=JobLimits(status_interval=0.0),
            )
            for _ in range(service.breaker.threshold):
                service.breaker.record_outage()
            try:
                await service.create(melt(fal), ORIGIN)  # type: ignore[arg-type]
            except RequestRefused as refused:
                assert "having trouble" in refused.user_message
            else:
                raise AssertionError("the tool job went to a provider without the tool")
            assert await ledger_rows(store, ORIGIN.guild_id) == []
            plain = await service.create(request(), ORIGIN)
            assert plain.provider == "aigateway"
            await service.close()
        finally:
            await store.close()
        assert gateway.count("submit") == 0 and fal.count("submit") == 0
