"""Event frames written straight to uvicorn's socket, encoded once for every subscriber.

Fanning one event out to a thousand sockets, the socket writes themselves are
the floor; on top of them comes the stack between the app and each socket:
Starlette's send, each middleware's send wrapper, uvicorn's ASGI `send`, and
the WebSocket library framing the same text again for every socket. The
frame is the same bytes for every subscriber, so it is built once
(`websocket_frame`, `sse_chunk`) and each subscriber costs one
`transport.write`.

This reaches into uvicorn's connection objects (its default sans-I/O
WebSocket protocol and its httptools request cycle, in the versions
pyproject pins), found from the task uvicorn runs the request in and used
only when they serve this very scope. Under another server, `--ws wsproto`,
`--http h11`, or with permessage-deflate (which compresses per connection)
there is no wire and the channel sends through ASGI as before; the
`..._skip_the_asgi_stack...` tests in tests/test_events_ws.py and
tests/test_events_sse.py fail if uvicorn stops offering it.

A wire is a subscription's `direct` sender. It writes only while it is
`open` (the channel shuts it while it has a frame of its own in hand, a
backlog to send, or is closing) and the connection has nothing buffered
(the client keeps up) and is not closing; otherwise it says no and the event
queues behind what is pending. It looks only at the transport it writes to,
nothing else per subscriber. Middleware sees the handshake, the response
start and every control frame, not each event frame.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from weakref import WeakKeyDictionary

from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from ..events.envelope import Event

_Connection = TypeVar("_Connection", WebSocketsSansIOProtocol, RequestResponseCycle)


class PerEvent:
    """`build(event)` for the event being fanned out, computed by its first subscriber only."""

    def __init__(self, build: Callable[[Event], bytes]) -> None:
        self._build = build
        # One attribute, replaced whole: a server in another thread never sees a torn pair.
        self._last: tuple[Event | None, bytes] = (None, b"")

    def __call__(self, event: Event) -> bytes:
        last = self._last
        if last[0] is event:
            return last[1]
        value = self._build(event)
        self._last = (event, value)
        return value


# A server's text frame: unmasked, one fragment, no extension.
websocket_frame = PerEvent(lambda event: Frame(Opcode.TEXT, event.json.encode()).serialize(mask=False))
# One HTTP/1.1 chunk holding the whole SSE frame.
sse_chunk = PerEvent(lambda event: b"%x\r\n%b\r\n" % (len(event.sse), event.sse))


def _serving(kind: type[_Connection], scope: Any) -> _Connection | None:
    """uvicorn's `kind` object running the current task, if it serves `scope` itself.

    uvicorn runs each request in a task whose coroutine is the connection's
    own `run_asgi` method: its `self` is the connection.
    """
    task = asyncio.current_task()
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    candidate = frame.f_locals.get("self") if frame is not None else None
    if isinstance(candidate, kind) and candidate.scope is scope:
        return candidate
    return None


class _Wire:
    __slots__ = ("_delivered", "_frame", "_transport", "open")

    def __init__(self, transport: asyncio.Transport, frame: PerEvent, delivered: Tally) -> None:
        self._transport = transport
        self._frame = frame
        self._delivered = delivered
        self.open = False  # the channel opens it once nothing of its own is pending

    def write(self, event: Event) -> bool:
        """Write `event`'s frame if the connection takes it at once; False: queue it."""
        transport = self._transport
        if not self.open or transport.get_write_buffer_size() or transport.is_closing():
            return False
        transport.write(self._frame(event))
        self._delivered.add()
        return True


class WebSocketWire(_Wire):
    """One uvicorn WebSocket connection, written to directly while it keeps up."""

    __slots__ = ()


def websocket_wire(scope: Any, delivered: Tally) -> WebSocketWire | None:
    """The wire of the accepted WebSocket serving `scope`, open; call it from the endpoint's own task."""
    protocol = _serving(WebSocketsSansIOProtocol, scope)
    if protocol is None or protocol.conn.extensions:  # permessage-deflate: every socket's bytes differ
        return None
    wire = WebSocketWire(protocol.transport, websocket_frame, delivered)
    wire.open = True
    return wire


class StreamWire(_Wire):
    """One uvicorn HTTP response streamed in chunks, written to directly while it keeps up."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle, delivered: Tally) -> None:
        super().__init__(cycle.transport, sse_chunk, delivered)
        self._cycle = cycle

    def started(self) -> bool:
        """Whether the wire can write, asked once the response has started: uvicorn chunks its body."""
        return bool(self._cycle.chunked_encoding) and not self._cycle.response_complete


def stream_wire(scope: Any, delivered: Tally) -> StreamWire | None:
    """The wire of the HTTP response to `scope`, shut; call it from the endpoint's own task."""
    cycle = _serving(RequestResponseCycle, scope)
    return None if cycle is None else StreamWire(cycle, delivered)


class Tally:
    """A Prometheus counter fed once per event-loop turn instead of once per subscriber.

    `Counter.inc` takes a lock: a thousand of them cost more than the rest of
    a fan-out's Python. One tally per event loop and counter (`Tally.here`): a
    loop runs in one thread, so the count needs no lock.
    """

    _here: ClassVar[WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Counter, Tally]]] = WeakKeyDictionary()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop, counter: Counter) -> None:
        self._loop = loop
        self._counter = counter
        self._count = 0

    @classmethod
    def here(cls, counter: Counter) -> Tally:
        """The running loop's tally for `counter`."""
        loop = asyncio.get_running_loop()
        with cls._lock:
            tallies = cls._here.setdefault(loop, {})
            if counter not in tallies:
                tallies[counter] = cls(loop, counter)
            return tallies[counter]

    def add(self) -> None:
        if not self._count:
            self._loop.call_soon(self._flush)
        self._count += 1

    def _flush(self) -> None:
        count, self._count = self._count, 0
        self._counter.inc(count)
