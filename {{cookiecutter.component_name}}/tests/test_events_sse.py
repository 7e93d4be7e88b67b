"""`/events` (SSE) over real HTTP to a real uvicorn: filters, order, resume, reset."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.event_clients import DEADLINE, SeenSends, SseEvent, metric, next_sse, publish, sse_events
from .support.servers import running_server


@pytest.fixture
def events_url(make_settings: SettingsFactory) -> Iterator[str]:
    settings = make_settings(event_bus="memory", event_replay_size=5, event_ping_interval=0.2)
    with running_server(create_app(settings)) as url:
        yield url


async def collect(
    http: httpx.AsyncClient, count: int, types: str = "*", last_event_id: str | None = None
) -> list[SseEvent]:
    """Open a stream, run `count` events through it, then close it."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with http.stream("GET", "/events", params={"types": types}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        return [await next_sse(events) for _ in range(count)]


async def test_sse_sends_type_id_and_the_envelope(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events", params={"types": "workflow.*"}) as response:
        events = sse_events(response)
        published = await publish(http, "workflow.completed", {"workflow_id": "w1"})
        event = await next_sse(events)
    assert (event.event, event.id) == ("workflow.completed", published["id"])
    assert event.json == published


async def test_sse_filters_with_the_same_patterns_as_ws(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events", params={"types": "workflow.*,task.completed"}) as response:
        events = sse_events(response)
        for event_type in ("task.started", "workflow.started", "agent.completed", "task.completed", "workflow.done"):
            await publish(http, event_type)
        received = [(await next_sse(events)).event for _ in range(3)]
    assert received == ["workflow.started", "task.completed", "workflow.done"]


async def test_sse_delivers_events_in_publication_order(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events") as response:
        events = sse_events(response)
        sent = await asyncio.gather(*(publish(http, "task.progress", {"n": n}) for n in range(20)))
        received = [await next_sse(events) for _ in sent]
    # Concurrent publishers: the bus's order is the ids' order, and every stream sees it.
    in_bus_order = sorted((event["id"] for event in sent), key=lambda event_id: int(event_id.split("-")[1]))
    assert [event.id for event in received] == in_bus_order


async def test_sse_sends_keep_alive_comments(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events") as response:
        lines = response.aiter_lines()
        first = await asyncio.wait_for(anext(lines), DEADLINE)
    assert first.startswith(":")


async def test_sse_resumes_after_a_forced_disconnect_without_a_gap(http: httpx.AsyncClient) -> None:
    first = await publish(http, "task.progress", {"n": 0})
    async with http.stream("GET", "/events", headers={"Last-Event-ID": first["id"]}) as response:
        events = sse_events(response)
        second = await publish(http, "task.progress", {"n": 1})
        last_seen = await next_sse(events)
    # The connection is gone; these are published while the client is away.
    missed = [await publish(http, "task.progress", {"n": n}) for n in (2, 3)]
    resumed = await collect(http, 2, last_event_id=last_seen.id)
    assert last_seen.id == second["id"]
    assert [event.id for event in resumed] == [event["id"] for event in missed]
    assert all(event.event != "reset" for event in resumed)


async def test_sse_resume_from_an_id_older_than_the_buffer_starts_with_reset(http: httpx.AsyncClient) -> None:
    old = await publish(http, "task.progress", {"n": 0})
    recent = [await publish(http, "task.progress", {"n": n}) for n in range(1, 8)]  # the buffer keeps 5
    received = await collect(http, 6, last_event_id=old["id"])
    assert received[0].event == "reset"
    assert received[0].json["last_event_id"] == old["id"]
    assert [event.id for event in received[1:]] == [event["id"] for event in recent[-5:]]


async def test_sse_resume_from_before_a_restart_starts_with_reset(http: httpx.AsyncClient) -> None:
    current = await publish(http, "task.progress")
    boot_id = current["id"].split("-")[0]
    stale = ("0" if boot_id[0] != "0" else "1") + boot_id[1:] + "-1"
    received = await collect(http, 1, last_event_id=stale)
    assert received[0].event == "reset"


async def test_sse_rejects_an_invalid_filter_naming_it(http: httpx.AsyncClient) -> None:
    response = await http.get("/events", params={"types": "workflow"})
    assert response.status_code == 422
    assert "'workflow'" in response.json()["message"]


@pytest.mark.parametrize("types", ["workflow.done\n", "workflow.*\n", "a.b,workflow.done\r", "workflow.\x00"])
async def test_sse_rejects_a_filter_with_control_characters(http: httpx.AsyncClient, types: str) -> None:
    response = await http.get("/events", params={"types": types})
    assert response.status_code == 422
    assert "is invalid" in response.json()["message"]


async def test_sse_caps_patterns_like_ws(make_settings: SettingsFactory) -> None:
    limit = 3  # the one setting for both channels
    with running_server(create_app(make_settings(event_bus="memory", ws_max_subscriptions=limit))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
            refused = await http.get("/events", params={"types": ",".join(f"a.n{n}" for n in range(limit + 1))})
            async with http.stream("GET", "/events", params={"types": "a.n0, a.n1, a.n2"}) as accepted:
                assert accepted.status_code == 200
    assert refused.status_code == 422
    assert "WS_MAX_SUBSCRIPTIONS" in refused.json()["message"]


def split_sse_lines(body: bytes) -> list[str]:
    """Lines as the SSE specification splits them: CRLF, LF or CR, and nothing else."""
    return re.split(r"\r\n|\r|\n", body.decode("utf-8"))


def parse_sse_frames(body: bytes) -> list[dict[str, str]]:
    """Every frame of a complete stream, parsed by the specification's rules (comments skipped)."""
    frames, current = [], dict[str, str]()
    for line in split_sse_lines(body):
        if not line:
            if current:
                frames.append(current)
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            current[name] = current[name] + "\n" + value if name == "data" and name in current else value
    return frames


NASTY = [
    "line\nbreak",
    "carriage\rreturn",
    "crlf\r\n\r\nevent: forged\r\ndata: {}\r\n\r\n",
    "\n\nid: 999\n\n",
    "unicode separators \u2028 \u2029 \u0085 \x0b \x0c \x1c \x1d \x1e",
    "data: forged",
    ": comment",
    "nul \x00 and tab \t",
]


async def test_no_event_field_can_break_an_sse_frame(http: httpx.AsyncClient) -> None:
    """Every published field (the type is checked; data and the request id are user-made) stays in its frame."""
    body = b""
    async with http.stream("GET", "/events", params={"types": "frame.*"}) as response:
        published = []
        for n, text in enumerate(NASTY):
            envelope = await publish(http, "frame.check", {"text": text, text: n})
            published.append(envelope)
        async with asyncio.timeout(DEADLINE):
            async for chunk in response.aiter_bytes():
                body += chunk
                if body.count(b"frame.check") >= 2 * len(NASTY):  # `event:` line and the envelope
                    frames = [frame for frame in parse_sse_frames(body) if frame.get("event") == "frame.check"]
                    if len(frames) == len(NASTY) and body.endswith((b"\r\n\r\n", b"\n\n")):
                        break
    frames = parse_sse_frames(body)
    assert [set(frame) for frame in frames] == [{"event", "id", "data"}] * len(NASTY)
    assert [frame["event"] for frame in frames] == ["frame.check"] * len(NASTY)
    assert [frame["id"] for frame in frames] == [envelope["id"] for envelope in published]
    assert [json.loads(frame["data"]) for frame in frames] == published
    # Only the frame structure breaks lines, and non-ASCII text is escaped inside the JSON.
    assert body.isascii()


async def test_sse_streams_are_counted_while_open(http: httpx.AsyncClient) -> None:
    gauge = 'event_connections{channel="sse"}'

    async def gauge_reaches(value: float) -> None:
        # The gauge is process-wide: a stream of an earlier test may still be closing.
        async with asyncio.timeout(DEADLINE):
            while True:
                if metric((await http.get("/metrics")).text, gauge) == value:
                    return
                await asyncio.sleep(0.05)

    await gauge_reaches(0)
    async with http.stream("GET", "/events") as response:
        lines = response.aiter_lines()  # held: a dropped line iterator closes the stream when collected
        await anext(lines)
        await gauge_reaches(1)
    await gauge_reaches(0)


def never_reading_sse_client(base_url: str) -> socket.socket:
    """An SSE stream opened on a bare socket with a tiny receive buffer, then never read."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(DEADLINE)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /events?types=load.* HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert sock.recv(12).startswith(b"HTTP/1.1 200")
    return sock


async def test_a_never_reading_sse_client_neither_slows_the_others_nor_stays(make_settings: SettingsFactory) -> None:
    settings = make_settings(event_bus="memory", event_queue_size=4, event_send_timeout=0.5)
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
            gauge = 'event_connections{channel="sse"}'
            slow = await asyncio.to_thread(never_reading_sse_client, url)
            try:
                async with http.stream("GET", "/events", params={"types": "load.*"}) as response:
                    events = sse_events(response)
                    async with asyncio.timeout(DEADLINE):
                        while True:  # both streams are open
                            if metric((await http.get("/metrics")).text, gauge) >= 2:
                                break
                            await asyncio.sleep(0.02)
                    n = 0
                    # Until the server gives up on the stuck stream; the reader keeps up all along.
                    async with asyncio.timeout(DEADLINE):
                        while metric((await http.get("/metrics")).text, gauge) > 1:
                            sent = await publish(http, "load.tick", {"n": n, "pad": "x" * 64 * 1024})
                            assert (await next_sse(events)).id == sent["id"]
                            n += 1
                    assert n > 0
            finally:
                slow.close()


async def test_sse_event_chunks_skip_the_asgi_stack(make_settings: SettingsFactory) -> None:
    # Under uvicorn, one chunk built for every stream goes straight to each socket; a
    # uvicorn that stops offering its request cycle to the wire fails here, not silently.
    app = create_app(make_settings(event_bus="memory"))
    seen = SeenSends.on(app)
    with running_server(app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http,
            http.stream("GET", "/events", params={"types": "load.*"}) as response,
        ):
            events = sse_events(response)
            sent = [await publish(http, "load.tick", {"n": n}) for n in range(3)]
            assert [(await next_sse(events)).id for _ in sent] == [event["id"] for event in sent]
    stream = [message for path, message in seen if path == "/events"]
    assert stream[0]["type"] == "http.response.start"  # the head goes through the stack
    assert not any(b"load.tick" in message.get("body", b"") for message in stream)


async def test_an_sse_client_that_falls_behind_gets_every_event_in_order(make_settings: SettingsFactory) -> None:
    # Its socket fills up: the wire shuts, events queue behind what is pending, and go out
    # in order as the client reads; nothing is lost while the queue has room.
    events_count, pad = 100, "x" * 64 * 1024
    settings = make_settings(event_bus="memory", event_queue_size=events_count + 1, event_send_timeout=60)
    with running_server(create_app(settings)) as url:
        late = await asyncio.to_thread(never_reading_sse_client, url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
                sent = [await publish(http, "load.tick", {"n": n, "pad": pad}) for n in range(events_count)]
                ids = await asyncio.to_thread(read_sse_ids, late, len(sent))
                assert ids == [event["id"] for event in sent]
        finally:
            late.close()


def read_sse_ids(sock: socket.socket, count: int) -> list[str]:
    """The ids of the next `count` events on a raw SSE stream."""
    pending, ids = b"", list[str]()
    while len(ids) < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the stream")
        *frames, pending = (pending + chunk).split(b"\r\n\r\n")
        ids += [match.group(1).decode() for frame in frames if (match := re.search(rb"\nid: ([^\r\n]+)", frame))]
    return ids
