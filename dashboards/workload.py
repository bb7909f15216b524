"""One workload (variables ``namespace``, ``workload``; or ``app`` and ``version`` for an app's workloads).

Inbound is what the workload's own proxy saw serving (``reporter="destination"``), outbound what it saw
calling (``reporter="source"``). mTLS is known only on the server side, so the outbound mTLS share is
read from the destinations' proxies' reports of calls from this workload.
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
    MTLS,
    NOT_SERVER_ERROR,
    QUANTILES,
    REQUESTS,
    SOURCE,
    UID_WORKLOAD,
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

ANY_MESH_METRIC = '__name__=~"istio_requests_total|istio_tcp_connections_opened_total"'
SERVING = (
    'destination_workload_namespace=~"$namespace"',
    'destination_workload=~"$workload"',
    'destination_app=~"$app"',
    'destination_version=~"$version"',
)
CALLING = (
    'source_workload_namespace=~"$namespace"',
    'source_workload=~"$workload"',
    'source_app=~"$app"',
    'source_version=~"$version"',
)


def _variables() -> list[dashboard.QueryVariable]:
    scope = f'{ANY_MESH_METRIC}, destination_workload_namespace=~"$namespace"'
    return [
        query_variable(
            "namespace", "Namespace", label_values("{" + ANY_MESH_METRIC + "}", "destination_workload_namespace")
        ),
        query_variable("app", "App", label_values("{" + scope + "}", "destination_app"), include_all=True),
        query_variable(
            "version",
            "Version",
            label_values("{" + scope + ', destination_app=~"$app"}', "destination_version"),
            include_all=True,
        ),
        query_variable(
            "workload",
            "Workload",
            label_values(
                "{" + scope + ', destination_app=~"$app", destination_version=~"$version"}', "destination_workload"
            ),
            include_all=True,
        ),
    ]


def build() -> dashboard.Dashboard:
    board = new_dashboard(
        UID_WORKLOAD, "meshscope / Workload", "One workload (or an app's workloads): inbound and outbound "
        "requests, response codes, mTLS share, TCP."
    )  # fmt: skip
    for variable in _variables():
        board = board.with_variable(variable)
    inbound = [*SERVING, DESTINATION]
    outbound = [*CALLING, SOURCE]
    return (
        board.with_row(row("Inbound"))
        .with_panel(
            timeseries_panel(
                "Incoming requests by source",
                "Requests per second the workload served, by calling workload.",
                units.RequestsPerSecond,
                numbered([(sum_rate(REQUESTS, inbound, CALLER), CALLER_LEGEND)]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming requests by response code",
                "Requests per second the workload served, by the response code it gave.",
                units.RequestsPerSecond,
                numbered([(sum_rate(REQUESTS, inbound, ["response_code"]), "{{response_code}}")]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming mTLS share",
                "Share of the requests the workload served over mutual TLS (connection_security_policy).",
                units.PercentUnit,
                numbered([(share(REQUESTS, inbound, MTLS), "mTLS")]),
                width=8,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming success rate by source",
                "Share of each caller's requests the workload did not answer with a 5xx.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, inbound, NOT_SERVER_ERROR, CALLER),
                            CALLER_LEGEND,
                        )
                    ]
                ),
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Incoming latency",
                "p50, p95 and p99 duration of the requests the workload served, measured by its own proxy.",
                units.Milliseconds,
                numbered([(quantile(q, DURATION, inbound), f"p{round(q * 100)}") for q in QUANTILES]),
            )
        )
        .with_row(row("Outbound"))
        .with_panel(
            timeseries_panel(
                "Outgoing requests by destination",
                "Requests per second the workload sent, by destination service.",
                units.RequestsPerSecond,
                numbered(
                    [
                        (
                            sum_rate(REQUESTS, outbound, DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing requests by response code",
                "Requests per second the workload sent, by the response code it got back.",
                units.RequestsPerSecond,
                numbered([(sum_rate(REQUESTS, outbound, ["response_code"]), "{{response_code}}")]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing mTLS share",
                "Share of the workload's calls that arrived over mutual TLS, as the destinations' proxies "
                "reported them (the calling side does not know).",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, [*CALLING, DESTINATION], MTLS),
                            "mTLS",
                        )
                    ]
                ),
                width=8,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing success rate by destination",
                "Share of the workload's calls not answered with a 5xx, by destination service.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, outbound, NOT_SERVER_ERROR, DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing p95 latency by destination",
                "95th percentile duration of the workload's calls, by destination service, as its proxy saw them.",
                units.Milliseconds,
                numbered(
                    [
                        (
                            quantile(0.95, DURATION, outbound, DESTINATION_SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
            )
        )
        .with_row(row("TCP"))
        .with_panel(
            timeseries_panel(
                "Incoming TCP bytes by source",
                "Bytes per second the workload received and sent on TCP connections it served, by caller.",
                units.BytesPerSecondSI,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_received_bytes_total", inbound, ["source_workload"]),
                            "received from {{source_workload}}",
                        ),
                        (
                            sum_rate("istio_tcp_sent_bytes_total", inbound, ["source_workload"]),
                            "sent to {{source_workload}}",
                        ),
                    ]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Outgoing TCP bytes by destination",
                "Bytes per second the workload sent and received on TCP connections it opened, by destination.",
                units.BytesPerSecondSI,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_sent_bytes_total", outbound, ["destination_service_name"]),
                            "sent to {{destination_service_name}}",
                        ),
                        (
                            sum_rate("istio_tcp_received_bytes_total", outbound, ["destination_service_name"]),
                            "received from {{destination_service_name}}",
                        ),
                    ]
                ),
            )
        )
    )
