"""Advisory lock keys: one namespace per purpose, so no two purposes ever share a lock.

PostgreSQL's two-key advisory locks take two 32-bit integers: the first names the purpose,
the second the thing locked. A guild id (64 bits) is folded to 32; two guilds that fold alike
only wait for each other, which costs time, never correctness.
"""

from __future__ import annotations

GUILD_NAMESPACE = 0x706B_6701  # 'pkg' 1: one guild's rules and credits
BOT_NAMESPACE = 0x706B_6702  # the whole bot's rules (the bot-wide USD cap)
MIGRATION_NAMESPACE = 0x706B_6703  # applying migrations at open

BOT_LOCK = (BOT_NAMESPACE, 0)
MIGRATION_LOCK = (MIGRATION_NAMESPACE, 0)

_INT32 = 1 << 32


def guild_lock(guild_id: int) -> tuple[int, int]:
    """The (namespace, key) pair of a guild's lock: its 64-bit id folded into a signed int4."""
    unsigned = guild_id % (1 << 64)
    folded = (unsigned >> 32) ^ (unsigned & (_INT32 - 1))
    return GUILD_NAMESPACE, folded - _INT32 if folded >= _INT32 // 2 else folded
