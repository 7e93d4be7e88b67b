"""The cost of authentication: `POST /api/v1/process` with auth on against auth off (DESIGN §10).

Bakes the default component and serves it twice, each `python -m my_component`
with its defaults (JSON access log on, Hermes off) pinned to core 0, loaded in
alternating rounds by `wrk -t1 -c32` pinned to core 1:

- auth off: no `TEKTON_AUTH_KEYS` (bound to loopback, so it starts open);
- auth on: `TEKTON_AUTH_KEYS` set; every request carries a bearer token and a
  request signature with its own nonce (pre-signed before each run, so wrk
  replays nothing and the server checks a fresh nonce every time: token,
  body hash, HMAC, replay cache, and a signed answer).

Both servers get the very same signed requests through the same wrk Lua
`request()` hook (the auth-off server ignores the headers), so the load
generator's own cost per request is the same for both: returning a distinct
~700-byte request each time costs wrk enough to leave the server short of
work, and a baseline sent one unsigned request over and over would be
measured against a busier server. The ratio is auth-on requests/s over
auth-off requests/s, taken in each round (the two runs back to back) and the
median over rounds reported; the goal is >= 0.9x; server CPU per request is
shown the same way. For context, a third row has the auth-off server sent one
unsigned request over and over.

Usage: python -m benchmarks.auth_cost [--seconds 3] [--rounds 11] [--connections 32]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tooling import DEFAULT_NAME, bake

from .http_stack import component_port_free, serving, wrk
from .table import Ratio, render

PATH = "/api/v1/process"
BODY = json.dumps({"input": {"text": "hello", "n": 1}}).encode()
KID = "bench"
SECRET = secrets.token_urlsafe(32)
# Enough pre-signed requests for this many per second of load; more would be replays (401s, reported).
MAX_RATE = 8000

# Reads one raw request per line (CRLF written as the four characters \r\n) and sends them in order.
LUA = """
local requests = {}
init = function(args)
  for line in io.lines(args[1]) do
    requests[#requests + 1] = line:gsub("\\\\r\\\\n", "\\r\\n")
  end
end
local i = 0
request = function()
  i = i + 1
  return requests[i] or requests[#requests]
end
"""


def _token(audience: str) -> str:
    import jwt  # the bake's runtime dependency, installed with it

    now = int(time.time())
    claims = {"iss": "bench", "aud": audience, "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(12)}
    return str(jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": KID}))


def raw_requests(port: int, count: int, signed: bool) -> list[str]:
    """`count` raw HTTP requests; signed ones each with a fresh nonce (DESIGN §10's canonical text)."""
    head = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    head.append(f"Content-Length: {len(BODY)}")
    if not signed:
        return ["\\r\\n".join([*head, "", BODY.decode()])] * count
    token, stamp, digest = _token(DEFAULT_NAME), str(int(time.time())), hashlib.sha256(BODY).hexdigest()
    lines = []
    for _ in range(count):
        nonce = secrets.token_urlsafe(24)
        canonical = "\n".join(["v1", "POST", PATH, DEFAULT_NAME, stamp, nonce, digest]).encode()
        signature = hmac.new(SECRET.encode(), canonical, hashlib.sha256).hexdigest()
        auth = [
            f"Authorization: Bearer {token}",
            f"X-Tekton-Key-Id: {KID}",
            f"X-Tekton-Timestamp: {stamp}",
            f"X-Tekton-Nonce: {nonce}",
            f"X-Signature: v1={signature}",
        ]
        lines.append("\\r\\n".join([*head, *auth, "", BODY.decode()]))
    return lines


Results = dict[str, list[tuple[float, float]]]


def measure(seconds: int, rounds: int, connections: int) -> Results:
    results: Results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        project_dir = bake(workdir)
        script = workdir / "requests.lua"
        script.write_text(LUA)
        name = DEFAULT_NAME.upper()
        ports = {"off": component_port_free(), "on": component_port_free()}
        base_env = {
            **os.environ,
            "PYTHONPATH": str(project_dir),
            f"{name}_HERMES_ENABLED": "false",
            "TEKTON_AUTH_KEYS": "",
        }
        envs = {
            "off": {**base_env, f"{name}_PORT": str(ports["off"])},
            "on": {
                **base_env,
                f"{name}_PORT": str(ports["on"]),
                "TEKTON_AUTH_KEYS": f"{KID}={SECRET}",
                f"{name}_AUTH_REPLAY_CACHE_SIZE": str(MAX_RATE * (seconds + 2) * (rounds + 1)),
            },
        }
        command = [sys.executable, "-m", DEFAULT_NAME]
        with (
            serving(command, project_dir, envs["off"], ports["off"], workdir / "off.log") as (off_url, off_pid),
            serving(command, project_dir, envs["on"], ports["on"], workdir / "on.log") as (on_url, on_pid),
        ):
            variants = [
                ("off", off_url, off_pid, ports["off"]),
                ("on", on_url, on_pid, ports["on"]),
                ("off, signed headers ignored", off_url, off_pid, ports["off"]),
            ]

            def run(variant: tuple[str, str, int, int], length: int) -> tuple[float, float]:
                label, base, pid, port = variant
                data = workdir / "requests.txt"
                signed = label != "off"
                data.write_text("\n".join(raw_requests(port, MAX_RATE * (length + 1), signed)) + "\n")
                # A non-2xx answer fails the run (raise MAX_RATE if those are replays).
                return wrk(f"{base}{PATH}", length, connections, script, pid, (str(data),))

            for variant in variants:  # warm up both (imports, caches) before the first round
                run(variant, 1)
            for round_index in range(rounds):
                for variant in variants if round_index % 2 == 0 else variants[::-1]:
                    results.setdefault(variant[0], []).append(run(variant, seconds))
    return results


def ratios(results: Results, load: str) -> list[Ratio]:
    """Auth on against auth off sent the very same signed requests (wrk's cost per request is the same).

    The ratios are the medians of each round's own ratio: a round's two runs are
    back to back, so a neighbour's burst on this shared machine weighs on one
    round's pair, not on one side of the comparison. The figures are medians."""

    def median(label: str, index: int) -> float:
        return statistics.median(figures[index] for figures in results[label])

    def paired(index: int, faster: str, slower: str) -> float:
        """Median over rounds of faster/slower: for req/s, on/off; for CPU per request, off/on."""
        pairs = zip(results[faster], results[slower], strict=True)
        return statistics.median(fast[index] / slow[index] for fast, slow in pairs)

    same = "off, signed headers ignored"
    off, on, plain = median(same, 0), median("on", 0), median("off", 0)
    off_cpu, on_cpu, plain_cpu = median(same, 1), median("on", 1), median("off", 1)
    return [
        Ratio(
            f"POST {PATH} req/s, auth on ({load})",
            f"auth off {off:,.0f} req/s",
            f"{on:,.0f} req/s",
            paired(0, "on", same),
            0.9,
        ),
        Ratio(
            f"POST {PATH} server CPU per request, auth on",
            f"auth off {off_cpu:,.0f} us",
            f"{on_cpu:,.0f} us",
            paired(1, same, "on"),
            0.9,
        ),
        Ratio(
            f"POST {PATH} req/s, auth off sent one unsigned request over and over (context)",
            f"auth off, the signed requests {off:,.0f} req/s",
            f"{plain:,.0f} req/s ({plain_cpu:,.0f} us CPU each)",
            paired(0, "off", same),
        ),
    ]


def comparisons(quick: bool) -> list[Ratio]:
    seconds, rounds = (3, 2) if quick else (3, 11)
    return ratios(measure(seconds, rounds, 32), f"wrk -t1 -c32, {rounds}x{seconds}s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    load = f"wrk -t1 -c{args.connections} -d{args.seconds}s"
    rows = ratios(measure(args.seconds, args.rounds, args.connections), load)
    title = f"Authentication cost: auth on vs off, {load}, medians of {args.rounds} alternating rounds' own ratios"
    print(render(rows, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
