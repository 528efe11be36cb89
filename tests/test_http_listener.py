"""The listener's own failure: ``pikabot run`` with ``PIKABOT_HTTP_PORT`` taken stops at once
with one line naming the settings (before reaching Discord), and leaves the database free."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.fakes.bot_process import ROOT


async def test_run_with_a_taken_port_stops_in_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=ROOT,
            env={
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": str(ROOT),
                "DISCORD_TOKEN": "never-used-token",
                "FAL_KEY": "never-used-key",
                "PIKABOT_DATABASE": str(tmp_path / "pikabot.sqlite3"),
                "PIKABOT_HTTP_PORT": str(port),
                "PIKABOT_LOG_LEVEL": "ERROR",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    assert process.returncode == 1, err
    assert out == b""
    assert err.decode().strip() == (
        f"pikabot: cannot listen on 127.0.0.1:{port} (PIKABOT_HTTP_HOST, PIKABOT_HTTP_PORT):"
        " the port is already in use; pick another PIKABOT_HTTP_PORT"
    )
    lock = (tmp_path / "pikabot.sqlite3.lock").read_text()
    assert lock == ""  # the bot's lock was let go (its pid is written only while held)
