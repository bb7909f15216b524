"""OTLP/JSON requests and responses.

OTLP/JSON is protobuf's JSON mapping with two exceptions: trace and span ids are hex, not base64,
and enums are integers (which json_format reads anyway). The ids are rewritten to base64 in the
parsed document before ``json_format.ParseDict``: parsing hex as base64 would not fail, it would
silently produce ids of the wrong length.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry.envoy.errors import ParseError

_SPAN_IDS = ("traceId", "spanId", "parentSpanId")
_LINK_IDS = ("traceId", "spanId")


def request_from_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ParseError("bad_json", f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ParseError("bad_json", f"expected a JSON object, got {type(document).__name__}")
    for resource_index, resource_spans in enumerate(_items(document, "resourceSpans", "")):
        where = f"resourceSpans[{resource_index}]"
        for scope_index, scope_spans in enumerate(_items(resource_spans, "scopeSpans", where)):
            scope_where = f"{where}.scopeSpans[{scope_index}]"
            for span_index, span in enumerate(_items(scope_spans, "spans", scope_where)):
                span_where = f"{scope_where}.spans[{span_index}]"
                _hex_to_base64(span, _SPAN_IDS, span_where)
                for link_index, link in enumerate(_items(span, "links", span_where)):
                    _hex_to_base64(link, _LINK_IDS, f"{span_where}.links[{link_index}]")
    try:
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise ParseError("bad_json", f"not an OTLP ExportTraceServiceRequest: {error}") from None


def _items(parent: Any, key: str, where: str) -> list[Any]:
    if not isinstance(parent, dict):
        raise ParseError("bad_json", f"{where or 'request'}: expected an object")
    items = parent.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise ParseError("bad_json", f"{where}.{key}: expected a list" if where else f"{key}: expected a list")
    return items


def _hex_to_base64(message: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(message, dict):
        raise ParseError("bad_json", f"{where}: expected an object")
    for key in keys:
        value = message.get(key)
        if value is None or value == "":
            continue
        try:
            raw = bytes.fromhex(value)
        except (TypeError, ValueError):
            raise ParseError("bad_id", f"{where}.{key}: {value!r} is not hex") from None
        message[key] = base64.b64encode(raw).decode("ascii")


def message_to_json(message: Message) -> bytes:
    # The response messages carry no ids, so protobuf's own mapping is OTLP/JSON as it is.
    return json_format.MessageToJson(message, indent=None).encode()
