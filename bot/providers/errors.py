"""One error hierarchy for every provider, each carrying a message safe to show a member.

Provider modules translate their own status codes and bodies into these classes; the job
service and the front ends only ever see these, never raw response text.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class. ``user_message`` is shown to members; ``str(exc)`` goes to the log only."""

    user_message = "The video service could not make this clip."
    retryable = False

    def __init__(self, log_detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(log_detail or self.user_message)
        if user_message is not None:
            self.user_message = user_message


class AuthenticationError(ProviderError):
    """The provider refused our API key (401/403)."""

    user_message = "The bot's video service key was refused. The bot operator has to fix the key."


class OutOfProviderCredits(ProviderError):
    """The operator's account at the provider is empty (402 and the like)."""

    user_message = "The bot's account at the video service is out of funds. Tell the bot operator."


class RateLimited(ProviderError):
    """The provider asked us to slow down (429)."""

    user_message = "The video service is busy right now. Please try again in a minute."
    retryable = True

    def __init__(
        self,
        log_detail: str = "",
        *,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(log_detail, user_message=user_message)
        self.retry_after = retry_after


class RejectedInput(ProviderError):
    """The provider rejected the request's parameters (400/422)."""

    user_message = "The video service rejected these settings."


class ContentPolicy(ProviderError):
    """The prompt or image was refused by the provider's content checks."""

    user_message = "The video service refused this prompt under its content policy."


class TransientError(ProviderError):
    """A server fault or dropped connection that may pass (5xx, timeouts)."""

    user_message = "The video service had a temporary fault. Please try again shortly."
    retryable = True


class GenerationFailed(ProviderError):
    """The provider accepted the job but could not produce a video."""

    user_message = "The video service could not generate this clip."


class NotFound(ProviderError):
    """The provider does not know this model, endpoint or request id (404)."""

    user_message = "The video service does not know this model or request."


class DeadlineExceeded(ProviderError):
    """The job took longer than the configured deadline."""

    user_message = "The video took too long to generate and was abandoned."
