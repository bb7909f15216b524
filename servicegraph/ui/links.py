"""Links out of the UI: a trace in Jaeger or Zipkin, a node's Grafana dashboard.

Grafana dashboards are found by uid (the dashboards under dashboards/ must use these):

- ``meshscope-mesh``: the whole mesh; for nodes no other dashboard describes (external hosts,
  databases, brokers, unknown callers);
- ``meshscope-service``: one service, ``var-namespace`` and ``var-service``;
- ``meshscope-workload``: one workload, ``var-namespace`` and ``var-workload``; for app nodes
  ``var-app`` (and ``var-version`` for a versioned app) instead of ``var-workload``.

Every link carries the UI's window as Grafana's time range (``from=now-5m&to=now``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from servicegraph.durations import parse_duration
from servicegraph.model import APP, GATEWAY, SERVICE, WORKLOAD

DASHBOARD_MESH = "meshscope-mesh"
DASHBOARD_SERVICE = "meshscope-service"
DASHBOARD_WORKLOAD = "meshscope-workload"


def jaeger_trace(jaeger_url: str, trace_id: str) -> str | None:
    return f"{jaeger_url.rstrip('/')}/trace/{urllib.parse.quote(trace_id)}" if jaeger_url and trace_id else None


def zipkin_trace(zipkin_url: str, trace_id: str) -> str | None:
    return f"{zipkin_url.rstrip('/')}/zipkin/traces/{urllib.parse.quote(trace_id)}" if zipkin_url and trace_id else None


def grafana_dashboard(grafana_url: str, node: Mapping[str, Any], window: str) -> str | None:
    """The dashboard that describes ``node`` (a node's attributes from the API), or None without Grafana."""
    if not grafana_url:
        return None
    kind = node.get("kind")
    namespace = str(node.get("namespace") or "")
    variables: dict[str, str] = {}
    if kind in (WORKLOAD, GATEWAY) and node.get("workload"):
        uid = DASHBOARD_WORKLOAD
        variables = {"var-namespace": namespace, "var-workload": str(node["workload"])}
    elif kind == APP and node.get("app"):
        uid = DASHBOARD_WORKLOAD
        variables = {"var-namespace": namespace, "var-app": str(node["app"])}
        if node.get("version"):
            variables["var-version"] = str(node["version"])
    elif kind == SERVICE and node.get("service"):
        uid = DASHBOARD_SERVICE
        variables = {"var-namespace": namespace, "var-service": str(node["service"])}
    else:
        uid = DASHBOARD_MESH
    query = urllib.parse.urlencode({**variables, "from": f"now-{_grafana_span(window)}", "to": "now"})
    return f"{grafana_url.rstrip('/')}/d/{uid}?{query}"


def _grafana_span(window: str) -> str:
    # Grafana's relative times take one unit: 90s stays "90s", never "1m30s".
    seconds = int(round(parse_duration(window)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
