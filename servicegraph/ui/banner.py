"""The banner over the page: what the collector (or this UI) cannot reach, one plain line each.

It reads /api/status's ``unreachable`` list ([{name, detail, since}], SelfStats.unreachable) and, for a
UI over another meshscope's API, whether that API answers at all. Each line names the backend, says
why in the words its component reported, and since when; never a traceback. No line, no banner.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from dash import html
from dash.development.base_component import Component

from telemetry.reasons import short_reason

# Dependency names as components report them -> what the banner calls them.
NAMES = {
    "prometheus": "Prometheus (graph source)",
    "otlp": "OTLP trace export (Jaeger)",
    "zipkin": "Zipkin trace export",
    "fluentd": "Fluentd (log forwarding)",
    "elasticsearch": "Elasticsearch (log sink)",
    "graph_api": "The graph API",
}
MAX_DETAIL = 200  # characters of a reason; a component's reason is short already, this is a backstop


def banner_lines(status: Mapping[str, Any] | None, api_error: str = "") -> list[str]:
    """One line per unreachable backend; ``api_error``: the UI's own graph API did not answer."""
    lines = []
    if api_error:
        lines.append(_line("graph_api", api_error, None))
    entries = status.get("unreachable") if status else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("name"):
            since = entry.get("since")
            lines.append(_line(str(entry["name"]), str(entry.get("detail") or ""), since))
    return lines


def banner(status: Mapping[str, Any] | None, api_error: str = "") -> tuple[list[Component], bool]:
    """The banner's children and whether it is hidden."""
    lines = banner_lines(status, api_error)
    if not lines:
        return [], True
    return [html.Strong("⚠ Unreachable"), html.Ul([html.Li(line) for line in lines])], False


def _line(name: str, detail: str, since: object) -> str:
    detail = short_reason(detail, MAX_DETAIL)
    when = _since(since)
    return f"{NAMES.get(name, name)}: {detail or 'no answer'}{when}"


def _since(since: object) -> str:
    """ " (since HH:MM:SS UTC)", or "" when ``since`` is not a usable Unix time: a remote API sent it."""
    if isinstance(since, bool) or not isinstance(since, int | float) or not math.isfinite(since) or since <= 0:
        return ""
    try:
        return f" (since {dt.datetime.fromtimestamp(since, dt.UTC):%H:%M:%S} UTC)"
    except (OverflowError, ValueError, OSError):
        return ""
