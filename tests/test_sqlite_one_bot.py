"""SQLite is one bot process only: a second ``pikabot run`` (or a ``migrate-db``) on the same
file is refused with one line while the first runs, and the operator's ``pikabot quota`` keeps
working. Real processes: the bot against the loopback Discord, the others beside it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.storage.sqlite.lockfile import lock_path
from tests.fakes.discord import GUILD_ID
from tests.fakes.stack import FAL_KEY, running_stack
from tests.test_cli import Generate, pikabot

ROOT = Path(__file__).resolve().parent.parent


async def second_run(rest_base: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """``pikabot run`` pointed at the loopback Discord (never the real one), bounded to 60 s;
    its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.discord.launch",
        rest_base,
        "--",
        "run",
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            _, err = await process.communicate()
    except TimeoutError:  # it started instead of being refused
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_a_second_bot_on_the_same_sqlite_file_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    async with running_stack(tmp_path) as stack:
        assert stack.bot.process is not None
        pid = stack.bot.process.pid
        env = {**stack.bot.env, "PIKABOT_LOG_LEVEL": "WARNING"}

        code, err = await second_run(stack.bot.rest_base, env, tmp_path)

        assert code == 1
        assert "Traceback" not in err  # (the launcher itself may warn about runpy first)
        assert err.strip().splitlines()[-1:] == [
            f"pikabot: not started: another pikabot process (pid {pid}) is running on"
            f" {stack.db}: SQLite allows one bot (or migrate-db) at a time; stop it first, or"
            " move to PostgreSQL to run several (see 'Running bigger' in the README)."
        ]
        quota = {"PIKABOT_DATABASE": str(stack.db)}
        shown = await pikabot(
            "quota", "grant", str(GUILD_ID), "5", "--reason", "x", env=quota, cwd=tmp_path
        )
        assert shown[0] == 0, shown  # the operator's CLI is not a second bot
        migrating = await pikabot("migrate-db", "--to", postgres_url, env=quota, cwd=tmp_path)
        assert migrating[0] == 2
        assert f"nothing copied: another pikabot process (pid {pid})" in migrating[2]
        assert stack.bot.process.returncode is None  # the first bot was left alone

        await stack.bot.kill()  # kill -9: the operating system lets go of the lock

        assert lock_path(stack.db).exists()
        migrated = await pikabot("migrate-db", "--to", postgres_url, env=quota, cwd=tmp_path)
        assert migrated[0] == 0, migrated
        assert "copied 1 guilds" in migrated[1]


async def test_migrate_db_waits_for_a_running_generate(tmp_path: Path, postgres_url: str) -> None:
    async with running_stack(tmp_path) as stack:
        stack.fal.ready_after = 600  # the clip is still being made
        env = {
            "FAL_KEY": FAL_KEY,
            "FAL_QUEUE_URL": stack.fal.url,
            "PIKABOT_DATABASE": str(stack.db),
        }
        run = await Generate.start(
            "a fox", "--out", str(tmp_path / "fox.mp4"), env=env, cwd=tmp_path
        )
        try:
            await run.read_until(lambda: stack.job_states() == ["queued"])  # beside the bot
            await stack.bot.stop()

            code, out, err = await pikabot(
                "migrate-db", "--to", postgres_url, env=env, cwd=tmp_path
            )

            assert (code, out) == (2, "")
            assert err.strip().splitlines() == [
                f"pikabot: nothing copied: a pikabot command (generate, quota or sync) is using"
                f" {stack.db}: let it finish, then run migrate-db again"
            ]
        finally:
            run.process.kill()
            await run.finish()
        migrated = await pikabot("migrate-db", "--to", postgres_url, env=env, cwd=tmp_path)
        assert migrated[0] == 0, migrated


HOLD = """
import sys
from pathlib import Path
from bot.storage.base import Role
from bot.storage.sqlite.lockfile import WriterLock
lock = WriterLock.acquire(Path(sys.argv[1]), Role(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()  # until the test closes it
lock.release()
"""


async def test_commands_are_refused_while_a_copy_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "pikabot.sqlite3"
    env = {"PIKABOT_DATABASE": str(db)}
    assert (await pikabot("quota", "show", str(GUILD_ID), env=env, cwd=tmp_path))[0] == 0
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD,
        str(db),
        "copy",
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert await holder.stdout.readline() == b"held\n"

        code, out, err = await pikabot(
            "quota", "grant", str(GUILD_ID), "5", "--reason", "x", env=env, cwd=tmp_path
        )

        assert (code, out) == (1, "")
        assert err.strip().splitlines() == [
            f"pikabot: not started: pikabot migrate-db is copying {db} to PostgreSQL: wait for"
            " it to finish, then point PIKABOT_DATABASE_URL at the new database."
        ]
    finally:
        holder.stdin.close()
        async with asyncio.timeout(30):
            await holder.wait()
    assert (await pikabot("quota", "show", str(GUILD_ID), env=env, cwd=tmp_path))[0] == 0
