"""The side panel of a clicked node or edge: figures, charts, breakdowns, neighbours, traces, links."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import plotly.graph_objects as go
from dash import html
from dash.development.base_component import Component

from servicegraph.ui import formatting
from servicegraph.ui.breakdowns import BREAKDOWNS, inbound_edges, ranked, summed
from servicegraph.ui.charts import series_figure
from servicegraph.ui.elements import HEALTH_MARKS
from servicegraph.ui.links import grafana_dashboard, jaeger_trace, zipkin_trace
from servicegraph.ui.settings import UiSettings

MAX_FAILURE_LINES = 20


@dataclass
class PanelView:
    """The panel's sections. The page keeps one element per section and updates each in place; ``keys``
    change only when a section's content does, so the sections people tab into (the neighbour buttons,
    the trace links) are not redrawn under their keyboard focus with every refresh."""

    head: list[Component]
    figures: list[Component]
    chart: go.Figure | None
    breakdowns: list[Component]
    traces: list[Component]
    nav: list[Component]
    keys: dict[str, str] = field(default_factory=dict)


def node_panel(detail: Mapping[str, Any], graph: Mapping[str, Any], window: str, settings: UiSettings) -> PanelView:
    node = detail["node"]
    names = _nodes_by_id(graph)
    inbound = detail.get("inbound") or []
    outbound = detail.get("outbound") or []
    title = str(node.get("name") or node["id"])
    subtitle = f"{node.get('kind', 'node')} · {node.get('namespace') or 'no namespace'}"
    health = str(node.get("health", ""))
    link = grafana_dashboard(settings.grafana_url, node, window)
    nav = [_neighbours("Inbound", inbound, names), _neighbours("Outbound", outbound, names)]
    if link:
        nav.append(_links([("Grafana dashboard", link)]))
    series = detail.get("series") or []
    received = inbound_edges(graph, node["id"])
    return PanelView(
        head=[_heading(title, subtitle), _health_line(health)],
        figures=[_figures(node, "tcp" if _only_tcp(received) else "http")],
        chart=series_figure({"": series}) if series else None,
        breakdowns=[_breakdowns(summed(received), "received")],
        traces=[html.P("Select an edge for its recent traces and failing requests.", className="hint")],
        nav=nav,
        keys={
            "head": _key(node["id"], title, subtitle, health),
            "traces": "node",
            "nav": _key(node["id"], inbound, outbound, link, [_name(n, names) for n in inbound + outbound]),
        },
    )


def edge_panel(detail: Mapping[str, Any], graph: Mapping[str, Any], window: str, settings: UiSettings) -> PanelView:
    edges = detail.get("edges") or []
    names = _nodes_by_id(graph)
    source, target = (edges[0]["source"], edges[0]["target"]) if edges else ("?", "?")
    health = max((str(edge.get("health", "")) for edge in edges), key=_severity, default="")
    protocols = ", ".join(str(edge.get("protocol", "")) for edge in edges)
    title = f"{_name(source, names)} → {_name(target, names)}"
    figures: list[Component] = []
    for edge in edges:
        if len(edges) > 1:
            figures.append(html.H3(str(edge.get("protocol", "")).upper(), className="protocol"))
        figures.append(_figures(edge, str(edge.get("protocol", ""))))
    links = []
    for label, node_id in (("Grafana: source", source), ("Grafana: destination", target)):
        link = grafana_dashboard(settings.grafana_url, names.get(node_id, {"id": node_id}), window)
        if link:
            links.append((label, link))
    nav = [_neighbours("Ends", [source, target], names)] + ([_links(links)] if links else [])
    series = detail.get("series") or {}
    traces, failures = detail.get("traces"), detail.get("failures")
    return PanelView(
        head=[_heading(title, f"edge · {protocols}"), _health_line(health)],
        figures=figures,
        chart=series_figure(series) if any(series.values()) else None,
        breakdowns=[_breakdowns(summed(edges), "on this edge")],
        traces=[_traces(traces, settings), _failures(failures)],
        nav=nav,
        keys={
            "head": _key(source, target, title, protocols, health),
            "traces": _key(source, target, traces, failures),
            "nav": _key(source, target, links, _name(source, names), _name(target, names)),
        },
    )


def message_panel(title: str, message: str) -> PanelView:
    return PanelView(
        head=[html.H2(title, id="panel-title"), html.P(message, className="error", role="alert")],
        figures=[],
        chart=None,
        breakdowns=[],
        traces=[],
        nav=[],
        keys={"head": _key(title, message)},
    )


def _key(*parts: Any) -> str:
    return hashlib.blake2b(orjson.dumps(parts, default=str), digest_size=8).hexdigest()


def _nodes_by_id(graph: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        element["data"]["id"]: element["data"]
        for element in graph.get("elements") or []
        if "source" not in element["data"]
    }


def _name(node_id: str, names: Mapping[str, Mapping[str, Any]]) -> str:
    node = names.get(node_id)
    return str(node.get("name") or node_id) if node else node_id


def _severity(health: str) -> int:
    return {"idle": 0, "healthy": 1, "degraded": 2, "failing": 3}.get(health, 0)


def _only_tcp(edges: Sequence[Mapping[str, Any]]) -> bool:
    return bool(edges) and all(edge.get("protocol") == "tcp" for edge in edges)


def _heading(title: str, subtitle: str) -> Component:
    return html.Div(
        [html.H2(title, id="panel-title"), html.P(subtitle, className="subtitle")], className="panel-heading"
    )


def _health_line(health: str) -> Component:
    mark = HEALTH_MARKS.get(health, " ✔" if health == "healthy" else "").strip()
    return html.P([html.Span(f"{mark} {health}".strip(), className=f"health health-{health}")], className="health-line")


def _figures(attrs: Mapping[str, Any], protocol: str) -> Component:
    rows = [
        ("Request rate" if protocol != "tcp" else "Connection rate", formatting.rate(attrs.get("rps"), protocol)),
        ("Errors", formatting.percent(attrs.get("error_pct"))),
        ("Client errors (4xx)", formatting.percent(attrs.get("client_error_pct"))),
        ("Latency p50", formatting.millis(attrs.get("p50_ms"))),
        ("Latency p95", formatting.millis(attrs.get("p95_ms"))),
        ("Latency p99", formatting.millis(attrs.get("p99_ms"))),
        ("mTLS", formatting.percent(attrs.get("mtls_pct"))),
        ("Sent", formatting.bytes_rate(attrs.get("bytes_sent_per_s"))),
        ("Received", formatting.bytes_rate(attrs.get("bytes_received_per_s"))),
    ]
    if "out_rps" in attrs:
        rows.append(("Outbound rate", formatting.rate(attrs.get("out_rps"), protocol)))
        rows.append(("Outbound errors", formatting.percent(attrs.get("out_error_pct"))))
    items: list[Component] = []
    for label, value in rows:
        items += [html.Dt(label), html.Dd(value)]
    return html.Dl(items, className="figures")


def _breakdowns(totals: Mapping[str, Mapping[str, float]], what: str) -> Component:
    tables: list[Component] = []
    for name, title in BREAKDOWNS.items():
        rows = ranked(totals.get(name) or {})
        if not rows:
            continue
        body = [
            html.Tr([html.Td(key), html.Td(formatting.number(count)), html.Td(formatting.percent(share))])
            for key, count, share in rows
        ]
        head = html.Thead(
            html.Tr([html.Th(title, scope="col"), html.Th("Requests", scope="col"), html.Th("Share", scope="col")])
        )
        tables.append(html.Table([head, html.Tbody(body)], className="breakdown"))
    if not tables:
        return html.P(f"No response codes {what} in this window.", className="hint")
    return html.Div(tables, className="breakdowns")


def _neighbours(title: str, node_ids: Sequence[str], names: Mapping[str, Mapping[str, Any]]) -> Component:
    if not node_ids:
        return html.Div([html.H3(title), html.P("none", className="hint")])
    buttons = [
        html.Li(
            html.Button(
                _name(node_id, names), id={"type": "neighbour", "node": node_id}, className="link-button", title=node_id
            )
        )
        for node_id in node_ids
    ]
    return html.Div([html.H3(title), html.Ul(buttons, className="neighbours")])


def _traces(traces: Any, settings: UiSettings) -> Component:
    if not isinstance(traces, Mapping):
        return html.Div([html.H3("Recent traces"), html.P("This source records no traces.", className="hint")])
    sections: list[Component] = [html.H3("Recent traces")]
    for key, title in (("slowest", "Slowest"), ("failed", "Failed")):
        refs = traces.get(key) or []
        if not refs:
            sections.append(html.P(f"{title}: none in this window.", className="hint"))
            continue
        rows = [_trace_row(ref, settings) for ref in refs]
        head = html.Thead(html.Tr([html.Th(h, scope="col") for h in (title, "Duration", "Code", "Started", "Open in")]))
        sections.append(html.Table([head, html.Tbody(rows)], className=f"traces traces-{key}"))
    return html.Div(sections)


def _trace_row(ref: Mapping[str, Any], settings: UiSettings) -> Component:
    trace_id = str(ref.get("trace_id", ""))
    links: list[Component] = []
    for label, url in (
        ("Jaeger", jaeger_trace(settings.jaeger_url, trace_id)),
        ("Zipkin", zipkin_trace(settings.zipkin_url, trace_id)),
    ):
        if url:
            links += [html.A(label, href=url, target="_blank", rel="noopener"), " "]
    code = str(ref.get("response_code", ""))
    error = " ✖" if ref.get("error") else ""
    return html.Tr(
        [
            html.Td(html.Code(trace_id[:16], title=trace_id)),
            html.Td(formatting.millis(ref.get("duration_ms"))),
            html.Td(code + error),
            html.Td(str(ref.get("start_time", ""))[:23]),
            html.Td(links),
        ]
    )


def _failures(failures: Any) -> Component:
    title = html.H3("Recent failing requests")
    if not isinstance(failures, list):
        return html.Div([title, html.P("This source keeps no access-log lines.", className="hint")])
    if not failures:
        return html.Div([title, html.P("None in this window.", className="hint")])
    lines = [html.Li(html.Code(_failure_text(failure))) for failure in failures[:MAX_FAILURE_LINES]]
    return html.Div([title, html.Ul(lines, className="failures")])


def _failure_text(failure: Any) -> str:
    if isinstance(failure, str):
        return failure
    if isinstance(failure, Mapping):
        for key in ("line", "message"):
            if isinstance(failure.get(key), str):
                return str(failure[key])
        return " ".join(f"{key}={value}" for key, value in failure.items())
    return orjson.dumps(failure).decode()


def _links(links: Sequence[tuple[str, str]]) -> Component:
    return html.P(
        [html.A(label, href=url, target="_blank", rel="noopener", className="out-link") for label, url in links],
        className="links",
    )
