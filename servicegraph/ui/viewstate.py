"""What a view of the graph is (graph type, namespaces, window, refresh, filters, labels, layout) and
its URL query string, so a view can be bookmarked and shared.

Reading is forgiving: an unknown or malformed value falls back to the default rather than
breaking the page, since URLs get hand-edited.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field, fields, replace
from typing import Any

from servicegraph.model import GRAPH_TYPES
from servicegraph.ui.elements import EDGE_LABELS
from servicegraph.ui.layouts import DEFAULT_LAYOUT, LAYOUTS

REFRESH_CHOICES: tuple[float, ...] = (2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class ViewState:
    graph_type: str = "workload"
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    window: str = "5m"
    refresh: float = 5.0  # seconds
    paused: bool = False
    hide_idle: bool = False
    find: str = ""
    hide: str = ""
    edge_label: str = "rps"
    layout: str = DEFAULT_LAYOUT


# field name -> URL key
_KEYS = {
    "graph_type": "type",
    "namespaces": "ns",
    "window": "window",
    "refresh": "refresh",
    "paused": "paused",
    "hide_idle": "idle",
    "find": "find",
    "hide": "hide",
    "edge_label": "labels",
    "layout": "layout",
}


def to_query(state: ViewState, defaults: ViewState) -> str:
    """``?type=app&ns=default,shop&find=rt%3E500``: only what differs from the defaults, in a fixed order."""
    pairs = []
    for item in fields(ViewState):
        value = getattr(state, item.name)
        if value == getattr(defaults, item.name):
            continue
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, tuple):
            text = ",".join(value)
        elif isinstance(value, float):
            text = f"{value:g}"
        else:
            text = str(value)
        pairs.append((_KEYS[item.name], text))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def from_query(search: str | None, defaults: ViewState, windows: list[str]) -> ViewState:
    args = dict(urllib.parse.parse_qsl((search or "").removeprefix("?"), keep_blank_values=True))
    state = defaults
    graph_type = args.get(_KEYS["graph_type"])
    if graph_type in GRAPH_TYPES:
        state = replace(state, graph_type=graph_type)
    if _KEYS["namespaces"] in args:
        names = (name.strip() for name in args[_KEYS["namespaces"]].split(","))
        state = replace(state, namespaces=tuple(sorted({name for name in names if name})))
    if args.get(_KEYS["window"]) in windows:
        state = replace(state, window=args[_KEYS["window"]])
    refresh = _number(args.get(_KEYS["refresh"]))
    if refresh is not None and 0.5 <= refresh <= 3600:
        state = replace(state, refresh=refresh)
    for name in ("paused", "hide_idle"):
        raw = args.get(_KEYS[name])
        if raw in ("1", "0"):
            state = replace(state, **{name: raw == "1"})
    for name in ("find", "hide"):
        if _KEYS[name] in args:
            state = replace(state, **{name: args[_KEYS[name]]})
    if args.get(_KEYS["edge_label"]) in EDGE_LABELS:
        state = replace(state, edge_label=args[_KEYS["edge_label"]])
    if args.get(_KEYS["layout"]) in LAYOUTS:
        state = replace(state, layout=args[_KEYS["layout"]])
    return state


def _number(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


# The page's controls in ViewState's field order, with the property holding each one's value; switches
# (dcc.Checklist) hold ["on"] or [].
CONTROLS = (
    ("graph-type", "value"),
    ("namespaces", "value"),
    ("window", "value"),
    ("refresh", "value"),
    ("paused", "value"),
    ("hide-idle", "value"),
    ("find", "value"),
    ("hide", "value"),
    ("edge-labels", "value"),
    ("layout", "value"),
)


def view_of_controls(values: tuple[Any, ...], defaults: ViewState) -> ViewState:
    graph_type, namespaces, window, refresh, paused, hide_idle, find, hide, edge_label, layout = values
    return ViewState(
        graph_type=graph_type or defaults.graph_type,
        namespaces=tuple(sorted(namespaces or ())),
        window=window or defaults.window,
        refresh=float(refresh or defaults.refresh),
        paused=bool(paused) and "on" in paused,
        hide_idle=bool(hide_idle) and "on" in hide_idle,
        find=find or "",
        hide=hide or "",
        edge_label=edge_label or defaults.edge_label,
        layout=layout or defaults.layout,
    )


def controls_of_view(view: ViewState) -> tuple[Any, ...]:
    return (
        view.graph_type,
        list(view.namespaces),
        view.window,
        view.refresh,
        ["on"] if view.paused else [],
        ["on"] if view.hide_idle else [],
        view.find,
        view.hide,
        view.edge_label,
        view.layout,
    )


def refresh_choices(configured: float) -> list[float]:
    return sorted({*REFRESH_CHOICES, configured})
