"""Throughput of the generated component's HTTP stack, against a bare FastAPI app.

Bakes the default component, then serves the same trivial route (`GET /ping`,
returning a small dict) from each variant under uvicorn (one worker) and loads
it with `wrk` (Debian package `wrk`) from the other core. Variants run interleaved, several rounds, and are reported as
requests/s and as a ratio to the bare app measured in the same run:

- bare: `FastAPI()` with only that route (the baseline);
- component: the generated app (request-id/access-log and body-limit ASGI
  middleware, Prometheus instrumentation, JSON errors), access log off;
- component+log: the same with the JSON access log on (the default);
- component+BaseHTTPMiddleware: the generated app plus one no-op
  `BaseHTTPMiddleware`, the style the template avoids;
- component on asyncio+h11: the generated app without uvloop and httptools;
- component GET /health: the real health route (status, dependencies, uptime).

Usage: python -m benchmarks.http_stack [--seconds 5] [--rounds 2] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

VARIANTS_MODULE = textwrap.dedent(
    """
    from fastapi import FastAPI
    from starlette.middleware.base import BaseHTTPMiddleware

    from my_component.app import create_app
    from my_component.settings import load_settings


    def with_ping(app):
        @app.get("/ping")
        async def ping():
            return {"ok": True}

        return app


    def bare():
        return with_ping(FastAPI())


    def component():
        return with_ping(create_app(load_settings(hermes_enabled=False, access_log=False, log_level="warning")))


    def component_log():
        return with_ping(create_app(load_settings(hermes_enabled=False, log_level="info")))


    def component_basehttp():
        app = component()

        async def passthrough(request, call_next):
            return await call_next(request)

        app.add_middleware(BaseHTTPMiddleware, dispatch=passthrough)
        return app
    """
)

VARIANTS = [
    ("bare FastAPI (baseline)", "bare", "/ping", ()),
    ("component", "component", "/ping", ()),
    ("component + JSON access log", "component_log", "/ping", ()),
    ("component + 1 BaseHTTPMiddleware", "component_basehttp", "/ping", ()),
    ("component on asyncio + h11", "component", "/ping", ("--loop", "asyncio", "--http", "h11")),
    ("component GET /health", "component", "/health", ()),
]


def measure(workdir: Path, factory: str, path: str, extra: tuple[str, ...], seconds: int, connections: int) -> float:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{workdir}:{workdir / DEFAULT_NAME}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"variants:{factory}",
            "--factory",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_for_http(url, timeout=20, process=server)
        # Pin the load generator to its own core where the machine allows it.
        wrk = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            wrk = ["taskset", "-c", "1", *wrk]
        output = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", output)
        assert match, output
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bake(workdir)
        (workdir / "variants.py").write_text(VARIANTS_MODULE)
        results: dict[str, list[float]] = {label: [] for label, *_ in VARIANTS}
        for _ in range(args.rounds):
            for label, factory, path, extra in VARIANTS:
                results[label].append(measure(workdir, factory, path, extra, args.seconds, args.connections))
    baseline = statistics.median(results[VARIANTS[0][0]])
    load = f"wrk -t1 -c{args.connections} -d{args.seconds}s"
    print(f"GET /ping unless named, {load}, median of {args.rounds} interleaved rounds")
    print(f"{'variant':36} {'req/s':>9} {'vs bare':>8}")
    for label, values in results.items():
        median = statistics.median(values)
        print(f"{label:36} {median:9.0f} {median / baseline:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
