"""A free loopback port for a component, a local Hermes or a benchmark server."""

from __future__ import annotations

import random
import socket

from .template import TEKTON_COMPONENTS

# Components take 8000-9999; 8000-8099 is where Tekton's own components live.
PORT_RANGE = range(8100, 10000)
ATTEMPTS = 50


def free_port() -> int:
    """A loopback port in 8100-9999, not a Tekton port, that nothing holds right now."""
    reserved = set(TEKTON_COMPONENTS.values())
    candidates = [port for port in PORT_RANGE if port not in reserved]
    for port in random.sample(candidates, ATTEMPTS):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1} after {ATTEMPTS} tries")
