"""pikabot: a Discord bot that makes short videos with Pika's text-to-video models.

Everything under ``bot/`` except the composition root (``bot/app.py``) is free of ``discord``
imports, so the same core drives the Discord cogs and the terminal CLI.
"""

from importlib.metadata import PackageNotFoundError, version


def _installed_version() -> str:
    """The version of the installed ``pikabot`` distribution (``pyproject.toml``'s)."""
    try:
        return version("pikabot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__ = _installed_version()
"""This pikabot's version, from the package metadata: logged at start, recorded in the
database by the migrations it applies, and named when a newer database is refused."""
