"""What every meshscope dashboard shares: the datasource variable, PromQL helpers and panel builders.

Every panel reads the Prometheus chosen by the ``datasource`` variable, has a unit and a description,
and its range vectors use ``$__rate_interval`` (time series) or ``$__range`` (instant tables and bar
gauges that summarise the dashboard's whole time range).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import bargauge, dashboard, nodegraph, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
RATE = "$__rate_interval"
RANGE = "$__range"
ALL = "$__all"
TAGS = ["meshscope", "istio"]

# The dashboards the UI links to (servicegraph/ui/links.py) and the others, by uid.
UID_MESH = "meshscope-mesh"
UID_SERVICE = "meshscope-service"
UID_WORKLOAD = "meshscope-workload"
UID_SERVICEGRAPH = "meshscope-servicegraph"
UID_SELF = "meshscope-self"

# Errors as the live graph counts them: HTTP 5xx and no response at all (code 0); gRPC non-OK is added
# with an `or` where a query needs it (a selector cannot OR two labels).
SERVER_ERROR = 'response_code=~"5..|0"'
CLIENT_ERROR = 'response_code=~"4.."'
NOT_SERVER_ERROR = 'response_code!~"5..|0"'
SOURCE = 'reporter="source"'
DESTINATION = 'reporter="destination"'
MTLS = 'connection_security_policy="mutual_tls"'

# Istio's request metrics and the groupings and legends the per-service and per-workload dashboards share.
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
QUANTILES = (0.5, 0.95, 0.99)
CALLER = ("source_workload", "source_workload_namespace")
CALLER_LEGEND = "{{source_workload}}.{{source_workload_namespace}}"
DESTINATION_SERVICE = ("destination_service_name", "destination_service_namespace")
DESTINATION_LEGEND = "{{destination_service_name}}.{{destination_service_namespace}}"

P = TypeVar("P", bound=Builder[model.Panel])


def selector(*matchers: str) -> str:
    """``{a, b}`` from the non-empty matchers; "" when there are none."""
    present = [matcher for matcher in matchers if matcher]
    return "{" + ", ".join(present) + "}" if present else ""


def rate(metric: str, matchers: Sequence[str], window: str = RATE) -> str:
    return f"rate({metric}{selector(*matchers)}[{window}])"


def sum_rate(metric: str, matchers: Sequence[str], by: Sequence[str] = (), window: str = RATE) -> str:
    grouping = f" by ({', '.join(by)}) " if by else ""
    return f"sum{grouping}({rate(metric, matchers, window)})"


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n{denominator}"


def share(metric: str, matchers: Sequence[str], condition: str, by: Sequence[str] = (), window: str = RATE) -> str:
    """The share of ``metric``'s rate that also meets ``condition`` (a success rate, an mTLS share)."""
    return ratio(sum_rate(metric, [*matchers, condition], by, window), sum_rate(metric, matchers, by, window))


def quantile(q: float, metric: str, matchers: Sequence[str], by: Sequence[str] = (), window: str = RATE) -> str:
    """``histogram_quantile`` over a classic histogram's buckets summed by ``by`` (and le)."""
    return f"histogram_quantile({q}, {sum_rate(f'{metric}_bucket', matchers, (*by, 'le'), window)})"


def label_values(metric_selector: str, label: str) -> str:
    return f"label_values({metric_selector}, {label})"


# -- variables ---------------------------------------------------------------------------------------


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")


def query_variable(name: str, label: str, query: str, include_all: bool = False) -> dashboard.QueryVariable:
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(DATASOURCE)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if include_all:
        # All is ".*" (not Grafana's list of values) so that a label the series lack still matches, and
        # it is the default, so a link that sets only some variables (var-app without var-workload) works.
        variable = (
            variable.include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value=ALL))
        )
    return variable


# -- queries -----------------------------------------------------------------------------------------


def target(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref_id).range()


def table_target(expr: str, ref_id: str) -> prometheus.Dataquery:
    """An instant query read as a table: one row per series, a column per label and ``Value #<ref_id>``."""
    return prometheus.Dataquery().expr(expr).ref_id(ref_id).instant().format(PromQueryFormat.TABLE)


def numbered(queries: Sequence[tuple[str, str]]) -> list[prometheus.Dataquery]:
    """Range queries (expr, legend) with ref ids A, B, C..."""
    return [target(expr, legend, chr(ord("A") + index)) for index, (expr, legend) in enumerate(queries)]


# -- panels ------------------------------------------------------------------------------------------


def _common(panel: P, title: str, description: str, unit: str, width: int, height: int) -> P:
    """What every panel sets. The SDK's panel builders share these methods (and return themselves)
    without sharing a base class, hence the untyped call."""
    builder: Any = panel
    builder.title(title).description(description).unit(unit).datasource(DATASOURCE).span(width).height(height)
    return panel


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    width: int = 12,
    height: int = 8,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .targets(list(targets))
        .min(0)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if max_value is not None:
        panel = panel.max(max_value)
    return _common(panel, title, description, unit, width, height)


def stat_panel(
    title: str, description: str, unit: str, expr: str, counts_events: bool = True, width: int = 6, height: int = 4
) -> stat.Panel:
    """A single figure, the query's last value. A rate of events that has no series yet shows 0 (its
    counter is born with the first event); a ratio without data shows "No data", never a made-up 0."""
    panel = (
        stat.Panel()
        .with_target(target(expr, title))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if counts_events:
        panel = panel.no_value("0")
    return _common(panel, title, description, unit, width, height)


def top_panel(title: str, description: str, unit: str, expr: str, legend: str, width: int = 12) -> bargauge.Panel:
    """A bar per series of an instant query (a ``topk`` over the dashboard's range)."""
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id("A").instant()
    panel = bargauge.Panel().with_target(query).reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    return _common(panel, title, description, unit, width, 8)


def table_panel(
    title: str,
    description: str,
    columns: Sequence[tuple[str, str, str, str]],
    keep: Sequence[str],
    width: int = 24,
    height: int = 8,
) -> table.Panel:
    """One row per label set; ``columns`` are (ref id, expr, column title, unit), ``keep`` the label columns."""
    panel = table.Panel().targets([table_target(expr, ref_id) for ref_id, expr, _, _ in columns])
    rename = {f"Value #{ref_id}": name for ref_id, _, name, _ in columns}
    order = {label: index for index, label in enumerate(keep)}
    order.update({f"Value #{ref_id}": len(keep) + index for index, (ref_id, _, _, _) in enumerate(columns)})
    panel = panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={})).with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {"Time": True},
                "renameByName": rename,
                "indexByName": order,
                "includeByName": {label: True for label in (*keep, *rename)},
            },
        )
    )
    for _, _, name, unit in columns:
        panel = panel.override_by_name(name, [model.DynamicConfigValue(id_val="unit", value=unit)])
    return _common(panel, title, description, "short", width, height)


def node_graph_panel(
    title: str, description: str, nodes_expr: str, edges_expr: str, unit: str, width: int = 24, height: int = 14
) -> nodegraph.Panel:
    """Grafana's node graph from two instant table queries.

    The panel takes frames whose refId is ``nodes`` and ``edges``, and reads fields by name: nodes need
    ``id`` (and show ``title``, ``mainstat``), edges ``id``, ``source``, ``target`` (and ``mainstat``).
    The queries build the id/title/source/target labels in PromQL (label_replace, label_join); the
    transformations drop Time and name the value column ``mainstat``, whichever name Grafana gave it
    ("Value", or "Value #nodes" when a response holds several frames).
    """
    panel = (
        nodegraph.Panel()
        .targets([table_target(nodes_expr, "nodes"), table_target(edges_expr, "edges")])
        .with_transformation(
            model.DataTransformerConfig(
                id_val="renameByRegex", options={"regex": "^Value( #.*)?$", "renamePattern": "mainstat"}
            )
        )
        .with_transformation(model.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}}))
        .nodes(nodegraph.NodeOptions().main_stat_unit(unit))
        .edges(nodegraph.EdgeOptions().main_stat_unit(unit))
    )
    return _common(panel, title, description, unit, width, height)


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)


# -- the dashboard -----------------------------------------------------------------------------------


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .time("now-30m", "now")
        .refresh("30s")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .timezone("browser")
        # Grafana's built-in annotations, written out: an empty "annotations" object is not a valid list.
        .annotation(
            dashboard.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .built_in(1)
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
        )
        .with_variable(datasource_variable())
        .link(
            dashboard.DashboardLink("meshscope dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["meshscope"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


def render(builder: dashboard.Dashboard) -> str:
    """The dashboard's JSON as committed: panel ids numbered in order, keys sorted, a final newline."""
    built = builder.build()
    next_id = 1
    for panel in built.panels or []:
        panel.id_val = next_id
        next_id += 1
        for inner in getattr(panel, "panels", None) or []:  # panels of a collapsed row
            inner.id_val = next_id
            next_id += 1
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
