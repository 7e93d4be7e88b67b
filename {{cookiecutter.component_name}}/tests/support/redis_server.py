"""A throwaway `redis-server` on a free loopback port, for tests of the Redis event bus."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .servers import free_port

INSTALL_HINT = (
    "redis-server is not installed, and the Redis event bus tests need a real one: "
    "install it (Debian/Ubuntu: `apt-get install -y redis-server`; macOS: `brew install redis`) "
    "or put it on PATH"
)


class RedisServerMissing(RuntimeError):
    pass


class RedisServer:
    """`with RedisServer(tmp_path) as redis: redis.url` -> `redis://127.0.0.1:<port>/0`
    (`redis://:<password>@127.0.0.1:<port>/0` with `password=`: the server then requires it)."""

    def __init__(
        self, directory: Path, port: int | None = None, appendonly: bool = False, password: str | None = None
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        # appendonly: what was acknowledged survives a restart (the fault test restarts it).
        self.appendonly = appendonly
        self.password = password
        credentials = f":{password}@" if password else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing(INSTALL_HINT)
        appendonly = "yes" if self.appendonly else "no"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", appendonly]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {wait}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                sock.sendall(auth + b"PING\r\n")
                answer = b""
                while b"\r\n" not in answer or (auth and answer.count(b"\r\n") < 2):
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    answer += chunk
                return answer.endswith(b"+PONG\r\n")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
