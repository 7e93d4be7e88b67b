"""The paths DESIGN §10 treats apart, known to servers and clients alike."""

from __future__ import annotations

# Open without a token on every component.
ALWAYS_OPEN = frozenset({"/health", "/ready", "/metrics", "/api/v1/docs", "/api/v1/openapi.json"})
# The handshakes that may carry the token as `?access_token=` (single-use) and need no signature.
HANDSHAKES = frozenset({"/ws", "/events"})
