"""HealthMonitor: concurrent bounded checks, hysteresis, an event per change."""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.component_name }}.client import HealthMonitor, IntegrationConfig

from .support.peers import Step, flaky_peer
from .support.servers import refused_port


async def test_each_component_gets_its_status_from_one_concurrent_round(base_url: str) -> None:
    with flaky_peer() as (sick, sick_url), flaky_peer() as (slow, slow_url):
        sick.default = Step(503, {"status": "unhealthy"})
        slow.default = Step(delay=1.5)
        addresses = {"good": base_url, "sick": sick_url, "slow": slow_url, "gone": f"http://127.0.0.1:{refused_port()}"}
        monitor = HealthMonitor(
            list(addresses), addresses=addresses, config=IntegrationConfig(health_check_timeout=0.6)
        )
        results = await monitor.check_all()
    statuses = {result["component"]: result["status"] for result in results}
    assert statuses == {"good": "healthy", "sick": "unhealthy", "slow": "unreachable", "gone": "unreachable"}
    assert monitor.health_status["good"]["details"]["status"] in ("healthy", "degraded")
    assert monitor.health_status["sick"]["error"] == "HTTP 503"
    assert monitor.health_status["slow"]["error"] == "timed out"


def verdict(monitor: HealthMonitor) -> str:
    return monitor.verdicts["peer"]  # through a call, so mypy does not narrow it between asserts


async def test_down_only_after_consecutive_failures_and_each_change_is_published() -> None:
    published: list[tuple[str, dict[str, Any]]] = []

    async def publish(event_type: str, data: dict[str, Any]) -> None:
        published.append((event_type, data))

    config = IntegrationConfig(health_failures_before_down=2, health_successes_before_up=1)
    with flaky_peer() as (peer, url):
        monitor = HealthMonitor(["peer"], addresses={"peer": url}, config=config, publish=publish)
        await monitor.check_all()
        assert verdict(monitor) == "up"
        peer.default = Step(500)
        await monitor.check_all()
        assert verdict(monitor) == "up"  # one bad answer is not enough
        await monitor.check_all()
        assert verdict(monitor) == "down"
        peer.default = Step(200)
        await monitor.check_all()
        assert verdict(monitor) == "up"
    changes = [(kind, data["component"], data["previous"], data["status"]) for kind, data in published]
    assert changes == [
        ("component.health_changed", "peer", "unknown", "up"),
        ("component.health_changed", "peer", "up", "down"),
        ("component.health_changed", "peer", "down", "up"),
    ]
