"""Authentication (DESIGN §10): the checks `RequestMiddleware` runs before routing, deny by default.

Every HTTP request and WebSocket handshake outside the open list needs a
bearer token; every HTTP request except the `/ws` and `/events` handshakes
also needs a request signature, checked after the body is buffered (under
`<NAME>_MAX_BODY_BYTES`). Refusals answer 401 in the usual error shape with a
`reason`, counted in `auth_failures_total{reason}`, and the app never sees
them. Responses to signed requests are signed (event streams excepted).
"""

from __future__ import annotations

import logging
import re
import time
from types import TracebackType
from urllib.parse import parse_qsl, urlencode

from prometheus_client import Counter
from starlette.types import Message, Receive, Scope, Send

from ..security import signing
from ..security.keys import KEY_ID
from ..security.policy import AuthPolicy, auth_policy, origin_of
from ..security.reasons import REASONS, AuthFailure
from ..security.redaction import install_query_token_filter
from ..security.replay import (
    MemoryReplayStore,
    ReplayCacheFull,
    ReplayCacheUnavailable,
    ReplayStore,
    open_store,
)
from ..security.tokens import LEEWAY, TokenVerifier, VerifiedToken
from ..settings import Settings, env_name
from .errors import send_error

AUTH_FAILURES = Counter("auth_failures_total", "Requests refused by authentication, by reason", ["reason"])
for _reason in REASONS:
    AUTH_FAILURES.labels(_reason)  # every reason shows, at 0, before the first refusal

_AUTHORIZATION = b"authorization"
_KEY_ID = signing.KEY_ID_HEADER.lower().encode()
_TIMESTAMP = signing.TIMESTAMP_HEADER.lower().encode()
_NONCE = signing.NONCE_HEADER.lower().encode()
_SIGNATURE = signing.SIGNATURE_HEADER.lower().encode()
# The headers the checks read: `RequestMiddleware` collects them in its one pass over the request's headers.
AUTH_HEADERS = frozenset({_AUTHORIZATION, _KEY_ID, _TIMESTAMP, _NONCE, _SIGNATURE})
CLOSE_POLICY = 1008
# The signature headers' forms, for their bytes as sent (`signing` has the same for text).
_NONCE_FORM = re.compile(signing.NONCE.pattern.encode())
_SIGNATURE_FORM = re.compile(signing.SIGNATURE.pattern.encode())


def open_replay_store(settings: Settings) -> ReplayStore:
    """Shared through Redis with the Redis bus (every worker and replica), else this process's memory.

    The Redis key sits beside the event stream: whoever shares the stream shares the cache."""
    key = f"{settings.event_stream_key or settings.component_name + ':events'}:auth-seen"
    return open_store(settings.event_bus, settings.auth_replay_cache_size, settings.redis_url, key)


def _bearer(value: bytes | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


def _query_token(scope: Scope) -> tuple[str | None, bytes]:
    """The `access_token` query parameter, and the query string without it (what the app gets)."""
    raw: bytes = scope.get("query_string", b"")
    if b"access_token=" not in raw:
        return None, raw
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = next((value for name, value in pairs if name == "access_token"), None)
    rest = urlencode([(name, value) for name, value in pairs if name != "access_token"])
    return token, rest.encode("latin-1")


class AuthGate:
    """The policy, the replay cache and the checks, in the order DESIGN §10 gives them.

    The lifespan opens it (and refuses bad settings before serving). Each
    check raises `AuthFailure` (answered 401 by `refuse`) or a replay-cache
    error (answered 503 by `unavailable`); header values are the raw bytes
    of the scope.
    """

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.settings = settings
        self.logger = logger
        self._policy: AuthPolicy | None = None
        self._store: ReplayStore | None = None
        self.verifier = TokenVerifier(settings.component_name)

    @property
    def policy(self) -> AuthPolicy:
        if self._policy is None:  # an app served without its lifespan
            self._policy = auth_policy(self.settings)
        return self._policy

    @property
    def store(self) -> ReplayStore:
        if self._store is None:
            self._store = MemoryReplayStore(self.settings.auth_replay_cache_size)
        return self._store

    async def __aenter__(self) -> AuthGate:
        self._policy = auth_policy(self.settings)  # SettingsError: refused, the variable named
        install_query_token_filter()
        if self._policy.warning:
            self.logger.warning(self._policy.warning)
        elif self._policy.keys is not None:
            self._store = open_replay_store(self.settings)
            kids = [key.kid for key in self._policy.keys.keys]
            self.logger.info("authentication is on", extra={"key_ids": kids, "signing_key": kids[0]})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.aclose()

    def token(self, scope: Scope, headers: dict[bytes, bytes], handshake: bool) -> tuple[VerifiedToken, bytes | None]:
        """The verified token, and for a handshake whose token came in the query, the query without it."""
        keys = self.policy.keys
        assert keys is not None
        header = headers.get(_AUTHORIZATION)
        if header is not None:
            known = self.verifier.known(header, keys)  # the usual: a token seen before, by its header as sent
            if known is not None:
                return known, None
        token = _bearer(header)
        query: bytes | None = None
        if token is None and handshake:
            token, query = _query_token(scope)
        if token is None:
            raise AuthFailure(
                "missing_token", "this route needs 'Authorization: Bearer <token>' (a JWT signed with a deployment key)"
            )
        if not token:
            raise AuthFailure("bad_token", "the Authorization header must be 'Bearer <token>'")
        return self.verifier.verify(token, keys, seen_as=header), query

    async def use_once(self, verified: VerifiedToken) -> None:
        """A query-string token is single-use: its `jti` is remembered until it expires."""
        if not await self.store.remember("j:" + verified.jti, verified.expires_at + LEEWAY):
            raise AuthFailure("replayed", "this access_token was already used: mint a fresh one per connection")

    async def signature(self, scope: Scope, headers: dict[bytes, bytes], verified: VerifiedToken, body: bytes) -> bytes:
        """The request's nonce, once its signature holds and it was not seen before.

        Checked on the headers' bytes as sent. The usual request (well-formed
        headers naming the token's key) goes the shortest way; for any other,
        `_header_refusal` finds what is wrong in DESIGN §10's order."""
        key = verified.key
        timestamp, nonce, presented = headers.get(_TIMESTAMP), headers.get(_NONCE), headers.get(_SIGNATURE)
        if (
            headers.get(_KEY_ID) != key.kid_bytes
            or timestamp is None
            or nonce is None
            or presented is None
            or len(timestamp) > 12
            or not timestamp.isdigit()
            or _NONCE_FORM.fullmatch(nonce) is None
        ):
            raise self._header_refusal(headers)
        stamp = int(timestamp)
        skew = stamp - time.time()
        if abs(skew) > signing.WINDOW:
            raise AuthFailure(
                "stale_timestamp",
                f"X-Tekton-Timestamp is {abs(skew):.0f} s from this server's clock (at most {signing.WINDOW} s)",
            )
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        canonical = signing.request_canonical(
            scope["method"].encode(), target, self.policy.audience, timestamp, nonce, signing.body_hash(body)
        )
        if not signing.matches(key, canonical, presented):
            if not _SIGNATURE_FORM.fullmatch(presented):
                raise AuthFailure("bad_signature", f"missing or malformed: {signing.SIGNATURE_HEADER}")
            raise AuthFailure("bad_signature", "X-Signature does not match this request (method, path, body, ...)")
        store, seen_key, until = self.store, "n:" + nonce.decode(), stamp + signing.WINDOW
        # The memory store answers without a coroutine: this runs on every request.
        fresh = (
            store.remember_now(seen_key, until)
            if isinstance(store, MemoryReplayStore)
            else await store.remember(seen_key, until)
        )
        if not fresh:
            raise AuthFailure("replayed", "this request (its X-Tekton-Nonce) was already received")
        return nonce

    def _header_refusal(self, headers: dict[bytes, bytes]) -> AuthFailure:
        """Why signature headers that `signature` turned away are refused: missing, malformed, or naming
        another key than the token's."""
        fields = [
            (signing.KEY_ID_HEADER, headers.get(_KEY_ID), KEY_ID),
            (signing.TIMESTAMP_HEADER, headers.get(_TIMESTAMP), signing.TIMESTAMP),
            (signing.NONCE_HEADER, headers.get(_NONCE), signing.NONCE),
            (signing.SIGNATURE_HEADER, headers.get(_SIGNATURE), signing.SIGNATURE),
        ]
        if all(value is None for _, value, _ in fields):
            return AuthFailure(
                "missing_signature",
                "signed requests carry X-Tekton-Key-Id, X-Tekton-Timestamp, X-Tekton-Nonce and X-Signature",
            )
        problems = [name for name, value, form in fields if value is None or not form.fullmatch(_text(value))]
        if problems:
            return AuthFailure("bad_signature", f"missing or malformed: {', '.join(problems)}")
        kid = _text(headers.get(_KEY_ID))
        keys = self.policy.keys
        if keys is None or keys.get(kid) is None:
            return AuthFailure("unknown_key", f"key id {kid!r} is not among this component's keys")
        return AuthFailure("bad_signature", "X-Tekton-Key-Id must name the key that signed the token")

    async def refuse(self, scope: Scope, send: Send, failure: AuthFailure) -> None:
        AUTH_FAILURES.labels(failure.reason).inc()
        self.logger.info(
            "request refused", extra={"reason": failure.reason, "path": scope["path"], "method": scope.get("method")}
        )
        challenge = f'Bearer error="invalid_token", error_description="{failure.reason}"'.encode()
        headers = [(b"www-authenticate", challenge)]
        await send_error(send, 401, "unauthorized", failure.message, headers=headers, reason=failure.reason)

    async def unavailable(self, send: Send, exc: Exception) -> None:
        self.logger.warning("replay cache refused a request", extra={"error": f"{type(exc).__name__}: {exc}"})
        setting = env_name("auth_replay_cache_size")
        message = f"the replay cache is full or unreachable; retry shortly (or raise {setting})"
        await send_error(send, 503, "service_unavailable", message, headers=[(b"retry-after", b"5")])

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> Scope | None:
        """The scope to hand the app (without a query-string token), or None once the handshake is refused."""
        policy = self.policy
        origin = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"), None)
        if origin is not None and origin_of(origin) not in policy.allowed_origins:
            self.logger.info("websocket refused: origin not allowed", extra={"path": scope["path"]})
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_POLICY})  # before accept: HTTP 403
            return None
        if policy.keys is None or scope["path"] in policy.open_paths:
            return scope
        headers = {name: value for name, value in scope["headers"] if name == _AUTHORIZATION}
        try:
            verified, query = self.token(scope, headers, handshake=True)
            if query is not None:
                await self.use_once(verified)
        except AuthFailure as failure:
            AUTH_FAILURES.labels(failure.reason).inc()
            self.logger.info("websocket refused", extra={"reason": failure.reason, "path": scope["path"]})
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": failure.reason})
            return None
        except (ReplayCacheFull, ReplayCacheUnavailable):
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1013, "reason": "try_again_later"})
            return None
        return {**scope, "query_string": query} if query is not None else scope


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("latin-1")


def is_event_stream(start: Message) -> bool:
    for name, value in start.get("headers", ()):
        if name == b"content-type":
            return bool(value.startswith(b"text/event-stream"))
    return False


def sign_answer(start: Message, body: bytes, verified: VerifiedToken, nonce: bytes) -> None:
    """Adds the answer's signature headers to its (held) start message, once the whole body is known.

    The start's `headers` must be a list of the caller's own (`RequestMiddleware` builds one)."""
    timestamp, signature = signing.response_signature(verified.key, start["status"], nonce, body)
    start["headers"] += ((b"x-tekton-timestamp", timestamp), (b"x-signature", signature))
