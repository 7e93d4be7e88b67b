"""Settings, read once from the environment (and `.env`) by `load_settings()`.

The component's own variables share the `<NAME>_` prefix (`MY_COMPONENT_PORT`);
Tekton's shared variables (`TEKTON_HOST`, `HERMES_URL`, ...) keep their names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .about import (
    API_VERSION,
    CAPABILITIES,
    COMPONENT_NAME,
    DEFAULT_EVENT_BUS,
    DEFAULT_PORT,
    TEKTON_PORTS,
)
from .addresses import hermes_base_url

ENV_PREFIX = f"{COMPONENT_NAME.upper()}_"

CommaList = Annotated[list[str], NoDecode]


def _shared(name: str) -> Any:
    """A Tekton-wide variable: read under its own name, not the prefix."""
    return AliasChoices(name)


class SettingsError(ValueError):
    """Invalid configuration; the message names each variable and its value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # Identity and addresses
    port: int = Field(DEFAULT_PORT, ge=8000, le=9999)
    host: str | None = None  # the host peers use to reach us
    bind_host: str = "127.0.0.1"  # where uvicorn listens; 0.0.0.0 in a container
    public_url: str | None = None  # overrides the advertised base URL
    instance_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    capabilities: CommaList = Field(default_factory=lambda: list(CAPABILITIES))
    dependencies: CommaList = Field(default_factory=lambda: ["hermes"])

    # Tekton-wide
    tekton_host: str | None = Field(None, validation_alias=_shared("TEKTON_HOST"))
    tekton_port_base: int = Field(8000, ge=1, le=65535, validation_alias=_shared("TEKTON_PORT_BASE"))
    tekton_ai_port_base: int = Field(45000, ge=1, le=65535, validation_alias=_shared("TEKTON_AI_PORT_BASE"))

    # Hermes
    hermes_url: str | None = Field(None, validation_alias=_shared("HERMES_URL"))
    hermes_host: str | None = Field(None, validation_alias=_shared("HERMES_HOST"))
    hermes_port: int = Field(TEKTON_PORTS["hermes"], ge=1, le=65535, validation_alias=_shared("HERMES_PORT"))
    hermes_enabled: bool = True
    hermes_required: bool = False
    hermes_required_timeout: float = Field(30.0, gt=0)
    hermes_timeout: float = Field(5.0, gt=0)
    heartbeat_interval: float = Field(20.0, gt=0, lt=60)
    presence_check_interval: float = Field(15.0, gt=0)  # /health's `registered` is at most this old
    register_retry_max: float = Field(30.0, gt=0)  # cap of the wait between registration attempts
    hermes_token_lifetime: float = Field(3600.0, gt=0)
    heartbeat_failures_before_reregister: int = Field(3, ge=1)
    unregister_timeout: float = Field(2.0, gt=0)
    # Hermes registrar (issue 12): a cheap TCP probe while Hermes is unreachable ends the
    # registration backoff early; with several workers (Redis bus) one holds a lease and registers.
    hermes_probe_interval: float = Field(1.0, gt=0)
    hermes_lease_ttl: float = Field(10.0, gt=0)

    # Events
    event_bus: Literal["memory", "redis"] = DEFAULT_EVENT_BUS
    redis_url: str = "redis://localhost:6379/0"
    # Event plane (/ws, /events): every subscriber's queue is bounded; a slow
    # one loses its own oldest events (counted) or is dropped after a timeout.
    event_queue_size: int = Field(1000, ge=1)  # events waiting per WebSocket or SSE client
    event_replay_size: int = Field(1000, ge=1)  # kept for SSE resume (Redis: the stream's MAXLEN)
    event_stream_key: str | None = None  # Redis stream name; default "<name>:events"
    event_ping_interval: float = Field(15.0, gt=0)  # SSE keep-alive comment every N seconds
    event_send_timeout: float = Field(10.0, gt=0)  # a client that takes longer to accept a send is dropped
    event_shutdown_grace: float = Field(2.0, ge=0)  # SSE streams get this long to end after SIGTERM
    ws_max_frame_bytes: int = Field(64 * 1024, ge=64)  # larger client frames close the socket (1009)
    ws_max_bad_frames: int = Field(20, ge=1)  # more bad frames close the socket (1008)
    ws_max_subscriptions: int = Field(100, ge=1)  # patterns per /ws connection or /events stream
    metrics_stream_interval: float = Field(1.0, gt=0)  # POST /api/v1/metrics/stream: seconds between figures

    # HTTP limits and logging
    # Seconds `/ready` answers 503 before uvicorn stops listening (python -m only).
    shutdown_drain: float = Field(0.0, ge=0, le=300)
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    max_batch_items: int = Field(1000, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True

    # Serving limits (python -m; see serve.py and the README's "Limits"): slow or silent clients cannot hold the server.
    limit_concurrency: int = Field(1000, ge=1)  # connections + requests at once; more get 503
    timeout_keep_alive: int = Field(5, ge=1)  # seconds an idle keep-alive connection stays open
    header_timeout: float = Field(10.0, gt=0)  # seconds for a request's line and headers to arrive (else 408)
    max_header_bytes: int = Field(16 * 1024, ge=1024)  # request line + headers (else 431)
    max_header_count: int = Field(100, ge=10)  # headers per request (else 431)
    max_request_line_bytes: int = Field(8 * 1024, ge=256)  # method + URL + version (else 431)

    # Authentication (issue 9, DESIGN §10; see security/): keys are Tekton-wide, the rest is ours.
    auth_keys: SecretStr | None = Field(None, validation_alias=_shared("TEKTON_AUTH_KEYS"))  # kid=secret,...
    auth_required: bool | None = None  # unset: required unless bound to loopback
    auth_open_paths: CommaList = []  # exact paths open without a token, besides §10's
    ws_allowed_origins: CommaList = []  # /ws Origins allowed besides our own
    auth_replay_cache_size: int = Field(200_000, ge=1)  # nonces remembered at once (300 s each); full -> 503

    @field_validator("auth_open_paths", "ws_allowed_origins", mode="before")
    @classmethod
    def _split_auth_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("capabilities", "dependencies", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("dependencies")
    @classmethod
    def _lowercase_names(cls, value: list[str]) -> list[str]:
        return [item.lower() for item in value]

    @field_validator("hermes_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    # Derived values: computed, never configured twice.
    @property
    def component_name(self) -> str:
        return COMPONENT_NAME

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def ai_port(self) -> int:
        """The CI specialist's port: same offset from the AI base as we are from the port base."""
        return self.tekton_ai_port_base + (self.port - self.tekton_port_base)

    @property
    def advertised_host(self) -> str:
        return self.host or self.tekton_host or "localhost"

    @property
    def base_url(self) -> str:
        """The URL peers use to reach this component, as registered with Hermes."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.advertised_host}:{self.port}"

    @property
    def component_id(self) -> str:
        """Stable across restarts, distinct per replica."""
        if self.instance_id:
            return f"{COMPONENT_NAME}-{self.instance_id}"
        return COMPONENT_NAME

    @property
    def hermes_base_url(self) -> str:
        """Hermes' root URL; `HERMES_URL` is accepted with or without a trailing `/api`."""
        return hermes_base_url(self.hermes_url, self.hermes_host, self.hermes_port, self.tekton_host)


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one message per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}={error.get('input')!r} is invalid: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None
