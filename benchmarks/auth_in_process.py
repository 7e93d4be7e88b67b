"""The cost of authentication in one interpreter: context for `auth_cost.py`'s goal, not its measure.

Bakes the default component and builds its app twice in one process, auth off
and auth on, each behind the component's own uvicorn HTTP protocol on 32
in-memory connections. Both are sent the very same signed `POST
/api/v1/process` requests (each with its own nonce), in alternating batches of
64; the process CPU time of each side's batches is summed. A neighbour's burst
on a shared machine, which can fall on one side of `auth_cost.py`'s two
servers, weighs on both sides here; and the kernel's share of a request
(sockets, wrk) is left out, so the ratio is the server's own code per request
(access lines written, to nowhere, as `http_layers.py` does), auth's share of
it the larger.

`--parts` prices auth's parts, for whoever weighs a faster verifier: the
auth-on side is measured again with one part switched off at a time (the
answer's signature; the request's signature check; both; every SHA-256 and
HMAC replaced by a constant), each against auth off in the same run. The
parts are switched off by patching the bake's own module attributes, which
the request path looks up on every call; the component is never changed.

Usage: python -m benchmarks.auth_in_process [--batches 1500] [--parts]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

from tooling import DEFAULT_NAME, bake

from .auth_cost import KID, SECRET, raw_requests
from .http_layers import log_to
from .table import Ratio, render

BATCH = 64  # two requests on each of the 32 connections
CONNECTIONS = 32
WARM_UP = 640


class _Transport(asyncio.Transport):
    """Where uvicorn's protocol writes its answers: kept in memory, never a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class _Side:
    """One app behind the component's HTTP protocol, on `CONNECTIONS` in-memory connections."""

    def __init__(self, settings: Any, loop: asyncio.AbstractEventLoop) -> None:
        app_module = importlib.import_module(f"{DEFAULT_NAME}.app")
        serve = importlib.import_module(f"{DEFAULT_NAME}.serve")
        state = importlib.import_module("uvicorn.server").ServerState()
        self.app = app_module.create_app(settings)
        config = serve.server_config(settings, self.app)
        config.load()
        self.state = state
        self.connections = []
        for _ in range(CONNECTIONS):
            protocol = serve.HttpProtocol(config=config, server_state=state, app_state={}, _loop=loop)
            transport = _Transport()
            protocol.connection_made(transport)
            self.connections.append((protocol, transport))

    async def send(self, requests: list[bytes]) -> None:
        """Each connection gets one request at a time, like wrk's; answers are checked, then dropped."""
        for start in range(0, len(requests), CONNECTIONS):
            for (protocol, _), request in zip(self.connections, requests[start : start + CONNECTIONS], strict=False):
                protocol.data_received(request)
            while self.state.tasks:
                await asyncio.gather(*list(self.state.tasks))
            for _ in range(3):  # let the protocols finish their writes
                await asyncio.sleep(0)
        for _, transport in self.connections:
            answer = b"".join(transport.written)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
            transport.written.clear()


# Each part of auth, and how to switch it off: (module of the bake, attribute, stand-in) triples.
Patch = tuple[str, str, Callable[[], Any]]


def _unsigned_answer() -> Any:
    return lambda start, body, verified, nonce: None


def _unchecked_request() -> Any:
    nonce_header = importlib.import_module(f"{DEFAULT_NAME}.api.auth")._NONCE

    async def signature(self: Any, scope: Any, headers: dict[bytes, bytes], verified: Any, body: bytes) -> bytes:
        return headers[nonce_header]  # the nonce the answer is signed with, taken unchecked

    return signature


PARTS: dict[str, list[Patch]] = {
    "the answer's signature": [("api.middleware", "sign_answer", _unsigned_answer)],
    "the request's signature check": [("api.auth", "AuthGate.signature", _unchecked_request)],
    "both": [
        ("api.middleware", "sign_answer", _unsigned_answer),
        ("api.auth", "AuthGate.signature", _unchecked_request),
    ],
    "hashing (SHA-256, HMAC)": [
        ("security.signing", "body_hash", lambda: lambda body: b"0" * 64),
        ("security.signing", "signature", lambda: lambda key, canonical: b"v1=" + b"0" * 64),
        ("security.signing", "matches", lambda: lambda key, canonical, presented: True),
    ],
}


@contextlib.contextmanager
def _switched_off(patches: list[Patch]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for module_name, attribute, stand_in in patches:
            target: Any = importlib.import_module(f"{DEFAULT_NAME}.{module_name}")
            *owners, name = attribute.split(".")
            for owner in owners:
                target = getattr(target, owner)
            stack.enter_context(mock.patch.object(target, name, stand_in()))
        yield


async def _drive(batches: int, sink: TextIO, parts: bool = False) -> dict[str, float]:
    """CPU microseconds per request of each side (and with `parts`, of auth on without each part)."""
    settings_module = importlib.import_module(f"{DEFAULT_NAME}.settings")
    name = DEFAULT_NAME.upper()
    os.environ.update({f"{name}_HERMES_ENABLED": "false", "TEKTON_AUTH_KEYS": ""})
    runs = 1 + len(PARTS) if parts else 1  # every run's nonces are new, and all are kept
    os.environ[f"{name}_AUTH_REPLAY_CACHE_SIZE"] = str(runs * (BATCH * batches + WARM_UP) + 1)
    off = settings_module.load_settings()
    os.environ["TEKTON_AUTH_KEYS"] = f"{KID}={SECRET}"
    on = settings_module.load_settings()
    loop = asyncio.get_running_loop()
    sides = {"off": _Side(off, loop), "on": _Side(on, loop)}
    async with contextlib.AsyncExitStack() as lifespans:
        for side in sides.values():
            await lifespans.enter_async_context(side.app.router.lifespan_context(side.app))
        log_to(DEFAULT_NAME, sink)
        figures = await _alternate(sides, batches)
        for part, patches in PARTS.items() if parts else ():
            with _switched_off(patches):
                without = await _alternate(sides, batches)
            figures[f"off, beside {part}"], figures[f"on without {part}"] = without["off"], without["on"]
        return figures


async def _alternate(sides: dict[str, _Side], batches: int) -> dict[str, float]:
    """A warm-up, then `batches` batches to each side, which side goes first alternating."""
    signed = [line.replace("\\r\\n", "\r\n").encode() for line in raw_requests(8000, WARM_UP + BATCH * batches, True)]
    for side in sides.values():
        await side.send(signed[:WARM_UP])
    spent = dict.fromkeys(sides, 0.0)
    for index in range(batches):
        batch = signed[WARM_UP + index * BATCH : WARM_UP + (index + 1) * BATCH]
        for label in ("off", "on") if index % 2 == 0 else ("on", "off"):
            started = time.process_time()
            await sides[label].send(batch)
            spent[label] += time.process_time() - started
    return {label: seconds / (BATCH * batches) * 1e6 for label, seconds in spent.items()}


def measure(batches: int, parts: bool = False) -> dict[str, float]:
    """Bakes the default component and drives it in this interpreter, as `http_layers.py` does."""
    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp))  # before `sys.path` is read: baking replaces the list
        sys.path.insert(0, str(project))
        with open(os.devnull, "w") as sink:
            return asyncio.run(_drive(batches, sink, parts))


def rows(figures: dict[str, float], batches: int) -> list[Ratio]:
    return [
        Ratio(
            f"POST /api/v1/process CPU per request, auth on, one interpreter ({batches}x{BATCH} a side, context)",
            f"auth off {figures['off']:,.0f} us",
            f"{figures['on']:,.0f} us",
            figures["off"] / figures["on"],
        )
    ] + [
        Ratio(
            f"  the same, auth on without {part} (switched off to price it)",
            f"auth off {figures[f'off, beside {part}']:,.0f} us",
            f"{figures[f'on without {part}']:,.0f} us",
            figures[f"off, beside {part}"] / figures[f"on without {part}"],
        )
        for part in PARTS
        if f"on without {part}" in figures
    ]


def comparisons(quick: bool) -> list[Ratio]:
    batches = 100 if quick else 1500
    return rows(measure(batches), batches)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=1500)
    parser.add_argument("--parts", action="store_true", help="also price each part of auth by switching it off")
    args = parser.parse_args()
    figures = measure(args.batches, args.parts)
    print(render(rows(figures, args.batches), "Authentication cost in one interpreter"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
