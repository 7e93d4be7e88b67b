"""The event envelope, close to CloudEvents: `id`, `type`, `source`, `time`, `data`.

Event types are dotted (`workflow.completed`); control frames and SSE control
events (`subscribed`, `error`, `reset`, ...) never contain a dot, so the two
can never be mistaken for each other. Subscriptions name exact types or use
`*` for whole segments: `workflow.*`, `*.completed`, or `*` for everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_SEGMENT = r"[A-Za-z0-9_-]+"
EVENT_TYPE = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})+$")
_PATTERN_SEGMENT = re.compile(rf"^({_SEGMENT}|\*)$")
MAX_TYPE_LENGTH = 128


class InvalidEventType(ValueError):
    """An event type or subscription pattern that breaks the naming rules."""


def check_event_type(event_type: str) -> str:
    if len(event_type) > MAX_TYPE_LENGTH or not EVENT_TYPE.match(event_type):
        raise InvalidEventType(
            f"event type {event_type!r} is invalid: use dotted segments of letters, digits, '_' or '-', "
            f"at least two, at most {MAX_TYPE_LENGTH} characters (e.g. 'workflow.completed')"
        )
    return event_type


@dataclass(frozen=True)
class Pattern:
    """A subscription: `*` matches one whole segment, a trailing `*` one or more."""

    text: str
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        segments = tuple(self.text.split("."))
        if (
            len(self.text) > MAX_TYPE_LENGTH
            or not all(_PATTERN_SEGMENT.match(segment) for segment in segments)
            or (len(segments) == 1 and segments[0] != "*")
        ):
            raise InvalidEventType(
                f"subscription {self.text!r} is invalid: use an event type ('workflow.completed'), "
                "'*' for whole segments ('workflow.*', '*.completed') or '*' for every event"
            )
        object.__setattr__(self, "segments", segments)

    def matches(self, event_type: str) -> bool:
        return self.matches_segments(tuple(event_type.split(".")))

    def matches_segments(self, parts: tuple[str, ...]) -> bool:
        if parts == self.segments:
            return True
        last = len(self.segments) - 1
        for index, segment in enumerate(self.segments):
            if index == last and segment == "*":
                return len(parts) > index
            if index >= len(parts) or (segment != "*" and segment != parts[index]):
                return False
        return len(parts) == len(self.segments)


def parse_patterns(texts: Iterable[str]) -> list[Pattern]:
    """Patterns from strings, in order, without duplicates; raises `InvalidEventType`."""
    return [Pattern(text) for text in dict.fromkeys(texts)]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class Event:
    """Treat as immutable: one instance is shared by every subscriber it reaches."""

    id: str
    type: str
    source: str
    time: str
    data: Any
    # The id of the HTTP request that published it, so a trace can cross the bus.
    request_id: str | None = None
    # Computed once per event, however many subscribers it reaches (functools.cached_property
    # takes a lock on every access in Python 3.11: too slow for a fan-out path).
    _segments: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _json: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        envelope = {"id": self.id, "type": self.type, "source": self.source, "time": self.time, "data": self.data}
        if self.request_id is not None:
            envelope["request_id"] = self.request_id
        return envelope

    @property
    def segments(self) -> tuple[str, ...]:
        if self._segments is None:
            self._segments = tuple(self.type.split("."))
        return self._segments

    @property
    def json(self) -> str:
        if self._json is None:
            self._json = json.dumps(self.to_dict(), separators=(",", ":"))
        return self._json
