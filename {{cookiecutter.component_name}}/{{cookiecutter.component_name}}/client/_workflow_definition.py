"""Workflow definitions as Harmonia takes them, and its `${...}` substitution.

The guide writes `tasks` as a list; Harmonia requires a dict keyed by task
id, each task with a `name` (a list is rejected with 422). `normalize` accepts
both and checks what Harmonia would only find out while running: unknown
dependencies and cycles. `substitute` resolves `${tasks.<id>.output...}` and
`${input...}` as Harmonia's `expressions.py` does: a string that is one whole
expression keeps the value's type; embedded expressions become text, and an
unresolved embedded one is left as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._errors import WorkflowError

_EMBEDDED = re.compile(r"\$\{([^}]+)\}")
_TASK_FIELDS = ("id", "name", "component", "action")


def normalize(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `definition` with `tasks` as Harmonia's dict, every task named; raises `WorkflowError`."""
    if not isinstance(definition, Mapping):
        raise WorkflowError(f"a workflow definition is a dict, got {type(definition).__name__}")
    result = dict(definition)
    result.setdefault("name", "workflow")
    tasks = definition.get("tasks")
    entries: list[tuple[str | None, Any]]
    if isinstance(tasks, list):
        entries = [(None, task) for task in tasks]
    elif isinstance(tasks, Mapping):
        entries = list(tasks.items())
    else:
        raise WorkflowError("a workflow needs 'tasks': a list of tasks (the guide) or a dict keyed by task id")
    converted: dict[str, dict[str, Any]] = {}
    for position, (key, raw) in enumerate(entries):
        if not isinstance(raw, Mapping):
            raise WorkflowError(f"task {key or position} is not a dict")
        task = dict(raw)
        task_id = task.get("id") or key
        if not task_id or not isinstance(task_id, str) or " " in task_id:
            raise WorkflowError(f"task {position} needs an 'id' without spaces")
        task["id"] = task_id
        task.setdefault("name", task_id)  # Harmonia requires it; the guide leaves it out
        task.setdefault("depends_on", [])
        task.setdefault("input", {})
        missing = [name for name in _TASK_FIELDS if not task.get(name)]
        if missing:
            raise WorkflowError(f"task {task_id!r} is missing {', '.join(missing)}")
        if task_id in converted:
            raise WorkflowError(f"two tasks have the id {task_id!r}")
        converted[task_id] = task
    for task in converted.values():
        unknown = [dep for dep in task["depends_on"] if dep not in converted]
        if unknown:
            raise WorkflowError(f"task {task['id']!r} depends on unknown task(s) {unknown}")
    _refuse_cycles(converted)
    result["tasks"] = converted
    return result


def _refuse_cycles(tasks: Mapping[str, Mapping[str, Any]]) -> None:
    done: set[str] = set()
    for _ in tasks:
        ready = [tid for tid, task in tasks.items() if tid not in done and set(task["depends_on"]) <= done]
        if not ready:
            break
        done.update(ready)
    if len(done) < len(tasks):
        raise WorkflowError(f"tasks {sorted(set(tasks) - done)} depend on each other in a cycle")


def dependants(tasks: Mapping[str, Mapping[str, Any]], failed: str) -> set[str]:
    """Every task that depends on `failed`, directly or not."""
    found: set[str] = set()
    frontier = {failed}
    while frontier:
        frontier = {tid for tid, task in tasks.items() if set(task.get("depends_on", [])) & frontier} - found
        found |= frontier
    return found


def lookup(data: Any, path: str) -> Any:
    """Harmonia's `get_nested_value`: dots, and `name[index]` for lists; None when absent."""
    current = data
    for part in path.split("."):
        index: int | None = None
        if "[" in part and part.endswith("]"):
            part, raw_index = part.split("[", 1)
            index = int(raw_index[:-1])
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
        if index is not None:
            if not isinstance(current, list) or index >= len(current):
                return None
            current = current[index]
    return current


def substitute(data: Any, context: Mapping[str, Any]) -> Any:
    """Resolve `${...}` in `data` against `context` (`{"tasks": {id: output}, "input": {...}}`)."""
    if isinstance(data, str):
        return _expression(data, context)
    if isinstance(data, Mapping):
        return {key: substitute(value, context) for key, value in data.items()}
    if isinstance(data, list):
        return [substitute(item, context) for item in data]
    return data


def _expression(text: str, context: Mapping[str, Any]) -> Any:
    if text.startswith("${") and text.endswith("}") and "${" not in text[2:]:
        # The whole string: the value keeps its type. As in Harmonia, a missing `tasks.` path is
        # None and any other missing path leaves the text as written.
        value = lookup(context, text[2:-1])
        return text if value is None and not text.startswith("${tasks.") else value
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        value = lookup(context, match.group(1))
        return match.group(0) if value is None else str(value)

    return _EMBEDDED.sub(replace, text)
