"""What a receiver answers other than success: a body that cannot be decoded, a point or span that breaks the data
model (rejected, the rest kept), an analyzer too busy to take the request now."""

from __future__ import annotations


class DecodeError(ValueError):
    """The whole body cannot be decoded; ``status`` is the HTTP status to answer with (415 or 400).

    The message is cut to 200 characters: it goes back to the client as the response body.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(shorten(message, 200))
        self.status = status


class Invalid(Exception):
    """A data point or span breaks the data model; the message says how."""


class Overloaded(RuntimeError):
    """Too many requests in flight; the sender should retry later."""


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
