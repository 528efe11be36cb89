"""The Discord front end: thin cogs that translate between Discord and the core in ``bot/``."""

EXTENSIONS = (
    "cogs.errors",
    "cogs.pika",
    "cogs.scenes",
    "cogs.pikaffects",
    "cogs.pikadditions",
    "cogs.pikaswaps",
    "cogs.pikaframes",
    "cogs.controls",
    "cogs.credits",
    "cogs.quota",
    "cogs.history",
)
"""Loaded in this order by :class:`bot.app.PikaBot`."""
