"""The base of every refusal: a request turned away before anything was reserved or sent.

It lives apart from :mod:`bot.jobs` so that the rules (:mod:`bot.policy`) and the queue
(:mod:`bot.scheduler`) can refuse without importing the job service; ``bot.jobs`` re-exports it.
"""

from __future__ import annotations


class RequestRefused(Exception):
    """A request turned away before anything was reserved or sent; ``user_message`` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
