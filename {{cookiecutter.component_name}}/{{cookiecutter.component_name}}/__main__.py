"""`python -m <package>`: serve on the configured host and port.

`python -m <package> doctor` checks the configuration and the Tekton
services around it.
"""

from __future__ import annotations

import argparse
import sys

from .app import STARTUP_REFUSALS
from .doctor import run_doctor
from .serve import serve
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
        return serve(settings)
    except STARTUP_REFUSALS as exc:  # refused before serving (e.g. `WEB_CONCURRENCY=2` with the memory bus)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
