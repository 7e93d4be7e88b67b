"""`python -m <package>`: serve on the configured host and port.

`python -m <package> doctor` checks the configuration and the Tekton
services around it.

Start-up (importing FastAPI, pydantic and this package, building the app)
makes a few hundred thousand objects that live as long as the process, and
next to no garbage; the cyclic garbage collector would traverse them again
and again while they are made, about a tenth of the time to the first
answer. So it is paused until the app is built, and what exists then is
frozen: later collections skip it too.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside; on the way out, every object alive is frozen (`gc.freeze`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "doctor"], help="what to do (default: serve)"
    )
    args = parser.parse_args(argv)
    with collector_paused():
        # Imported here, with the collector paused: they are most of start-up.
        from .app import STARTUP_REFUSALS
        from .serve import ready_server, run
        from .settings import load_settings

        try:
            settings = load_settings()
            server = ready_server(settings) if args.command == "serve" else None
        except STARTUP_REFUSALS as exc:  # bad settings, or refused before serving (`WEB_CONCURRENCY=2`, memory bus)
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if server is None:
        from .doctor import run_doctor

        return run_doctor(settings)
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
