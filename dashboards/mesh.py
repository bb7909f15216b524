"""Mesh overview: the whole mesh's request volume, success, errors and latency, and its busiest services.

Every call is counted once, by the caller's proxy (``reporter="source"``), as Istio's mesh dashboard
does; calls from outside the mesh, which have no client-side proxy, are in the service dashboards.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import units

from dashboards.common import (
    CLIENT_ERROR,
    DESTINATION_LEGEND,
    DURATION,
    NOT_SERVER_ERROR,
    RANGE,
    REQUESTS,
    SERVER_ERROR,
    SOURCE,
    UID_MESH,
    new_dashboard,
    numbered,
    quantile,
    rate,
    row,
    share,
    stat_panel,
    sum_rate,
    table_panel,
    timeseries_panel,
    top_panel,
)

SERVICE = ("destination_service_name", "destination_service_namespace")


def build() -> dashboard.Dashboard:
    success = share(REQUESTS, [SOURCE], NOT_SERVER_ERROR)
    return (
        new_dashboard(UID_MESH, "meshscope / Mesh overview", "The whole mesh: volume, success, errors, latency.")
        .with_row(row("Mesh"))
        .with_panel(
            stat_panel(
                "Request volume",
                "Requests per second across the mesh, counted once by the caller's proxy (reporter=source).",
                units.RequestsPerSecond,
                sum_rate(REQUESTS, [SOURCE]),
            )
        )
        .with_panel(
            stat_panel(
                "Success rate",
                "Share of requests not answered with a 5xx (or no response at all), as Istio counts success.",
                units.PercentUnit,
                success,
                counts_events=False,
            )
        )
        .with_panel(
            stat_panel(
                "4xx",
                "Requests per second answered with a 4xx: the callers' mistakes (bad requests, not found).",
                units.RequestsPerSecond,
                sum_rate(REQUESTS, [SOURCE, CLIENT_ERROR]),
            )
        )
        .with_panel(
            stat_panel(
                "5xx",
                "Requests per second answered with a 5xx or not answered (code 0): the mesh's failures, "
                "including faults injected by the proxies (response flag FI).",
                units.RequestsPerSecond,
                sum_rate(REQUESTS, [SOURCE, SERVER_ERROR]),
            )
        )
        .with_row(row("Traffic"))
        .with_panel(
            timeseries_panel(
                "Requests by response class",
                "Requests per second by the first digit of the response code (2xx, 4xx, 5xx...).",
                units.RequestsPerSecond,
                numbered(
                    [
                        (
                            f"sum by (response_class) (label_replace({rate(REQUESTS, [SOURCE])}, "
                            '"response_class", "${1}xx", "response_code", "([0-9]).."))',
                            "{{response_class}}",
                        )
                    ]
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency p50 / p95 / p99",
                "Request duration quantiles across the mesh, from the callers' histograms (Istio's buckets, "
                "interpolated as histogram_quantile does).",
                units.Milliseconds,
                numbered([(quantile(q, DURATION, [SOURCE]), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)]),
            )
        )
        .with_panel(
            timeseries_panel(
                "Success rate by service",
                "Share of each service's requests not answered with a 5xx, seen by the callers.",
                units.PercentUnit,
                numbered(
                    [
                        (
                            share(REQUESTS, [SOURCE], NOT_SERVER_ERROR, SERVICE),
                            DESTINATION_LEGEND,
                        )
                    ]
                ),
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "TCP traffic by service",
                "Bytes per second sent and received on TCP connections, by destination service (databases, "
                "hosts reached through PassthroughCluster).",
                units.BytesPerSecondSI,
                numbered(
                    [
                        (
                            sum_rate("istio_tcp_sent_bytes_total", [SOURCE], SERVICE),
                            "sent to {{destination_service_name}}",
                        ),
                        (
                            sum_rate("istio_tcp_received_bytes_total", [SOURCE], SERVICE),
                            "received from {{destination_service_name}}",
                        ),
                    ]
                ),
            )
        )
        .with_row(row("Services"))
        .with_panel(
            top_panel(
                "Top services by request rate",
                "The ten services with the most requests per second over the dashboard's time range.",
                units.RequestsPerSecond,
                f"topk(10, {sum_rate(REQUESTS, [SOURCE], SERVICE, RANGE)})",
                DESTINATION_LEGEND,
            )
        )
        .with_panel(
            top_panel(
                "Top services by errors",
                "The ten services with the most 5xx (or unanswered) requests per second over the time range.",
                units.RequestsPerSecond,
                f"topk(10, {sum_rate(REQUESTS, [SOURCE, SERVER_ERROR], SERVICE, RANGE)})",
                DESTINATION_LEGEND,
            )
        )
        .with_panel(
            table_panel(
                "Services",
                "Every service called in the time range: request rate, success rate and latency quantiles, "
                "as the callers saw them.",
                [
                    ("rps", sum_rate(REQUESTS, [SOURCE], SERVICE, RANGE), "Requests/s", units.RequestsPerSecond),
                    (
                        "success",
                        share(REQUESTS, [SOURCE], NOT_SERVER_ERROR, SERVICE, RANGE),
                        "Success",
                        units.PercentUnit,
                    ),
                    ("p50", quantile(0.5, DURATION, [SOURCE], SERVICE, RANGE), "p50", units.Milliseconds),
                    ("p95", quantile(0.95, DURATION, [SOURCE], SERVICE, RANGE), "p95", units.Milliseconds),
                    ("p99", quantile(0.99, DURATION, [SOURCE], SERVICE, RANGE), "p99", units.Milliseconds),
                ],
                SERVICE,
            )
        )
    )
