"""The real bot as a child process (``pikabot run``) pointed at a DiscordDouble.

Started through ``tests.fakes.discord.launch`` so production code is used unchanged. Its log
(JSON lines) goes to a file the test can read when something fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """One run of the bot; ``start`` again after ``stop``/``kill`` to simulate a restart."""

    def __init__(self, rest_base: str, env: dict[str, str], log_path: Path) -> None:
        self.rest_base = rest_base
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Launch ``pikabot run`` against the double."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "PIKABOT_LOG_FORMAT": "json",
            "PIKABOT_LOG_LEVEL": "INFO",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.discord.launch",
            self.rest_base,
            "--",
            "run",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """Send ``sig`` and wait (bounded) for the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise

    async def kill(self) -> None:
        """kill -9: no chance to clean up."""
        await self.stop(signal.SIGKILL)

    def log(self) -> str:
        """Everything the bot logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
