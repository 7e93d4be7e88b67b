"""How long `make demo` takes from a fresh clone with empty package caches, until the
component answers `GET /health` with 200; then stops it.

    python3 -m scripts.time_demo [--source DIR]

The clone is of the committed HEAD of DIR (default: this repository) into a
temporary directory; pip's and uv's caches point at empty temporary
directories. Uses only the standard library (runs before any venv exists).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = re.compile(rb"Component: +(http://[0-9.:]+)/health")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def time_demo(source: Path, timeout: float = 300.0) -> float:
    with tempfile.TemporaryDirectory(prefix="time-demo-") as tmp:
        clone, caches = Path(tmp) / "clone", Path(tmp) / "caches"
        subprocess.run(["git", "clone", "--quiet", str(source), str(clone)], check=True)
        env = {**os.environ, "PIP_CACHE_DIR": str(caches / "pip"), "UV_CACHE_DIR": str(caches / "uv")}
        log = Path(tmp) / "demo.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            demo = subprocess.Popen(
                ["make", "demo"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            url: str | None = None
            while time.perf_counter() - started < timeout:
                if demo.poll() is not None:
                    raise RuntimeError(f"make demo exited with {demo.returncode}:\n{log.read_text()[-3000:]}")
                if url is None and (found := COMPONENT.search(log.read_bytes())):
                    url = found.group(1).decode()
                if url and healthy(url):
                    return time.perf_counter() - started
                time.sleep(0.1)
            raise TimeoutError(f"no /health 200 within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        finally:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C, as a user stops it: the demo then stops its Hermes
            demo.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=ROOT, help="the repository to clone (its committed HEAD)")
    args = parser.parse_args()
    print(f"make demo, fresh clone, empty caches -> /health 200: {time_demo(args.source):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
