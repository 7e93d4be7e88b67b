"""Start-up does what the first answer needs, and leaves the rest for later.

`python -m <package>` pauses the cyclic garbage collector while it imports
and builds the app, then freezes what it built and serves with the collector
on; the Hermes client loads httpx at its first call (in a thread), not when
the component starts, and the registrar's first attempt waits a moment so the
server's first answers go first. Each check of what is imported runs in a
fresh interpreter: this one (and the fork server) has long loaded everything.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from {{ cookiecutter.component_name }}.hermes.registrar import FIRST_ATTEMPT_AFTER, Registrar
from {{ cookiecutter.component_name }}.settings import Settings

from .conftest import SettingsFactory
from .support.servers import refused_port

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper()
PROJECT = Path(__file__).resolve().parents[1]


def run_fresh(code: str, cwd: Path, **env: str) -> list[str]:
    """The lines `code` prints, run by a new interpreter in `cwd` (no `.env`) importing this project."""
    path = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env, "PYTHONPATH": path},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_hermes_client_loads_httpx_at_its_first_call(tmp_path: Path) -> None:
    nothing_listens = f"http://127.0.0.1:{refused_port()}"
    lines = run_fresh(
        f"""
        import asyncio, sys
        from {PACKAGE}.hermes import AsyncHermesCalls, HermesError
        from {PACKAGE}.hermes.registrar import Registrar

        async def main():
            hermes = AsyncHermesCalls("{nothing_listens}", timeout=2)
            print("before the first call:", "httpx" in sys.modules)
            try:
                await hermes.components()
            except HermesError as exc:
                print("first call:", exc.kind, "refused" if exc.refused else "not refused")
            print("after it:", "httpx" in sys.modules)
            await hermes.aclose()

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert lines == ["before the first call: False", "first call: unavailable refused", "after it: True"]


def test_python_m_builds_the_app_with_the_collector_paused_then_serves_with_it_on(tmp_path: Path) -> None:
    lines = run_fresh(
        f"""
        import gc
        from {PACKAGE} import __main__, serve

        build = serve.ready_server

        def ready_server(settings):
            print("building, collector on:", gc.isenabled())
            return build(settings)

        def run(server):  # where the server would start serving: look, and exit instead
            print("serving, collector on:", gc.isenabled(), "- start-up frozen:", gc.get_freeze_count() > 1000)
            return 0

        serve.ready_server, serve.run = ready_server, run
        print("exit code:", __main__.main([]))
        """,
        tmp_path,
        **{f"{PREFIX}_HERMES_ENABLED": "false"},
    )
    assert lines == [
        "building, collector on: False",
        "serving, collector on: True - start-up frozen: True",
        "exit code: 0",
    ]


def test_the_collector_stays_off_after_start_up_when_it_was_off_before(tmp_path: Path) -> None:
    lines = run_fresh(
        f"""
        import gc
        from {PACKAGE}.__main__ import collector_paused

        gc.disable()
        with collector_paused():
            pass
        print("collector on:", gc.isenabled())
        """,
        tmp_path,
    )
    assert lines == ["collector on: False"]


def metric_names(tmp_path: Path, setup: str) -> set[str]:
    """The names in the Prometheus registry of a fresh interpreter, once `setup` has run."""
    report = "from prometheus_client import REGISTRY\nprint(*sorted(metric.name for metric in REGISTRY.collect()))"
    lines = run_fresh(textwrap.dedent(setup) + report, tmp_path, **{f"{PREFIX}_HERMES_ENABLED": "false"})
    return set(lines[-1].split())


def test_start_up_registers_every_metric_the_package_defines(tmp_path: Path) -> None:
    """A module start-up leaves for later must not leave its metrics out of `/metrics` until then."""
    started = metric_names(tmp_path, f"from {PACKAGE}.app import create_app\ncreate_app()\n")
    every_module = f"""
        import importlib, pkgutil, {PACKAGE}
        for module in pkgutil.walk_packages({PACKAGE}.__path__, "{PACKAGE}."):
            if module.name != "{PACKAGE}.__main__":
                importlib.import_module(module.name)
        """
    defined = metric_names(tmp_path, every_module)
    assert "integration_requests" in defined  # the client package's, among them
    assert defined - started == set()


def test_the_app_starts_and_stops_without_the_http_client_stack(tmp_path: Path) -> None:
    """Start-up leaves httpx to the first call out (to Hermes, or to a peer through `Peers`), and a
    component that never called out does not load it to close pools it never opened."""
    lines = run_fresh(
        f"""
        import asyncio, sys
        from {PACKAGE}.app import create_app

        async def main():
            app = create_app()
            async with app.router.lifespan_context(app):
                print("started, httpx loaded:", "httpx" in sys.modules)
            print("stopped, httpx loaded:", "httpx" in sys.modules)

        asyncio.run(main())
        """,
        tmp_path,
        **{f"{PREFIX}_HERMES_ENABLED": "false"},
    )
    assert lines[-2:] == ["started, httpx loaded: False", "stopped, httpx loaded: False"]


def test_building_the_app_leaves_pydantic_v1_unloaded_and_fastapi_still_refuses_v1_models(tmp_path: Path) -> None:
    """FastAPI imports `pydantic.v1` only to refuse v1 models; `api/pydantic_v1_check.py` skips that
    while no v1 model can exist, and leaves the refusal to FastAPI once `pydantic.v1` is loaded."""
    lines = run_fresh(
        f"""
        import sys, warnings
        from fastapi import FastAPI
        from fastapi.exceptions import PydanticV1NotSupportedError
        from {PACKAGE}.app import create_app

        create_app()
        print("built, pydantic.v1 loaded:", "pydantic.v1" in sys.modules)
        warnings.simplefilter("ignore")
        from pydantic import v1

        class Old(v1.BaseModel):
            name: str

        try:

            @FastAPI().post("/old")
            def old(body: Old) -> None:
                pass
        except PydanticV1NotSupportedError:
            print("a v1 model is refused")
        """,
        tmp_path,
        **{f"{PREFIX}_HERMES_ENABLED": "false"},
    )
    assert lines == ["built, pydantic.v1 loaded: False", "a v1 model is refused"]


async def registrar_plan(settings: Settings) -> tuple[str, float | None, bool]:
    """(state, seconds until the next attempt as /health shows it, httpx loaded) just after `start()`."""
    built: list[bool] = []

    def endpoints() -> list[dict[str, object]]:
        built.append(True)
        return []

    async with Registrar(settings, endpoints=endpoints) as registrar:
        await asyncio.sleep(0)  # the registration loop's first turn
        detail = registrar.report().detail
        planned = detail["next_attempt"]
        ahead = (datetime.fromisoformat(str(planned)) - datetime.now(UTC)).total_seconds() if planned else None
        return str(detail["state"]), ahead, bool(built)


async def test_the_first_registration_attempt_leaves_the_first_answers_to_the_server(
    make_settings: SettingsFactory,
) -> None:
    """Registering builds the OpenAPI document and loads httpx, CPU work that would compete with the
    server's first answers: the first attempt is planned a moment after start-up, not run at once."""
    nothing_listens = f"http://127.0.0.1:{refused_port()}"
    settings = make_settings(hermes_enabled="true", hermes_url=nothing_listens, event_bus="memory")
    state, ahead, built = await registrar_plan(settings)
    assert (state, built) == ("starting", False)
    assert ahead is not None and 0 < ahead <= FIRST_ATTEMPT_AFTER


async def test_a_required_hermes_is_tried_at_once(make_settings: SettingsFactory) -> None:
    """Start-up waits for a required Hermes: there a pause would only make it longer."""
    nothing_listens = f"http://127.0.0.1:{refused_port()}"
    settings = make_settings(
        hermes_enabled="true", hermes_required="true", hermes_url=nothing_listens, event_bus="memory"
    )
    state, ahead, _ = await registrar_plan(settings)
    assert (state, ahead) == ("starting", None)  # attempting already: no attempt planned for later
