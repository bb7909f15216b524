"""Service graph: Grafana's node graph from the servicegraph connector's metrics (and one from Istio's).

Span pairs (``traces_service_graph_*``) name services as the spans do (``client``, ``server``) and add
what the mesh cannot see: databases, brokers, uninstrumented peers. The second graph draws the mesh's
own traffic (``istio_requests_total``, callers' side) between canonical services.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import units

from dashboards.common import (
    RANGE,
    SOURCE,
    UID_SERVICEGRAPH,
    new_dashboard,
    node_graph_panel,
    numbered,
    quantile,
    rate,
    ratio,
    row,
    sum_rate,
    table_panel,
    timeseries_panel,
)

REQUESTS = "traces_service_graph_request_total"
FAILED = "traces_service_graph_request_failed_total"
SERVER_SECONDS = "traces_service_graph_request_server_seconds"
EDGE = ("client", "server", "connection_type")


def _copy_label(vector: str, target: str, source: str) -> str:
    return f'label_replace({vector}, "{target}", "$1", "{source}", "(.*)")'


def node_query(metric: str, matchers: Sequence[str], source: str, target: str) -> str:
    """One row per node, ``id`` and ``title`` its name, the value what it received; callers that receive
    nothing are nodes too, with 0."""

    def named(label: str) -> str:
        node = _copy_label(_copy_label(rate(metric, matchers, RANGE), "id", label), "title", label)
        return f"sum by (id, title) ({node})"

    return f"{named(target)}\nor\n{named(source)} * 0"


def edge_query(metric: str, matchers: Sequence[str], source: str, target: str) -> str:
    """One row per edge: ``source``, ``target``, ``id`` = source->target, the value its request rate."""
    edge = _copy_label(_copy_label(rate(metric, matchers, RANGE), "source", source), "target", target)
    return f'label_join(sum by (source, target) ({edge}), "id", "->", "source", "target")'


def build() -> dashboard.Dashboard:
    edge_legend = "{{client}} → {{server}}"
    return (
        new_dashboard(UID_SERVICEGRAPH, "meshscope / Service graph", "Who calls whom: span pairs and mesh traffic.")
        .with_row(row("From span pairs (servicegraph connector metrics)"))
        .with_panel(
            node_graph_panel(
                "Service graph (span pairs)",
                "Services as the spans name them, and what the mesh cannot see (databases, brokers, "
                "uninstrumented peers). Node and edge figures: requests per second over the time range.",
                node_query(REQUESTS, [], "client", "server"),
                edge_query(REQUESTS, [], "client", "server"),
                units.RequestsPerSecond,
            )
        )
        .with_panel(
            table_panel(
                "Edges (span pairs)",
                "Every client → server pair over the time range: request rate, failed share and the "
                "server's p95 duration.",
                [
                    ("rps", sum_rate(REQUESTS, [], EDGE, RANGE), "Requests/s", units.RequestsPerSecond),
                    (
                        "failed",
                        ratio(sum_rate(FAILED, [], EDGE, RANGE), sum_rate(REQUESTS, [], EDGE, RANGE)),
                        "Failed",
                        units.PercentUnit,
                    ),
                    ("p95", quantile(0.95, SERVER_SECONDS, [], EDGE, RANGE), "Server p95", units.Seconds),
                ],
                EDGE,
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests by edge",
                "Paired client/server requests per second, by edge.",
                units.RequestsPerSecond,
                numbered([(sum_rate(REQUESTS, [], ["client", "server"]), edge_legend)]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Failed requests by edge",
                "Paired requests per second where either span had an error status, by edge.",
                units.RequestsPerSecond,
                numbered([(sum_rate(FAILED, [], ["client", "server"]), edge_legend)]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Server p95 latency by edge",
                "95th percentile of the server span's duration, by edge.",
                units.Seconds,
                numbered([(quantile(0.95, SERVER_SECONDS, [], ["client", "server"]), edge_legend)]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Unpaired and dropped spans",
                "Spans per second that expired without a partner (by the side that was seen) and spans the "
                "pairer could not store because its store was full.",
                units.CountsPerSecond,
                numbered(
                    [
                        (
                            sum_rate("traces_service_graph_unpaired_spans_total", [], ["client", "server"]),
                            "unpaired {{client}}{{server}}",
                        ),
                        (sum_rate("traces_service_graph_dropped_spans_total", []), "dropped (store full)"),
                    ]
                ),
                width=24,
            )
        )
        .with_row(row("From mesh traffic (Istio metrics)"))
        .with_panel(
            node_graph_panel(
                "Service graph (mesh traffic)",
                "Calls between canonical services as the callers' proxies reported them "
                "(istio_requests_total, reporter=source). Figures: requests per second over the time range.",
                node_query("istio_requests_total", [SOURCE], "source_canonical_service", "destination_service_name"),
                edge_query("istio_requests_total", [SOURCE], "source_canonical_service", "destination_service_name"),
                units.RequestsPerSecond,
            )
        )
    )
