"""``pikabot quota``: the operator administers credits on the SQLite file, headless."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_cli import pikabot

GUILD = "123456789012345678"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No Discord token and no provider key: quota needs neither."""
    return {"PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"), "PIKABOT_DEFAULT_ALLOWANCE": "200"}


def rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(env["PIKABOT_DATABASE"]) as db:
        return list(db.execute(sql))


async def test_cli_quota_show_grant_set_ledger(tmp_path: Path, env: dict[str, str]):
    """Show, grant, set and read the ledger; rows carry actor 0, the operator."""
    code, out, err = await pikabot("quota", "show", GUILD, env=env, cwd=tmp_path)
    assert code == 0, err
    assert "remaining 200 of 200 (daily" in out
    code, out, err = await pikabot(
        "quota", "grant", GUILD, "50", "--reason", "launch party", env=env, cwd=tmp_path
    )
    assert code == 0, err
    assert out.strip() == "granted 50 credits; 250 left"
    code, out, err = await pikabot(
        "quota",
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
        env=env,
        cwd=tmp_path,
    )
    assert code == 0, err
    assert "at 06:00 Europe/Berlin" in out and "monthly USD cap $25.00" in out
    code, out, _ = await pikabot("quota", "ledger", GUILD, env=env, cwd=tmp_path)
    assert code == 0
    assert "grant\t+50" in out and "actor 0" in out and "launch party" in out
    code, out, _ = await pikabot("quota", "ledger", GUILD, "--rules", env=env, cwd=tmp_path)
    assert "allowance\t200 credits -> 300 credits" in out
    assert rows(env, "SELECT DISTINCT actor_id FROM audit") == [(0,)]
    assert rows(env, "SELECT kind, amount, actor_id FROM ledger") == [("grant", 50, 0)]


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


def untouched(env: dict[str, str]) -> bool:
    """No audit or ledger row (or no database at all)."""
    if not Path(env["PIKABOT_DATABASE"]).exists():
        return True
    return not rows(env, "SELECT id FROM audit") and not rows(env, "SELECT id FROM ledger")


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
    assert untouched(env)
