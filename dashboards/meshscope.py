"""meshscope itself: what its receivers took in, what could not be parsed, what it queued, dropped and
failed to export, and how big its graph is; per collector (``instance``) when several are scraped."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import units

from dashboards.common import (
    UID_SELF,
    label_values,
    new_dashboard,
    numbered,
    query_variable,
    row,
    stat_panel,
    sum_rate,
    timeseries_panel,
)

INSTANCE = 'instance=~"$instance"'
# Drops that lose data, as against the bounded caches' evictions, which are by design.
LOST = 'stage=~"pipeline|sink:.+|exporter:.+"'


def build() -> dashboard.Dashboard:
    instance = query_variable(
        "instance", "Collector", label_values("meshscope_records_received_total", "instance"), include_all=True
    )
    return (
        new_dashboard(
            UID_SELF,
            "meshscope / Collector",
            "The collector's own health: ingest, parse errors, queues, drops, export failures, graph size.",
        )  # fmt: skip
        .with_variable(instance)
        .with_row(row("Health"))
        .with_panel(
            stat_panel(
                "Records in",
                "Records per second accepted from every receiver.",
                units.RecordsPerSecond,
                sum_rate("meshscope_records_received_total", [INSTANCE]),
            )
        )
        .with_panel(
            stat_panel(
                "Parse errors",
                "Inputs per second that could not be turned into a record (all receivers and reasons).",
                units.CountsPerSecond,
                sum_rate("meshscope_parse_errors_total", [INSTANCE]),
            )
        )
        .with_panel(
            stat_panel(
                "Records lost",
                "Records per second dropped by the pipeline, a sink or an exporter (queue full, gave up, "
                "rejected, shutdown). Bounded caches' evictions are not counted here.",
                units.RecordsPerSecond,
                sum_rate("meshscope_dropped_total", [INSTANCE, LOST]),
            )
        )
        .with_panel(
            stat_panel(
                "Export failures",
                "Failed export attempts per second, every exporter (retries included).",
                units.CountsPerSecond,
                sum_rate("meshscope_export_failures_total", [INSTANCE]),
            )
        )
        .with_row(row("Ingest"))
        .with_panel(
            timeseries_panel(
                "Records received by receiver",
                "Records per second accepted from each receiver (filelog, als, otlp, zipkin).",
                units.RecordsPerSecond,
                numbered([(sum_rate("meshscope_records_received_total", [INSTANCE], ["receiver"]), "{{receiver}}")]),
            )
        )
        .with_panel(
            timeseries_panel(
                "Parse errors by reason",
                "Inputs per second that could not be parsed, by receiver and reason.",
                units.CountsPerSecond,
                numbered(
                    [
                        (
                            sum_rate("meshscope_parse_errors_total", [INSTANCE], ["receiver", "reason"]),
                            "{{receiver}}: {{reason}}",
                        )
                    ]
                ),
            )
        )
        .with_row(row("Queues, drops, exports"))
        .with_panel(
            timeseries_panel(
                "Queue depth",
                "Items waiting in each bounded queue (the pipeline's and each exporter's); a queue that "
                "stays full drops with reason queue_full.",
                units.Short,
                numbered([('max by (stage) (meshscope_queue_depth{instance=~"$instance"})', "{{stage}}")]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Drops by stage and reason",
                "Records, spans, series or cache entries dropped per second, by stage and reason. Evictions "
                "from bounded caches (peers, trace_ids, recent_traces, span_pairs/evicted) are by design.",
                units.CountsPerSecond,
                numbered(
                    [(sum_rate("meshscope_dropped_total", [INSTANCE], ["stage", "reason"]), "{{stage}}/{{reason}}")]
                ),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Exports",
                "Items delivered per second by each exporter, and failed attempts by exporter and reason.",
                units.CountsPerSecond,
                numbered(
                    [
                        (sum_rate("meshscope_exported_total", [INSTANCE], ["exporter"]), "{{exporter}} delivered"),
                        (
                            sum_rate("meshscope_export_failures_total", [INSTANCE], ["exporter", "reason"]),
                            "{{exporter}} failed: {{reason}}",
                        ),
                    ]
                ),
                width=8,
            )
        )
        .with_row(row("Graph size"))
        .with_panel(
            timeseries_panel(
                "Graph series by table",
                "Label sets the live graph holds, per table (http, tcp, spans): its memory grows with these.",
                units.Short,
                numbered([('sum by (table) (meshscope_graph_series{instance=~"$instance"})', "{{table}}")]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Span pairs waiting",
                "Spans stored waiting for their partner (bounded by the pairer's max_items).",
                units.Short,
                numbered([('sum(meshscope_span_pairs_waiting{instance=~"$instance"})', "waiting")]),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Series folded by the cardinality cap",
                "Records per second whose label set was folded into the overflow series because a metric "
                "reached its series cap.",
                units.RecordsPerSecond,
                numbered([(sum_rate("meshscope_metric_series_overflow_total", [INSTANCE], ["metric"]), "{{metric}}")]),
                width=8,
            )
        )
    )
