"""Query parameters of the graph API, read strictly: a bad value is a 400 that says which and why."""

from __future__ import annotations

from collections.abc import Mapping

from servicegraph.builder import GraphOptions
from servicegraph.durations import parse_duration
from servicegraph.health import HealthConfig
from servicegraph.model import GRAPH_TYPES, GraphType

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class BadRequest(ValueError):
    pass


def window_of(args: Mapping[str, str], default: float, name: str = "window") -> float:
    raw = args.get(name)
    if raw is None:
        return default
    try:
        return parse_duration(raw, name)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def flag_of(args: Mapping[str, str], name: str) -> bool:
    raw = args.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise BadRequest(f"{name}: expected 1 or 0, got {raw!r}")


def graph_type_of(args: Mapping[str, str], default: GraphType = "workload") -> GraphType:
    raw = args.get("graph_type", default)
    if raw not in GRAPH_TYPES:
        raise BadRequest(f"graph_type: expected one of {', '.join(GRAPH_TYPES)}, got {raw!r}")
    return raw  # type: ignore[return-value]


def options_of(args: Mapping[str, str], health: HealthConfig) -> GraphOptions:
    namespaces = frozenset(part.strip() for part in args.get("namespace", "").split(",") if part.strip())
    return GraphOptions(graph_type_of(args), namespaces, flag_of(args, "hide_idle"), health)
