"""The envelope, patterns and the in-memory bus, on real objects."""

from __future__ import annotations
{%- if cookiecutter.event_bus == "memory" %}

import ast
from pathlib import Path
{%- endif %}

import pytest
{% if cookiecutter.event_bus == "memory" %}
from {{ cookiecutter.component_name }} import events
{%- endif %}
from {{ cookiecutter.component_name }}.events import InvalidEventData, InvalidEventType, Pattern
from {{ cookiecutter.component_name }}.events.bus import open_bus, refuse_memory_bus_with_workers, worker_count
from {{ cookiecutter.component_name }}.events.envelope import Event
from {{ cookiecutter.component_name }}.events.memory_bus import MemoryBus
from {{ cookiecutter.component_name }}.settings import SettingsError

from .conftest import SettingsFactory


def memory_bus(replay_size: int = 100) -> MemoryBus:
    return MemoryBus(source="{{ cookiecutter.component_name }}", instance="test", replay_size=replay_size)


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("workflow.completed", "workflow.completed", True),
        ("workflow.completed", "workflow.started", False),
        ("workflow.*", "workflow.completed", True),
        ("workflow.*", "workflow.task.completed", True),
        ("workflow.*", "workflows.completed", False),
        ("workflow.*", "workflowx.completed", False),
        ("*.completed", "task.completed", True),
        ("*.completed", "task.completed.late", False),
        ("*", "anything.at.all", True),
        ("task.*.done", "task.build.done", True),
        ("task.*.done", "task.build.step.done", False),
    ],
)
def test_patterns_match_whole_segments(pattern: str, event_type: str, expected: bool) -> None:
    assert Pattern(pattern).matches(event_type) is expected


@pytest.mark.parametrize("text", ["workflow", "workflow.", ".completed", "work flow.done", "a.b*", "", "x" * 200])
def test_invalid_patterns_are_refused_with_the_rule(text: str) -> None:
    with pytest.raises(InvalidEventType, match="workflow"):
        Pattern(text)


@pytest.mark.parametrize("event_type", ["completed", "workflow.*", "*", "a..b", "a.b c", "a.b\n", "a.b\r", "a.\u00e9"])
async def test_publishing_an_undotted_or_wildcard_type_is_refused(event_type: str) -> None:
    async with memory_bus() as bus:
        with pytest.raises(InvalidEventType, match="dotted"):
            await bus.publish(event_type, {})


@pytest.mark.parametrize("data", [{"text": "\ud800"}, {"n": float("nan")}, [float("inf")], {"set": {1}}])
async def test_the_bus_refuses_data_with_no_standard_json_form_before_anyone_sees_it(data: object) -> None:
    """Whatever the HTTP layer checks, the bus itself never delivers what it cannot send as JSON."""
    async with memory_bus() as bus:
        subscription = await bus.subscribe([Pattern("*")], channel="ws", queue_size=10)
        with pytest.raises(InvalidEventData, match="standard JSON"):
            await bus.publish("data.check", data)
        marker = await bus.publish("data.marker", {"ok": True})
        assert await subscription.get() is marker
        assert marker.id.endswith("-1")  # the refused event took no id either


@pytest.mark.parametrize("text", ["a.b\n", "a.*\n", "*\n", "a.\u0661"])
def test_patterns_are_matched_in_full(text: str) -> None:
    with pytest.raises(InvalidEventType):
        Pattern(text)


async def test_memory_ids_are_the_boot_id_and_a_sequence() -> None:
    async with memory_bus() as bus:
        first = await bus.publish("task.started", {"n": 1})
        second = await bus.publish("task.started", {"n": 2})
    assert first.id == f"{bus.boot_id}-1"
    assert second.id == f"{bus.boot_id}-2"
    assert (first.source, first.type, first.data) == ("{{ cookiecutter.component_name }}", "task.started", {"n": 1})
    assert memory_bus().boot_id != bus.boot_id


async def test_a_full_queue_loses_its_oldest_events_and_counts_them() -> None:
    async with memory_bus() as bus:
        slow = await bus.subscribe([Pattern("*")], channel="ws", queue_size=3)
        for n in range(10):
            await bus.publish("task.progress", {"n": n})
        assert len(slow) == 3
        assert slow.take_dropped() == 7
        assert slow.take_dropped() == 0
        assert [(await slow.get()).data["n"] for _ in range(3)] == [7, 8, 9]  # type: ignore[union-attr]


async def test_events_go_direct_until_refused_then_queue_in_order_and_the_backlog_is_announced_once() -> None:
    async with memory_bus() as bus:
        subscription = await bus.subscribe([Pattern("*")], channel="ws", queue_size=10)
        taken: list[int] = []
        accepting = True
        backlogs: list[int] = []

        def direct(event: Event) -> bool:
            if accepting:
                taken.append(event.data["n"])
            return accepting

        subscription.direct = direct
        subscription.queued = lambda: backlogs.append(len(subscription))
        await bus.publish("task.progress", {"n": 0})
        accepting = False  # the channel is busy (a send waits): events queue, the first one says so
        await bus.publish("task.progress", {"n": 1})
        accepting = True  # a queued event is never overtaken: the next one queues too
        await bus.publish("task.progress", {"n": 2})
        assert (taken, backlogs) == ([0], [1])
        assert [(await subscription.get()).data["n"] for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
        await bus.publish("task.progress", {"n": 3})  # backlog gone: straight out again
        assert (taken, backlogs) == ([0, 3], [1])


async def test_subscribers_get_only_matching_events_in_order() -> None:
    async with memory_bus() as bus:
        subscription = await bus.subscribe([Pattern("workflow.*")], channel="sse", queue_size=10)
        for event_type in ("workflow.started", "task.started", "workflow.completed"):
            await bus.publish(event_type)
        received = [await subscription.get() for _ in range(2)]
    assert [event.type for event in received if event] == ["workflow.started", "workflow.completed"]


async def test_resume_replays_only_the_events_after_the_id() -> None:
    async with memory_bus() as bus:
        ids = [(await bus.publish("task.progress", {"n": n})).id for n in range(5)]
        subscription = await bus.subscribe([Pattern("*")], channel="sse", queue_size=10, after=ids[1])
        assert subscription.reset is False
        assert [(await subscription.get()).id for _ in range(3)] == ids[2:]  # type: ignore[union-attr]


async def test_resume_from_an_id_older_than_the_buffer_resets() -> None:
    async with memory_bus(replay_size=3) as bus:
        ids = [(await bus.publish("task.progress", {"n": n})).id for n in range(6)]
        subscription = await bus.subscribe([Pattern("*")], channel="sse", queue_size=10, after=ids[0])
        assert subscription.reset is True
        assert [(await subscription.get()).id for _ in range(3)] == ids[3:]  # type: ignore[union-attr]


async def test_resume_from_the_last_id_before_the_buffer_is_not_a_gap() -> None:
    async with memory_bus(replay_size=3) as bus:
        ids = [(await bus.publish("task.progress", {"n": n})).id for n in range(6)]
        subscription = await bus.subscribe([Pattern("*")], channel="sse", queue_size=10, after=ids[2])
        assert subscription.reset is False
        assert len(subscription) == 3


async def test_resume_with_an_id_from_before_a_restart_resets() -> None:
    async with memory_bus() as before:
        old_id = (await before.publish("task.progress")).id
    async with memory_bus() as after:
        await after.publish("task.progress")
        subscription = await after.subscribe([Pattern("*")], channel="sse", queue_size=10, after=old_id)
    assert subscription.reset is True


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["uvicorn", "app:app"], {}, 1),
        (["uvicorn", "app:app", "--workers", "4"], {}, 4),
        (["uvicorn", "app:app", "--workers=3"], {}, 3),
        (["uvicorn", "app:app"], {"WEB_CONCURRENCY": "2"}, 2),
    ],
)
def test_worker_count_reads_argv_and_web_concurrency(argv: list[str], environ: dict[str, str], expected: int) -> None:
    assert worker_count(argv, environ) == expected


def test_memory_bus_with_several_workers_is_refused_naming_the_fix(make_settings: SettingsFactory) -> None:
    settings = make_settings(event_bus="memory")
    refuse_memory_bus_with_workers(settings, 1)
    with pytest.raises(SettingsError) as error:
        refuse_memory_bus_with_workers(settings, 2)
    message = str(error.value)
    assert "{{ cookiecutter.component_name | upper }}_EVENT_BUS=memory with 2 uvicorn workers" in message
    assert "--workers 1" in message
    assert "{{ cookiecutter.component_name | upper }}_EVENT_BUS=redis" in message
{%- if cookiecutter.event_bus == "memory" %}


def test_redis_backend_on_a_memory_component_names_the_fix(make_settings: SettingsFactory) -> None:
    with pytest.raises(SettingsError, match="generated with event_bus=memory") as error:
        open_bus(make_settings(event_bus="redis"))
    assert "regenerate it with `event_bus=redis`" in str(error.value)


def test_memory_component_has_no_redis_code() -> None:
    package = Path(events.__file__).parent.parent
    imported: set[str] = set()
    # The client's redis state backend is an opt-in extra here (`pip install '.[redis]'`), imported at first use.
    opt_in = package / "client" / "_state_redis.py"
    for source in package.rglob("*.py"):
        if source == opt_in:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "redis" not in imported
    assert not (package / "events" / "redis_bus.py").exists()
{%- else %}


def test_redis_backend_is_built_by_module_name(make_settings: SettingsFactory) -> None:
    bus = open_bus(make_settings(event_bus="redis", redis_url="redis://127.0.0.1:1/0"))
    assert type(bus).__module__.endswith(".events.redis_bus")
{%- endif %}
