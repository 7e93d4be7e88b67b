"""`python -m {{ cookiecutter.component_name }} doctor`: clear output, non-zero exit when something is wrong."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from {{ cookiecutter.component_name }}.doctor import run_doctor
from {{ cookiecutter.component_name }}.settings import Settings

from .support.forkserver import run_python
from .support.hermes import LocalHermes
from .support.servers import free_port, refused_port

NAME = "{{ cookiecutter.component_name }}"
PREFIX = "{{ cookiecutter.component_name | upper }}_"

SettingsFactory = Callable[..., Settings]


def doctor(make_settings: SettingsFactory, hermes_url: str, port: int | None = None) -> tuple[int, str]:
    settings = make_settings(
        hermes_enabled=True, hermes_url=hermes_url, hermes_timeout=2.0, port=port or free_port(8000, 9999)
    )
    out = io.StringIO()
    return run_doctor(settings, out), out.getvalue()


def test_doctor_command_passes_against_a_working_hermes(local_hermes: LocalHermes, tmp_path: Path) -> None:
    httpx.post(
        f"{local_hermes.url}/api/register",
        json={"component_id": "rhetor", "name": "rhetor", "version": "1", "type": "x", "endpoint": "http://h:8003"},
    ).raise_for_status()
    env = {**os.environ, "HERMES_URL": local_hermes.url, f"{PREFIX}PORT": str(free_port(8000, 9999))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])  # cwd is a scratch dir
    result = run_python(["-m", NAME, "doctor"], env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "registration works" in result.stdout
    assert "rhetor" in result.stdout  # what Hermes knows
    assert local_hermes.component_ids() == {"rhetor"}  # the throwaway registration is gone


def test_doctor_fails_clearly_when_hermes_is_down(make_settings: SettingsFactory) -> None:
    code, out = doctor(make_settings, f"http://127.0.0.1:{refused_port()}")
    assert code == 1
    assert "FAIL  Hermes" in out
    assert "fix: start Hermes, or set HERMES_URL" in out


def test_doctor_fails_when_hermes_answers_badly(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    local_hermes.fail("html")
    code, out = doctor(make_settings, local_hermes.url)
    assert code == 1
    assert "not JSON" in out


def test_doctor_fails_when_registration_is_refused(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    local_hermes.fail("500", path="/api/register")
    code, out = doctor(make_settings, local_hermes.url)
    assert code == 1
    assert "FAIL  registration" in out


def test_doctor_fails_when_the_port_is_taken(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port(8000, 9999)))
        taken.listen()
        code, out = doctor(make_settings, local_hermes.url, port=taken.getsockname()[1])
    assert code == 1
    assert "is not free" in out
    assert f"{PREFIX}PORT" in out


def test_doctor_never_prints_the_password_in_hermes_url(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    with_password = local_hermes.url.replace("http://", "http://tekton:s3cret-pass@")
    code, out = doctor(make_settings, with_password)
    assert code == 0, out
    assert "Hermes answers at http://tekton:***@127.0.0.1" in out
    local_hermes.stop()
    code, out_down = doctor(make_settings, with_password)
    assert code == 1
    assert "tekton:***@" in out_down
    assert "s3cret" not in out + out_down
