"""A local Engram keeping the real contract of its memory API (DESIGN §6, §11), quirks included.

`POST /api/v1/memory` `{content, namespace, metadata}` -> `{id, status}` (400
`{"error": "Missing required parameter: content"}` without content; `content`
is kept as the string it is); `POST /api/v1/search` `{query, namespace, limit}`
-> `{results: [{id, content, metadata}], count}`, fuzzy: a memory matches when
any word of the query occurs in its content. `PUT`/`DELETE /api/v1/memory/{id}`
are stubs answering 200 for any id, as today. `broken = True` makes the memory
and search routes answer 500 with today's message.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .servers import running_server

TODAYS_500 = {"error": "Error adding memory: 'StorageService' object has no attribute 'add'"}


@dataclass
class LocalEngram:
    memories: dict[str, dict[str, Any]] = field(default_factory=dict)
    broken: bool = False
    url: str = ""
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/memory", self._add, methods=["POST"]),
                Route("/api/v1/search", self._search, methods=["POST"]),
                Route("/api/v1/memory/{memory_id}", self._one, methods=["GET", "PUT", "DELETE"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )

    async def _add(self, request: Request) -> JSONResponse:
        if self.broken:
            return JSONResponse(TODAYS_500, status_code=500)
        body = await request.json()
        if not body.get("content"):
            return JSONResponse({"error": "Missing required parameter: content"}, status_code=400)
        with self._lock:
            memory_id = f"mem-{next(self._ids)}"
            self.memories[memory_id] = {
                "id": memory_id,
                "content": body["content"],
                "namespace": body.get("namespace", "conversations"),
                "metadata": body.get("metadata") or {},
            }
        return JSONResponse({"id": memory_id, "status": "success"})

    async def _search(self, request: Request) -> JSONResponse:
        if self.broken:
            return JSONResponse(
                {"error": "Error searching memory: 'StorageService' object has no attribute 'search'"}, 500
            )
        body = await request.json()
        words = str(body.get("query", "")).lower().split()
        namespace = body.get("namespace", "conversations")
        with self._lock:
            found = [
                {key: memory[key] for key in ("id", "content", "metadata")}
                for memory in self.memories.values()
                if memory["namespace"] == namespace and any(word in str(memory["content"]).lower() for word in words)
            ]
        found = found[: int(body.get("limit", 10))]
        return JSONResponse({"results": found, "count": len(found)})

    async def _one(self, request: Request) -> JSONResponse:
        memory_id = request.path_params["memory_id"]
        if request.method == "GET":
            if memory_id not in self.memories:
                return JSONResponse({"error": f"Memory {memory_id} not found"}, 404)
            return JSONResponse(self.memories[memory_id])
        return JSONResponse({"id": memory_id, "status": "success"})  # today's stubs: nothing changes

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})


@contextmanager
def local_engram() -> Iterator[LocalEngram]:
    engram = LocalEngram()
    with running_server(engram.app()) as url:
        engram.url = url
        yield engram
