"""A local Hermes that speaks the real contract over real HTTP, for tests and the demo.

Like Tekton's Hermes: routes under `/api/`, an opaque signed token sent back
in `X-Authentication-Token` (401 when bad or expired, 422 when missing), a
component listing filtered by `healthy_only` (last heartbeat within the
healthy window, 60 s), registrations kept in memory only. A registration
(first, renewal or again) lists `last_heartbeat: null` until the next
heartbeat, and healthy-only lookups skip it until then. `restart()` forgets
every registration while old tokens stay valid, as a restarted Hermes does;
`bounce()` stops serving for a while and comes back on the same port, with
or without its registrations.

For tests it also misbehaves on demand (`fail(...)`): 500, HTML, truncated
JSON, a hang, or a TCP reset. Run it alone with
`python -m tests.support.hermes --port 8001`; the `/_hermes/*` routes
control it from another process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, get_args

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .servers import bound_socket

# `late`: the request is served (a registration is stored) but its answer is held until `heal()`.
FaultMode = Literal["500", "html", "truncated", "hang", "late", "reset"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)


@dataclass
class Fault:
    mode: FaultMode
    times: int | None = None  # None: until `heal()`
    path: str = "/api/"  # applies to request paths starting with this


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    at: float = field(default_factory=time.monotonic, compare=False)  # when it was answered


@dataclass
class HermesRegistry:
    """The registry's state, shared by the HTTP app and the test that drives it."""

    token_lifetime: float = 3600.0
    healthy_window: float = 60.0
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fault: Fault | None = None
    # Fixed for the life of the object: tokens survive `restart()`, as with the real Hermes.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def restart(self) -> None:
        """Forget every registration; tokens issued before stay valid."""
        with self.lock:
            self.components.clear()

    def issue_token(self, component_id: str) -> str:
        now = time.time()
        payload = json.dumps({"component_id": component_id, "issued_at": now, "expires_at": now + self.token_lifetime})
        encoded = base64.urlsafe_b64encode(payload.encode()).decode()
        return f"{encoded}.{self._sign(encoded)}"

    def token_valid(self, token: str, component_id: str) -> bool:
        encoded, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(encoded)):
            return False
        try:
            payload = json.loads(base64.urlsafe_b64decode(encoded))
        except ValueError:
            return False
        return bool(payload.get("component_id") == component_id and payload.get("expires_at", 0) > time.time())

    def _sign(self, encoded: str) -> str:
        return hmac.new(self.secret, encoded.encode(), hashlib.sha256).hexdigest()

    def count(self, path: str, status: int | None = None) -> int:
        """How many calls reached `path` (and answered `status`, if given)."""
        with self.lock:
            return sum(1 for c in self.calls if c.path == path and (status is None or c.status == status))

    def take_fault(self, path: str, modes: tuple[str, ...] = FAULT_MODES) -> Fault | None:
        """The fault to apply to a request for `path`, counting it down."""
        with self.lock:
            fault = self.fault
            if fault is None or fault.mode not in modes or not path.startswith(fault.path):
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.fault = None
            return fault


class RegistrationRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    component_id: str | None = None
    name: str
    version: str
    component_type: str = Field(alias="type")
    endpoint: str
    capabilities: list[str] = []
    metadata: dict[str, Any] = {}


class HeartbeatRequest(BaseModel):
    component_id: str
    status: dict[str, Any] = {}


class QueryRequest(BaseModel):
    capability: str | None = None
    component_type: str | None = None
    healthy_only: bool = False


class FaultRequest(BaseModel):
    mode: FaultMode
    times: int | None = Field(None, ge=1)
    path: str = "/api/"


def create_hermes_app(registry: HermesRegistry) -> ASGIApp:
    app = FastAPI(title="Local Hermes", docs_url=None, redoc_url=None)

    def listed(record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in record.items() if key != "token"}

    def healthy(record: dict[str, Any]) -> bool:
        # Never heartbeated since it registered: the real Hermes counts that as unhealthy.
        last = record["last_heartbeat"]
        return last is not None and time.time() - last <= registry.healthy_window

    @app.post("/api/register")
    async def register(body: RegistrationRequest) -> dict[str, Any]:
        component_id = body.component_id or f"{body.name}-{secrets.token_hex(4)}"
        now = time.time()
        with registry.lock:
            registry.components[component_id] = {
                "component_id": component_id,
                "name": body.name,
                "version": body.version,
                "type": body.component_type,
                "port": None,  # the real Hermes does not keep it: peers read `endpoint`
                "status": "active",
                "capabilities": body.capabilities,
                "endpoint": body.endpoint,
                "last_heartbeat": None,  # as the real Hermes: null until the next heartbeat
                "registered_at": now,
                "metadata": body.metadata,
            }
        token = registry.issue_token(component_id)
        # A typed answer: camelCase keys, like the real one.
        return {"success": True, "componentId": component_id, "token": token, "message": "Component registered"}

    @app.post("/api/heartbeat")
    async def heartbeat(body: HeartbeatRequest, x_authentication_token: str = Header(...)) -> dict[str, Any]:
        # Like the real Hermes: only the token is checked, so a forgotten
        # component still gets 200 after a restart.
        if not registry.token_valid(x_authentication_token, body.component_id):
            raise HTTPException(401, "Invalid authentication token")
        with registry.lock:
            record = registry.components.get(body.component_id)
            if record is not None:
                record["last_heartbeat"] = time.time()
                record["status"] = body.status.get("status", "active")
        return {"success": True, "timestamp": time.time(), "message": "Heartbeat received"}

    @app.post("/api/unregister")
    async def unregister(component_id: str, x_authentication_token: str = Header(...)) -> dict[str, Any]:
        with registry.lock:
            known = component_id in registry.components
            if known and registry.token_valid(x_authentication_token, component_id):
                del registry.components[component_id]
                return {"success": True, "message": "Component unregistered successfully"}
        raise HTTPException(401, "Invalid authentication token")

    @app.get("/api/components")
    async def components(
        capability: str | None = None, component_type: str | None = None, healthy_only: bool = False
    ) -> dict[str, Any]:
        with registry.lock:
            records = [
                listed(record)
                for record in registry.components.values()
                if (capability is None or capability in record["capabilities"])
                and (component_type is None or record["type"] == component_type)
                and (not healthy_only or healthy(record))
            ]
        return {"total": len(records), "components": records}

    @app.get("/api/components/{name}")
    async def component(name: str) -> dict[str, Any]:
        with registry.lock:
            matches = [record for record in registry.components.values() if record["name"] == name]
        if not matches:
            raise HTTPException(404, f"Component '{name}' not found")
        return listed(min(matches, key=lambda record: record["registered_at"]))

    @app.post("/api/query")
    async def query(body: QueryRequest) -> list[dict[str, Any]]:
        with registry.lock:
            records = list(registry.components.values())
        return [
            {
                "componentId": r["component_id"],
                "name": r["name"],
                "version": r["version"],
                "type": r["metadata"].get("type", "Unknown"),
                "endpoint": r["endpoint"],
                "capabilities": r["capabilities"],
                "metadata": r["metadata"],
                "healthy": healthy(r),
                "lastHeartbeat": r["last_heartbeat"],
            }
            for r in records
            if (body.capability is None or body.capability in r["capabilities"])
            and (body.component_type is None or r["metadata"].get("type") == body.component_type)
            and (not body.healthy_only or healthy(r))
        ]

    @app.get("/health")
    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "component": "hermes", "registered_components": len(registry.components)}

    # Controls for a Hermes run as a separate process (tests in-process use the registry).
    @app.post("/_hermes/restart")
    async def restart() -> dict[str, Any]:
        registry.restart()
        return {"restarted": True}

    @app.post("/_hermes/fault")
    async def set_fault(body: FaultRequest) -> dict[str, Any]:
        registry.fault = Fault(body.mode, body.times, body.path)
        return {"fault": body.model_dump()}

    @app.delete("/_hermes/fault")
    async def clear_fault() -> dict[str, Any]:
        registry.fault = None
        return {"fault": None}

    return FaultMiddleware(app, registry)


class FaultMiddleware:
    """Answers badly while a fault is set, and records every call's status."""

    TRUNCATED = b'{"success": true, "componentId": "trunc'
    HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

    def __init__(self, app: ASGIApp, registry: HermesRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        fault = self.registry.take_fault(path, modes=("500", "html", "truncated", "hang", "late"))
        try:
            if fault is None:
                await self.app(scope, receive, recording_send)
            elif fault.mode == "hang":
                await self._hang()
                await self.app(scope, receive, recording_send)
            elif fault.mode == "late":

                async def held_send(message: Message) -> None:
                    await self._hang("late")
                    await recording_send(message)

                await self.app(scope, receive, held_send)
            else:
                await self._answer_badly(fault.mode, recording_send)
        finally:
            with self.registry.lock:
                self.registry.calls.append(Call(scope["method"], path, status))

    async def _hang(self, mode: str = "hang") -> None:
        # Until the fault is cleared (or a minute passes): clients must time out on their own.
        for _ in range(1200):
            fault = self.registry.fault
            if fault is None or fault.mode != mode:
                return
            await asyncio.sleep(0.05)

    async def _answer_badly(self, mode: str, send: Send) -> None:
        status, kind, body = {
            "500": (500, b"text/plain; charset=utf-8", b"Internal Server Error"),
            "html": (200, b"text/html; charset=utf-8", self.HTML),
            "truncated": (200, b"application/json", self.TRUNCATED),
        }[mode]
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def resetting_protocol(registry: HermesRegistry) -> type[H11Protocol]:
    """An HTTP protocol that answers a request with a TCP reset while a `reset` fault is set."""

    class ResettingProtocol(H11Protocol):
        def data_received(self, data: bytes) -> None:
            request_line = data.split(b"\r\n", 1)[0].split(b" ")
            path = request_line[1].decode(errors="replace") if len(request_line) > 1 else ""
            if registry.take_fault(path, modes=("reset",)):
                with registry.lock:
                    registry.calls.append(Call(request_line[0].decode(errors="replace"), path, 0))
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    # Linger 0: close() sends RST instead of FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.transport.abort()
                return
            super().data_received(data)

    return ResettingProtocol


def server_config(registry: HermesRegistry, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        create_hermes_app(registry),
        host=host,
        port=port,
        log_level=log_level,
        http=resetting_protocol(registry),
        loop="asyncio",
        lifespan="off",
    )


class LocalHermes:
    """The local Hermes on a loopback port, served by uvicorn in a background thread.

    A plain `uvicorn.Server`, not `servers.PromptServer`: stopped that fast while a
    component keeps calling it (the restart tests), it left accepted sockets unclosed.

    `stop()` and `start()` again on the same port keep the registry (a network
    outage); `restart()` wipes it (a Hermes restart).
    """

    def __init__(
        self, port: int | None = None, *, token_lifetime: float = 3600.0, healthy_window: float = 60.0
    ) -> None:
        # While not serving, the port stays bound: its connections are refused, as when Hermes is down,
        # and no other server (another xdist worker's, on a port the kernel hands out) can take it.
        self._reserved: socket.socket | None = bound_socket(port or 0)
        self.port: int = self._reserved.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.registry = HermesRegistry(token_lifetime=token_lifetime, healthy_window=healthy_window)
        self._serving: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> LocalHermes:
        self._serving, self._reserved = self._reserved or bound_socket(self.port), None  # uvicorn listens on it
        self._server = uvicorn.Server(server_config(self.registry, "127.0.0.1", self.port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._serving]}, name=f"hermes-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"local Hermes did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self.registry.fault = None  # release hung requests
            self._server.should_exit = True
            self._thread.join(timeout=15)
            if self._serving is not None:
                self._serving.close()  # uvicorn's shutdown has closed it, unless it never started
            self._reserved = bound_socket(self.port)
        self._server = self._thread = None

    def close(self) -> None:
        """Stop serving and free the port."""
        self.stop()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def restart(self) -> None:
        """Lose every registration, keep accepting old tokens: what a real Hermes restart looks like."""
        self.registry.restart()

    def bounce(self, *, forget: bool = True, down_for: float = 0.0) -> None:
        """Stop serving (connections refused), wait `down_for` seconds, serve again on the same port.

        `forget=True` is a Hermes restart (registrations lost, old tokens still accepted);
        `forget=False` a network outage or a Hermes that kept its state."""
        self.stop()
        if forget:
            self.registry.restart()
        time.sleep(down_for)
        self.start()

    def fail(self, mode: FaultMode, times: int | None = None, path: str = "/api/") -> None:
        """Answer requests under `path` badly, `times` times (or until `heal()`)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault {mode!r}; choose one of {', '.join(FAULT_MODES)}")
        self.registry.fault = Fault(mode, times, path)

    def heal(self) -> None:
        self.registry.fault = None

    def components(self) -> list[dict[str, Any]]:
        with self.registry.lock:
            return [dict(record) for record in self.registry.components.values()]

    def component_ids(self) -> set[str]:
        with self.registry.lock:
            return set(self.registry.components)

    def __enter__(self) -> LocalHermes:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextmanager
def local_hermes(port: int | None = None, **options: float) -> Iterator[LocalHermes]:
    with LocalHermes(port, **options) as hermes:
        yield hermes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.hermes", description="Run a local Hermes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--healthy-window", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    registry = HermesRegistry(token_lifetime=args.token_lifetime, healthy_window=args.healthy_window)
    print(f"local Hermes on http://{args.host}:{args.port}/api/components", flush=True)
    # uvicorn shuts down cleanly, then re-raises Ctrl-C: it needs no traceback.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(server_config(registry, args.host, args.port, log_level="info")).run()


if __name__ == "__main__":
    main()
