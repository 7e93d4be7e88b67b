"""Waiting for a server to answer HTTP, with the standard library only
(the demo waits before the bake, and so httpx, is installed)."""

from __future__ import annotations

import http.client
import subprocess
import time
import urllib.error
import urllib.request

# Loopback only: never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether `url` answers HTTP at all (any status counts)."""
    try:
        with _OPENER.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, http.client.HTTPException):
        return False


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url` answers; raise TimeoutError after `timeout` seconds, or
    RuntimeError as soon as `process` (the server, when given) has exited."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.05)
