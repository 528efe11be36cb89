"""``pikabot quota``: the operator administers credits on the database, headless (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.storage import open_storage, sqlite_path
from tests.test_cli import pikabot
from tests.units import audit_rows, ledger_rows

GUILD = "123456789012345678"


@pytest.fixture
def env(storage_url: str) -> dict[str, str]:
    """No Discord token and no provider key: quota needs neither."""
    return {"PIKABOT_DATABASE_URL": storage_url, "PIKABOT_DEFAULT_ALLOWANCE": "200"}


async def audit_actors(env: dict[str, str]) -> set[int]:
    """Who made the guild's rule changes."""
    storage = await open_storage(env["PIKABOT_DATABASE_URL"])
    try:
        return {r.actor_id for r in await audit_rows(storage, int(GUILD))}
    finally:
        await storage.close()


async def ledger(env: dict[str, str]) -> list[tuple[object, ...]]:
    """The guild's ledger rows as (kind, amount, actor id), oldest first."""
    storage = await open_storage(env["PIKABOT_DATABASE_URL"])
    try:
        return [(r.kind, r.amount, r.actor_id) for r in await ledger_rows(storage, int(GUILD))]
    finally:
        await storage.close()


# The same commands at instants chosen around the guild's reset: a daily period that starts at
# 06:00 Europe/Berlin has another key than the default UTC one between 00:00 and 05:00 UTC in
# winter (04:00 in summer), so there the ``set`` keeps the balance with an ``adjust`` row.
SAME_PERIOD = [("grant", 50, 0)]
NEW_PERIOD = [("grant", 50, 0), ("adjust", -50, 0)]


@pytest.mark.parametrize(
    ("at", "expected_rows"),
    [
        ("2026-06-15T12:00:00+00:00", SAME_PERIOD),  # midday: both periods began today
        ("2026-12-02T00:30:00+00:00", NEW_PERIOD),  # 01:30 in Berlin: still yesterday's period
        ("2026-12-02T04:30:00+00:00", NEW_PERIOD),  # 05:30 in Berlin (CET)
        ("2026-12-02T23:59:00+00:00", SAME_PERIOD),  # 00:59 tomorrow in Berlin, before 06:00
        ("2026-03-29T00:30:00+00:00", NEW_PERIOD),  # the night the clocks go forward
        ("2026-03-29T04:30:00+00:00", SAME_PERIOD),  # 06:30 in Berlin (CEST, just switched)
        ("2026-10-25T04:30:00+00:00", NEW_PERIOD),  # 05:30 in Berlin (CET, just switched back)
    ],
    ids=["midday", "00h30", "04h30", "23h59", "dst-night", "dst-forward", "dst-back"],
)
async def test_cli_quota_show_grant_set_ledger(
    tmp_path: Path, env: dict[str, str], at: str, expected_rows: list[tuple[object, ...]]
):
    """Show, grant, set and read the ledger at a fixed instant; rows carry actor 0."""
    instant = datetime.fromisoformat(at)

    async def quota(*args: str) -> tuple[int, str, str]:
        return await pikabot("quota", *args, env=env, cwd=tmp_path, at=instant)

    code, out, err = await quota("show", GUILD)
    assert code == 0, err
    assert "remaining 200 of 200 (daily" in out
    code, out, err = await quota("grant", GUILD, "50", "--reason", "launch party")
    assert code == 0, err
    assert out.strip() == "granted 50 credits; 250 left"
    code, out, err = await quota(
        "set",
        GUILD,
        "--allowance",
        "300",
        "--timezone",
        "Europe/Berlin",
        "--reset-hour",
        "6",
        "--usd-cap",
        "25",
    )
    assert code == 0, err
    assert "at 06:00 Europe/Berlin" in out and "monthly USD cap $25.00" in out
    code, out, _ = await quota("ledger", GUILD)
    assert code == 0
    assert "grant\t+50" in out and "actor 0" in out and "launch party" in out
    code, out, _ = await quota("ledger", GUILD, "--rules")
    assert "allowance	200 credits -> 300 credits" in out
    assert await audit_actors(env) == {0}
    assert await ledger(env) == expected_rows
    code, out, _ = await quota("show", GUILD)
    remaining = 250 if expected_rows == NEW_PERIOD else 350  # kept, or the new allowance + 50
    assert f"remaining {remaining} of 300 (daily" in out, out


async def test_cli_quota_rule_changes_in_readable_values(tmp_path: Path, env: dict[str, str]):
    """``ledger --rules`` shows the USD cap as dollars, not the stored column name and
    millionths."""
    code, _, err = await pikabot(
        "quota", "set", GUILD, "--usd-cap", "12.50", "--reason", "budget", env=env, cwd=tmp_path
    )
    assert code == 0, err
    code, out, err = await pikabot("quota", "ledger", GUILD, "--rules", env=env, cwd=tmp_path)
    assert code == 0, err
    (line, footer) = out.strip().splitlines()
    assert line.split("\t")[3:] == ["monthly USD cap", "no cap -> $12.50", "budget"]
    assert "12500000" not in out and "_micros" not in out
    assert footer == "page 1 of 1 (1 entries)"


async def untouched(env: dict[str, str]) -> bool:
    """No audit or ledger row (or no SQLite file at all)."""
    url = env["PIKABOT_DATABASE_URL"]
    if url.startswith("sqlite:") and not sqlite_path(url).exists():
        return True
    return not await audit_actors(env) and not await ledger(env)


@pytest.mark.parametrize(
    "args",
    [
        ("quota", "grant", GUILD, "0", "--reason", "x"),
        ("quota", "grant", GUILD, "10", "--reason", " "),
        ("quota", "set", GUILD, "--timezone", "Mars/Base"),
        ("quota", "set", GUILD, "--reset-hour", "25"),
        ("quota", "set", GUILD, "--usd-cap", "lots"),
        ("quota", "set", GUILD),
        ("quota", "show", "-5"),
        ("quota", "show", "not-a-number"),
        ("quota", "ledger", GUILD, "--page", "0"),
    ],
)
async def test_cli_quota_bad_input_exit_2(tmp_path: Path, env: dict[str, str], args):
    """Bad input ends with exit code 2 and a line saying what to fix; nothing is written."""
    code, _, err = await pikabot(*args, env=env, cwd=tmp_path)
    assert code == 2, err
    assert "Traceback" not in err
    assert await untouched(env)
