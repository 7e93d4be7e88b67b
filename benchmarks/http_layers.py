"""Where a request's time goes in the component, layer by layer, in process.

Drives the ASGI apps directly (no server, no sockets: what is left is the
framework and the component's layers), measuring CPU microseconds per request
as the best of several interleaved batches. Starting from the component with
its defaults, each row removes one more layer; the difference to the row
above is that layer's cost. The last rows are FastAPI with the component's
routes and nothing around them, and the bare FastAPI app of `http_stack`.

Run from the repository root inside a bake's environment, via
`python -m benchmarks.http_stack --profile` (it bakes first).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tooling import DEFAULT_NAME, bake

ASGIApp = Callable[..., Any]
ROUTES = {
    "GET /health": ("GET", "/health", b""),
    "POST /api/v1/process": ("POST", "/api/v1/process", b'{"input": {"text": "hello", "n": 1}}'),
}


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk/4.1"), (b"accept", b"*/*")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: ASGIApp, method: str, path: str, body: bytes) -> int:
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, body), receive, send)
    return status


async def _start(app: Any) -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    asyncio.get_running_loop().create_task(app({"type": "lifespan", "state": {}}, inbox.get, outbox.put))
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started


def _variants(package: str) -> list[tuple[str, Callable[[Any], None]]]:
    """(label, how to strip one more layer from the app) in the order they are removed."""

    def rebuild(app: Any, keep: Callable[[Any], bool], **changes: Any) -> None:
        from starlette.middleware import Middleware

        stack = []
        for entry in app.user_middleware:
            if not keep(entry):
                continue
            if entry.cls.__name__ == "RequestMiddleware" and changes:
                entry = Middleware(entry.cls, *entry.args, **{**entry.kwargs, **changes})
            stack.append(entry)
        app.user_middleware[:] = stack
        app.middleware_stack = None

    def named(*names: str) -> Callable[[Any], bool]:
        return lambda entry: entry.cls.__name__ not in names

    return [
        ("component, shipped defaults", lambda app: None),
        ("- JSON access log", lambda app: rebuild(app, lambda e: True, access_log=False)),
        ("- metrics", lambda app: rebuild(app, lambda e: True, record_metrics=None)),
        (
            "- request middleware (ids, auth off, body guard) = FastAPI + component routes",
            lambda app: rebuild(app, named("RequestMiddleware")),
        ),
    ]


async def _measure(apps: dict[str, Any], route: tuple[str, str, bytes], batch: int, batches: int) -> dict[str, float]:
    best = {label: float("inf") for label in apps}
    for app in apps.values():  # warm up
        for _ in range(200):
            status = await _request(app, *route)
        assert status == 200, status
    for _ in range(batches):
        for label, app in apps.items():
            started = time.process_time()
            for _ in range(batch):
                await _request(app, *route)
            best[label] = min(best[label], (time.process_time() - started) / batch * 1e6)
    return best


def log_to(package: str, sink: TextIO) -> None:
    """The component's log (its access lines included) still formatted and written, into `sink`."""
    handler = logging.getLogger(package).handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(sink)


async def _breakdown(package: str, batch: int, batches: int, sink: TextIO) -> str:
    app_module = importlib.import_module(f"{package}.app")
    settings_module = importlib.import_module(f"{package}.settings")
    bare_module = importlib.import_module("bare")
    apps: dict[str, Any] = {}
    variants = _variants(package)
    for index, (label, _) in enumerate(variants):
        app = app_module.create_app(settings_module.load_settings(hermes_enabled=False))
        await _start(app)
        for _, strip in variants[: index + 1]:
            strip(app)
        apps[label] = app
    log_to(package, sink)
    apps["bare FastAPI (same routes)"] = bare_module.app
    lines = ["| layer removed | " + " | ".join(f"{r} us/req | layer us" for r in ROUTES) + " |"]
    lines.append("|---|" + "---|---|" * len(ROUTES))
    columns = [await _measure(apps, route, batch, batches) for route in ROUTES.values()]
    labels = list(apps)
    for position, label in enumerate(labels):
        cells = []
        for column in columns:
            here = column[label]
            below = column[labels[position + 1]] if position + 1 < len(labels) else None
            layer = "" if below is None or label.startswith("bare") else f"{here - below:+.1f}"
            cells.append(f"{here:.1f} | {layer}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown(batch: int = 500, batches: int = 9) -> str:
    """Bake, then print the per-layer table (CPU microseconds per request, in process)."""
    from .http_stack import BARE_APP

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        project = bake(workdir)
        (workdir / "bare.py").write_text(BARE_APP)
        sys.path[:0] = [str(workdir), str(project)]
        os.environ[f"{DEFAULT_NAME.upper()}_HERMES_ENABLED"] = "false"
        with open(os.devnull, "w") as sink:  # the access log is written, to nowhere
            table = asyncio.run(_breakdown(DEFAULT_NAME, batch, batches, sink))
    title = (
        "Per layer, in process (ASGI driven directly, no server): CPU microseconds per request, "
        f"best of {batches} interleaved batches of {batch}"
    )
    return f"{title}\n\n{table}"


if __name__ == "__main__":
    print(breakdown())
