"""Startup refusals, as real processes: our message, last, no traceback, a non-zero exit.

Under `uvicorn --workers N` the refusing worker exits with uvicorn's "did not
start" code and uvicorn's parent process stops, but the parent's own exit code
is uvicorn's to choose (0): the tests check what the component controls.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .support.forkserver import run_python
from .support.servers import free_port

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper()
PROJECT = Path(__file__).resolve().parents[1]
LAUNCHERS = {
    "python -m": [sys.executable, "-m", PACKAGE],
    "uvicorn": [sys.executable, "-m", "uvicorn", f"{PACKAGE}.app:app", "--host", "127.0.0.1"],
}


def run(launcher: str, env: dict[str, str], tmp_path: Path, *extra: str) -> tuple[int, str]:
    port = str(free_port(8000, 9999))
    command = [*LAUNCHERS[launcher], *(["--port", port] if launcher == "uvicorn" else []), *extra]
    environment = {**os.environ, f"{PREFIX}_PORT": port, f"{PREFIX}_HERMES_ENABLED": "false", **env}
    # Run from an empty directory (no `.env`), importing the package from this project.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
    done = run_python(command[1:], env=environment, cwd=tmp_path, timeout=60)
    return done.returncode, done.stdout + done.stderr


def assert_refused_cleanly(code: int, output: str, reason: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output, output
    assert any(line.startswith("error: ") and reason in line for line in lines), output
    assert code != 0, output
    assert lines[-1].startswith("error: ") and reason in lines[-1], output


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_bad_settings_are_refused_in_one_line(launcher: str, tmp_path: Path) -> None:
    code, output = run(launcher, {f"{PREFIX}_MAX_BODY_BYTES": "lots"}, tmp_path)
    assert_refused_cleanly(code, output, f"{PREFIX}_MAX_BODY_BYTES")


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_hermes_required_but_absent_is_refused_in_one_line(launcher: str, tmp_path: Path) -> None:
    env = {
        f"{PREFIX}_HERMES_ENABLED": "true",
        f"{PREFIX}_HERMES_REQUIRED": "true",
        f"{PREFIX}_HERMES_REQUIRED_TIMEOUT": "0.5",
        "HERMES_URL": "http://127.0.0.1:9",  # nothing listens there
    }
    code, output = run(launcher, env, tmp_path)
    assert_refused_cleanly(code, output, f"{PREFIX}_HERMES_REQUIRED")


{%- if cookiecutter.event_bus == "memory" %}


# Under uvicorn with two workers: tests/test_events_http.py, which both bakes run.
def test_memory_bus_with_workers_is_refused_under_python_m(tmp_path: Path) -> None:
    code, output = run("python -m", {"WEB_CONCURRENCY": "2"}, tmp_path)
    assert_refused_cleanly(code, output, f"{PREFIX}_EVENT_BUS=memory")
{%- endif %}
