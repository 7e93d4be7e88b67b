"""The request path: the baked component with its shipped defaults against a bare FastAPI app.

Bakes the default component and serves, each in one process pinned to core 0
(`taskset`), loaded by `wrk -t1 -c32` pinned to core 1, in alternating rounds:

- bare: a plain FastAPI app with the same two routes as `async def`: `GET /health`
  returns a five-key dict, `POST /api/v1/process` takes `{"input": ...}` in a
  pydantic model and does the sample service's work inline (the same empty-input
  422, the same four-key answer: the framework is compared, not the business
  code); `uvicorn bare:app --no-access-log`;
- component: `python -m my_component` with its defaults (JSON access log on,
  metrics on, request ids, body limit, serving limits; Hermes off, auth off),
  its log written to a file.

The ratio is the component's requests/s over the bare app's in the same round
set (median of rounds); the goal is >= 0.85x on both routes.

`--profile` also drives both ASGI apps in process (no server, no sockets) and
prints where the component's time goes, layer by layer, in microseconds of CPU
per request: each row removes one more layer from the component's stack and
the difference is that layer's cost.

Usage: python -m benchmarks.http_stack [--seconds 5] [--rounds 3] [--connections 32] [--profile]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

from .table import Ratio, render

BARE_APP = textwrap.dedent(
    """
    import json
    from typing import Any

    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel

    app = FastAPI()


    class ProcessRequest(BaseModel):
        input: Any


    @app.get("/health")
    async def health():
        return {"status": "healthy", "component": "bare", "version": "0.1.0", "port": 8000, "uptime": 1.0}


    @app.post("/api/v1/process")
    async def process(body: ProcessRequest):
        data = body.input
        if data is None or data == "" or data == [] or data == {}:
            raise HTTPException(422, "input is empty: send a non-empty JSON value")
        encoded = json.dumps(data, separators=(",", ":"), sort_keys=True)
        return {"result": {"processed_by": "bare", "kind": type(data).__name__, "size": len(encoded), "echo": data}}
    """
)

POST_SCRIPT = textwrap.dedent(
    """
    wrk.method = "POST"
    wrk.body = '{"input": {"text": "hello", "n": 1}}'
    wrk.headers["Content-Type"] = "application/json"
    """
)

ROUTES = [("GET /health", "/health", False), ("POST /api/v1/process", "/api/v1/process", True)]
SERVER_CORE, LOAD_CORE = "0", "1"


def _pinned(core: str, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", core, *command]
    return command


def component_port_free() -> int:
    """A free port the component accepts (its settings allow 8000-9999)."""
    for port in random.sample(range(8100, 9900), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8100-9899")


@contextmanager
def serving(command: list[str], workdir: Path, env: dict[str, str], port: int, log: Path) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of a server pinned to its core."""
    with log.open("ab") as out:
        server = subprocess.Popen(_pinned(SERVER_CORE, command), cwd=workdir, env=env, stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", timeout=30, process=server)
        yield base, server.pid  # taskset execs the server: same pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    seconds: int,
    connections: int,
    script: Path | None,
    pid: int | None = None,
    script_args: tuple[str, ...] = (),
) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request) of one wrk run against `url`; fails on any non-2xx."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *(["-s", str(script)] if script else []), url]
    if script_args:
        command += ["--", *script_args]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(_pinned(LOAD_CORE, command), capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    assert rate and total, output
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    assert errors is None, f"{url} answered errors under load:\n{output}"
    return float(rate.group(1)), cpu / int(total.group(1)) * 1e6


Results = dict[tuple[str, str], list[tuple[float, float]]]


def measure(seconds: int, rounds: int, connections: int) -> Results:
    """(requests/s, server CPU us/request) per (variant, route), alternating which variant goes first."""
    results: Results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        project_dir = bake(workdir)
        (workdir / "bare.py").write_text(BARE_APP)
        script = workdir / "post.lua"
        script.write_text(POST_SCRIPT)
        bare_port, component_port = free_port(), component_port_free()
        env = {
            **os.environ,
            "PYTHONPATH": f"{workdir}:{project_dir}",
            f"{DEFAULT_NAME.upper()}_PORT": str(component_port),
            f"{DEFAULT_NAME.upper()}_HERMES_ENABLED": "false",
        }
        bare = [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bare_port), "--no-access-log"]
        component = [sys.executable, "-m", DEFAULT_NAME]
        with (
            serving(bare, workdir, env, bare_port, workdir / "bare.log") as (bare_url, bare_pid),
            serving(component, project_dir, env, component_port, workdir / "component.log") as (url, pid),
        ):
            variants = [("bare", bare_url, bare_pid), ("component", url, pid)]
            for _, base, _ in variants:  # warm up both (imports, caches) before the first round
                for _, path, post in ROUTES:
                    wrk(f"{base}{path}", 1, connections, script if post else None)
            for round_index in range(rounds):
                order = variants if round_index % 2 == 0 else variants[::-1]
                for label, path, post in ROUTES:
                    for name, base, server_pid in order:
                        figures = wrk(f"{base}{path}", seconds, connections, script if post else None, server_pid)
                        results.setdefault((name, label), []).append(figures)
    return results


def comparisons(quick: bool) -> list[Ratio]:
    """Per route: component req/s over bare FastAPI req/s (goal >= 0.85x), and the same in server CPU."""
    seconds, rounds = (3, 2) if quick else (5, 3)
    return ratios(measure(seconds, rounds, 32), f"wrk -t1 -c32, {rounds}x{seconds}s")


def ratios(results: Results, load: str) -> list[Ratio]:
    rows = []
    for label, _, _ in ROUTES:
        bare = statistics.median(rate for rate, _ in results[("bare", label)])
        component = statistics.median(rate for rate, _ in results[("component", label)])
        bare_cpu = statistics.median(cpu for _, cpu in results[("bare", label)])
        component_cpu = statistics.median(cpu for _, cpu in results[("component", label)])
        rows.append(
            Ratio(
                name=f"{label} req/s ({load})",
                baseline=f"bare FastAPI {bare:,.0f} req/s",
                component=f"{component:,.0f} req/s",
                ratio=component / bare,
                goal=0.85,
            )
        )
        # Server CPU per request: the same comparison, far less sensitive to other load on the machine.
        rows.append(
            Ratio(
                name=f"{label} server CPU per request",
                baseline=f"bare FastAPI {bare_cpu:,.0f} us",
                component=f"{component_cpu:,.0f} us",
                ratio=bare_cpu / component_cpu,
                goal=0.85,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="also print the in-process per-layer breakdown")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    if args.profile:
        from .http_layers import breakdown

        print(breakdown())
        print()
    load = f"wrk -t1 -c{args.connections} -d{args.seconds}s"
    rows = ratios(measure(args.seconds, args.rounds, args.connections), load)
    title = f"Request path, component defaults vs bare FastAPI: {load}, median of {args.rounds} alternating rounds"
    print(render(rows, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
