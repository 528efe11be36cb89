"""The operator's commands as a person runs them: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.fakes.fal import FakeFal

ROOT = Path(__file__).resolve().parent.parent


async def pikabot(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m bot ARGS`` with exactly ``env`` (plus PATH), bounded to 60 s."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "t"}, "FAL_KEY is not set"),
        ({"DISCORD_TOKEN": "t", "PIKA_PROVIDER": "nope"}, "PIKA_PROVIDER is invalid"),
        (
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "PIKABOT_POLL_INTERVAL": "-1"},
            "PIKABOT_POLL_INTERVAL is invalid",
        ),
        ({"DISCORD_TOKEN": "t", "PIKA_PROVIDER": "pixazo"}, "PIXAZO_API_KEY is not set"),
        (
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "PIKABOT_TIMEZONE": "Mars/Olympus"},
            "PIKABOT_TIMEZONE is invalid: use an IANA time zone name such as Europe/Berlin or UTC"
            ' (got "Mars/Olympus")',
        ),
        (
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "PIKABOT_JOB_DEADLINE": "soon"},
            "PIKABOT_JOB_DEADLINE is invalid: use seconds (1200) or an ISO 8601 duration (PT20M)",
        ),
        (
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "PIKABOT_JOB_DEADLINE": "0"},
            "PIKABOT_JOB_DEADLINE is invalid: must be longer than zero",
        ),
    ],
)
async def test_cli_run_bad_settings_give_one_line(
    tmp_path: Path, env: dict[str, str], expected: str
):
    """A missing or invalid setting stops start-up with one line naming it, exit code 2."""
    code, _, err = await pikabot("run", env=env, cwd=tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert "Value error" not in err


@pytest.mark.parametrize("deadline", ["1200", "PT20M", "90.5"])
async def test_cli_job_deadline_in_seconds_or_iso(tmp_path: Path, deadline: str):
    """PIKABOT_JOB_DEADLINE takes seconds as the README says, or an ISO 8601 duration."""
    env = {"PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"), "PIKABOT_JOB_DEADLINE": deadline}
    code, out, err = await pikabot("quota", "show", "1", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "remaining" in out


async def test_cli_warns_about_a_misspelt_setting(tmp_path: Path):
    """A PIKABOT_* variable no setting reads is named in a warning, with the likely one."""
    (tmp_path / ".env").write_text("PIKA_PROVIDR=aigateway\n")
    env = {
        "PIKABOT_DATABSE": str(tmp_path / "elsewhere.sqlite3"),
        "PIKABOT_LOG_FORMAT": "json",
        "PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"),
    }
    code, _, err = await pikabot("quota", "show", "1", env=env, cwd=tmp_path)
    assert code == 0, err
    warnings = [
        json.loads(line) for line in err.splitlines() if "settings.unknown_variable" in line
    ]
    assert {(w["variable"], w["did_you_mean"], w["level"]) for w in warnings} == {
        ("PIKABOT_DATABSE", "PIKABOT_DATABASE", "warning"),
        ("PIKA_PROVIDR", "PIKA_PROVIDER", "warning"),
    }


async def test_cli_reads_dotenv_file(tmp_path: Path):
    """Settings come from a .env file in the working directory too."""
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-dotenv\n")
    code, _, err = await pikabot("run", env={}, cwd=tmp_path)
    assert code == 2
    assert "FAL_KEY is not set" in err


async def test_cli_generate_saves_the_video(tmp_path: Path):
    """``pikabot generate`` runs the core against fal and writes the provider's exact bytes."""
    async with FakeFal(key="cli-key") as fal:
        env = {
            "FAL_KEY": "cli-key",
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"),
            "PIKABOT_POLL_INTERVAL": "0.05",
            "PIKABOT_LOG_FORMAT": "json",
        }
        out = tmp_path / "clips" / "fox.mp4"
        code, _, err = await pikabot(
            "generate",
            "a fox -ar 9:16",
            "--duration",
            "10",
            "--seed",
            "5",
            "--out",
            str(out),
            env=env,
            cwd=tmp_path,
        )
        assert code == 0, err
        assert out.read_bytes() == fal.video
        body = fal.recorded("submit")[0].json
        assert (body["aspect_ratio"], body["duration"], body["seed"]) == ("9:16", 10, 5)
        assert "cli-key" not in err


async def test_cli_generate_failure_exits_nonzero(tmp_path: Path):
    """A failed generation prints the user-safe reason and exits 1."""
    async with FakeFal(key="cli-key") as fal:
        fal.fail_result(500, "internal", error_type="generation_error")
        env = {
            "FAL_KEY": "cli-key",
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"),
            "PIKABOT_POLL_INTERVAL": "0.05",
        }
        code, _, err = await pikabot(
            "generate", "a fox", "--out", str(tmp_path / "x.mp4"), env=env, cwd=tmp_path
        )
        assert code == 1
        assert "could not generate this clip" in err
        assert not (tmp_path / "x.mp4").exists()


async def test_cli_generate_bad_input_exits_2(tmp_path: Path):
    """Bad input is refused with a sentence and exit code 2, before anything is sent."""
    async with FakeFal(key="cli-key") as fal:
        env = {
            "FAL_KEY": "cli-key",
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(tmp_path / "d.sqlite3"),
        }
        code, _, err = await pikabot("generate", "a fox -ar 7:5", env=env, cwd=tmp_path)
        assert code == 2
        assert "Unknown aspect ratio" in err
        assert fal.count("submit") == 0


def test_job_deadline_seconds_are_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``1200`` means twenty minutes, not an error and not 1200 days."""
    from datetime import timedelta

    from bot.config import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIKABOT_JOB_DEADLINE", "1200")
    settings = load_settings(need_discord=False, need_provider=False)
    assert settings.job_deadline == timedelta(minutes=20)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def launched(rest_base: str, *args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the bot's CLI with discord.py aimed at ``rest_base`` (test launcher); (code, stderr)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.discord.launch",
        rest_base,
        "--",
        *args,
        cwd=cwd,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


def events(stderr: str) -> dict[str, dict[str, object]]:
    """The JSON log records in ``stderr`` by event name (the last of each)."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            found[str(record["event"])] = record
    return found


async def test_cli_run_says_discord_cannot_be_reached_and_logs_the_database(tmp_path: Path):
    """With Discord's API unreachable, start-up ends with a sentence that says so (no aiohttp
    class names, no empty DEBUG hint); the database is logged with its absolute path, and a
    new one is a warning the first time only."""
    port = closed_port()
    env = {
        "DISCORD_TOKEN": "t",
        "FAL_KEY": "k",
        "PIKABOT_DATABASE": "data/ledger.sqlite3",
        "PIKABOT_LOG_FORMAT": "json",
    }
    expected_db = str(tmp_path / "data" / "ledger.sqlite3")
    for attempt in ("first", "second"):
        code, err = await launched(f"http://127.0.0.1:{port}/api/v10", "run", env=env, cwd=tmp_path)
        assert code == 1, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(
            "pikabot: cannot reach Discord at 127.0.0.1: the connection was refused."
        ), last
        assert "Client" not in last and "DEBUG" not in last and "Traceback" not in err
        logged = events(err)
        if attempt == "first":
            assert logged["store.created"]["path"] == expected_db
            assert logged["store.created"]["level"] == "warning"
            assert "store.opened" not in logged
        else:
            assert logged["store.opened"]["path"] == expected_db
            assert "store.created" not in logged


async def test_cli_unusable_database_names_the_path_and_the_setting(tmp_path: Path):
    """A database path that cannot be created is named, with PIKABOT_DATABASE and the Docker
    hint; with DEBUG the traceback really is in the log."""
    (tmp_path / "not-a-folder").write_text("a file, not a folder")
    database = tmp_path / "not-a-folder" / "pikabot.sqlite3"
    env = {"PIKABOT_DATABASE": str(database), "PIKABOT_LOG_FORMAT": "json"}
    code, _, err = await pikabot("quota", "show", "1", env=env, cwd=tmp_path)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith(f"pikabot: cannot open the database {database} (PIKABOT_DATABASE):")
    assert "/app/data" in line and "OperationalError" not in line and "DEBUG" not in line
    debug_env = {**env, "PIKABOT_LOG_LEVEL": "DEBUG"}
    code, _, err = await pikabot("quota", "show", "1", env=debug_env, cwd=tmp_path)
    assert code == 1
    failed = events(err)["startup.failed"]
    assert "Traceback" in str(failed["exception"]) and "DatabaseUnavailable" in str(
        failed["exception"]
    )


async def test_cli_not_a_database_is_named(tmp_path: Path):
    """A file that is not SQLite at PIKABOT_DATABASE is named as such, not as an error class."""
    database = tmp_path / "notes.txt"
    database.write_bytes(b"this is not a database, just some text " * 100)
    code, _, err = await pikabot(
        "quota", "show", "1", env={"PIKABOT_DATABASE": str(database)}, cwd=tmp_path
    )
    assert code == 1
    assert err.strip() == (
        f"pikabot: cannot open the database {database} (PIKABOT_DATABASE): the file is not a"
        " SQLite database. Set PIKABOT_DATABASE to a writable file, or make its folder writable"
        " by the bot's user (in Docker: mount a volume at /app/data)."
    )
