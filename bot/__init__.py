"""pikabot: a Discord bot that makes short videos with Pika's text-to-video models.

Everything under ``bot/`` except the composition root (``bot/app.py``) is free of ``discord``
imports, so the same core drives the Discord cogs and the terminal CLI.
"""

__version__ = "0.1.0"
