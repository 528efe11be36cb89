"""Pika's tools in the unmodified bot process, against the loopback Discord and fal: every
Discord entry point (slash commands, the message context menus, their modals), with the same
rules as /pika (checked inputs, one status message, one charge, the blocklist on modal text, a
moderator's disabled effect), the result's "made from" line and its rerun controls, and a
restart in the middle of a tool's job.

One bot process serves the whole module (each start costs seconds): tests post their own
sources and look only at their own jobs, so they do not depend on one another; the restart
test comes last.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes._loopback import DEFAULT_VIDEO
from tests.fakes.discord import ADMIN_ID, BOT_ID, CHANNEL_ID, GUILD_ID, USER_ID, Message, Upload
from tests.fakes.discord.state import Callback, Interaction
from tests.fakes.stack import Stack, description, footer, running_stack
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
GIF = b"GIF89a" + b"\x00" * 64


def png(name: str = "cat.png") -> Upload:
    return Upload(name, PNG, "image/png")


def mp4(name: str = "clip.mp4") -> Upload:
    return Upload(name, DEFAULT_VIDEO, "video/mp4")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("tools"), PIKABOT_DEFAULT_ALLOWANCE="100000"
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_fal(stack: Stack) -> None:
    """Each test starts with fal behaving normally (a test may have scripted a failure)."""
    stack.fal.result_failure = None
    stack.fal.queue_positions = (2, 1)


def ledger_of(stack: Stack, job_id: int) -> list[str]:
    """The ledger kinds of one job's reservation, in order."""
    with sqlite3.connect(stack.db) as db:
        rows = db.execute(
            "SELECT l.kind FROM ledger l JOIN jobs j ON l.reservation_id = j.reservation_id"
            " WHERE j.id = ? ORDER BY l.id",
            (job_id,),
        )
        return [row[0] for row in rows]


def tool_column(stack: Stack, job_id: int) -> str | None:
    with sqlite3.connect(stack.db) as db:
        row = db.execute("SELECT tool FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None


def job_id_of(message: Message) -> int:
    return int(footer(message).split()[1])


def field(message: Message, name: str) -> str:
    for embed in message.embeds:
        for item in embed.get("fields", []):
            if item["name"] == name:
                return str(item["value"])
    raise AssertionError(f"no field {name!r} in {message.embeds}")


async def result_after(stack: Stack, cursor: int, timeout: float = 30.0) -> Message:  # noqa: ASYNC109
    """The next video the bot posts after event ``cursor``."""
    return await stack.discord.wait_for_message(
        lambda m: m.author.id == BOT_ID and bool(m.attachments),
        channel_id=CHANNEL_ID,
        timeout=timeout,
        after=cursor,
    )


def last_submit(stack: Stack, endpoint: str) -> dict[str, Any]:
    found = [r for r in stack.fal.recorded("submit") if r.path == f"/fal-ai/pika/{endpoint}"]
    assert found, f"nothing was submitted to {endpoint}"
    return dict(found[-1].json)


async def slash(stack: Stack, name: str, user_id: int = USER_ID, **options: Any) -> Callback:
    interaction = await stack.discord.slash(name, options, channel_id=CHANNEL_ID, user_id=user_id)
    return await interaction.answer(timeout=10)


async def open_menu(stack: Stack, name: str, message: Message) -> Interaction:
    return await stack.discord.context_menu(name, message.id, user_id=USER_ID)


async def settled(stack: Stack, job_id: int) -> None:
    """The job's charge landed (it follows the post in the same unit as DELIVERED)."""
    await eventually(lambda: ledger_of(stack, job_id), ["reserve", "charge"])


# -- registration ------------------------------------------------------------------------------


async def test_e2e_tools_are_registered_with_fal(stack: Stack):
    """fal sells every tool: its slash commands, both message menus and /quota effects."""
    commands = stack.discord.commands(GUILD_ID)
    slash_names = {c["name"] for c in commands if c.get("type", 1) == 1}
    menus = {c["name"] for c in commands if c.get("type") == 3}
    assert {"pikaffect", "pika-add", "pika-swap", "pika-frames"} <= slash_names
    assert menus == {"Add to this video", "Swap in this video"}
    for menu in (c for c in commands if c.get("type") == 3):
        assert menu["description"] == "" and menu.get("contexts") == [0]
    quota = next(c for c in commands if c["name"] == "quota")
    assert "effects" in {o["name"] for o in quota["options"]}
    effect = next(c for c in commands if c["name"] == "pikaffect")
    choices = next(o for o in effect["options"] if o["name"] == "effect")["choices"]
    assert len(choices) == 16 and {"name": "Ta-da", "value": "Ta-da"} in choices


# -- Pikaffects --------------------------------------------------------------------------------


async def test_e2e_pikaffect_is_priced_posted_and_says_what_made_it(stack: Stack):
    """/pikaffect: 50 credits reserved, one status message, the video with "made from",
    the effect and the Discord CDN URL of the photo at fal, one charge."""
    cursor = stack.discord.cursor()
    answer = await slash(stack, "pikaffect", image=png("cat.png"), effect="Melt", seed=42)
    assert answer.ephemeral and "50 credits reserved" in answer.data["content"]
    result = await result_after(stack, cursor)
    job_id = job_id_of(result)
    assert result.attachments[0].data == stack.fal.video
    assert field(result, "Made from") == "Pikaffects **Melt** on `cat.png`"
    assert "Pikaffects · Melt · seed 42" in field(result, "Settings")
    body = last_submit(stack, "v1.5/pikaffects")
    assert body["pikaffect"] == "Melt" and body["seed"] == 42
    assert "/attachments/" in body["image_url"] and "prompt" not in body
    statuses = [
        m
        for m in stack.discord.messages(CHANNEL_ID)
        if m.author.id == BOT_ID and footer(m) == f"job {job_id}" and m.id != result.id
    ]
    assert len(statuses) == 1
    await stack.discord.wait_for_message(
        lambda m: m.id == statuses[0].id and "Done" in description(m),
        timeout=10,
        after=cursor,
        kinds=("message_update",),
    )
    await settled(stack, job_id)
    assert tool_column(stack, job_id) == "pikaffects"


async def test_e2e_pikaffect_refuses_a_file_that_is_not_an_image(stack: Stack):
    """A GIF named .png: a private refusal, nothing reserved or sent."""
    submits = stack.fal.count("submit")
    answer = await slash(
        stack, "pikaffect", image=Upload("cat.png", GIF, "image/png"), effect="Melt"
    )
    assert answer.ephemeral
    assert "not a PNG, JPEG or WebP image" in answer.data["content"]
    assert stack.fal.count("submit") == submits


async def test_e2e_moderator_turns_an_effect_off_and_on(stack: Stack):
    """/quota effects: Decapitate off is refused privately for members (nothing reserved),
    and works again once back on."""
    off = await slash(stack, "quota effects", user_id=ADMIN_ID, action="off", effect="Decapitate")
    assert "Turned off here: Decapitate" in off.data["content"]
    submits = stack.fal.count("submit")
    refused = await slash(stack, "pikaffect", image=png(), effect="Decapitate")
    assert refused.ephemeral and "Decapitate effect is turned off" in refused.data["content"]
    assert stack.fal.count("submit") == submits
    member = await slash(stack, "quota effects", action="on", effect="Decapitate")
    assert "Manage Server" in member.data["content"]  # members cannot switch it back
    on = await slash(stack, "quota effects", user_id=ADMIN_ID, action="on", effect="Decapitate")
    assert "Every Pikaffect is on here." in on.data["content"]
    cursor = stack.discord.cursor()
    again = await slash(stack, "pikaffect", image=png(), effect="Decapitate")
    assert "credits reserved" in again.data["content"]
    await result_after(stack, cursor)
    usage = await slash(stack, "quota usage", user_id=ADMIN_ID)
    (tools,) = [
        f for f in usage.data["embeds"][0]["fields"] if f["name"] == "Pika tools this month"
    ]
    assert "Pikaffects" in tools["value"]
    audit = await slash(stack, "quota ledger", user_id=ADMIN_ID, entries="rules")
    shown = audit.data["embeds"][0]["description"]
    assert "**Pikaffect Decapitate** off → on" in shown
    assert "**Pikaffect Decapitate** on → off" in shown


# -- Pikadditions ------------------------------------------------------------------------------


async def test_e2e_add_to_this_video_opens_a_modal_and_links_the_source(stack: Stack):
    """The context menu on a member's video opens the modal; its upload and prompt make a
    Pikadditions job whose result links the source video's message."""
    source = await stack.discord.say("my clip", files=[mp4("party.mp4")])
    opened = await open_menu(stack, "Add to this video", source)
    modal = await opened.response(timeout=10)
    assert modal.type == 9 and modal.data["title"] == "Add to this video"
    cursor = stack.discord.cursor()
    submitted = await stack.discord.submit_modal(
        opened, {"image": png("dog.png"), "prompt": "a dog joins the party"}
    )
    answer = await submitted.answer(timeout=10)
    assert answer.ephemeral and "47 credits reserved" in answer.data["content"]
    result = await result_after(stack, cursor)
    link = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{source.id}"
    assert field(result, "Made from") == f"Pikadditions: `dog.png` added to [party.mp4]({link})"
    body = last_submit(stack, "v2/pikadditions")
    assert body["video_url"].split("?")[0] == source.attachments[0].url.split("?")[0]
    assert body["prompt"] == "a dog joins the party"
    (job,) = [j for j in stack.fal.jobs.values() if j.body == body]
    assert job.fetched is not None and job.fetched["video_url"] == DEFAULT_VIDEO[:64]
    await settled(stack, job_id_of(result))


async def test_e2e_add_to_a_message_without_a_video_is_refused_at_once(stack: Stack):
    """No modal for a message without a video: a private sentence instead."""
    plain = await stack.discord.say("just words", files=[png("still.png")])
    opened = await open_menu(stack, "Add to this video", plain)
    answer = await opened.response(timeout=10)
    assert answer.type == 4 and answer.ephemeral
    assert "has no video I can use" in answer.data["content"]


async def test_e2e_modal_image_rules(stack: Stack):
    """In the modal: an upload and an address together, an address on a private network, or
    no image at all are refused privately; nothing reaches fal."""
    source = await stack.discord.say("clip", files=[mp4()])
    submits = stack.fal.count("submit")
    cases = [
        ({"image": png(), "image_url": "https://93.184.216.34/cat.png"}, "not both"),
        ({"image_url": "http://127.0.0.1:1/cat.png"}, "private networks"),
        ({"prompt": "a hat"}, "exactly one image: what to add"),
    ]
    for values, shown in cases:
        opened = await open_menu(stack, "Add to this video", source)
        await opened.response(timeout=10)
        submitted = await stack.discord.submit_modal(opened, values)
        answer = await submitted.answer(timeout=10)
        assert answer.ephemeral and shown in answer.data["content"], answer.data
    assert stack.fal.count("submit") == submits


async def test_e2e_pika_add_checks_the_video_by_its_bytes(stack: Stack):
    """/pika-add: a PNG named .mp4 is no video (refused, free); a real one makes the job."""
    submits = stack.fal.count("submit")
    refused = await slash(
        stack, "pika-add", video=Upload("fake.mp4", PNG, "video/mp4"), image=png()
    )
    assert "not an MP4, MOV or WebM video" in refused.data["content"]
    assert stack.fal.count("submit") == submits
    cursor = stack.discord.cursor()
    answer = await slash(
        stack, "pika-add", video=mp4("v.mp4"), image=png("hat.png"), prompt="a hat"
    )
    assert "47 credits reserved" in answer.data["content"]
    result = await result_after(stack, cursor)
    assert field(result, "Made from") == "Pikadditions: `hat.png` added to `v.mp4`"


# -- Pikaswaps ---------------------------------------------------------------------------------


async def test_e2e_swap_in_a_posted_result_with_the_blocklist_on_modal_text(stack: Stack):
    """The menu on a video the bot posted: a blocked word in the modal's region is refused;
    a clean region makes a Pikaswaps job on that video."""
    cursor = stack.discord.cursor()
    await slash(stack, "pikaffect", image=png(), effect="Inflate")
    posted = await result_after(stack, cursor)
    added = await slash(stack, "quota blocklist", user_id=ADMIN_ID, action="add", entry="banana")
    assert "Saved" in added.data["content"]
    try:
        opened = await open_menu(stack, "Swap in this video", posted)
        assert (await opened.response(timeout=10)).type == 9
        blocked = await stack.discord.submit_modal(
            opened, {"region": "the banana", "prompt": "a pear"}
        )
        answer = await blocked.answer(timeout=10)
        assert "can't be used on this server" in answer.data["content"]
        assert "banana" not in answer.data["content"]
    finally:
        await slash(stack, "quota blocklist", user_id=ADMIN_ID, action="remove", entry="banana")
    opened = await open_menu(stack, "Swap in this video", posted)
    await opened.response(timeout=10)
    cursor = stack.discord.cursor()
    submitted = await stack.discord.submit_modal(
        opened, {"region": "the balloon", "prompt": "a kite"}
    )
    assert "50 credits reserved" in (await submitted.answer(timeout=10)).data["content"]
    result = await result_after(stack, cursor)
    body = last_submit(stack, "v2/pikaswaps")
    assert body["modify_region"] == "the balloon" and body["prompt"] == "a kite"
    assert "image_url" not in body
    assert body["video_url"].split("?")[0] == posted.attachments[0].url.split("?")[0]
    assert "*the balloon* in [" in field(result, "Made from")
    assert f"/{posted.id})" in field(result, "Made from")


async def test_e2e_pika_swap_slash_command(stack: Stack):
    """/pika-swap with a region and an image: the image goes to fal with the region."""
    cursor = stack.discord.cursor()
    answer = await slash(
        stack, "pika-swap", video=mp4("street.mp4"), region="the red car", image=png("horse.png")
    )
    assert "50 credits reserved" in answer.data["content"]
    result = await result_after(stack, cursor)
    body = last_submit(stack, "v2/pikaswaps")
    assert body["modify_region"] == "the red car" and "/attachments/" in body["image_url"]
    assert field(result, "Made from") == (
        "Pikaswaps: *the red car* in `street.mp4` swapped for `horse.png`"
    )


# -- Pikaframes --------------------------------------------------------------------------------


async def test_e2e_pika_frames_with_transitions(stack: Stack):
    """/pika-frames: three keyframes, a prompt for the first transition, 3 s and 4 s:
    priced by the second (7 s x $0.04 = 28 credits), sent with both transitions."""
    cursor = stack.discord.cursor()
    answer = await slash(
        stack,
        "pika-frames",
        prompt="a seed becomes a tree",
        image1=png("seed.png"),
        image2=png("sprout.png"),
        image3=png("tree.png"),
        transition1="it sprouts",
        durations="3 4",
    )
    assert "28 credits reserved" in answer.data["content"]
    result = await result_after(stack, cursor)
    body = last_submit(stack, "v2.2/pikaframes")
    assert body["transitions"] == [{"duration": 3, "prompt": "it sprouts"}, {"duration": 4}]
    assert len(body["image_urls"]) == 3 and body["resolution"] == "720p"
    made = field(result, "Made from")
    assert made.startswith("Pikaframes: `seed.png` → `sprout.png` → `tree.png`")
    assert "1→2 (3 s): it sprouts" in made
    refused = await slash(
        stack, "pika-frames", prompt="x", image1=png(), image2=png(), durations="20"
    )
    assert "1 to 10 seconds" in refused.data["content"]


# -- reruns ------------------------------------------------------------------------------------


async def test_e2e_rerun_button_and_reaction_reuse_the_inputs(stack: Stack):
    """A tool's result offers Rerun and Delete (no 1080p or 10-second button); Rerun and 🔁
    send the same inputs with a new seed, each a new charged job."""
    cursor = stack.discord.cursor()
    await slash(stack, "pikaffect", image=png(), effect="Squish", seed=5)
    first = await result_after(stack, cursor)
    job_id = job_id_of(first)
    ids = [c["custom_id"] for row in first.components for c in row.get("components", [])]
    assert ids == [f"pikabot:rerun:{job_id}:new", f"pikabot:delete:{job_id}"]
    original = last_submit(stack, "v1.5/pikaffects")
    cursor = stack.discord.cursor()
    click = await stack.discord.click(first.id, f"pikabot:rerun:{job_id}:new", user_id=ADMIN_ID)
    assert "credits reserved" in (await click.answer(timeout=10)).data["content"]
    rerun = await result_after(stack, cursor)
    again = last_submit(stack, "v1.5/pikaffects")
    assert again["pikaffect"] == "Squish" and again["image_url"] == original["image_url"]
    assert field(rerun, "Made from") == field(first, "Made from")
    cursor = stack.discord.cursor()
    await stack.discord.react(CHANNEL_ID, first.id, "🔁", user_id=USER_ID)
    await result_after(stack, cursor)
    assert last_submit(stack, "v1.5/pikaffects")["image_url"] == original["image_url"]
    await settled(stack, job_id_of(rerun))


# -- restarts (last: it restarts the shared bot) -----------------------------------------------


async def test_e2e_tool_job_survives_a_restart(stack: Stack):
    """A Pikaswaps job queued at fal when the bot restarts is followed on and posted once,
    still saying what made it."""
    stack.fal.queue_positions = tuple(range(400, 0, -1))  # long enough to restart meanwhile
    cursor = stack.discord.cursor()
    answer = await slash(
        stack, "pika-swap", video=mp4("long.mp4"), region="the sky", prompt="aurora"
    )
    assert "credits reserved" in answer.data["content"]
    await stack.discord.wait_for_message(
        lambda m: "Queued" in description(m),
        channel_id=CHANNEL_ID,
        timeout=10,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    submits = stack.fal.count("submit")
    await stack.restart()
    stack.fal.queue_positions = ()
    for job in stack.fal.jobs.values():
        job.observations = 10_000  # fal finishes it while the bot was away
    result = await result_after(stack, cursor)
    assert field(result, "Made from") == "Pikaswaps: *the sky* in `long.mp4` swapped for the prompt"
    assert stack.fal.count("submit") == submits  # followed on, never sent again
    posted = [
        m
        for m in stack.discord.messages(CHANNEL_ID)
        if m.author.id == BOT_ID and m.attachments and footer(m) == footer(result)
    ]
    assert len(posted) == 1
    await settled(stack, job_id_of(result))
