"""`python -m <package>`: serve on the configured host and port.

`python -m <package> doctor` checks the configuration and the Tekton
services around it.
"""

from __future__ import annotations

import argparse
import signal
import sys

import uvicorn

from .doctor import run_doctor
from .settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "doctor"], help="what to do (default: serve)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "doctor":
        return run_doctor(settings)
    try:
        uvicorn.run(
            f"{__package__}.app:create_app",
            factory=True,
            host=settings.bind_host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=10,
        )
    except KeyboardInterrupt:
        # uvicorn shut down cleanly, then re-raised Ctrl-C: exit as shells expect, without a trace.
        return 128 + signal.SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
