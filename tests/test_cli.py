"""The operator's commands as a person runs them: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.fakes.fal import FakeFal
from tests.fakes.media import MiB, inspect, video_bytes
from tests.fakes.pixazo import FakePixazo
from tests.fakes.stack import FAL_KEY, running_stack

ROOT = Path(__file__).resolve().parent.parent


async def pikabot(
    *args: str, env: dict[str, str], cwd: Path, at: datetime | None = None
) -> tuple[int, str, str]:
    """Run ``python -m bot ARGS`` with exactly ``env`` (plus PATH), bounded to 60 s.

    ``at`` sets the process's wall clock to that instant (``tests.fakes.frozen_clock``), for
    commands whose output depends on the date or the hour.
    """
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    entry = ["bot"] if at is None else ["tests.fakes.frozen_clock", at.isoformat(), "--"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *entry,
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
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "PIKABOT_SHARD_IDS": "0-3"},
            "PIKABOT_SHARD_IDS needs PIKABOT_SHARD_COUNT",
        ),
        (
            {
                "DISCORD_TOKEN": "t",
                "FAL_KEY": "k",
                "PIKABOT_SHARD_COUNT": "4",
                "PIKABOT_SHARD_IDS": "2-5",
            },
            "PIKABOT_SHARD_IDS names shard 4, but with PIKABOT_SHARD_COUNT=4 the shards are 0 to 3",
        ),
        (
            {
                "DISCORD_TOKEN": "t",
                "FAL_KEY": "k",
                "PIKABOT_SHARD_COUNT": "4",
                "PIKABOT_SHARD_IDS": "a",
            },
            "PIKABOT_SHARD_IDS is invalid: 'a' is not a list of shard ids",
        ),
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


async def test_cli_generate_fit_discord_saves_a_clip_discord_takes(tmp_path: Path):
    """``--fit-discord --limit-mb 1``: a 2 s clip of about 2 MB is saved re-encoded under
    1 MiB as H.264 yuv420p MP4, index first, same duration; the line says so and gives the
    full-quality URL (fal's, durable). Without the flag the same clip is saved untouched."""
    clip = video_bytes(width=640, height=360, seconds=2, bit_rate=8_000_000, audio=True)
    assert len(clip) > 1.5 * MiB
    async with FakeFal(key="cli-key", video=clip) as fal:
        env = {
            "FAL_KEY": "cli-key",
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"),
            "PIKABOT_POLL_INTERVAL": "0.05",
        }
        out = tmp_path / "fit.mp4"
        code, _, err = await pikabot(
            "generate", "a fox", "--fit-discord", "--limit-mb", "1", "--out", str(out),
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, err
        seen = inspect(out.read_bytes())
        assert seen.size <= MiB and (seen.codec, seen.pixel_format) == ("h264", "yuv420p")
        assert seen.moov_before_mdat and seen.audio_codec == "aac"
        assert seen.duration == pytest.approx(2.0, abs=0.1)
        assert "Re-encoded" in err and "upload limit of 1.0 MB" in err
        assert f"full quality: {fal.url}/files/" in err
        plain = tmp_path / "plain.mp4"
        code, _, err = await pikabot(
            "generate", "a fox", "--out", str(plain), env=env, cwd=tmp_path
        )
        assert code == 0, err
        assert plain.read_bytes() == clip
        code, _, err = await pikabot("generate", "a fox", "--limit-mb", "0", env=env, cwd=tmp_path)
        assert code == 2 and "use a limit from 1 to 500 MB" in err
        assert fal.count("submit") == 2


class Generate:
    """A ``pikabot generate`` running in the background, its stderr read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, env: dict[str, str], cwd: Path) -> Generate:
        full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "generate",
            *args,
            cwd=cwd,
            env=full_env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def read_until(self, predicate: Callable[[], bool]) -> None:
        """Collect stderr lines until ``predicate()`` holds (checked before each read; 30 s)."""
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            while not predicate():
                try:
                    line = await asyncio.wait_for(self.process.stderr.readline(), 0.1)
                except TimeoutError:
                    continue
                if line:
                    self.lines.append(line.decode().rstrip("\n"))

    async def finish(self) -> tuple[int, list[str]]:
        """Wait for the exit (bounded); the exit code and the stderr lines read after now."""
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            rest = await self.process.stderr.read()
            code = await self.process.wait()
        return code, rest.decode().splitlines()


def ledger(db: Path) -> tuple[list[str], list[str], list[tuple[int, str]]]:
    """(reservation states, ledger kinds, (job id, job state)) in the database, oldest first."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        reservations = [r[0] for r in conn.execute("SELECT state FROM reservations ORDER BY id")]
        rows = [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]
        jobs = list(conn.execute("SELECT id, state FROM jobs ORDER BY id"))
    return reservations, rows, jobs


@pytest.mark.parametrize(("sig", "expected_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_cli_generate_ctrl_c_cancels_at_fal_and_refunds(
    tmp_path: Path, sig: signal.Signals, expected_code: int
):
    """Ctrl-C (or SIGTERM) once the job is at fal (which can cancel): cancelled there,
    refunded, one line, exit 130 (143); the terminal job is not left open for the bot."""
    async with FakeFal(key="cli-key", ready_after=600) as fal:  # stays IN_PROGRESS
        db = tmp_path / "db.sqlite3"
        env = {"FAL_KEY": "cli-key", "FAL_QUEUE_URL": fal.url, "PIKABOT_DATABASE": str(db)}
        run = await Generate.start(
            "a fox", "--out", str(tmp_path / "fox.mp4"), env=env, cwd=tmp_path
        )
        await run.read_until(lambda: fal.count("submit") == 1 and bool(fal.jobs))
        await run.read_until(lambda: any("generating" in line for line in run.lines))
        run.process.send_signal(sig)
        code, after = await run.finish()
        assert code == expected_code
        assert len(after) == 1, after
        assert "cancelled at fal" in after[0] and "refunded" in after[0]
        assert fal.count("cancel") == 1
        reservations, rows, jobs = ledger(db)
        assert reservations == ["refunded"]
        assert rows == ["reserve", "refund"]
        assert jobs == [(1, "cancelled")]
        assert not (tmp_path / "fox.mp4").exists()


async def test_cli_generate_ctrl_c_at_a_provider_that_cannot_cancel(tmp_path: Path):
    """Pixazo cannot cancel: Ctrl-C refunds nothing (the clip is made and billed), says so in
    one line, exit 130; the next ``generate`` finishes it into its file and charges it."""
    async with FakePixazo(key="px-key", polls_before_done=10**6) as px:
        db = tmp_path / "db.sqlite3"
        env = {
            "PIKA_PROVIDER": "pixazo",
            "PIXAZO_API_KEY": "px-key",
            "PIXAZO_BASE_URL": px.url,
            "PIKABOT_DATABASE": str(db),
            "PIKABOT_DEFAULT_ALLOWANCE": "1000",
        }
        first = tmp_path / "first.mp4"
        run = await Generate.start("a fox", "--out", str(first), env=env, cwd=tmp_path)
        await run.read_until(lambda: px.count("status") >= 1)
        run.process.send_signal(signal.SIGINT)
        code, after = await run.finish()
        assert code == 130
        assert len(after) == 1, after
        assert "pixazo still makes job 1" in after[0] and "charged" in after[0]
        reservations, rows, jobs = ledger(db)
        assert reservations == ["held"]  # not refunded: Pixazo bills the clip
        assert rows == ["reserve"]

        px.polls_before_done = 0  # the provider finishes the clip
        second = tmp_path / "second.mp4"
        code, _, err = await pikabot(
            "generate", "a cat", "--out", str(second), env=env, cwd=tmp_path
        )
        assert code == 0, err
        assert "also finishing job 1" in err
        assert first.read_bytes() == px.video
        assert second.read_bytes() == px.video
        reservations, rows, jobs = ledger(db)
        assert reservations == ["charged", "charged"]
        assert jobs == [(1, "delivered"), (2, "delivered")]


async def test_cli_generate_refused_key_names_the_setting(tmp_path: Path):
    """A refused key is reported with the setting to fix (FAL_KEY), not in a member's words."""
    async with FakeFal(key="right-key") as fal:
        env = {
            "FAL_KEY": "wrong-key",
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(tmp_path / "db.sqlite3"),
        }
        code, _, err = await pikabot(
            "generate", "a fox", "--out", str(tmp_path / "x.mp4"), env=env, cwd=tmp_path
        )
        assert code == 1
        assert "FAL_KEY" in err
        assert "operator" not in err
        assert "wrong-key" not in err


@pytest.mark.e2e
async def test_killed_generate_is_finished_by_the_bot_never_posted(tmp_path: Path):
    """A ``generate`` killed with kill -9 after its submit: the next ``pikabot run`` finishes the
    clip into the file it was started with and charges it, and sends nothing to Discord for it
    (before: resumed into "channel 0", three tracebacks, the paid video thrown away)."""
    async with running_stack(tmp_path) as stack:
        stack.fal.ready_after = 600  # the clip is still being made when the CLI dies
        env = {
            "FAL_KEY": FAL_KEY,
            "FAL_QUEUE_URL": stack.fal.url,
            "PIKABOT_DATABASE": str(stack.db),
        }
        out = tmp_path / "killed.mp4"
        run = await Generate.start("a fox", "--out", str(out), env=env, cwd=tmp_path)
        await run.read_until(lambda: stack.job_states() == ["queued"])
        run.process.kill()
        await run.finish()
        for job in stack.fal.jobs.values():
            job.ready_at = 0.0  # fal finishes the clip
        stack.fal.ready_after = None
        before = len(stack.discord.requests)
        await stack.restart()
        for _ in range(1200):  # bounded: 60 s (the dead run's job lease runs out first)
            if stack.job_states() == ["delivered"]:
                break
            await asyncio.sleep(0.05)
        assert stack.job_states() == ["delivered"]
        assert out.read_bytes() == stack.fal.video
        assert ledger(stack.db)[0] == ["charged"]
        assert stack.fal.count("submit") == 1
        sent = [r for r in stack.discord.requests[before:] if "/channels/" in r.path]
        assert sent == [], sent
        assert "Traceback" not in stack.bot.log()


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
    assert "Traceback" in str(failed["exception"]) and "SqliteUnavailable" in str(
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
