"""One service (variables ``namespace`` and ``service``): what its callers see against what it serves.

The client side is the callers' proxies (``reporter="source"``), the server side the service's own
(``reporter="destination"``); a gap between them is traffic lost or delayed between the two, or a fault
injected by the client's proxy. Inbound is broken down by caller, outbound (calls the service's own
workloads make, found by their canonical service) by destination.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import units

from dashboards.common import (
    CALLER,
    CALLER_LEGEND,
    DESTINATION,
    DESTINATION_LEGEND,
    DESTINATION_SERVICE,
    DURATION,
    NOT_SERVER_ERROR,
    QUANTILES,
    REQUESTS,
    SOURCE,
    UID_SERVICE,
    label_values,
    new_dashboard,
    numbered,
    quantile,
    query_variable,
    row,
    share,
    sum_rate,
    timeseries_panel,
)

ANY_MESH_METRIC = '{__name__=~"istio_requests_total|istio_tcp_connections_opened_total"}'
SERVED = 'destination_service_namespace=~"$namespace"', 'destination_service_name=~"$service"'
CALLING = 'source_workload_namespace=~"$namespace"', 'source_canonical_service=~"$service"'


def build() -> dashboard.Dashboard:
    namespace = query_variable("namespace", "Namespace", label_values(ANY_MESH_METRIC, "destination_service_namespace"))
    service = query_variable(
        "service",
        "Service",
        label_values(
            '{__name__=~"istio_requests_total|istio_tcp_connections_opened_total", '
            'destination_service_namespace=~"$namespace"}',
            "destination_service_name",
        ),
    )
    return (
        new_dashboard(
            UID_SERVICE,
            "meshscope / Service",
            "One service: client side against server side, inbound by caller, outbound by destination, TCP.",
        )  # fmt: skip
        .with_variable(namespace)
        .with_variable(service)
        .with_row(row("Client side against server side"))
        .with_panel(
            timeseries_panel(
                "Requests by reporter",
                "Requests per second to the service as the callers' proxies (source) and the service's own "
                "proxies (destination) counted them. Equal lines mean every call reached the service.",
                units.RequestsPerSecond,
                numbered([(sum_rate(REQUESTS, SERVED, ["reporter"]), "{{reporter}}")]),
            )
        )
        .with_panel(
            timeseries_panel(
                "Success rate by reporter",
                "Share of requests not answered with a 5xx (or unanswered), per reporter. A lower client-side "
                "line means failures between the proxies, or faults injected by the callers' proxies.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, SERVED, NOT_SERVER_ERROR, ["reporter"]),
                            "{{reporter}}",
                        )
                    ]
                ),
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency by reporter",
                "p50, p95 and p99 request duration per reporter. The client side includes the network and "
                "any delay injected by the callers' proxies.",
                units.Milliseconds,
                numbered(
                    [
                        (quantile(q, DURATION, SERVED, ["reporter"]), f"p{round(q * 100)} {{{{reporter}}}}")
                        for q in QUANTILES
                    ]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests by response code",
                "Requests per second by response code and reporter.",
                units.RequestsPerSecond,
                numbered(
                    [(sum_rate(REQUESTS, SERVED, ["response_code", "reporter"]), "{{response_code}} ({{reporter}})")]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests by serving workload",
                "Requests per second per workload behind the service (its versions), server side.",
                units.RequestsPerSecond,
                numbered(
                    [(sum_rate(REQUESTS, [*SERVED, DESTINATION], ["destination_workload"]), "{{destination_workload}}")]
                ),
                width=24,
            )
        )
        .with_row(row("Inbound by source"))
        .with_panel(
            timeseries_panel(
                "Incoming requests by source",
                "Requests per second to the service by calling workload, server side.",
                units.RequestsPerSecond,
                numbered(
                    [
                        (
                            sum_rate(REQUESTS, [*SERVED, DESTINATION], CALLER),
                            CALLER_LEGEND,
                        )
                    ]
                ),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming success rate by source",
                "Share of each caller's requests not answered with a 5xx, server side.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, [*SERVED, DESTINATION], NOT_SERVER_ERROR, CALLER),
                            CALLER_LEGEND,
                        )
                    ]
                ),
                width=8,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming p95 latency by source",
                "95th percentile request duration per caller, server side.",
                units.Milliseconds,
                numbered(
                    [
                        (
                            quantile(0.95, DURATION, [*SERVED, DESTINATION], CALLER),
                            CALLER_LEGEND,
                        )
                    ]
                ),
                width=8,
            )
        )
        .with_row(row("Outbound by destination"))
        .with_panel(
            timeseries_panel(
                "Outgoing requests by destination",
                "Requests per second the service's workloads send, by destination service, client side.",
                units.RequestsPerSecond,
                numbered(
                    [
                        (
                            sum_rate(REQUESTS, [*CALLING, SOURCE], DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing success rate by destination",
                "Share of the service's outgoing requests not answered with a 5xx, by destination, client side.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, [*CALLING, SOURCE], NOT_SERVER_ERROR, DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                width=8,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing p95 latency by destination",
                "95th percentile duration of the service's outgoing requests, by destination, client side.",
                units.Milliseconds,
                numbered(
                    [
                        (
                            quantile(0.95, DURATION, [*CALLING, SOURCE], DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                width=8,
            )
        )
        .with_row(row("TCP"))
        .with_panel(
            timeseries_panel(
                "Incoming TCP bytes by source",
                "Bytes per second received by and sent from the service on TCP connections, by caller "
                "(server side, or client side for a service without a proxy).",
                units.BytesPerSecondSI,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_received_bytes_total", SERVED, ["source_workload", "reporter"]),
                            "received from {{source_workload}} ({{reporter}})",
                        ),
                        (
                            sum_rate("istio_tcp_sent_bytes_total", SERVED, ["source_workload", "reporter"]),
                            "sent to {{source_workload}} ({{reporter}})",
                        ),
                    ]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing TCP bytes by destination",
                "Bytes per second the service's workloads send and receive on TCP connections (databases, "
                "external hosts), by destination, client side.",
                units.BytesPerSecondSI,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_sent_bytes_total", [*CALLING, SOURCE], DESTINATION_SERVICE),
                            "sent to {{destination_service_name}}",
                        ),
                        (
                            sum_rate("istio_tcp_received_bytes_total", [*CALLING, SOURCE], DESTINATION_SERVICE),
                            "received from {{destination_service_name}}",
                        ),
                    ]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "TCP connections opened",
                "New TCP connections per second to the service (by caller) and from its workloads (by destination).",
                units.OpsPerSecond,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_connections_opened_total", [*SERVED, DESTINATION], ["source_workload"]),
                            "from {{source_workload}}",
                        ),
                        (
                            sum_rate(
                                "istio_tcp_connections_opened_total", [*CALLING, SOURCE], ["destination_service_name"]
                            ),
                            "to {{destination_service_name}}",
                        ),
                    ]
                ),
                width=24,
            )
        )
    )
