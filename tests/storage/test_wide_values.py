"""Both backends take the same values: every integer is 64-bit (SQLite's INTEGER), and text
keeps its exact characters and order."""

from __future__ import annotations

import pytest

from bot.storage import Storage
from bot.storage.records import LedgerKind, RoleKind
from tests.storage.helpers import DEFAULTS, GUILD, NOW, PERIOD, new_job

BIG = 2**63 - 1


async def test_every_integer_setting_takes_64_bit_values(storage: Storage) -> None:
    changes = {
        "allowance": BIG,
        "reset_hour": 2**40,
        "member_cap": BIG,
        "cooldown_seconds": 2**40,
        "max_running": 2**40,
        "required_role_id": BIG,
        "monthly_usd_cap_micros": BIG,
    }
    async with storage.unit() as uow:
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        await uow.guilds.update(GUILD, changes, NOW)
        await uow.guilds.set_role(GUILD, BIG, RoleKind.RAISE, BIG)
    async with storage.read() as uow:
        row = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        role = await uow.guilds.role(GUILD, BIG)
    assert {name: getattr(row, name) for name in changes} == changes
    assert role is not None and role.cap == BIG


async def test_amounts_ids_and_money_take_64_bit_values(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(-GUILD, BIG, PERIOD, 2**40, 2**50, NOW)
        await uow.ledger.move(
            -GUILD, PERIOD, LedgerKind.ADJUST, -(2**60), actor_id=BIG, reason=None, now=NOW
        )
        job = await uow.jobs.create(new_job(guild_id=-GUILD, user_id=BIG, cost=2**40), NOW)
        await uow.jobs.update(job.id, {"status_message_id": BIG}, NOW)
    async with storage.read() as uow:
        totals = await uow.ledger.totals(-GUILD, PERIOD)
        usd = await uow.ledger.usd_spent(NOW, NOW.replace(year=2027), -GUILD)
        found = await uow.jobs.find_by_message(BIG)
        reservation = await uow.ledger.reservation(rid)
    assert (totals.net, totals.reserved, totals.adjusted) == (-(2**40) - 2**60, 2**40, -(2**60))
    assert usd == 2**50
    assert found is not None and (found.origin.user_id, found.cost) == (BIG, 2**40)
    assert reservation is not None and reservation.user_id == BIG


@pytest.mark.parametrize("patterns", [["b", "B", "a", "é", "Z", "re:^x$", "ä", "_"]])
async def test_blocklist_keeps_exact_text_in_code_point_order(
    storage: Storage, patterns: list[str]
) -> None:
    async with storage.unit() as uow:
        for pattern in patterns:
            assert await uow.guilds.set_blocked(GUILD, pattern, blocked=True)
    async with storage.read() as uow:
        lists = await uow.guilds.lists(GUILD)
    assert list(lists.blocklist) == sorted(patterns)
