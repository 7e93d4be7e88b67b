"""`make demo`: bake the default component into build/, install it, and run it
beside a local Hermes so it registers and heartbeats. Ctrl-C stops both.

Run from the repository root as `python -m scripts.demo`. Only cookiecutter
is installed beforehand: the component's dependencies arrive with the bake,
so nothing here imports them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tooling import DEFAULT_NAME, OPTIONS, ROOT, TEKTON_COMPONENTS, bake, free_port, wait_for_http

BUILD = ROOT / "build"
HERMES_PORT = TEKTON_COMPONENTS["hermes"]
COMPONENT_PORT = int(OPTIONS["component_port"])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def install(project: Path) -> None:
    """The bake and its runtime dependencies, at the versions the tests use: with uv
    when `make` could put it in this venv (many times faster), else with pip."""
    uv = Path(sys.executable).with_name("uv")
    installer = (
        [str(uv), "pip", "install", "--python", sys.executable]
        if uv.exists()
        else [sys.executable, "-m", "pip", "install"]
    )
    constraints = project / "constraints.txt"
    subprocess.run([*installer, "--quiet", "-e", str(project), "-c", str(constraints)], check=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, uvicorn's quiet stop (SIGINT would end in a KeyboardInterrupt traceback)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def banner(project: Path, hermes_port: int, component_port: int) -> str:
    base = f"http://127.0.0.1:{component_port}"
    return (
        f"\nLocal Hermes:   http://127.0.0.1:{hermes_port}/api/components\n"
        f"Component:      {base}/health\n"
        f"API docs:       {base}/api/v1/docs\n"
        f"Events (SSE):   {base}/events\n"
        f"WebSocket:      ws://127.0.0.1:{component_port}/ws\n"
        f"Metrics:        {base}/metrics\n"
        f"Project:        {project}\n"
        "Ctrl-C stops both.\n"
    )


def run_component(project: Path, env: dict[str, str]) -> int:
    """`python -m <package>` in the foreground until it exits or Ctrl-C stops it."""
    component = subprocess.Popen([sys.executable, "-m", DEFAULT_NAME], env=env, cwd=project)
    try:
        return component.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the whole group; wait for a clean stop.
        return component.wait(timeout=30)


def main() -> int:
    # SIGTERM (a supervisor, `kill`) ends the demo like Ctrl-C: the local Hermes, in its own session, is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    shutil.rmtree(BUILD / DEFAULT_NAME, ignore_errors=True)
    project = bake(BUILD)
    install(project)
    # Hermes' and the component's usual ports when free, so the printed URLs are the familiar ones.
    hermes_port = HERMES_PORT if port_is_free(HERMES_PORT) else free_port()
    component_port = COMPONENT_PORT if port_is_free(COMPONENT_PORT) else free_port()
    prefix = DEFAULT_NAME.upper()
    env = {
        **os.environ,
        "HERMES_URL": f"http://127.0.0.1:{hermes_port}",
        f"{prefix}_PORT": str(component_port),
        f"{prefix}_HEARTBEAT_INTERVAL": "5",
    }
    # The local Hermes lives beside the bake's tests (never in its wheel): run it from the bake.
    # Its own session: Ctrl-C reaches the component only, and Hermes stays up to see it unregister.
    hermes = subprocess.Popen(
        [sys.executable, "-m", "tests.support.hermes", "--port", str(hermes_port)],
        cwd=project,
        env=env,
        start_new_session=True,
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{hermes_port}/api/components", timeout=20, process=hermes)
        except (RuntimeError, TimeoutError) as error:
            print(f"demo: the local Hermes did not start: {error}", file=sys.stderr)
            return 1
        print(banner(project, hermes_port, component_port), flush=True)
        return run_component(project, env)
    finally:
        stop(hermes)


if __name__ == "__main__":
    sys.exit(main())
