"""Contract of the Pika tools' storage, on both backends: a job keeps its tool and inputs, use
is counted per tool, and a guild's disabled Pikaffects are kept (and audited by the domain)."""

from __future__ import annotations

from dataclasses import replace

from bot.config import Period
from bot.guild_settings import GuildDefaults, GuildSettings
from bot.models import GenerationRequest
from bot.storage import Storage
from bot.tool_requests import SourceVideo, ToolOptions, build_tool_request
from bot.tools import Pikaffect, Tool
from tests.storage.helpers import DEFAULTS, GUILD, NOW, OTHER_GUILD, later, new_job

SWAP = build_tool_request(
    ToolOptions(
        Tool.PIKASWAPS,
        region="the red car",
        prompt="a horse",
        video=SourceVideo("https://cdn.example/v.mp4?ex=1", "v.mp4", "https://discord.com/x"),
        image_urls=("https://cdn.example/horse.png",),
        image_names=("horse.png",),
        seed=11,
    )
)
FRAMES = build_tool_request(
    ToolOptions(
        Tool.PIKAFRAMES,
        prompt="a day passes",
        image_urls=("https://cdn.example/1.png", "https://cdn.example/2.png"),
        transition_prompts=("the sun sets",),
        durations="7",
        seed=12,
    )
)


def tool_job(request: GenerationRequest, guild_id: int = GUILD) -> object:
    return replace(new_job(guild_id), request=request)


async def test_a_tool_job_keeps_its_tool_and_inputs(storage: Storage) -> None:
    """Created and read back (also after a restart: a new read), the request is the same."""
    async with storage.unit() as uow:
        job = await uow.jobs.create(tool_job(SWAP), NOW)  # type: ignore[arg-type]
    async with storage.read() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.request == SWAP
    assert stored.request.tool is not None
    assert stored.request.tool.region == "the red car"
    assert stored.request.tool.video_message_url == "https://discord.com/x"
    assert stored.request.tool.image_names == ("horse.png",)


async def test_tool_counts_per_tool_in_a_window(storage: Storage) -> None:
    """Per guild, per tool, in [since, until); plain clips are not counted."""
    async with storage.unit() as uow:
        await uow.jobs.create(tool_job(SWAP), later(0))  # type: ignore[arg-type]
        await uow.jobs.create(tool_job(SWAP), later(10))  # type: ignore[arg-type]
        await uow.jobs.create(tool_job(FRAMES), later(20))  # type: ignore[arg-type]
        await uow.jobs.create(new_job(), later(30))
        await uow.jobs.create(tool_job(FRAMES, OTHER_GUILD), later(30))  # type: ignore[arg-type]
        await uow.jobs.create(tool_job(FRAMES), later(100))  # type: ignore[arg-type]
    async with storage.read() as uow:
        counts = await uow.jobs.tool_counts(GUILD, NOW, later(60))
        none = await uow.jobs.tool_counts(GUILD, later(200), later(300))
    assert counts == {"pikaframes": 1, "pikaswaps": 2}
    assert none == {}


async def test_disabled_effects_are_kept_per_guild(storage: Storage) -> None:
    """Turned off and on again; a repeat changes nothing; another guild is untouched."""
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        assert await uow.guilds.set_effect_disabled(GUILD, "Decapitate", disabled=True)
        assert await uow.guilds.set_effect_disabled(GUILD, "Crush", disabled=True)
        assert not await uow.guilds.set_effect_disabled(GUILD, "Crush", disabled=True)
    async with storage.read() as uow:
        assert (await uow.guilds.lists(GUILD)).disabled_effects == ("Crush", "Decapitate")
        assert (await uow.guilds.lists(OTHER_GUILD)).disabled_effects == ()
    async with storage.unit() as uow:
        assert await uow.guilds.set_effect_disabled(GUILD, "Crush", disabled=False)
        assert not await uow.guilds.set_effect_disabled(GUILD, "Crush", disabled=False)
        assert (await uow.guilds.lists(GUILD)).disabled_effects == ("Decapitate",)


async def test_guild_policy_holds_the_disabled_effects_with_an_audit_row(
    storage: Storage,
) -> None:
    """The domain writes the rule and its audit row in one unit; the policy reads it back."""
    settings = GuildSettings(GuildDefaults(100, Period.DAILY), clock=lambda: NOW)
    async with storage.unit() as uow:
        changed = await settings.set_effect(uow, GUILD, 77, Pikaffect.DECAPITATE, enabled=False)
        again = await settings.set_effect(uow, GUILD, 77, Pikaffect.DECAPITATE, enabled=False)
        policy = await settings.load(uow, GUILD)
        entries, total = await uow.guilds.audit_page(GUILD, offset=0, limit=10)
    assert changed and not again
    assert policy.disabled_effects == frozenset({Pikaffect.DECAPITATE})
    assert total == 1
    assert (entries[0].actor_id, entries[0].action, entries[0].new_value) == (
        77,
        "disable effect",
        "Decapitate",
    )
