"""The event envelope, close to CloudEvents: `id`, `type`, `source`, `time`, `data`.

Event types are dotted (`workflow.completed`); control frames and SSE control
events (`subscribed`, `error`, `reset`, ...) never contain a dot, so the two
can never be mistaken for each other. Subscriptions name exact types or use
`*` for whole segments: `workflow.*`, `*.completed`, or `*` for everything.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The one grammar of event types, used at every entry point (HTTP publish, /ws
# and /events subscriptions, the catalog) and published as the OpenAPI schema's
# `pattern`. Always matched with `fullmatch`: `re.match` with `$` lets a
# trailing newline through.
_SEGMENT = r"[A-Za-z0-9_-]+"
EVENT_TYPE_PATTERN = rf"^{_SEGMENT}(?:\.{_SEGMENT})+$"
EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_PATTERN_SEGMENT = re.compile(rf"{_SEGMENT}|\*")
MAX_TYPE_LENGTH = 128


class InvalidEventType(ValueError):
    """An event type or subscription pattern that breaks the naming rules."""


class InvalidEventData(ValueError):
    """Event data that has no standard JSON form (NaN, Infinity, lone surrogates, ...)."""


def check_event_type(event_type: str) -> str:
    if len(event_type) > MAX_TYPE_LENGTH or not EVENT_TYPE.fullmatch(event_type):
        raise InvalidEventType(
            f"event type {event_type!r} is invalid: use dotted segments of letters, digits, '_' or '-', "
            f"at least two, at most {MAX_TYPE_LENGTH} characters (e.g. 'workflow.completed')"
        )
    return event_type


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def loads_strict(text: str | bytes) -> Any:
    """`json.loads` that refuses NaN, Infinity and numbers that overflow to them.

    Raises `ValueError` (also for nesting too deep to decode, which Python
    reports as `RecursionError`).
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def dumps_strict(value: Any) -> str:
    """Standard JSON text with non-ASCII escaped, or `InvalidEventData`.

    Escaped output has no character an SSE or WebSocket frame could take for a
    line break, and refusing NaN/Infinity and lone surrogates here keeps them
    off the wire.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        # ensure_ascii escapes a lone surrogate as `\ud800`, which no UTF-8 reader can decode.
        if "\\ud" in text or "\\uD" in text:
            json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError) as exc:
        raise InvalidEventData(f"event data has no standard JSON form: {exc}") from None
    return text


@dataclass(frozen=True)
class Pattern:
    """A subscription: `*` matches one whole segment, a trailing `*` one or more."""

    text: str
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        segments = tuple(self.text.split("."))
        if (
            len(self.text) > MAX_TYPE_LENGTH
            or not all(_PATTERN_SEGMENT.fullmatch(segment) for segment in segments)
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
    _sse: bytes | None = field(default=None, init=False, repr=False, compare=False)

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
            self._json = dumps_strict(self.to_dict())
        return self._json

    @property
    def sse(self) -> bytes:
        """The whole SSE frame, encoded once for every stream it goes to.

        Safe as is: the type follows the grammar, the id is the bus's own, and
        the JSON is ASCII with every line break escaped.
        """
        if self._sse is None:
            self._sse = f"id: {self.id}\r\nevent: {self.type}\r\ndata: {self.json}\r\n\r\n".encode()
        return self._sse
