"""Moderators run the credits from Discord: the real bot process against the loopback Discord.

The double computes each member's permissions from their roles: ``ADMIN_ID`` holds a role with
Administrator (so Manage Server), ``USER_ID`` has only @everyone's permissions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import ADMIN_ID, ADMIN_ROLE_ID, CHANNEL_ID, SECOND_CHANNEL_ID, USER_ID
from tests.fakes.discord.state import Callback
from tests.fakes.stack import Stack, description, running_stack
from tests.polling import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


async def quota(stack: Stack, sub: str, user_id: int = ADMIN_ID, **options: object) -> Callback:
    interaction = await stack.discord.slash(
        f"quota {sub}", options, channel_id=CHANNEL_ID, user_id=user_id
    )
    return await interaction.response(timeout=5)


def rows(stack: Stack, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(stack.db) as db:
        return list(db.execute(sql))


def fields(callback: Callback) -> dict[str, str]:
    return {f["name"]: f["value"] for f in callback.data["embeds"][0]["fields"]}


async def test_e2e_quota_moderator_grants_and_member_sees_it(stack: Stack):
    """A moderator grants credits with a reason; the ledger names them; /credits shows it."""
    callback = await quota(stack, "grant", amount=50, reason="movie night")
    assert callback.ephemeral
    assert "Granted 50 credits" in callback.data["content"]
    assert "150 left" in callback.data["content"]
    assert rows(stack, "SELECT kind, amount, actor_id, reason FROM ledger") == [
        ("grant", 50, ADMIN_ID, "movie night")
    ]
    member = await stack.discord.slash("credits", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
    shown = fields(await member.response(timeout=5))
    assert shown["Left"] == "**150** of 100"
    assert shown["You, this period"] == "0 credits used, no personal cap"
    ledger = await quota(stack, "ledger")
    assert f"by <@{ADMIN_ID}>" in ledger.data["embeds"][0]["description"]
    assert "movie night" in ledger.data["embeds"][0]["description"]


async def test_e2e_quota_member_without_manage_server_changes_nothing(stack: Stack):
    """Every /quota subcommand refuses a plain member at run time, kindly; nothing changes."""
    for sub, options in (
        ("grant", {"amount": 500, "reason": "me"}),
        ("set", {"allowance": 9999}),
        ("reset", {}),
        ("show", {}),
        ("ledger", {}),
        ("cooldown", {"seconds": 0}),
        ("blocklist", {"action": "list"}),
    ):
        callback = await quota(stack, sub, user_id=USER_ID, **options)
        assert callback.ephemeral
        assert callback.data["content"] == "You need the Manage Server permission for this.", sub
    assert rows(stack, "SELECT * FROM ledger") == []
    assert rows(stack, "SELECT * FROM audit") == []
    synced = {c["name"]: c for c in stack.discord.commands(stack.discord.guild().id)}
    assert str(synced["quota"]["default_member_permissions"]) == str(1 << 5)  # the hint too


async def test_e2e_quota_channel_allow_list_refuses_before_any_charge(stack: Stack):
    """/pika outside the allowed channel is refused privately; no credit moves, fal is idle."""
    callback = await quota(stack, "channels", action="add", channel=SECOND_CHANNEL_ID)
    assert (
        "Saved." in callback.data["content"]
        and f"<#{SECOND_CHANNEL_ID}>" in (callback.data["content"])
    )
    _, refused = await stack.pika(prompt="a fox in the wrong channel")
    assert refused.ephemeral
    assert f"<#{SECOND_CHANNEL_ID}>" in refused.data["content"]
    assert rows(stack, "SELECT * FROM ledger") == []
    assert rows(stack, "SELECT * FROM jobs") == []
    assert stack.fal.count("submit") == 0
    assert rows(stack, "SELECT actor_id, action, new_value FROM audit") == [
        (ADMIN_ID, "allow channel", str(SECOND_CHANNEL_ID))
    ]


async def test_e2e_quota_blocklist_generic_message(stack: Stack):
    """A blocked word is refused with a generic message that never names it; free."""
    await quota(stack, "blocklist", action="add", entry="forbidden")
    _, refused = await stack.pika(prompt="a FORBIDDEN fox")
    assert "can't be used on this server" in refused.data["content"]
    assert "forbidden" not in refused.data["content"].lower()
    assert rows(stack, "SELECT * FROM ledger") == []


async def test_e2e_quota_bad_input_is_explained(stack: Stack):
    """An unknown time zone is explained to the moderator; nothing is saved."""
    callback = await quota(stack, "set", timezone="Mars/Olympus")
    assert callback.data["content"].startswith("Nothing changed: unknown time zone")
    assert rows(stack, "SELECT * FROM audit") == []
    shown = await quota(stack, "set", allowance=300, period="weekly", reason="more videos")
    assert shown.data["content"] == "Saved."
    assert fields(shown)["Left"] == "**100** of 300"  # a new period never adds credits


@pytest.fixture
async def single_slot(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, PIKABOT_MAX_CONCURRENT_JOBS="1") as running:
        yield running


async def test_e2e_queue_position_is_shown(single_slot: Stack):
    """With one slot, a second clip waits in the bot's own line and says where it stands."""
    stack = single_slot
    stack.fal.queue_positions = tuple(range(30, 0, -1))
    stack.fal.stream_interval = 0.1
    cursor = stack.discord.cursor()
    await stack.pika(prompt="first in line")
    await stack.pika(prompt="second in line", user_id=ADMIN_ID)
    waiting = await stack.discord.wait_for_message(
        lambda m: "waiting in line, position 1" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    assert "second in line" in str(waiting.embeds)
    await eventually(stack.job_states, ["delivered", "delivered"], within=30)
    first_done = stack.fal.recorded("file")[0].time
    second_sent = stack.fal.recorded("submit")[1].time
    assert second_sent > first_done, "the second job waits for the first one's slot"


async def test_e2e_quota_rule_changes_read_as_the_moderator_set_them(stack: Stack):
    """The audit trail shows what the moderator set: $12.50, a role mention, a channel
    mention; never the stored column, the USD millionths or a bare id."""
    await quota(stack, "set", usd_cap="12.50", reason="budget")
    await quota(stack, "required-role", role=ADMIN_ROLE_ID)
    await quota(stack, "channels", action="add", channel=SECOND_CHANNEL_ID)
    await quota(stack, "member-cap", exempt_role=ADMIN_ROLE_ID)
    shown = await quota(stack, "ledger", entries="rules")
    text = shown.data["embeds"][0]["description"]
    lines = [line.split(": ", 1)[1] for line in text.splitlines()]  # after "#id <t:…> who"
    assert lines == [
        f"**rule for <@&{ADMIN_ROLE_ID}>** no rule → no member limits",
        f"**channels** — → <#{SECOND_CHANNEL_ID}> allowed",
        f"**role needed for /pika** anyone → <@&{ADMIN_ROLE_ID}>",
        "**monthly USD cap** no cap → $12.50 · budget",
    ]
    assert "12500000" not in text and "_micros" not in text
    assert rows(stack, "SELECT action, new_value FROM audit WHERE action LIKE 'set %'") == [
        ("set monthly_usd_cap_micros", "12500000"),
        ("set required_role_id", str(ADMIN_ROLE_ID)),
    ]
