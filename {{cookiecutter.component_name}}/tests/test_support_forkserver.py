"""The fork server (`support/forkserver.py`) starts `python -m` processes that behave as if started from a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .support.forkserver import ForkServer, popen_python, run_python, shared_server
from .support.waiting import eventually

PROBE = """
import json, os, sys
names = sorted(name for name in vars(sys.modules["__main__"]) if not name.startswith("__"))
seen = {"argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(), "probe": os.environ.get("PROBE")}
seen |= {"name": __name__, "spec": __spec__.name, "main_names": names, "stdin": sys.stdin.read()}
print(json.dumps(seen))
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def test_a_forked_launch_runs_the_module_as_python_m_does(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    env = {**os.environ, "PROBE": "42"}
    forked = run_python(["-m", "probe", "a", "b"], env=env, cwd=tmp_path)
    command = [sys.executable, "-m", "probe", "a", "b"]
    real = subprocess.run(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert (forked.returncode, forked.stderr) == (real.returncode, real.stderr) == (3, "to stderr\n")
    assert json.loads(forked.stdout) == json.loads(real.stdout)
    assert json.loads(forked.stdout)["probe"] == "42"


def test_a_signal_ends_a_forked_process_as_it_ends_a_started_one(tmp_path: Path) -> None:
    (tmp_path / "waiter.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    log = tmp_path / "waiter.log"
    child = popen_python(["-m", "waiter"], cwd=tmp_path, stdout=log)
    eventually(lambda: "ready" in log.read_text(), what="the module runs")
    assert child.poll() is None
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) == -signal.SIGTERM  # as `subprocess.Popen` reports it


def test_a_shared_server_answers_each_connection_and_ends_what_a_closed_one_started(tmp_path: Path) -> None:
    """The one server the xdist workers share: each worker hears of its own children only, and a
    worker that goes away takes its children with it, as with a server of its own."""
    (tmp_path / "waiter.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    (tmp_path / "quick.py").write_text("raise SystemExit(5)\n")
    env, cwd = dict(os.environ), str(tmp_path)
    waiter_log, quick_log = str(tmp_path / "waiter.log"), str(tmp_path / "quick.log")
    # A socket's path must be short (108 bytes): not under a test's scratch directory.
    with tempfile.TemporaryDirectory(prefix="forkserver-") as directory, shared_server(Path(directory)) as address:
        one, two = ForkServer(address=address), ForkServer(address=address)
        try:
            waiter = one.spawn(["-m", "waiter"], env, cwd, waiter_log, waiter_log)
            quick = two.spawn(["-m", "quick"], env, cwd, quick_log, quick_log)
            assert quick.wait(timeout=10) == 5
            eventually(lambda: "ready" in Path(waiter_log).read_text(), what="the waiter runs")
            assert waiter.poll() is None
        finally:
            one.close()  # as a worker that exits
        eventually(lambda: not Path(f"/proc/{waiter.pid}").exists(), what="the closed connection's child is gone")
        two.close()
