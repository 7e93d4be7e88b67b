"""`python -m <package> doctor`: is this component ready to run among its Tekton peers?

Checks the settings, the port, whether Hermes answers and accepts a
registration (a throwaway id, registered then unregistered), and lists what
Hermes knows. Exits non-zero when something is wrong.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any, TextIO

import httpx

from .hermes.calls import HermesCalls
from .hermes.protocol import HermesError, field
from .hermes.registration import registration_body
from .security.policy import auth_report
from .settings import Settings, env_name


class Doctor:
    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.settings = settings
        self.out = out
        self.problems = 0

    def ok(self, message: str) -> None:
        print(f"  ok    {message}", file=self.out)

    def warn(self, message: str) -> None:
        print(f"  warn  {message}", file=self.out)

    def fail(self, message: str, fix: str) -> None:
        self.problems += 1
        print(f"  FAIL  {message}\n        fix: {fix}", file=self.out)

    def run(self) -> int:
        s = self.settings
        print(f"{s.component_name} doctor", file=self.out)
        self.ok(
            f"settings: port {s.port} (AI port {s.ai_port}), advertised as {s.base_url}, component id {s.component_id}"
        )
        self.check_port()
        self.check_auth()
        if not s.hermes_enabled:
            self.warn(f"Hermes is disabled ({env_name('hermes_enabled')}=false): peers will not find this component")
        else:
            with HermesCalls(s.hermes_base_url, timeout=s.hermes_timeout) as hermes:
                records = self.check_hermes(hermes)
                if records is not None:
                    self.check_registration(hermes)
                    self.list_known(records)
        print("all good" if not self.problems else f"{self.problems} problem(s) found", file=self.out)
        return 1 if self.problems else 0

    def check_port(self) -> None:
        s = self.settings
        with socket.socket() as sock:
            try:
                sock.bind((s.bind_host, s.port))
            except OSError as exc:
                if self._serves_us():
                    self.ok(f"port {s.port} on {s.bind_host}: served by a running {s.component_name}")
                    return
                self.fail(
                    f"port {s.port} on {s.bind_host} is not free ({exc.strerror})",
                    f"stop what listens there, or set {env_name('port')} to a free port",
                )
                return
        self.ok(f"port {s.port} on {s.bind_host} is free")

    def check_auth(self) -> None:
        status, message, fix = auth_report(self.settings)
        if status == "fail":
            self.fail(message, fix)
        else:
            (self.warn if status == "warn" else self.ok)(f"{message}; {fix}" if fix else message)

    def _serves_us(self) -> bool:
        host = "127.0.0.1" if self.settings.bind_host in ("0.0.0.0", "::") else self.settings.bind_host
        try:
            body = httpx.get(f"http://{host}:{self.settings.port}/health", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return False
        return isinstance(body, dict) and body.get("component") == self.settings.component_name.lower()

    def check_hermes(self, hermes: HermesCalls) -> list[dict[str, Any]] | None:
        try:
            records = hermes.components()
        except HermesError as exc:
            self.fail(
                f"Hermes: {exc}",
                f"start Hermes, or set {env_name('hermes_url')} (or HERMES_HOST/HERMES_PORT) to where it runs",
            )
            return None
        self.ok(f"Hermes answers at {hermes.shown_url} ({len(records)} component(s) registered)")
        return records

    def check_registration(self, hermes: HermesCalls) -> None:
        """Register a throwaway id and remove it again, so the real entry is left alone."""
        throwaway = f"{self.settings.component_id}-doctor-{os.getpid()}"
        body = {**registration_body(self.settings), "component_id": throwaway}
        try:
            component_id, token, _ = hermes.register(body)
            hermes.unregister(component_id, token)
        except HermesError as exc:
            self.fail(f"registration: {exc}", "check that the service at the Hermes URL is Tekton's Hermes")
            return
        self.ok("registration works (registered and unregistered a throwaway id)")

    def list_known(self, records: list[dict[str, Any]]) -> None:
        if not records:
            print("  Hermes knows no components yet", file=self.out)
            return
        print("  Hermes knows:", file=self.out)
        now = time.time()
        for record in sorted(records, key=lambda r: str(field(r, "name"))):
            beat = field(record, "last_heartbeat")
            age = f"{now - float(beat):.0f}s ago" if isinstance(beat, int | float) else "never"
            mine = "  <- this component" if field(record, "component_id") == self.settings.component_id else ""
            print(
                f"    {field(record, 'name')!s:<16} {field(record, 'component_id')!s:<28} "
                f"{field(record, 'endpoint')!s:<28} heartbeat {age}{mine}",
                file=self.out,
            )


def run_doctor(settings: Settings, out: TextIO | None = None) -> int:
    return Doctor(settings, out or sys.stdout).run()
