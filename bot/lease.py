"""Who owns a terminal job: a lock file held by the ``pikabot generate`` process that runs it.

A terminal job has no channel to resume into; while its process lives, nobody else may touch
it, and once that process is gone (killed, crashed, the terminal closed) the next start of
``pikabot run`` or ``pikabot generate`` carries it on. The operating system releases an
``flock`` when its process dies however it dies, so the lock says exactly that: held means
the owner lives. The file sits beside the database, the one thing every process that may
resume the job shares (also across containers on one volume).

Where ``fcntl`` is missing (Windows) no lock can be taken: a claim then always succeeds, so
there a terminal job of a still running ``generate`` could be carried on by a second process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def _path(directory: Path, token: str) -> Path:
    return directory / f".pikabot-terminal-{token}.lock"


class TerminalLease:
    """An exclusive lock on one terminal job's lock file; :meth:`release` ends it."""

    def __init__(self, path: Path, handle: IO[bytes], token: str) -> None:
        self.path = path
        self.token = token
        self._handle: IO[bytes] | None = handle

    @classmethod
    def acquire(cls, directory: Path) -> TerminalLease:
        """A new lease (a fresh token) for a job this process is about to create."""
        token = secrets.token_hex(8)
        lease = cls.claim(directory, token)
        if lease is None:  # pragma: no cover - a fresh random name cannot be held
            raise RuntimeError("a fresh terminal lease is already held")
        return lease

    @classmethod
    def claim(cls, directory: Path, token: str) -> TerminalLease | None:
        """The lease of ``token`` if its owner is gone; None while another process holds it."""
        path = _path(directory, token)
        directory.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return None
        return cls(path, handle, token)

    def release(self) -> None:
        """Remove the lock file and let go of the lock (idempotent)."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self._handle.close()
        self._handle = None
