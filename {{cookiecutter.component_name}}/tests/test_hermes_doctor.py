"""`python -m {{ cookiecutter.component_name }} doctor`: clear output, non-zero exit when something is wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from {{ cookiecutter.component_name }}.testing import LocalHermes, free_port

NAME = "{{ cookiecutter.component_name }}"
PREFIX = "{{ cookiecutter.component_name | upper }}_"


def doctor(tmp_path: Path, hermes_url: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERMES_URL": hermes_url,
        f"{PREFIX}PORT": str(port or free_port(8000, 9999)),
        f"{PREFIX}HERMES_TIMEOUT": "2",
    }
    # The project on sys.path, a scratch directory as cwd (no `.env` picked up).
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", NAME, "doctor"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_doctor_passes_against_a_working_hermes(local_hermes: LocalHermes, tmp_path: Path) -> None:
    httpx.post(
        f"{local_hermes.url}/api/register",
        json={"component_id": "rhetor", "name": "rhetor", "version": "1", "type": "x", "endpoint": "http://h:8003"},
    ).raise_for_status()
    result = doctor(tmp_path, local_hermes.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "registration works" in result.stdout
    assert "rhetor" in result.stdout  # what Hermes knows
    assert local_hermes.component_ids() == {"rhetor"}  # the throwaway registration is gone


def test_doctor_fails_clearly_when_hermes_is_down(tmp_path: Path) -> None:
    result = doctor(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "FAIL  Hermes" in result.stdout
    assert f"{PREFIX}HERMES_URL" in result.stdout or "HERMES_URL" in result.stdout


def test_doctor_fails_when_hermes_answers_badly(local_hermes: LocalHermes, tmp_path: Path) -> None:
    local_hermes.fail("html")
    result = doctor(tmp_path, local_hermes.url)
    assert result.returncode == 1
    assert "not JSON" in result.stdout


def test_doctor_fails_when_the_port_is_taken(local_hermes: LocalHermes, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port(8000, 9999)))
        taken.listen()
        result = doctor(tmp_path, local_hermes.url, port=taken.getsockname()[1])
    assert result.returncode == 1
    assert "is not free" in result.stdout
    assert f"{PREFIX}PORT" in result.stdout
