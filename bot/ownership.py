"""Which process runs which job: a lease in the database, renewed while the process lives.

Every unfinished job row names its owner (``lease_owner``, this module's :func:`new_owner`)
and how long the lease lasts (``lease_expires_at``). The owner renews it every
:data:`HEARTBEAT` and before each irreversible step; a process that dies stops renewing, and
once the lease has run out a live process claims the job (``JobRepo.claim``) and carries it on
from its stored state. The times are internal constants, listed in :mod:`bot.jobs`.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

LEASE_TTL = timedelta(seconds=25)
"""How long a lease lasts from its last renewal: a dead process's jobs wait this long at most
(plus one :data:`TAKEOVER_EVERY`: under 30 s in all)."""
HEARTBEAT = LEASE_TTL / 3
"""How often a process renews the leases of the jobs it runs (two renewals may fail in a row
before a lease runs out)."""
TAKEOVER_EVERY = timedelta(seconds=3)
"""How often the Discord bot looks for unfinished jobs whose lease is free or has run out."""
TAKEOVER_BATCH = 10
"""The most jobs one takeover round claims. A full round is followed by another after a short
random pause instead of ``TAKEOVER_EVERY``, so the jobs of a dead process are shared among the
live ones (each takes a batch in turn) instead of all landing on the first to look."""
TAKEOVER_PAUSE = (0.05, 0.4)
"""Seconds (uniform between the two) before the round after a full one."""


SOLE_BOT_OWNER = "sole-bot"
"""The owner id of the one bot an SQLite database admits (:attr:`Storage.sole_bot`): the same
in every run, so a bot restarted after a kill -9 takes its old jobs back at once instead of
waiting ``LEASE_TTL`` for leases nobody else could hold."""


def new_owner() -> str:
    """A process's owner id: ``host:pid:random`` (unique even when a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseLost(Exception):
    """This process no longer holds the job's lease: another process took it over.

    The job is stopped here without settling it: it belongs to the other process now.
    """

    def __init__(self, job_id: int) -> None:
        super().__init__(f"the lease of job {job_id} was taken over by another process")
        self.job_id = job_id
