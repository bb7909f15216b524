"""Calls become access-log entries: what each proxy on a call writes, as ``EnvoyFields`` values.

The client proxy writes the outbound entry, the server proxy the inbound one (when the call reached
it); addresses are laid out as Istio's sidecars print them, so the two entries of one call meet at
the client proxy's upstream local address (= the server proxy's downstream remote address).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

from telemetry.demo.config import DemoConfig
from telemetry.demo.simulate import HTTP2, HTTP11, Call, RequestContext, Simulator
from telemetry.demo.topology import Pod

SOURCE = "source"
DESTINATION = "destination"
# Istio's inbound listener connects to the app from this address.
INBOUND_PASSTHROUGH_IP = "127.0.0.6"
# 2024-01-01T00:00:00Z: where generate() puts its first request unless told otherwise.
DEFAULT_EPOCH_MS = 1_704_067_200_000.0


class LogEntry(NamedTuple):
    pod: Pod  # the proxy that wrote it
    reporter: str  # "source" (client side) | "destination" (server side)
    fields: dict[str, str]  # EnvoyFields name -> text; absent fields are left out
    call: Call
    start_ms: float  # wall-clock epoch ms


class _StartTimes:
    """Envoy's default START_TIME (``2024-01-01T00:00:00.123Z``); the date part is cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, epoch_ms: float) -> str:
        whole = int(epoch_ms)
        second, millis = divmod(whole, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{millis:03d}Z"


def _sni(call: Call) -> str:
    destination = call.destination
    assert destination is not None
    return f"outbound_.{destination.port}_.{call.subset}_.{destination.host}"


def _common(call: Call, start: str, duration_ms: float) -> dict[str, str]:
    fields = {"start_time": start, "duration": str(int(duration_ms))}
    if call.protocol == "tcp":
        fields["response_code"] = "0"
    else:
        fields.update(
            method=call.method,
            path=call.path,
            protocol=HTTP2 if call.protocol == "grpc" else HTTP11,
            response_code=str(call.response_code),
            request_id=call.request.request_id,
            authority=call.authority,
            trace_id=call.request.trace_id,
            span_id=call.span_id,
        )
        if call.user_agent and call.user_agent != "-":
            fields["user_agent"] = call.user_agent
        if call.x_forwarded_for:
            fields["x_forwarded_for"] = call.x_forwarded_for
        if call.grpc_status:
            fields["grpc_status"] = call.grpc_status
    fields["bytes_received"] = str(call.bytes_received)
    fields["bytes_sent"] = str(call.bytes_sent)
    return fields


def client_fields(call: Call, start: str) -> dict[str, str]:
    source = call.source
    fields = _common(call, start, call.duration_ms)
    fields["response_flags"] = call.response_flags
    if call.response_code_details:
        fields["response_code_details"] = call.response_code_details
    if call.upstream_service_ms is not None:
        fields["upstream_service_time"] = str(int(call.upstream_service_ms))
    if source.gateway:
        fields["downstream_local_address"] = f"{source.pod_ip}:{source.port}"
        fields["downstream_remote_address"] = f"{call.request.client_ip}:{call.downstream_port}"
    else:
        target_ip = call.external.ip if call.external is not None else call.destination.service_ip  # type: ignore[union-attr]
        fields["downstream_local_address"] = f"{target_ip}:{call.service_port}"
        fields["downstream_remote_address"] = f"{source.pod_ip}:{call.downstream_port}"
    if call.external is not None:
        fields["upstream_cluster"] = "PassthroughCluster"
        fields["upstream_host"] = f"{call.external.ip}:{call.external.port}"
        fields["upstream_local_address"] = f"{source.pod_ip}:{call.upstream_port}"
        # The app's own TLS handshake names the host; the proxy logs it as the requested server name.
        fields["requested_server_name"] = call.external.host
        return fields
    destination = call.destination
    assert destination is not None
    fields["upstream_cluster"] = f"outbound|{destination.port}|{call.subset}|{destination.host}"
    if call.protocol != "tcp":
        fields["route_name"] = "default"
    if call.upstream_port:
        # A fault abort never picks a host; a refused connection did pick one, but has no local address.
        fields["upstream_host"] = f"{destination.pod_ip}:{destination.port}"
        fields["upstream_local_address"] = f"{source.pod_ip}:{call.upstream_port}"
        fields["upstream_peer_uri_san"] = destination.principal
    elif call.response_flags != "-" and "UF" in call.response_flags:
        fields["upstream_host"] = f"{destination.pod_ip}:{destination.port}"
    return fields


def server_fields(call: Call, start: str) -> dict[str, str]:
    source, destination = call.source, call.destination
    assert destination is not None
    fields = _common(call, start, call.server_duration_ms)
    fields["response_flags"] = "-"
    if call.protocol != "tcp":
        fields["response_code_details"] = "via_upstream"
        fields["upstream_service_time"] = str(int(call.server_service_ms))
        fields["route_name"] = "default"
    fields["upstream_host"] = f"{destination.pod_ip}:{destination.port}"
    fields["upstream_cluster"] = f"inbound|{destination.port}||"
    fields["upstream_local_address"] = f"{INBOUND_PASSTHROUGH_IP}:{call.inbound_port}"
    fields["downstream_local_address"] = f"{destination.pod_ip}:{destination.port}"
    fields["downstream_remote_address"] = f"{source.pod_ip}:{call.upstream_port}"
    fields["requested_server_name"] = _sni(call)
    fields["downstream_peer_uri_san"] = source.principal
    return fields


def entries_of(calls: list[Call], start_time: _StartTimes) -> Iterator[LogEntry]:
    """Each call's entries, server side first (a server finishes before its client does)."""
    for call in calls:
        origin = call.request.origin_ms
        if call.server_start_ms is not None:
            start_ms = origin + call.server_start_ms
            assert call.destination is not None
            yield LogEntry(
                call.destination,
                DESTINATION,
                server_fields(call, start_time(start_ms)),
                call,
                start_ms,
            )
        start_ms = origin + call.start_ms
        yield LogEntry(
            call.source,
            SOURCE,
            client_fields(call, start_time(start_ms)),
            call,
            start_ms,
        )


def request_duration_ms(calls: list[Call]) -> float:
    """How long the gateway took: its call is the last one to finish."""
    return calls[-1].duration_ms


class EntryGenerator:
    """Gateway requests -> log entries, deterministic for a config's seed."""

    def __init__(self, config: DemoConfig) -> None:
        self._simulator = Simulator(config)
        self._start_times = _StartTimes()

    def request(self, at_ms: float, *, finishing: bool = False) -> list[LogEntry]:
        """One request's entries: it starts at ``at_ms`` (epoch ms), or finishes then if ``finishing``."""
        calls = self._simulator.request()
        context: RequestContext = calls[-1].request
        context.origin_ms = at_ms - request_duration_ms(calls) if finishing else at_ms
        return list(entries_of(calls, self._start_times))


def generate(n: int, config: DemoConfig | None = None, start_ms: float = DEFAULT_EPOCH_MS) -> list[LogEntry]:
    """``n`` gateway requests' entries, without threads or files; the same for the same config.

    Requests start ``1 / config.rate`` seconds apart from ``start_ms`` (epoch ms).
    """
    config = config or DemoConfig()
    generator = EntryGenerator(config)
    spacing = 1000.0 / config.rate
    entries: list[LogEntry] = []
    for index in range(n):
        entries.extend(generator.request(start_ms + index * spacing))
    return entries
