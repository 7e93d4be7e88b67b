"""Settings follow Tekton's environment conventions and fail loudly when wrong."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from {{ cookiecutter.component_name }}.settings import Settings, SettingsError, env_name, load_settings

from .support.forkserver import run_python, startup_key

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = "{{ cookiecutter.component_name | upper }}_"
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from defaults: no inherited Tekton variables, no `.env`."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith((PREFIX, "TEKTON_", "HERMES_")):
            monkeypatch.delenv(name)


def test_port_comes_from_the_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}PORT", "8123")
    settings = load_settings()
    assert settings.port == 8123
    assert settings.ai_port == 45123


def test_ai_port_follows_the_tekton_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}PORT", "8105")
    monkeypatch.setenv("TEKTON_PORT_BASE", "8100")
    monkeypatch.setenv("TEKTON_AI_PORT_BASE", "46000")
    assert load_settings().ai_port == 46005


@pytest.mark.parametrize(
    "url", ["http://hermes.local:9001", "http://hermes.local:9001/", "http://hermes.local:9001/api"]
)
def test_hermes_url_is_accepted_with_or_without_api(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HERMES_URL", url)
    assert load_settings().hermes_base_url == "http://hermes.local:9001"


def test_hermes_address_falls_back_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().hermes_base_url == "http://localhost:8001"
    monkeypatch.setenv("TEKTON_HOST", "tekton.local")
    assert load_settings().hermes_base_url == "http://tekton.local:8001"
    monkeypatch.setenv("HERMES_HOST", "registry.local")
    monkeypatch.setenv("HERMES_PORT", "9999")
    assert load_settings().hermes_base_url == "http://registry.local:9999"


def test_advertised_url_prefers_public_url_then_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}PORT", "8123")
    assert load_settings().base_url == "http://localhost:8123"
    monkeypatch.setenv("TEKTON_HOST", "tekton.local")
    assert load_settings().base_url == "http://tekton.local:8123"
    monkeypatch.setenv(f"{PREFIX}HOST", "me.local")
    assert load_settings().base_url == "http://me.local:8123"
    monkeypatch.setenv(f"{PREFIX}PUBLIC_URL", "https://me.example/")
    assert load_settings().base_url == "https://me.example"


def test_instance_id_makes_the_component_id_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().component_id == "{{ cookiecutter.component_name }}"
    monkeypatch.setenv(f"{PREFIX}INSTANCE_ID", "b")
    assert load_settings().component_id == "{{ cookiecutter.component_name }}-b"


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}DEPENDENCIES", "hermes, Engram ,,rhetor")
    assert load_settings().dependencies == ["hermes", "engram", "rhetor"]


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{PREFIX}PORT=8765\n")
    assert load_settings().port == 8765


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "70000"),
        ("PORT", "eighty"),
        ("HEARTBEAT_INTERVAL", "0"),
        ("HERMES_ENABLED", "maybe"),
        ("PUBLIC_URL", "me.example"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_invalid_value_names_the_variable_and_value(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(f"{PREFIX}{variable}", value)
    with pytest.raises(SettingsError, match=re.escape(f"{PREFIX}{variable}={value!r}")):
        load_settings()


def test_invalid_shared_variable_is_named_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERMES_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="HERMES_PORT='not-a-port'"):
        load_settings()


def test_python_m_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    # Nothing else of this run's environment but the interpreter's own start-up variables (PYTHON*,
    # locale), so that the fork server already running serves the launch instead of a new one.
    env = {**dict(startup_key(os.environ)), "PATH": "", f"{PREFIX}PORT": "70000", "PYTHONPATH": str(PROJECT)}
    result = run_python(["-m", PACKAGE], env=env, timeout=60)
    assert result.returncode == 2
    assert f"{PREFIX}PORT=70000" in result.stderr.replace("'", "")
    assert "Traceback" not in result.stderr


def test_env_example_documents_every_setting() -> None:
    documented = (PROJECT / ".env.example").read_text()
    missing = [env_name(field) for field in Settings.model_fields if env_name(field) not in documented]
    assert missing == []
