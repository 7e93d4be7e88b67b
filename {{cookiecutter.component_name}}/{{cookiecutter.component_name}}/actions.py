"""Actions: service functions that other components (and Harmonia workflows) can call by name.

`@action` on a function (or a `Service` method) publishes it: its name, its
docstring, a JSON Schema of its parameters and result built from the type
hints, and a validator for incoming parameters. `api/actions.py` serves them
(`GET /api/capabilities`, `GET /api/actions/{name}/schema`,
`POST /api/actions/{name}`). `Idempotency` makes a repeated call (Harmonia
re-sends a POST after its own 30 s timeout) return the first call's result
instead of running again.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class ActionInputError(ValueError):
    """The parameters do not fit the action; `missing` names absent required parameters."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class Action(NamedTuple):  # immutable; a tuple is cheaper to define at import than a dataclass
    name: str
    function: Callable[..., Awaitable[Any]]
    description: str
    params_model: type[BaseModel]
    result: TypeAdapter[Any]
    is_method: bool  # a `Service` method: called on the app's service

    @property
    def required(self) -> list[str]:
        return [name for name, spec in self.params_model.model_fields.items() if spec.is_required()]

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.params_model.model_json_schema(),
            "output_schema": self.result.json_schema(),
        }

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as the function's arguments, or `ActionInputError` naming what is wrong."""
        try:
            model = self.params_model.model_validate(dict(params))
        except ValidationError as exc:
            missing = [str(error["loc"][0]) for error in exc.errors() if error["type"] == "missing"]
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}" for error in exc.errors()
            )
            raise ActionInputError(f"action {self.name!r}: {problems}", missing) from None
        return {name: getattr(model, name) for name in self.params_model.model_fields}

    async def run(self, target: object, params: Mapping[str, Any]) -> Any:
        arguments = self.validate(params)
        function = getattr(target, self.function.__name__) if self.is_method else self.function
        return await function(**arguments)


REGISTRY: dict[str, Action] = {}


def action(function: F | None = None, *, name: str | None = None) -> Any:
    """Publish an async function (or `Service` method) as an action: `@action` or `@action(name="...")`."""

    def register(function: F) -> F:
        published_function = function  # (the check below narrows `function`'s type)
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"@action needs an async function; {function.__qualname__} is not one")
        published = name or function.__name__
        signature = inspect.signature(function)
        hints = get_type_hints(function)
        parameters = [p for p in signature.parameters.values() if p.name != "self"]
        fields: dict[str, Any] = {
            p.name: (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
            for p in parameters
        }
        params_model = create_model(f"{published}_params", __config__=ConfigDict(extra="forbid"), **fields)
        REGISTRY[published] = Action(
            name=published,
            function=function,
            description=inspect.getdoc(function) or "",
            params_model=params_model,
            result=TypeAdapter(hints.get("return", Any)),
            is_method="self" in signature.parameters,
        )
        return published_function

    return register(function) if function is not None else register


def fingerprint(params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyConflict(ValueError):
    """An idempotency key reused for different parameters."""


class Idempotency:
    """Results of recent calls by key (per process): a repeat gets the first result, even while it runs.

    A plain class: nothing compares or prints it, and a dataclass costs start-up time to define."""

    def __init__(self, ttl: float = 3600.0, capacity: int = 10_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, str, asyncio.Future[Any]]] = OrderedDict()

    async def run(self, key: str | None, params: Any, call: Callable[[], Awaitable[Any]]) -> Any:
        if key is None:
            return await call()
        now = time.monotonic()
        self._forget_old(now)
        digest = fingerprint(params)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[1] != digest:
                raise IdempotencyConflict(f"idempotency key {key!r} was already used with different params")
            return await asyncio.shield(entry[2])  # the first call's result, or its wait
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now, digest, future)
        try:
            result = await call()
        except BaseException as exc:
            del self._entries[key]  # a failed call may be retried: it did not happen
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # marked as retrieved: nobody waiting is fine
            raise
        future.set_result(result)
        return result

    def _forget_old(self, now: float) -> None:
        while self._entries and (
            len(self._entries) >= self.capacity or next(iter(self._entries.values()))[0] < now - self.ttl
        ):
            self._entries.popitem(last=False)
