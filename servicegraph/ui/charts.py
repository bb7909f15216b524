"""The side panel's chart: rate, error % and p50/p95/p99 latency over the window, one row each."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_ROWS = (("Rate (/s)", ("rps",)), ("Errors (%)", ("error_pct",)), ("Latency (ms)", ("p50_ms", "p95_ms", "p99_ms")))
_DASHES = {"p50_ms": "dot", "p95_ms": "solid", "p99_ms": "dash"}
_COLOURS = ("#0066cc", "#8a3ffc", "#009d9a", "#b28600")


def plotly_text(text: str) -> str:
    """``text`` shown as it is: Plotly reads tags such as <b> and <a href> in legend and hover text."""
    return html.escape(text, quote=False)


def series_figure(series: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """``series``: name (a protocol, or "" for a node) -> the API's points (``start``, ``end``, figures)."""
    figure = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, subplot_titles=[title for title, _ in _ROWS]
    )
    for position, (name, points) in enumerate(sorted(series.items())):
        colour = _COLOURS[position % len(_COLOURS)]
        times = [dt.datetime.fromtimestamp(point["end"]) for point in points]
        for row, (_, figures) in enumerate(_ROWS, start=1):
            for figure_name in figures:
                label = figure_name.removesuffix("_ms") if figure_name.endswith("_ms") else figure_name
                figure.add_trace(
                    go.Scatter(
                        x=times,
                        y=[point.get(figure_name) for point in points],
                        name=plotly_text(f"{name} {label}".strip()),
                        mode="lines+markers",
                        marker={"size": 6},
                        line={"color": colour, "dash": _DASHES.get(figure_name, "solid"), "width": 1.6},
                        showlegend=row == 3 or len(series) > 1 and row == 1,
                        legendgroup=f"{name}{figure_name}",
                    ),
                    row=row,
                    col=1,
                )
    figure.update_layout(
        height=430,
        margin={"l": 48, "r": 8, "t": 24, "b": 24},
        legend={"orientation": "h", "y": -0.08, "font": {"size": 10}},
        font={"size": 10},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        hovermode="x unified",
    )
    figure.update_yaxes(rangemode="tozero", gridcolor="#e5e5e5")
    starts = [point["start"] for points in series.values() for point in points]
    ends = [point["end"] for points in series.values() for point in points]
    # The whole window on the axis, however few points have data yet.
    pad = (max(ends) - min(starts)) * 0.03 if starts else 0.0
    span = (
        [dt.datetime.fromtimestamp(min(starts) - pad), dt.datetime.fromtimestamp(max(ends) + pad)] if starts else None
    )
    figure.update_xaxes(gridcolor="#f0f0f0", range=span)
    figure.update_annotations(font={"size": 11})
    return figure
