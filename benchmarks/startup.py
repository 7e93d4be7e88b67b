"""Start-up costs of a baked component, each against its baseline, in fresh interpreters.

- import: `import <pkg>.client`, and its first use (`<pkg>.client.ComponentClient`,
  which loads what a call needs), against `import fastapi` alone, timed inside
  the interpreter (perf_counter around the import statement, so interpreter
  start-up is not counted for either);
- first answer: `python -m <pkg>` with Hermes down (HERMES_URL points at a
  port nothing listens on) until `/health` answers 200, against a bare
  FastAPI app (`/health` returning a five-key dict) under `python -m uvicorn`
  answering its first request; timed from spawn to the first 200, polling
  every 2 ms.

Runs alternate (baseline, component, baseline, ...) and medians are compared.
`python -X importtime -c "import my_component.client"` in a bake shows where
import time goes.

Usage: python -m benchmarks.startup [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import Ratio, render
from tooling import DEFAULT_NAME, bake, free_port

IMPORT_GOAL = 0.6
FIRST_ANSWER_GOAL = 1.2

BARE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/health")
    async def health():
        return {"status": "healthy", "component": "bare", "version": "0.1.0", "uptime": 0.0, "dependencies": {}}
    """
)


def import_seconds(project: Path, module: str) -> float:
    """`import <module>` (then `<module>.<attribute>` when given as `module; module.attribute`), timed inside."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True, env=quiet_env()
    )
    return float(result.stdout.strip())


def quiet_env(**extra: str) -> dict[str, str]:
    """This environment without the component's or Tekton's settings, plus `extra`.

    Bytecode is cached as on a user's machine (the warm-up run writes it), even
    where this environment says `PYTHONDONTWRITEBYTECODE`: otherwise every run
    would compile the component's ~70 modules afresh, a cost no second start pays.
    """
    prefixes = (f"{DEFAULT_NAME.upper()}_", "HERMES_", "TEKTON_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **extra}


def answers(port: int) -> bool:
    """One `GET /health` over a raw socket (no client library to import or warm up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def first_answer_seconds(command: list[str], cwd: Path, env: dict[str, str], port: int, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{command} did not answer within {timeout}s")
            time.sleep(0.002)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def interleaved(rounds: int, baseline: Callable[[], float], component: Callable[[], float]) -> tuple[float, float]:
    """Medians of `rounds` alternating runs (one warm-up each, not counted: file caches)."""
    baseline()
    component()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        times[0].append(baseline())
        times[1].append(component())
    return statistics.median(times[0]), statistics.median(times[1])


def import_rows(project: Path, rounds: int) -> list[Ratio]:
    """`import <pkg>.client`, and what a caller pays for its first client (`ComponentClient`)."""
    client = f"{DEFAULT_NAME}.client"
    statements = {f"import {client}": client, f"from {client} import ComponentClient": f"{client}.ComponentClient"}
    rows = []
    for statement, target in statements.items():
        module, _, name = target.rpartition(".") if target.endswith("Client") else (target, "", "")
        code = f"{module}; {module}.{name}" if name else module

        def ours(code: str = code) -> float:
            return import_seconds(project, code)

        fastapi, measured = interleaved(rounds, lambda: import_seconds(project, "fastapi"), ours)
        rows.append(
            Ratio(
                f"{statement} (ms)",
                f"import fastapi {fastapi * 1000:.0f} ms",
                f"{measured * 1000:.0f} ms",
                measured / fastapi,
                IMPORT_GOAL,
                lower_is_better=True,
            )
        )
    return rows


def first_answer_row(project: Path, rounds: int) -> Ratio:
    (project / "bare_health.py").write_text(BARE_APP)
    prefix = DEFAULT_NAME.upper()

    def bare() -> float:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "bare_health:app", "--port", str(port), "--no-access-log"]
        return first_answer_seconds(command, project, quiet_env(), port)

    def component() -> float:
        port = free_port()
        env = quiet_env(**{f"{prefix}_PORT": str(port), "HERMES_URL": f"http://127.0.0.1:{free_port()}"})
        return first_answer_seconds([sys.executable, "-m", DEFAULT_NAME], project, env, port)

    baseline, ours = interleaved(rounds, bare, component)
    return Ratio(
        "python -m <pkg> to /health 200, Hermes down (ms)",
        f"bare FastAPI under uvicorn {baseline * 1000:.0f} ms",
        f"{ours * 1000:.0f} ms",
        ours / baseline,
        FIRST_ANSWER_GOAL,
        lower_is_better=True,
    )


def comparisons(quick: bool) -> list[Ratio]:
    rounds = 3 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp))
        return [*import_rows(project, rounds), first_answer_row(project, rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 9")
    args = parser.parse_args()
    print(render(comparisons(args.quick), "Start-up"))


if __name__ == "__main__":
    main()
