"""`GET /api/v1/asyncapi.json`: the AsyncAPI 3 description of `/ws` and `/events`.

Generated from the event catalog (`events/catalog.py`): one message per
declared event type, with its payload schema, so the document cannot drift
from what the component publishes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..about import VERSION
from ..events import CATALOG, EVENT_TYPE_PATTERN, MAX_TYPE_LENGTH, EventType
from ..settings import Settings
from .deps import SettingsDep

router = APIRouter(prefix="/api/v1", tags=["events"])


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _frame(frame_type: str, data: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "payload": {
            "type": "object",
            "required": ["type", "data"],
            "properties": {"type": {"const": frame_type}, "data": data},
        },
    }


def _object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
COUNT = {"type": "integer", "minimum": 1}


def _event_message(event_type: EventType, envelope: dict[str, Any]) -> dict[str, Any]:
    properties = {**envelope["properties"], "type": {"const": event_type.name}, "data": dict(event_type.schema)}
    return {
        "name": event_type.name,
        "title": event_type.name,
        "description": event_type.description,
        "payload": {**envelope, "properties": properties},
    }


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    host = settings.base_url.split("://", 1)[1]
    catalog = sorted(CATALOG.values())
    envelope = {
        "type": "object",
        "required": ["id", "type", "source", "time", "data"],
        "properties": {
            "id": {"type": "string", "description": "`<boot id>-<sequence>` in memory, the stream id with Redis"},
            "type": {
                "type": "string",
                "pattern": EVENT_TYPE_PATTERN,
                "maxLength": MAX_TYPE_LENGTH,
                "examples": [event_type.name for event_type in catalog],
            },
            "source": {"type": "string", "const": settings.component_name},
            "time": {"type": "string", "format": "date-time"},
            "data": {},
            "request_id": {"type": "string", "description": "The HTTP request that published it, if any"},
        },
    }
    messages: dict[str, Any] = {
        "event": {
            "name": "event",
            "title": "Event",
            "description": "An event: its type always contains a dot. This component publishes "
            + "; ".join(f"`{event_type.name}`: {event_type.description}" for event_type in catalog)
            + " (each has a message of its own, with its payload); peers may publish other types.",
            "payload": envelope,
        },
        "subscribe": {
            "description": "Subscribe to exact types, `prefix.*` (whole segments) or `*` (everything).",
            "payload": _object(["type", "events"], type={"const": "subscribe"}, events=STRINGS),
        },
        "unsubscribe": {
            "description": "Drop subscriptions; without `events`, all of them.",
            "payload": _object(["type"], type={"const": "unsubscribe"}, events=STRINGS),
        },
        "ping": {"payload": _object(["type"], type={"const": "ping"}, data={})},
        "subscribed": _frame(
            "subscribed",
            _object(["events", "subscriptions", "instance"], events=STRINGS, subscriptions=STRINGS, instance=STRING),
            "Acknowledges a subscription; `instance` is an opaque id of the serving process.",
        ),
        "unsubscribed": _frame(
            "unsubscribed",
            _object(["events", "subscriptions"], events=STRINGS, subscriptions=STRINGS),
            "Acknowledges an unsubscribe.",
        ),
        "pong": _frame("pong", {}, "Answers a ping, echoing its `data`."),
        "error": _frame(
            "error",
            _object(["code", "message"], code=STRING, message=STRING),
            "A bad frame (invalid_json, invalid_frame, unknown_type, invalid_field, invalid_subscription, "
            "frame_too_large); the connection carries on unless it is closed (1009 oversized, 1008 abuse).",
        ),
        "dropped": _frame(
            "dropped", _object(["count"], count=COUNT), "This client was too slow: `count` events were lost."
        ),
        "sseEvent": {
            "description": "SSE: `event:` is the type, `id:` the event id, `data:` the JSON envelope.",
            "payload": envelope,
        },
        "sseReset": {
            "description": "SSE `event: reset`: the Last-Event-ID is too old or from before a restart; resync.",
            "payload": _object(["last_event_id", "message"], last_event_id=STRING, message=STRING),
        },
        "sseDropped": {"description": "SSE `event: dropped`", "payload": _object(["count"], count=COUNT)},
    }
    # Event types are dotted and control frames never are: the names cannot collide.
    messages.update({event_type.name: _event_message(event_type, envelope) for event_type in catalog})
    typed = [event_type.name for event_type in catalog]
    ws_out = [*typed, "event", "subscribed", "unsubscribed", "pong", "error", "dropped"]
    ws_in = ["subscribe", "unsubscribe", "ping"]
    sse_out = [*typed, "sseEvent", "sseReset", "sseDropped"]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"{settings.component_name} events",
            "version": VERSION,
            "description": "One envelope on both channels; control frames never contain a dot.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "ws": {"host": host, "protocol": "ws"},
            "http": {"host": host, "protocol": "http"},
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "servers": [{"$ref": "#/servers/ws"}],
                "messages": {name: _ref("messages", name) for name in ws_out + ws_in},
            },
            "sse": {
                "address": "/events",
                "servers": [{"$ref": "#/servers/http"}],
                "description": "GET /events?types=workflow.*,task.completed; resume with Last-Event-ID.",
                "messages": {name: _ref("messages", name) for name in sse_out},
            },
        },
        "operations": {
            "sendWsFrames": {
                "action": "send",
                "channel": {"$ref": "#/channels/ws"},
                "messages": [{"$ref": f"#/channels/ws/messages/{name}"} for name in ws_out],
            },
            "receiveWsFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ws"},
                "messages": [{"$ref": f"#/channels/ws/messages/{name}"} for name in ws_in],
            },
            "sendSseEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/sse"},
                "messages": [{"$ref": f"#/channels/sse/messages/{name}"} for name in sse_out],
            },
        },
        "components": {"messages": messages},
    }


@router.get("/asyncapi.json", summary="AsyncAPI 3 description of /ws and /events")
async def asyncapi(settings: SettingsDep) -> dict[str, Any]:
    return asyncapi_document(settings)
