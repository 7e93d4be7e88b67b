"""FastAPI dependencies giving routes the objects the lifespan created."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..lifecycle import Lifecycle
from ..service import Processor
from ..settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_lifecycle(request: Request) -> Lifecycle:
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle


def get_processor(request: Request) -> Processor:
    processor: Processor = request.app.state.processor
    return processor


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProcessorDep = Annotated[Processor, Depends(get_processor)]
