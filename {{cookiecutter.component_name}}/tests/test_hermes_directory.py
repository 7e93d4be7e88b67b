"""The discovery directory decides without I/O: a clock and a dict stand in for time and the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from {{ cookiecutter.component_name }}.hermes import DiscoveryError, HermesError
from {{ cookiecutter.component_name }}.hermes.directory import Directory, matching

DOWN = HermesError("list components: Hermes at http://hermes did not answer (ConnectError)", "unavailable")


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(name: str, port: int, component_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"component_id": component_id or name, "name": name, "endpoint": f"http://h:{port}", **extra}


def directory(clock: Clock | None = None, environ: Mapping[str, str] | None = None, ttl: float = 30.0) -> Directory:
    return Directory(cache_ttl=ttl, hermes_url="http://hermes", environ=lambda: environ or {}, clock=clock or Clock())


def test_an_answer_is_served_from_the_cache_until_its_ttl_runs_out() -> None:
    clock = Clock()
    known = directory(clock, ttl=30)
    known.found("rhetor", [record("rhetor", 8003)])
    clock.now += 29
    assert known.cached("rhetor") is not None
    clock.now += 1
    assert known.cached("rhetor") is None


def cached_port(known: Directory, name: str) -> int | None:
    instance = known.cached(name)
    return instance.port if instance else None


def test_instances_are_handed_out_in_turn() -> None:
    known = directory()
    first = known.found("worker", [record("worker", 9002, "worker-b"), record("worker", 9001, "worker-a")])
    ports = [first.port] + [cached_port(known, "worker") for _ in range(3)]
    assert ports == [9001, 9002, 9001, 9002]


def test_the_last_known_good_answer_outlives_the_ttl_while_hermes_is_down() -> None:
    clock = Clock()
    known = directory(clock, ttl=1)
    known.found("sophia", [record("sophia", 9014)])
    clock.now += 3600
    assert known.unanswered("sophia", DOWN).port == 9014


def test_a_component_hermes_stopped_listing_is_forgotten() -> None:
    known = directory()
    known.found("peerx", [record("peerx", 9123)])
    with pytest.raises(DiscoveryError, match="does not list 'peerx'"):
        known.found("peerx", [])
    with pytest.raises(DiscoveryError):
        known.unanswered("peerx", DOWN)


def test_static_address_from_peer_variables() -> None:
    known = directory(environ={"PEER_X_HOST": "peer.example", "PEER_X_PORT": "9123"})
    instance = known.unanswered("peer-x", DOWN)
    assert (instance.base_url, instance.metadata["source"]) == ("http://peer.example:9123", "static")


def test_static_address_from_tekton_host_and_the_known_port() -> None:
    instance = directory(environ={"TEKTON_HOST": "tekton.example"}).unanswered("rhetor", DOWN)
    assert (instance.host, instance.port) == ("tekton.example", 8003)


def test_hermes_itself_is_found_where_hermes_url_points() -> None:
    # Troubleshooting 1 asks discovery for "hermes": the answer is HERMES_URL, not the fixed port 8001.
    instance = directory(environ={"HERMES_URL": "http://hermes.example:9101/api", "HERMES_PORT": "8001"}).unanswered(
        "hermes", DOWN
    )
    assert (instance.host, instance.port) == ("hermes.example", 9101)


def test_a_bad_peer_port_is_a_discovery_error_naming_the_variable() -> None:
    with pytest.raises(DiscoveryError, match="PEER_X_PORT='abc' is not a port number"):
        directory(environ={"PEER_X_PORT": "abc"}).unanswered("peer-x", DOWN)


def test_an_unknown_component_is_a_discovery_error_naming_the_fix() -> None:
    with pytest.raises(DiscoveryError, match="set NOSUCH_PORT") as caught:
        directory().unanswered("nosuch", DOWN)
    assert "did not answer" in str(caught.value)


def test_listings_are_cached_and_kept_while_hermes_is_down() -> None:
    clock = Clock()
    known = directory(clock, ttl=1)
    listing = known.listed("memory", [record("engram", 8000, capabilities=["memory"])])
    assert known.cached_listing("memory") == listing
    clock.now += 2
    assert known.cached_listing("memory") is None
    assert known.last_listing("memory", DOWN) == listing


def test_without_an_earlier_listing_hermes_being_down_is_an_error() -> None:
    with pytest.raises(DiscoveryError, match="no earlier listing"):
        directory().last_listing(None, DOWN)


def test_records_match_by_name_or_id_ignoring_case() -> None:
    records = [record("Rhetor", 8003, "rhetor-1"), record("engram", 8000, "RHETOR")]
    assert [r["endpoint"] for r in matching("rhetor", records)] == ["http://h:8003", "http://h:8000"]
    assert matching("rhetor-1", records) == [records[0]]


def test_unusable_records_are_skipped() -> None:
    known = directory()
    assert known.found("x", [{"name": "x", "component_id": "x-0"}, record("x", 9001, "x-1")]).port == 9001
