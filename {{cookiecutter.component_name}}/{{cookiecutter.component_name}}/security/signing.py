"""Request and response signatures (DESIGN §10): HMAC-SHA256 over a canonical text, `v1=<hex>`.

Request: `v1`, METHOD, raw path[?query], callee name, timestamp, nonce, sha256(body), joined by `\\n`.
Response: `v1-response`, status, the request's nonce, timestamp, sha256(body).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from binascii import hexlify

from .keys import AuthKey

KEY_ID_HEADER = "X-Tekton-Key-Id"
TIMESTAMP_HEADER = "X-Tekton-Timestamp"
NONCE_HEADER = "X-Tekton-Nonce"
SIGNATURE_HEADER = "X-Signature"
WINDOW = 300  # seconds either side of the verifier's clock

NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"v1=([0-9a-f]{64})")
EMPTY_BODY_HASH = hashlib.sha256(b"").hexdigest().encode()
# Copying a fresh SHA-256 state costs about half of `hashlib.sha256()` looking the digest up again each time.
_SHA256 = hashlib.sha256()


def body_hash(body: bytes) -> bytes:
    """The body's SHA-256, in lowercase hex."""
    if not body:
        return EMPTY_BODY_HASH
    state = _SHA256.copy()
    state.update(body)
    return hexlify(state.digest())


# The canonical texts are built from bytes: a server signs and checks what came off the wire as it came.
def request_canonical(
    method: bytes, target: bytes, audience: bytes, timestamp: bytes, nonce: bytes, digest: bytes
) -> bytes:
    """`target` is the raw path as sent, plus `?` and the raw query string when there is one."""
    return b"\n".join((b"v1", method.upper(), target, audience, timestamp, nonce, digest))


def response_canonical(status: int, nonce: bytes, timestamp: bytes, digest: bytes) -> bytes:
    return b"\n".join((b"v1-response", b"%d" % status, nonce, timestamp, digest))


def signature(key: AuthKey, canonical: bytes) -> bytes:
    """`v1=` and the HMAC-SHA256 (RFC 2104) in hex, from the key's precomputed pad states: a third of the cost."""
    inner_pad, outer_pad = key.hmac_pads
    inner = inner_pad.copy()
    inner.update(canonical)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return b"v1=" + hexlify(outer.digest())


def matches(key: AuthKey, canonical: bytes, presented: bytes) -> bool:
    return hmac.compare_digest(signature(key, canonical), presented)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]


def request_headers(key: AuthKey, method: str, target: str, audience: str, body: bytes) -> dict[str, str]:
    """The four signature headers for one request (a fresh nonce, the current time)."""
    timestamp, nonce = str(int(time.time())), new_nonce()
    canonical = request_canonical(
        method.encode(), target.encode(), audience.encode(), timestamp.encode(), nonce.encode(), body_hash(body)
    )
    return {
        KEY_ID_HEADER: key.kid,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(key, canonical).decode(),
    }


def response_signature(key: AuthKey, status: int, nonce: bytes, body: bytes) -> tuple[bytes, bytes]:
    """(`X-Tekton-Timestamp`, `X-Signature`) for an answer to the request that carried `nonce`."""
    timestamp = b"%d" % time.time()
    return timestamp, signature(key, response_canonical(status, nonce, timestamp, body_hash(body)))


def response_matches(key: AuthKey, status: int, nonce: str, timestamp: str, presented: str, body: bytes) -> bool:
    if not TIMESTAMP.fullmatch(timestamp) or not SIGNATURE.fullmatch(presented):
        return False
    canonical = response_canonical(status, nonce.encode(), timestamp.encode(), body_hash(body))
    return matches(key, canonical, presented.encode())
