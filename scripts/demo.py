"""`make demo`: bake the default component into build/, install it, and run it
beside a local Hermes so it registers and heartbeats. Ctrl-C stops both."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NAME = "my_component"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"demo: {url} did not answer within {seconds:.0f}s")


def main() -> int:
    shutil.rmtree(BUILD / NAME, ignore_errors=True)
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(BUILD)))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(project), "-c", str(ROOT / "constraints.txt")],
        check=True,
    )
    hermes_port = 8001 if port_is_free(8001) else free_port()
    env = {
        **os.environ,
        "HERMES_URL": f"http://127.0.0.1:{hermes_port}",
        f"{NAME.upper()}_HEARTBEAT_INTERVAL": "5",
    }
    # Its own session: Ctrl-C reaches the component, and Hermes stays up to see it unregister.
    hermes = subprocess.Popen(
        [sys.executable, "-m", f"{NAME}.testing.hermes", "--port", str(hermes_port)], env=env, start_new_session=True
    )
    try:
        wait_for(f"http://127.0.0.1:{hermes_port}/api/components")
        base = "http://127.0.0.1:8020"
        print(
            f"\nLocal Hermes:   http://127.0.0.1:{hermes_port}/api/components\n"
            f"Component:      {base}/health\n"
            f"API docs:       {base}/api/v1/docs\n"
            f"Events (SSE):   {base}/events\n"
            f"WebSocket:      ws://127.0.0.1:8020/ws\n"
            f"Metrics:        {base}/metrics\n"
            f"Project:        {project}\n"
            "Ctrl-C stops both.\n",
            flush=True,
        )
        component = subprocess.Popen([sys.executable, "-m", NAME], env=env, cwd=project)
        try:
            return component.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the whole group; wait for a clean stop.
            return component.wait(timeout=30)
    finally:
        if hermes.poll() is None:
            hermes.send_signal(signal.SIGINT)
            try:
                hermes.wait(timeout=10)
            except subprocess.TimeoutExpired:
                hermes.kill()


if __name__ == "__main__":
    sys.exit(main())
