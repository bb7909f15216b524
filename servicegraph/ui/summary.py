"""The summary bar: the mesh's totals and the collector's own health."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import html
from dash.development.base_component import Component

from servicegraph.ui import formatting

MAX_ERROR = 240  # characters of a graph read's error in the bar


def summary_items(
    summary: Mapping[str, Any] | None, status: Mapping[str, Any] | None, error: str = ""
) -> list[Component]:
    items: list[Component] = []
    if error:
        items.append(_item("Graph", f"✖ {_one_line(error)}", "bad"))
    if summary is not None:
        success = summary.get("success_pct")
        degraded = int(summary.get("nodes_degraded") or 0)
        failing = int(summary.get("nodes_failing") or 0)
        items += [
            _item("Traffic", formatting.rate(float(summary.get("rps") or 0.0))),
            _item(
                "Success", formatting.percent(success) if success is not None else "no requests", _success_tone(success)
            ),
            _item("Degraded", f"{degraded}{' ⚠' if degraded else ''}", "warn" if degraded else ""),
            _item("Failing", f"{failing}{' ✖' if failing else ''}", "bad" if failing else ""),
            _item("Graph", f"{summary.get('nodes', 0)} nodes · {summary.get('edges', 0)} edges"),
        ]
    items.append(_collector(status))
    return items


def _one_line(text: str, limit: int = MAX_ERROR) -> str:
    # An upstream's error may carry its whole query or a body: the bar keeps one readable line.
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _success_tone(success: float | None) -> str:
    if success is None:
        return ""
    return "bad" if success < 90 else "warn" if success < 100 else ""


def _collector(status: Mapping[str, Any] | None) -> Component:
    if status is None:
        return _item("Collector", "health unknown")
    parse_errors = float(status.get("parse_errors_per_s") or 0.0)
    drops = float(status.get("drops_per_s") or 0.0)
    text = (
        f"{formatting.number(float(status.get('records_per_s') or 0.0))} records/s · "
        f"{formatting.number(parse_errors)} parse errors/s · {formatting.number(drops)} drops/s"
    )
    tone = "bad" if drops else "warn" if parse_errors else ""
    return _item("Collector", text + (" ⚠" if tone else ""), tone)


def _item(label: str, value: str, tone: str = "") -> Component:
    return html.Span(
        [html.Span(label, className="summary-label"), html.Span(value, className="summary-value")],
        className=f"summary-item {tone}".strip(),
    )
