"""Starting with and without keys (DESIGN §10), doctor's advice, and logs that never show a secret or token."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from {{ cookiecutter.component_name }}.doctor import run_doctor

from .conftest import SettingsFactory
from .support.auth import Key, keys_value, signed_headers, token
from .support.event_clients import ws_url
from .support.forkserver import run_python
from .support.servers import ComponentProcess, free_port

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper()
PROJECT = Path(__file__).resolve().parents[1]


def start_refused(tmp_path: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run `python -m <package>` until it gives up; its exit code and everything it printed."""
    full = {
        **os.environ,
        f"{PREFIX}_HERMES_ENABLED": "false",
        f"{PREFIX}_PORT": str(free_port(8000, 9999)),
        "PYTHONPATH": str(PROJECT),  # run from an empty directory: no .env of the project's
        **env,
    }
    done = run_python(["-m", PACKAGE], env=full, cwd=tmp_path, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_a_short_secret_is_refused_naming_the_variable_not_the_secret(tmp_path: Path) -> None:
    secret = "short-but-secret-0123456789"
    code, output = start_refused(tmp_path, {"TEKTON_AUTH_KEYS": f"{Key('good').entry},old={secret}"})
    assert code != 0
    assert "TEKTON_AUTH_KEYS entry 2" in output and "at least 32" in output
    assert secret not in output
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].count("TEKTON_AUTH_KEYS")  # the reason is the last line


def test_a_malformed_entry_is_refused_without_repeating_it(tmp_path: Path) -> None:
    secret = Key("x").secret
    code, output = start_refused(tmp_path, {"TEKTON_AUTH_KEYS": secret})  # a bare secret: no kid=
    assert code != 0
    assert "TEKTON_AUTH_KEYS entry 1 has no '='" in output
    assert secret not in output


def test_no_keys_off_loopback_refuses_with_the_fix_named(tmp_path: Path) -> None:
    code, output = start_refused(tmp_path, {"TEKTON_AUTH_KEYS": "", f"{PREFIX}_BIND_HOST": "0.0.0.0"})
    assert code != 0
    assert "TEKTON_AUTH_KEYS" in output and f"{PREFIX}_AUTH_REQUIRED=false" in output
    assert "Traceback" not in output


def test_auth_required_without_keys_refuses_even_on_loopback(tmp_path: Path) -> None:
    code, output = start_refused(tmp_path, {"TEKTON_AUTH_KEYS": "", f"{PREFIX}_AUTH_REQUIRED": "true"})
    assert code != 0
    assert f"{PREFIX}_AUTH_REQUIRED=true but TEKTON_AUTH_KEYS is not set" in output


def test_no_keys_on_loopback_starts_open_with_one_warning(tmp_path: Path) -> None:
    env = {"TEKTON_AUTH_KEYS": "", f"{PREFIX}_HERMES_ENABLED": "false"}
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path) as component:
        health = httpx.get(f"{component.base_url}/health").json()
        assert health["auth"] == "disabled"
        assert httpx.post(f"{component.base_url}/api/v1/process", json={"input": 1}).status_code == 200
    assert component.log.count("authentication is disabled") == 1


def test_auth_required_false_runs_open_off_loopback(tmp_path: Path) -> None:
    env = {"TEKTON_AUTH_KEYS": "", f"{PREFIX}_AUTH_REQUIRED": "false", f"{PREFIX}_HERMES_ENABLED": "false"}
    component = ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, extra_args=("--host", "0.0.0.0"))
    with component:
        assert httpx.get(f"{component.base_url}/health").json()["auth"] == "disabled"


def test_doctor_says_how_to_turn_auth_on_and_never_shows_a_secret(make_settings: SettingsFactory) -> None:
    out = io.StringIO()
    run_doctor(make_settings(auth_keys=None), out)
    assert "authentication is off" in out.getvalue() and "set TEKTON_AUTH_KEYS=" in out.getvalue()
    key = Key("k2026")
    out = io.StringIO()
    run_doctor(make_settings(auth_keys=keys_value(key)), out)
    assert "authentication is on: key ids k2026" in out.getvalue()
    assert key.secret not in out.getvalue()


async def test_the_log_shows_no_secret_and_no_token(tmp_path: Path) -> None:
    """Under uvicorn's CLI (access log on): query-string tokens, signed calls and refusals, then grep the log."""
    key = Key("logged")
    env = {"TEKTON_AUTH_KEYS": keys_value(key), f"{PREFIX}_HERMES_ENABLED": "false"}
    used: list[str] = []
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path) as component:
        url = component.base_url
        for _ in range(2):
            used.append(token(key, PACKAGE))
            async with connect(f"{ws_url(url)}?access_token={used[-1]}") as ws:
                await ws.send('{"type": "ping"}')
                await ws.recv()
            used.append(token(key, PACKAGE))
            async with httpx.AsyncClient(base_url=url) as http:
                async with http.stream("GET", f"/events?access_token={used[-1]}&types=x.*") as stream:
                    assert stream.status_code == 200
                # Used twice: refused (replayed), and that line is logged too.
                assert (await http.get(f"/events?access_token={used[-1]}")).status_code == 401
                bearer = token(key, PACKAGE)
                used.append(bearer)
                body = b'{"input": 1}'
                headers = signed_headers(key, "POST", "/api/v1/process", body, PACKAGE, bearer=bearer)
                assert (await http.post("/api/v1/process", content=body, headers=headers)).status_code == 200
                bad = signed_headers(key, "POST", "/api/v1/process", body, "someone_else")
                used.append(bad["Authorization"].removeprefix("Bearer "))
                assert (await http.post("/api/v1/process", content=body, headers=bad)).status_code == 401
    log = component.log
    assert "access_token=[redacted]" in log  # uvicorn's lines were written, with the token taken out
    assert "WebSocket" in log
    assert key.secret not in log
    for value in used:
        assert value not in log
        assert value.split(".")[2] not in log  # not even the token's signature part
