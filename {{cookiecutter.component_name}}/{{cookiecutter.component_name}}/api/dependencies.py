"""FastAPI dependencies giving routes the objects the lifespan created.

They are `async def` on purpose: FastAPI runs plain `def` dependencies in a
thread pool, which cost most of a cheap route's time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..lifecycle import Lifecycle
from ..service import Processor
from ..settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_lifecycle(request: Request) -> Lifecycle:
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle


async def get_processor(request: Request) -> Processor:
    processor: Processor = request.app.state.processor
    return processor


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProcessorDep = Annotated[Processor, Depends(get_processor)]
