"""Envoy format strings: tokens, and what each command operator means to meshscope.

An Envoy format string mixes literal text with command operators: ``%NAME%``, ``%NAME(ARG)%`` and
``%NAME(ARG):MAXLEN%`` (``%%`` is a literal percent sign). ``tokenize`` splits one into literals and
operators; ``field_of`` names the field of ``EnvoyFields`` an operator fills, or None for operators
meshscope does not use (they are still matched, then ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import orjson


class EnvoyFields(NamedTuple):
    """What one access-log entry said, as text, before it is interpreted: "" where absent.

    The names are the keys of Istio's JSON access-log encoding.
    """

    start_time: str = ""
    method: str = ""
    path: str = ""
    protocol: str = ""
    response_code: str = ""
    response_flags: str = ""
    response_code_details: str = ""
    connection_termination_details: str = ""
    upstream_transport_failure_reason: str = ""
    bytes_received: str = ""
    bytes_sent: str = ""
    duration: str = ""
    upstream_service_time: str = ""
    x_forwarded_for: str = ""
    user_agent: str = ""
    request_id: str = ""
    authority: str = ""
    upstream_host: str = ""
    upstream_cluster: str = ""
    upstream_local_address: str = ""
    downstream_local_address: str = ""
    downstream_remote_address: str = ""
    requested_server_name: str = ""
    route_name: str = ""
    grpc_status: str = ""
    trace_id: str = ""
    span_id: str = ""
    traceparent: str = ""
    downstream_peer_uri_san: str = ""
    upstream_peer_uri_san: str = ""


FIELD_NAMES: tuple[str, ...] = EnvoyFields._fields
FIELD_INDEX: dict[str, int] = {name: index for index, name in enumerate(FIELD_NAMES)}

# Operators read as one field whatever their argument.
_PLAIN_OPERATORS = {
    "START_TIME": "start_time",
    "PROTOCOL": "protocol",
    "RESPONSE_CODE": "response_code",
    "RESPONSE_FLAGS": "response_flags",
    "RESPONSE_CODE_DETAILS": "response_code_details",
    "CONNECTION_TERMINATION_DETAILS": "connection_termination_details",
    "UPSTREAM_TRANSPORT_FAILURE_REASON": "upstream_transport_failure_reason",
    "BYTES_RECEIVED": "bytes_received",
    "BYTES_SENT": "bytes_sent",
    "DURATION": "duration",
    "UPSTREAM_HOST": "upstream_host",
    "UPSTREAM_CLUSTER": "upstream_cluster",
    "UPSTREAM_CLUSTER_RAW": "upstream_cluster",
    "UPSTREAM_LOCAL_ADDRESS": "upstream_local_address",
    "DOWNSTREAM_LOCAL_ADDRESS": "downstream_local_address",
    "DOWNSTREAM_REMOTE_ADDRESS": "downstream_remote_address",
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": "downstream_remote_address",
    "REQUESTED_SERVER_NAME": "requested_server_name",
    "ROUTE_NAME": "route_name",
    "GRPC_STATUS": "grpc_status",
    "GRPC_STATUS_NUMBER": "grpc_status",
    "TRACE_ID": "trace_id",
    "DOWNSTREAM_PEER_URI_SAN": "downstream_peer_uri_san",
    "UPSTREAM_PEER_URI_SAN": "upstream_peer_uri_san",
}

# Header operators (REQ, RESP, TRAILER) by lower-cased header name; "X?Y" means X, else Y.
_REQUEST_HEADERS = {
    ":method": "method",
    ":path": "path",
    "x-envoy-original-path": "path",
    ":authority": "authority",
    "host": "authority",
    "user-agent": "user_agent",
    "x-request-id": "request_id",
    "x-forwarded-for": "x_forwarded_for",
    "x-b3-traceid": "trace_id",
    "x-b3-spanid": "span_id",
    "traceparent": "traceparent",
}
_RESPONSE_HEADERS = {
    "x-envoy-upstream-service-time": "upstream_service_time",
    "grpc-status": "grpc_status",
}

# Operators whose value is a number or "-": parsers may match them tightly.
NUMERIC_FIELDS = frozenset({"response_code", "bytes_received", "bytes_sent", "duration", "upstream_service_time"})

_OPERATOR = re.compile(r"%%|%([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%")


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    argument: str = ""
    max_length: int | None = None

    def __str__(self) -> str:
        text = self.name + (f"({self.argument})" if self.argument or self.name in ("REQ", "RESP", "TRAILER") else "")
        if self.max_length is not None:
            text += f":{self.max_length}"
        return f"%{text}%"


Token = str | Operator


def tokenize(fmt: str) -> list[Token]:
    """Split a format string into literal strings and Operators (adjacent literals are merged)."""
    if fmt.endswith("\n"):
        fmt = fmt[:-1]
    tokens: list[Token] = []
    position = 0
    literal = ""
    for match in _OPERATOR.finditer(fmt):
        literal += fmt[position : match.start()]
        position = match.end()
        if match.group(0) == "%%":
            literal += "%"
            continue
        if literal:
            tokens.append(literal)
            literal = ""
        length = match.group(3)
        tokens.append(Operator(match.group(1), match.group(2) or "", int(length) if length else None))
    literal += fmt[position:]
    if literal:
        tokens.append(literal)
    return tokens


def json_format_template(fmt: str) -> dict[str, object]:
    """A JSON format string (Envoy ``json_format``) as its object of key -> operator text."""
    try:
        template = orjson.loads(fmt)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"JSON format is not valid JSON: {exc}") from None
    if not isinstance(template, dict):
        raise ValueError("a JSON format must be an object of key -> command operator")
    return template


def field_of(operator: Operator) -> str | None:
    """The EnvoyFields field an operator fills, or None when meshscope does not use it."""
    plain = _PLAIN_OPERATORS.get(operator.name)
    if plain is not None:
        return plain
    if operator.name in ("REQ", "RESP", "TRAILER"):
        table = _REQUEST_HEADERS if operator.name == "REQ" else _RESPONSE_HEADERS
        for header in operator.argument.split("?"):
            field = table.get(header.strip().lower())
            if field is not None:
                return field
    return None
