"""Contract of GuildRepo: settings rows, role/channel/blocklist rules and the audit trail."""

from __future__ import annotations

import pytest

from bot.storage import Storage
from bot.storage.base import NewGuild
from bot.storage.records import GuildLists, GuildRow, RoleKind, RoleRow
from tests.storage.helpers import DEFAULTS, GUILD, NOW, OTHER_GUILD, later


async def test_get_or_create_inserts_defaults_once(storage: Storage) -> None:
    async with storage.unit() as uow:
        first = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        again = await uow.guilds.get_or_create(GUILD, NewGuild(5, "weekly"), later(60))
    assert first == GuildRow(guild_id=GUILD, allowance=100, period="daily")
    assert again == first  # the stored row, not the new defaults
    async with storage.read() as uow:
        stored = await uow.guilds.get_or_create(GUILD, NewGuild(5, "weekly"), later(60))
    assert stored == first


async def test_get_or_create_default_values_have_python_types(storage: Storage) -> None:
    async with storage.unit() as uow:
        row = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
    assert row.time_zone is None
    assert row.reset_hour == 0
    assert row.rollover is False
    assert row.member_cap is None
    assert row.cooldown_seconds == 0
    assert row.max_running is None
    assert row.required_role_id is None
    assert row.nsfw_only is False
    assert row.reruns_by == "anyone"
    assert row.monthly_usd_cap_micros is None


async def test_update_writes_every_column(storage: Storage) -> None:
    changes: dict[str, object] = {
        "allowance": 250,
        "period": "monthly",
        "time_zone": "Europe/Paris",
        "reset_hour": 6,
        "rollover": True,
        "member_cap": 30,
        "cooldown_seconds": 90,
        "max_running": 2,
        "required_role_id": 9_223_372_036_854_775_807,
        "nsfw_only": True,
        "reruns_by": "requester",
        "monthly_usd_cap_micros": 12_500_000,
    }
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        await uow.guilds.update(GUILD, changes, later(1))
    async with storage.read() as uow:
        row = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
    assert row == GuildRow(guild_id=GUILD, **changes)  # type: ignore[arg-type]
    assert row.rollover is True and row.nsfw_only is True


async def test_update_back_to_none_and_false(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        await uow.guilds.update(GUILD, {"member_cap": 3, "rollover": True}, NOW)
        await uow.guilds.update(GUILD, {"member_cap": None, "rollover": False}, later(1))
        row = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
    assert row.member_cap is None
    assert row.rollover is False


async def test_update_refuses_an_unknown_column(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        with pytest.raises(ValueError, match="guild_id"):
            await uow.guilds.update(GUILD, {"guild_id": 5}, NOW)


async def test_guilds_are_separate(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        await uow.guilds.get_or_create(OTHER_GUILD, DEFAULTS, NOW)
        await uow.guilds.update(GUILD, {"allowance": 7}, NOW)
        other = await uow.guilds.get_or_create(OTHER_GUILD, DEFAULTS, NOW)
    assert other.allowance == 100


async def test_lists_of_a_new_guild_are_empty(storage: Storage) -> None:
    async with storage.read() as uow:
        assert await uow.guilds.lists(GUILD) == GuildLists()


async def test_set_channel_reports_whether_it_changed(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.guilds.set_channel(GUILD, 30, allowed=True) is True
        assert await uow.guilds.set_channel(GUILD, 30, allowed=True) is False
        assert await uow.guilds.set_channel(GUILD, 10, allowed=True) is True
        assert await uow.guilds.set_channel(OTHER_GUILD, 99, allowed=True) is True
        assert (await uow.guilds.lists(GUILD)).channels == frozenset({10, 30})
        assert await uow.guilds.set_channel(GUILD, 30, allowed=False) is True
        assert await uow.guilds.set_channel(GUILD, 30, allowed=False) is False
        assert (await uow.guilds.lists(GUILD)).channels == frozenset({10})


async def test_clear_channels_returns_the_removed_ids_sorted(storage: Storage) -> None:
    async with storage.unit() as uow:
        for channel in (300, 20, 1_100_000_000_000_000_001):
            await uow.guilds.set_channel(GUILD, channel, allowed=True)
        await uow.guilds.set_channel(OTHER_GUILD, 5, allowed=True)
        assert await uow.guilds.clear_channels(GUILD) == [20, 300, 1_100_000_000_000_000_001]
        assert await uow.guilds.clear_channels(GUILD) == []
        assert (await uow.guilds.lists(GUILD)).channels == frozenset()
        assert (await uow.guilds.lists(OTHER_GUILD)).channels == frozenset({5})


async def test_set_blocked_reports_whether_it_changed_and_lists_sorted(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.guilds.set_blocked(GUILD, "zebra", blocked=True) is True
        assert await uow.guilds.set_blocked(GUILD, "zebra", blocked=True) is False
        assert await uow.guilds.set_blocked(GUILD, "re:^a+$", blocked=True) is True
        assert await uow.guilds.set_blocked(GUILD, "apple", blocked=True) is True
        assert (await uow.guilds.lists(GUILD)).blocklist == ("apple", "re:^a+$", "zebra")
        assert await uow.guilds.set_blocked(GUILD, "zebra", blocked=False) is True
        assert await uow.guilds.set_blocked(GUILD, "zebra", blocked=False) is False
        assert (await uow.guilds.lists(GUILD)).blocklist == ("apple", "re:^a+$")
        assert (await uow.guilds.lists(OTHER_GUILD)).blocklist == ()


async def test_roles_insert_replace_delete(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.guilds.role(GUILD, 5) is None
        await uow.guilds.set_role(GUILD, 5, RoleKind.RAISE, 40)
        assert await uow.guilds.role(GUILD, 5) == RoleRow(5, RoleKind.RAISE, 40)
        await uow.guilds.set_role(GUILD, 5, RoleKind.EXEMPT, None)
        assert await uow.guilds.role(GUILD, 5) == RoleRow(5, RoleKind.EXEMPT, None)
        await uow.guilds.set_role(GUILD, 5, None, None)
        assert await uow.guilds.role(GUILD, 5) is None
        await uow.guilds.set_role(GUILD, 5, None, None)  # deleting nothing is fine
        assert await uow.guilds.role(OTHER_GUILD, 5) is None


async def test_lists_roles_sorted_by_role_id(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.guilds.set_role(GUILD, 900, RoleKind.EXEMPT, None)
        await uow.guilds.set_role(GUILD, 3, RoleKind.RAISE, 12)
        await uow.guilds.set_role(GUILD, 1_000_000_000_000_000_000, RoleKind.RAISE, 1)
        await uow.guilds.set_role(OTHER_GUILD, 1, RoleKind.EXEMPT, None)
        lists = await uow.guilds.lists(GUILD)
    assert lists.roles == (
        RoleRow(3, RoleKind.RAISE, 12),
        RoleRow(900, RoleKind.EXEMPT, None),
        RoleRow(1_000_000_000_000_000_000, RoleKind.RAISE, 1),
    )
    assert all(isinstance(r.kind, RoleKind) for r in lists.roles)


async def test_audit_ids_grow_and_page_newest_first_with_total(storage: Storage) -> None:
    async with storage.unit() as uow:
        ids = [
            await uow.guilds.add_audit(GUILD, 11, f"set n{i}", str(i), str(i + 1), None, later(i))
            for i in range(5)
        ]
        await uow.guilds.add_audit(OTHER_GUILD, 11, "block", None, "x", "spam", NOW)
    assert ids == sorted(ids) and len(set(ids)) == 5
    async with storage.read() as uow:
        first, total = await uow.guilds.audit_page(GUILD, offset=0, limit=2)
        second, again = await uow.guilds.audit_page(GUILD, offset=2, limit=2)
        last, _ = await uow.guilds.audit_page(GUILD, offset=4, limit=2)
        beyond, _ = await uow.guilds.audit_page(GUILD, offset=10, limit=2)
    assert total == again == 5
    assert [e.id for e in first + second + last] == ids[::-1]
    assert beyond == []
    newest = first[0]
    assert newest.guild_id == GUILD
    assert newest.actor_id == 11
    assert newest.action == "set n4"
    assert (newest.old_value, newest.new_value, newest.reason) == ("4", "5", None)
    assert newest.created_at == later(4)
    assert newest.created_at.utcoffset() is not None


async def test_audit_keeps_reason_and_operator_actor(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.guilds.add_audit(GUILD, 0, "clear channels", "1,2", None, "cleanup", NOW)
    async with storage.read() as uow:
        entries, total = await uow.guilds.audit_page(GUILD, offset=0, limit=10)
    assert total == 1
    assert (entries[0].actor_id, entries[0].old_value, entries[0].new_value) == (0, "1,2", None)
    assert entries[0].reason == "cleanup"


async def test_audit_page_of_a_guild_with_none(storage: Storage) -> None:
    async with storage.read() as uow:
        assert await uow.guilds.audit_page(GUILD, offset=0, limit=10) == ([], 0)
