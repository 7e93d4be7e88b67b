"""What the component tells about its registration is true, and soon true again after Hermes' trouble.

Real servers: the component under uvicorn (in a thread, or its own process),
the local Hermes over HTTP, stopped and started on its port. Outcomes are
awaited with deadlines shorter than what the old behaviour would need, never
with sleeps.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.hermes.advertised import served_port, with_served_port

from .support.hermes import LocalHermes
from .support.servers import ComponentProcess, refused_port, running_server
from .support.waiting import eventually
from .test_hermes_registrar import NAME, PREFIX, HermesFactory, SettingsFactory, component_env, fast_settings, health


def healthy_only_ids(hermes: LocalHermes) -> set[str]:
    body = httpx.get(f"{hermes.url}/api/components", params={"healthy_only": "true"}, timeout=5).json()
    return {record["component_id"] for record in body["components"]}


def calls(hermes: LocalHermes, *paths: str) -> list[str]:
    """The successful calls to `paths`, in the order they were answered."""
    with hermes.registry.lock:
        return [call.path for call in hermes.registry.calls if call.path in paths and call.status == 200]


def registered(url: str) -> bool:
    return bool(health(url)["registered_with_hermes"])


def next_registration_in(url: str) -> float:
    """Seconds until the registrar's next registration attempt, as /health tells."""
    body = health(url)
    moment, now = body["hermes"]["next_attempt"], body["timestamp"]
    return (datetime.fromisoformat(moment) - datetime.fromisoformat(now)).total_seconds()


# -- 1. the presence check runs on its own timer ----------------------------------------


def test_back_in_the_listing_within_a_presence_interval_of_a_hermes_restart(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # Heartbeats 50 s apart: a presence check that waited for a heartbeat would not run in this test.
    settings = fast_settings(make_settings, local_hermes.url, heartbeat_interval=50, presence_check_interval=0.5)
    with running_server(create_app(settings)) as url:
        eventually(lambda: registered(url))
        local_hermes.bounce(forget=True, down_for=0.5)  # a real restart: refused for a while, then amnesic
        eventually(lambda: NAME in local_hermes.component_ids(), within=10, what="registered again")
        eventually(lambda: registered(url), within=10)


def test_registered_in_health_comes_from_the_listing_not_from_heartbeats(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    settings = fast_settings(make_settings, local_hermes.url, heartbeat_interval=50, presence_check_interval=0.3)
    with running_server(create_app(settings)) as url:
        eventually(lambda: registered(url))
        # Hermes forgets us and refuses to take us back; our old token would still pass heartbeats.
        local_hermes.fail("500", path="/api/register")
        local_hermes.restart()
        eventually(lambda: not registered(url), within=10, what="/health admits the component is not listed")
        detail = health(url)["hermes"]
        assert detail["state"] == "retrying"
        assert detail["last_presence_check"] is not None
        local_hermes.heal()
        eventually(lambda: registered(url), within=10)


# -- 2. registered soon after a long outage, without hammering -------------------------


def own_stream() -> str:
    """A stream (and so, on the Redis bus, a registration lease) no earlier test's component still holds:
    a killed component's lease outlives it by most of its ttl, and only the lease holder registers."""
    return f"{NAME}-{time.monotonic_ns()}:events"


def test_registers_within_a_probe_interval_of_hermes_answering_after_a_long_outage(
    make_settings: SettingsFactory, local_hermes_factory: HermesFactory
) -> None:
    hermes = local_hermes_factory(start=False)
    settings = fast_settings(
        make_settings, hermes.url, register_retry_max=3600, hermes_probe_interval=0.2, event_stream_key=own_stream()
    )
    with running_server(create_app(settings)) as url:
        # The outage lasts until the backoff waits 2 s or more (ten probe intervals) between attempts.
        eventually(lambda: next_registration_in(url) >= 2, within=30, what="a long wait between registrations")
        # The clock is read before /health is asked: no attempt of the backoff's comes earlier than this.
        backoff_ends = time.monotonic() + next_registration_in(url)
        hermes.start()
        started = time.monotonic()
        eventually(lambda: registered(url), what="registered once Hermes answers")
    with hermes.registry.lock:
        registered_at = next(call.at for call in hermes.registry.calls if call.path == "/api/register")
    assert registered_at < backoff_ends, "registered when the backoff ran out, not when Hermes answered"
    print(f"registered {registered_at - started:.2f}s after Hermes answered, {backoff_ends - registered_at:.1f}s early")


def test_back_within_a_probe_interval_when_hermes_returns_amnesic_from_a_long_outage(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # Presence checked only every 60 s and heartbeat failures never give the registration up:
    # what brings the component back quickly is the probe the failing heartbeats started.
    settings = fast_settings(
        make_settings,
        local_hermes.url,
        heartbeat_interval=0.3,
        presence_check_interval=60,
        heartbeat_failures_before_reregister=1000,
        hermes_probe_interval=0.2,
        event_stream_key=own_stream(),
    )
    with running_server(create_app(settings)) as url:
        eventually(lambda: registered(url))
        local_hermes.stop()
        local_hermes.restart()  # it will come back having forgotten everyone
        eventually(lambda: "heartbeat" in str(health(url)["hermes"]["last_error"]), what="heartbeats fail")
        local_hermes.start()
        started = time.monotonic()
        eventually(lambda: NAME in local_hermes.component_ids(), within=20, what="registered again")
        eventually(lambda: registered(url), within=5)
    print(f"listed again {time.monotonic() - started:.2f}s after Hermes answered (presence interval 60 s)")


def test_a_hermes_that_accepts_connections_but_times_out_is_not_hammered(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # The probe connects every 0.05 s and succeeds; registrations time out. Only a change (refused,
    # then accepted) may cut the backoff short, so attempts stay as sparse as the backoff makes them.
    local_hermes.fail("hang", path="/api/register")
    settings = fast_settings(
        make_settings, local_hermes.url, register_retry_max=3600, hermes_probe_interval=0.05, hermes_timeout=0.2
    )
    with running_server(create_app(settings)) as url:
        eventually(lambda: next_registration_in(url) >= 2, within=30, what="the backoff grown to 2 s or more")
        attempts = local_hermes.registry.count("/api/register")
        local_hermes.heal()
    # Waits of 0.5, 1 and 2 s (each up to half shorter), then 2-4 s: 4 attempts (3 if the third wait
    # was 2 s exactly), one more allowed; a probe-driven retry would make dozens in that time.
    assert attempts <= 5, attempts


# -- 3. last_error is cleared by a successful registration -------------------------------


def test_last_error_is_cleared_once_registration_succeeds(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    local_hermes.fail("500", times=3, path="/api/register")
    with running_server(create_app(fast_settings(make_settings, local_hermes.url))) as url:
        eventually(lambda: local_hermes.registry.count("/api/register", 500) == 3)
        eventually(lambda: registered(url))
        detail = health(url)["hermes"]
    assert (detail["state"], detail["last_error"]) == ("registered", None)


# -- 4. a heartbeat right after every registration ---------------------------------------


def test_healthy_only_lookups_find_the_component_right_after_it_registers(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    settings = fast_settings(make_settings, local_hermes.url, heartbeat_interval=50)
    with running_server(create_app(settings)):
        eventually(lambda: NAME in healthy_only_ids(local_hermes), within=10, what="listed as healthy")
        local_hermes.restart()  # forgotten: registered again, and healthy again without waiting 50 s
        eventually(lambda: local_hermes.registry.count("/api/register", 200) >= 2)
        eventually(lambda: NAME in healthy_only_ids(local_hermes), within=10, what="healthy after re-registering")


def test_every_registration_is_followed_by_a_heartbeat(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # Renewals every half second (first, renewal, and after the restart: re-registration); heartbeats
    # are due only every 50 s, so each heartbeat seen here is one sent because a registration happened.
    settings = fast_settings(make_settings, local_hermes.url, heartbeat_interval=50, hermes_token_lifetime=1)
    with running_server(create_app(settings)):
        eventually(lambda: local_hermes.registry.count("/api/register", 200) >= 3, what="token renewals")
        local_hermes.restart()
        eventually(lambda: local_hermes.registry.count("/api/register", 200) >= 6)
        sequence = calls(local_hermes, "/api/register", "/api/heartbeat")
    registrations = [index for index, path in enumerate(sequence) if path == "/api/register"]
    for index in registrations[:-1]:
        assert sequence[index + 1] == "/api/heartbeat", sequence


# -- 6. the port served is the port registered -------------------------------------------


def test_uvicorn_port_without_the_port_setting_registers_the_port_served(
    local_hermes: LocalHermes, tmp_path: Path
) -> None:
    process = ComponentProcess(NAME, env=component_env(local_hermes.url), log_dir=tmp_path, port_env=False)
    with process:
        eventually(lambda: NAME in local_hermes.component_ids())
        record = next(r for r in local_hermes.components() if r["component_id"] == NAME)
        assert health(process.base_url)["port"] == process.port
    assert record["endpoint"].endswith(f":{process.port}")
    assert record["metadata"]["port"] == process.port


def test_a_port_setting_that_disagrees_with_uvicorn_is_named_in_a_warning(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(port=8500)
    argv = ["/venv/bin/uvicorn", f"{NAME}.app:app", "--port", "8125", "--workers", "2"]
    with caplog.at_level(logging.INFO):
        served = with_served_port(settings, logging.getLogger("test"), argv)
    assert (served.port, served.base_url) == (8125, "http://localhost:8125")
    assert f"{PREFIX}PORT=8500 but uvicorn serves port 8125" in caplog.text


@pytest.mark.parametrize(
    ("argv", "port"),
    [
        (["/venv/lib/python3/site-packages/uvicorn/__main__.py", "a.app:app", "--port=9001"], 9001),
        (["/venv/bin/uvicorn", "a.app:app"], 8000),  # uvicorn's own default
        (["/venv/bin/uvicorn", "a.app:app", "--uds", "/tmp/a.sock"], None),
        (["/venv/bin/uvicorn", "a.app:app", "--port", "0"], None),
        ([f"/venv/lib/python3/site-packages/{NAME}/__main__.py"], None),  # python -m <package>: the settings rule
        (["/venv/bin/pytest", "--port", "9001"], None),
    ],
)
def test_the_served_port_is_read_from_uvicorns_command_line(argv: list[str], port: int | None) -> None:
    assert served_port(argv) == port


# -- 8. no password from HERMES_URL anywhere ------------------------------------------------


def test_hermes_credentials_never_appear_in_logs_health_or_errors(local_hermes: LocalHermes, tmp_path: Path) -> None:
    secret_url = local_hermes.url.replace("http://", "http://tekton:s3cret-pass@")
    with ComponentProcess(NAME, env=component_env(secret_url), log_dir=tmp_path) as process:
        eventually(lambda: NAME in local_hermes.component_ids())
        shown = health(process.base_url)["hermes"]["url"]
        local_hermes.bounce(forget=True, down_for=1.0)  # refused connections: errors that name Hermes
        eventually(lambda: registered(process.base_url), what="registered again")
        body = json.dumps(health(process.base_url))
    assert shown == local_hermes.url.replace("http://", "http://tekton:***@")
    assert "s3cret" not in body
    assert "Hermes at http://tekton:***@" in process.log
    assert "s3cret" not in process.log


def test_a_required_hermes_failure_names_hermes_without_its_password(tmp_path: Path) -> None:
    url = f"http://tekton:s3cret-pass@127.0.0.1:{refused_port()}"
    env = component_env(url, hermes_required="true", hermes_required_timeout="1")
    process = ComponentProcess(NAME, env=env, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="exited"):
        process.start()
    assert "could not register with Hermes at http://tekton:***@127.0.0.1" in process.log
    assert "s3cret" not in process.log
