"""The simulated requests as spans: Zipkin v2 spans from the proxies, and application spans.

Proxies: Envoy's Zipkin tracer with Istio's defaults. Each HTTP or gRPC call gives a CLIENT span from
the caller's proxy and, when the call reached the server, a SERVER span from the server's proxy that
shares the client's span id (``shared: true``, Envoy's ``shared_span_context``); both carry the call's
span id, the request's trace id and ``guid:x-request-id``, exactly as the access-log entries do. TCP
connections are not traced (Envoy's tcp_proxy makes no spans).

Applications: productpage (a SERVER span, CLIENT spans for its calls) and ratings (a SERVER span and
a database CLIENT span, ``db.system=mysql``) instrumented with OpenTelemetry. A traced app's CLIENT
span sits between its SERVER span and its proxy's outbound span, as in a real trace. App span ids are
derived from the call's span id, so everything here is a pure function of the simulated calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from telemetry.demo.entries import LogEntry
from telemetry.demo.simulate import HTTP2, HTTP11, Call
from telemetry.demo.topology import MYSQLDB, PRODUCTPAGE, RATINGS, Pod

TRACED_APPS: frozenset[str] = frozenset({PRODUCTPAGE.app, RATINGS.app})
MESH_ID = "cluster.local"
_MS_NS = 1_000_000
_MS_US = 1_000
# How much of a call the app's client span covers beyond the proxy's: the app starts and ends it.
_CLIENT_MARGIN_MS = 0.05
_DB_NAME = "test"  # Bookinfo's ratings database


@dataclass(frozen=True, slots=True)
class AppSpan:
    """One application span to be recorded through the OpenTelemetry SDK."""

    app: str  # the pod's app, which names its TracerProvider
    name: str
    kind: str  # "server" | "client"
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, str | int] = field(default_factory=dict)
    error: bool = False


@dataclass(slots=True)
class RequestSpans:
    zipkin: list[dict[str, Any]] = field(default_factory=list)
    app: list[AppSpan] = field(default_factory=list)


def service_cluster(pod: Pod) -> str:
    """Envoy's --service-cluster as Istio sets it (``app.namespace``): the Zipkin local service name."""
    return f"{pod.app}.{pod.namespace}"


def derived_span_id(span_id: str, role: str) -> str:
    digest = hashlib.blake2b(f"{span_id}/{role}".encode(), digest_size=8).hexdigest()
    return digest if digest != "0" * 16 else "1" * 16


def calls_of(entries: Iterable[LogEntry]) -> list[Call]:
    """The distinct calls behind a request's entries, in order of first appearance."""
    seen: dict[int, Call] = {}
    for entry in entries:
        seen.setdefault(id(entry.call), entry.call)
    return list(seen.values())


def request_spans(calls: list[Call], traced_apps: frozenset[str] = TRACED_APPS) -> RequestSpans:
    """All spans of one request's calls (all sharing one RequestContext)."""
    spans = RequestSpans()
    serving: dict[str, Call] = {}  # pod workload -> the call that reached it (one per pod per request)
    for call in calls:
        if call.destination is not None and call.reached_server:
            serving[call.destination.workload] = call
    for call in calls:
        parent = _parent_of(call, serving, traced_apps)
        if call.protocol != "tcp":
            spans.zipkin.append(_zipkin_client(call, parent))
            if call.reached_server:
                spans.zipkin.append(_zipkin_server(call, parent))
        if call.source.app in traced_apps:
            client = _app_client(call, serving)
            if client is not None:
                spans.app.append(client)
        if call.destination is not None and call.destination.app in traced_apps and call.reached_server:
            spans.app.append(_app_server(call))
            if call.destination.app == RATINGS.app and not any(
                other.source is call.destination and other.destination is MYSQLDB for other in calls
            ):
                # Most queries go over a pooled connection, which logs nothing: the span still shows them.
                spans.app.append(_pooled_query(call))
    return spans


def _parent_of(call: Call, serving: dict[str, Call], traced_apps: frozenset[str]) -> str:
    if call.source.app in traced_apps:
        return derived_span_id(call.span_id or _tcp_id(call), "app-client")
    inbound = serving.get(call.source.workload)
    return inbound.span_id if inbound is not None else ""


def _tcp_id(call: Call) -> str:
    # TCP calls have no span id of their own: one derived from the request and the connection's ports.
    return derived_span_id(call.request.trace_id, f"tcp/{call.downstream_port}/{call.upstream_port}")


def _ms_to_us(ms: float) -> int:
    return int(round(ms * _MS_US))


def _failed(call: Call) -> bool:
    return call.response_code >= 500 or (call.grpc_status not in ("", "0"))


def _proxy_tags(call: Call, pod: Pod) -> dict[str, str]:
    tags = {
        "component": "proxy",
        "node_id": pod.node_id,
        "zone": "",
        "guid:x-request-id": call.request.request_id,
        "http.url": f"http://{call.authority}{call.path}",
        "http.method": call.method,
        "downstream_cluster": "-",
        "user_agent": call.user_agent or "-",
        "http.protocol": HTTP2 if call.protocol == "grpc" else HTTP11,
        "request_size": str(call.bytes_received),
        "response_size": str(call.bytes_sent),
        "http.status_code": str(call.response_code),
        "istio.canonical_service": pod.app,
        "istio.canonical_revision": pod.version,
        "istio.namespace": pod.namespace,
        "istio.mesh_id": MESH_ID,
    }
    if call.grpc_status:
        tags["grpc.status_code"] = call.grpc_status
        tags["grpc.path"] = call.path
    if _failed(call):
        tags["error"] = "true"
    return tags


def _zipkin_span(call: Call, parent: str, pod: Pod, kind: str, start_ms: float, duration_ms: float) -> dict[str, Any]:
    destination = call.destination
    assert destination is not None
    span: dict[str, Any] = {
        "traceId": call.request.trace_id,
        "id": call.span_id,
        "kind": kind,
        # Istio's operation name: the route's cluster host and port.
        "name": f"{destination.host}:{destination.port}/*",
        "timestamp": _ms_to_us(call.request.origin_ms + start_ms),
        "duration": max(1, _ms_to_us(duration_ms)),
        "localEndpoint": {"serviceName": service_cluster(pod), "ipv4": pod.pod_ip},
    }
    if parent:
        span["parentId"] = parent
    return span


def _zipkin_client(call: Call, parent: str) -> dict[str, Any]:
    source, destination = call.source, call.destination
    assert destination is not None
    span = _zipkin_span(call, parent, source, "CLIENT", call.start_ms, call.duration_ms)
    tags = _proxy_tags(call, source)
    tags["peer.address"] = call.request.client_ip if source.gateway else source.pod_ip
    cluster = f"outbound|{destination.port}|{call.subset}|{destination.host}"
    tags["upstream_cluster"] = cluster
    tags["upstream_cluster.name"] = cluster
    tags["response_flags"] = call.response_flags
    if call.upstream_port:
        tags["upstream_address"] = f"{destination.pod_ip}:{destination.port}"
    span["tags"] = tags
    return span


def _zipkin_server(call: Call, parent: str) -> dict[str, Any]:
    destination = call.destination
    assert destination is not None and call.server_start_ms is not None
    span = _zipkin_span(call, parent, destination, "SERVER", call.server_start_ms, call.server_duration_ms)
    span["shared"] = True
    tags = _proxy_tags(call, destination)
    tags["peer.address"] = call.source.pod_ip
    tags["upstream_cluster"] = tags["upstream_cluster.name"] = f"inbound|{destination.port}||"
    tags["upstream_address"] = f"{destination.pod_ip}:{destination.port}"
    tags["response_flags"] = "-"
    span["tags"] = tags
    return span


def _ns(call: Call, ms: float) -> int:
    return int((call.request.origin_ms + ms) * _MS_NS)


def _app_server(call: Call) -> AppSpan:
    """The server app's span for a call that reached it: it ends just before the server proxy's."""
    destination = call.destination
    assert destination is not None and call.server_start_ms is not None
    end_ms = call.server_start_ms + call.server_duration_ms - 0.1
    start_ms = end_ms - call.server_service_ms
    route = call.path.partition("?")[0]
    attributes: dict[str, str | int] = {
        "http.request.method": call.method,
        "url.path": call.path,
        "url.scheme": "http",
        "http.route": route,
        "http.response.status_code": call.response_code,
        "server.address": destination.service,
        "server.port": destination.port,
        "network.peer.address": call.source.pod_ip,
    }
    if call.user_agent and call.user_agent != "-":
        attributes["user_agent.original"] = call.user_agent
    return AppSpan(
        app=destination.app,
        name=f"{call.method} {route}",
        kind="server",
        trace_id=call.request.trace_id,
        span_id=derived_span_id(call.span_id, "app-server"),
        parent_span_id=call.span_id,
        start_ns=_ns(call, start_ms),
        end_ns=_ns(call, end_ms),
        attributes=attributes,
        error=call.response_code >= 500,
    )


_QUERY_NAME = f"SELECT {_DB_NAME}.ratings"
_QUERY_ATTRIBUTES: dict[str, str | int] = {
    "db.system": "mysql",
    "db.name": _DB_NAME,
    "db.operation": "SELECT",
    "db.statement": "SELECT * FROM ratings WHERE product_id = ?",
    "server.address": MYSQLDB.service,
    "server.port": MYSQLDB.port,
    "peer.service": MYSQLDB.service,
}


def _pooled_query(inbound: Call) -> AppSpan:
    """ratings' query over an already open connection: near the end of its work (which lasts >= 0.8 ms)."""
    assert inbound.server_start_ms is not None
    end_ms = inbound.server_start_ms + inbound.server_duration_ms - 0.1 - 0.3
    return AppSpan(
        app=RATINGS.app,
        name=_QUERY_NAME,
        kind="client",
        trace_id=inbound.request.trace_id,
        span_id=derived_span_id(inbound.span_id, "pooled-query"),
        parent_span_id=derived_span_id(inbound.span_id, "app-server"),
        start_ns=_ns(inbound, end_ms - 0.3),
        end_ns=_ns(inbound, end_ms),
        attributes=dict(_QUERY_ATTRIBUTES),
    )


def _app_client(call: Call, serving: dict[str, Call]) -> AppSpan | None:
    """The calling app's span for one of its calls: HTTP, gRPC, an external host, or its database."""
    inbound = serving.get(call.source.workload)
    if inbound is None:
        return None
    parent = derived_span_id(inbound.span_id, "app-server")
    destination = call.destination
    attributes: dict[str, str | int]
    if call.protocol == "tcp" and destination is MYSQLDB:
        name, attributes, error = _QUERY_NAME, dict(_QUERY_ATTRIBUTES), False
    elif call.external is not None:
        name = "GET"
        attributes = {
            "http.request.method": "GET",
            "url.full": f"https://{call.external.host}/v1/books",
            "server.address": call.external.host,
            "server.port": call.external.port,
            "http.response.status_code": 200,
        }
        error = False
    elif destination is not None and call.protocol == "grpc":
        service, _, method = call.path.strip("/").partition("/")
        name = f"{service}/{method}"
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
            "rpc.grpc.status_code": int(call.grpc_status or "2"),
            "server.address": destination.service,
            "server.port": destination.port,
            "peer.service": destination.service,
        }
        error = _failed(call)
    elif destination is not None:
        name = call.method
        attributes = {
            "http.request.method": call.method,
            "url.full": f"http://{call.authority}{call.path}",
            "server.address": destination.service,
            "server.port": destination.port,
            "http.response.status_code": call.response_code,
            "peer.service": destination.service,
        }
        error = _failed(call)
    else:
        return None
    return AppSpan(
        app=call.source.app,
        name=name,
        kind="client",
        trace_id=call.request.trace_id,
        span_id=derived_span_id(call.span_id or _tcp_id(call), "app-client"),
        parent_span_id=parent,
        start_ns=_ns(call, call.start_ms - _CLIENT_MARGIN_MS),
        end_ns=_ns(call, call.start_ms + call.duration_ms + _CLIENT_MARGIN_MS),
        attributes=attributes,
        error=error,
    )
