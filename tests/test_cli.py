"""The operator's commands as a person runs them: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
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
