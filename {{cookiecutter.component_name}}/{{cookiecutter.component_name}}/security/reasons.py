"""Why a request was refused: the nine machine-readable reasons of DESIGN §10, in the order checked."""

from __future__ import annotations

from typing import Literal, get_args

Reason = Literal[
    "missing_token",
    "bad_token",
    "unknown_key",
    "expired",
    "wrong_audience",
    "missing_signature",
    "stale_timestamp",
    "bad_signature",
    "replayed",
]
REASONS: tuple[Reason, ...] = get_args(Reason)  # the same nine, in the order checked


class AuthFailure(Exception):
    """A refused credential; `message` says what was wrong and never repeats a secret or a token."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
