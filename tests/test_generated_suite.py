"""The generated project's own test suite, in its own fresh virtualenv.

The project is installed the way its README says (`pip install -e '.[dev]'`,
here pinned by constraints.txt), so a missing dependency or a packaging
mistake fails here even when this repo's environment happens to have it.
"""

from __future__ import annotations

import re
import shutil

import pytest

from .baking import SuiteRun

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("event_bus", ["memory", "redis"])
def test_generated_suite_passes_in_its_own_virtualenv(generated_suites: dict[str, SuiteRun], event_bus: str) -> None:
    if event_bus == "redis" and shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH; the redis bake's tests need it: apt-get install redis-server")
    run = generated_suites[event_bus]
    assert run.returncode == 0, run.report()
    # Skips would stand in for a feature: a missing service must fail instead.
    summary = run.output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), run.report()
    assert "skipped" not in summary, run.report()


@pytest.mark.parametrize("event_bus", ["memory", "redis"])
def test_no_password_reaches_a_log_or_a_response(generated_suites: dict[str, SuiteRun], event_bus: str) -> None:
    """Both suites ran with `HERMES_URL=http://tekton:<password>@...` and (Redis) a
    redis-server requiring a password in `<NAME>_REDIS_URL`: every log line, every
    recorded HTTP response and the whole output of the run are free of it."""
    run = generated_suites[event_bus]
    places = dict(run.texts())
    # The scan really ran: its plugin recorded the responses the tests received.
    assert any(where.endswith("responses.txt") and "200 GET /health" in text for where, text in places.items())
    leaks = [
        f"{where}: {line.strip()[:300]}"
        for where, text in places.items()
        for line in text.splitlines()
        if run.password in line
    ]
    assert leaks == [], "\n".join(leaks[:40])
