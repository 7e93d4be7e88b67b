"""`python -m <module>` as a real process, started in milliseconds instead of a second.

Most of a component's start is importing FastAPI, pydantic and uvicorn (~1 s of CPU), and the
suite starts the component as a process dozens of times. A fork server (one per pytest worker and
interpreter setup) has imported those libraries once and forks a child per launch; the child takes
the launch's environment, working directory, stdio and arguments, then runs the module exactly as
`python -m` does (`runpy._run_module_as_main`), so the component imports itself, reads its settings,
handles signals and exits as it would from a shell. Only libraries that read no environment at
import time are preloaded. `run_python` stands in for `subprocess.run([sys.executable, "-m", ...])`
and `popen_python` for `subprocess.Popen`.

Under xdist, the process that starts the workers starts one server for all of them (`shared_server`,
~0.8 s of CPU each saved); a launch whose interpreter variables differ gets a server of the worker's own.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# Imported once by the server (each child finds them loaded); none reads the environment on import.
PRELOAD = (
    "fastapi",
    "fastapi.openapi.models",
    "pydantic",
    "pydantic_settings",
    "starlette.applications",
    "httpx",
    "anyio",
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_impl",
    "uvicorn.loops.uvloop",
{%- if cookiecutter.event_bus == "redis" %}
    "redis.asyncio",
{%- endif %}
)
# Variables the interpreter reads while starting (stdio, locale, flags): a launch whose values
# differ gets a server started with its own. PYTHONPATH is applied per child instead.
STARTUP_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
# Where the shared server listens, and the start-up variables it was started with (JSON).
SHARED_SERVER = "TESTS_FORK_SERVER"


def startup_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            (name, value)
            for name, value in env.items()
            if (name.startswith("PYTHON") and name != "PYTHONPATH") or name in STARTUP_VARIABLES
        )
    )


class ForkedProcess:
    """What the tests use of `subprocess.Popen`, for a child of the fork server."""

    def __init__(self, server: ForkServer, pid: int, args: Sequence[str]) -> None:
        self.server, self.pid, self.args = server, pid, list(args)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid, timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # as Popen: never signal a pid that may have been reused
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """A connection to one server process: requests and exit reports are JSON lines on a socket.

    With `env`, a server of this process's own (on a socket pair); with `address`, the shared one."""

    def __init__(self, env: Mapping[str, str] | None = None, address: str | None = None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if address is None:
            self.connection, theirs = socket.socketpair()
            command = [sys.executable, __file__, str(theirs.fileno())]
            quiet = subprocess.DEVNULL
            self.process = subprocess.Popen(
                command, env=dict(env or os.environ), stdin=quiet, stdout=quiet, pass_fds=(theirs.fileno(),)
            )
            theirs.close()
        else:
            self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.connection.connect(address)
        self.changed = threading.Condition()
        self.pids: dict[int, int] = {}  # request id -> pid
        self.exits: dict[int, int] = {}  # pid -> exit code
        self.next_id = 0
        self.reader = threading.Thread(target=self.read_events, name="forkserver-events", daemon=True)
        self.reader.start()

    def read_events(self) -> None:
        with self.connection.makefile("rb") as events:
            for line in events:
                event = json.loads(line)
                with self.changed:
                    if "id" in event:
                        self.pids[event["id"]] = event["pid"]
                    else:
                        self.exits[event["pid"]] = event["code"]
                    self.changed.notify_all()
        with self.changed:  # the server is gone: nothing will report again
            self.exits.setdefault(-1, -1)
            self.changed.notify_all()

    def spawn(self, args: Sequence[str], env: Mapping[str, str], cwd: str, stdout: str, stderr: str) -> ForkedProcess:
        with self.changed:
            request_id, self.next_id = self.next_id, self.next_id + 1
            request = {"id": request_id, "args": list(args), "env": dict(env), "cwd": cwd}
            request |= {"stdout": stdout, "stderr": stderr}
            self.connection.sendall(json.dumps(request).encode() + b"\n")
            if not self.changed.wait_for(lambda: request_id in self.pids or -1 in self.exits, timeout=30):
                raise RuntimeError("the fork server did not start the process")
            if request_id not in self.pids:
                raise RuntimeError(f"the fork server exited with {self.process and self.process.poll()}")
            return ForkedProcess(self, self.pids.pop(request_id), [sys.executable, *args])

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.exits or -1 in self.exits, timeout=timeout)
            # A server that died took its children with it (SIGKILL).
            return self.exits.get(pid, -signal.SIGKILL if -1 in self.exits else None)

    def close(self) -> None:
        # The server kills what it still runs for this connection (and a server of our own exits).
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        if self.process is None:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)


_servers: dict[tuple[tuple[str, str], ...], ForkServer] = {}
_servers_lock = threading.Lock()


def _server_for(env: Mapping[str, str]) -> ForkServer:
    key = startup_key(env)
    with _servers_lock:
        if key not in _servers:
            if not _servers:
                atexit.register(_close_all)
            shared = json.loads(os.environ.get(SHARED_SERVER, "{}"))
            if shared and key == tuple(tuple(pair) for pair in shared["key"]):
                _servers[key] = ForkServer(address=shared["address"])
            else:
                ours = dict(startup_key(os.environ))
                _servers[key] = ForkServer({**{k: v for k, v in os.environ.items() if k not in ours}, **dict(key)})
        return _servers[key]


@contextlib.contextmanager
def shared_server(directory: Path) -> Iterator[str]:
    """A server for any process that connects to the address yielded (`ForkServer(address=...)`);
    at the end it stops, and kills what it still runs."""
    address = str(directory / "forkserver.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(address)
        listener.listen(64)  # connections wait here while the server imports
        control, theirs = socket.socketpair()
        fds = (theirs.fileno(), listener.fileno())
        command = [sys.executable, __file__, str(theirs.fileno()), str(listener.fileno())]
        quiet = subprocess.DEVNULL
        process = subprocess.Popen(command, stdin=quiet, stdout=quiet, pass_fds=fds)
        theirs.close()
    try:
        yield address
    finally:
        control.close()  # the server kills what it still runs, and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def shared_server_variable(address: str) -> str:
    """The value of `SHARED_SERVER` by which the processes this one starts (the xdist workers) use
    the server at `address` for their launches, when these have this process's start-up variables."""
    return json.dumps({"address": address, "key": startup_key(os.environ)})


def _close_all() -> None:
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


def popen_python(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdout: Path,
    stderr: Path | None = None,
) -> ForkedProcess:
    """`subprocess.Popen([sys.executable, "-m", module, ...])` with output to files (`stderr`
    defaults to `stdout`) and standard input from /dev/null."""
    if len(args) < 2 or args[0] != "-m":
        raise ValueError(f"only `-m <module> ...` runs in the fork server, not {args}")
    env = dict(os.environ if env is None else env)
    return _server_for(env).spawn(args, env, str(cwd or os.getcwd()), str(stdout), str(stderr or stdout))


def run_python(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([sys.executable, "-m", ...], capture_output=True, text=True, timeout=...)`."""
    with tempfile.TemporaryDirectory(prefix="forkserver-") as directory:
        out, err = Path(directory, "stdout"), Path(directory, "stderr")
        child = popen_python(args, env=env, cwd=cwd, stdout=out, stderr=err)
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
        text = {"errors": "replace"}
        return subprocess.CompletedProcess([sys.executable, *args], code, out.read_text(**text), err.read_text(**text))


# The server side: `python forkserver.py <control socket fd> [<listening socket fd>]`.


def _serve(control: int, listener: socket.socket | None) -> dict[str, Any] | None:
    """Fork a child per request and report each child's exit to the connection that asked for it;
    returns the request in a child. Requests come on `control` and on each connection `listener`
    accepts; a connection that closes takes its children with it, and `control` closing ends all."""
    for module in PRELOAD:
        with contextlib.suppress(ImportError):  # an optional server part this environment lacks
            __import__(module)
    connections: dict[int, bytes] = {control: b""}  # fd -> what came of a request line so far
    accepted: dict[int, socket.socket] = {}  # kept open while their fds are in use
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (pid, connection fd)
    while True:
        watched = [*connections, *children, *([listener.fileno()] if listener else [])]
        ready, _, _ = select.select(watched, [], [])
        for fd in ready:
            if listener is not None and fd == listener.fileno():
                connection, _ = listener.accept()
                accepted[connection.fileno()] = connection
                connections[connection.fileno()] = b""
            elif fd in children:
                pid, owner = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                if owner in connections:
                    _send(owner, {"pid": pid, "code": os.waitstatus_to_exitcode(status)})
            elif fd in connections:
                chunk = os.read(fd, 1 << 20)
                if not chunk:  # the test process has gone: take its children with it
                    for pidfd, (pid, owner) in children.items():
                        if owner == fd or fd == control:
                            os.kill(pid, signal.SIGKILL)
                            children[pidfd] = (pid, -1)  # reaped later, reported to no one
                    if fd == control:
                        return None
                    del connections[fd]
                    accepted.pop(fd).close()
                    continue
                pending = connections[fd] + chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request: dict[str, Any] = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        for owned in [*accepted.values(), *([listener] if listener else [])]:
                            owned.close()  # the child's own descriptors are closed as it starts
                        return request
                    children[os.pidfd_open(pid)] = (pid, fd)
                    _send(fd, {"id": request["id"], "pid": pid})
                connections[fd] = pending


def _send(connection: int, report: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a test process that has just gone: its EOF is next
        os.write(connection, json.dumps(report).encode() + b"\n")


def _become(request: dict[str, Any]) -> None:
    """In the child: take the launch's directory, stdio, environment and arguments, and run it as `-m`."""
    os.chdir(request["cwd"])
    null = os.open(os.devnull, os.O_RDONLY)
    writing = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out = os.open(request["stdout"], writing, 0o644)
    err = out if request["stderr"] == request["stdout"] else os.open(request["stderr"], writing, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.closerange(3, 1 << 16)
    own = {os.path.abspath(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry}
    base = [entry for entry in sys.path[1:] if entry not in own]
    os.environ.clear()
    os.environ.update(request["env"])
    extra = [os.path.abspath(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [os.getcwd(), *extra, *base]  # what `python -m` starts with
    _, module, *rest = request["args"]
    sys.argv = ["-m", *rest]
    sys.orig_argv = [sys.executable, *request["args"]]
    sys.modules["__main__"] = types.ModuleType("__main__")  # a fresh `__main__`, not this script's
    import runpy

    runpy._run_module_as_main(module)  # type: ignore[attr-defined]  # the function behind `python -m`


if __name__ == "__main__":
    _listener = socket.socket(fileno=int(sys.argv[2])) if len(sys.argv) > 2 else None
    _request = _serve(int(sys.argv[1]), _listener)
    if _request is not None:
        _become(_request)  # the interpreter then exits as it would after `python -m`
