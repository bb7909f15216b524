"""The queries inside generated dashboards, and Grafana's variables substituted into them.

What a check of the dashboards against a Prometheus needs: every panel's targets (with the panel's
title and the target's refId, to name them), every query variable's ``label_values(selector, label)``,
and PromQL with ``$__rate_interval``, ``$__range`` and the template variables replaced by values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>[A-Za-z_][A-Za-z0-9_]*)\)$", re.DOTALL)
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)\}|\$(?P<plain>\w+)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str
    instant: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dashboard, self.panel, self.ref_id)


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    selector: str  # "" for every series
    label: str


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, including the panels of collapsed rows."""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(board: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(board["uid"], panel["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def variable_queries(board: Mapping[str, Any]) -> list[VariableQuery]:
    found = []
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"].strip())
        if match is None:
            raise ValueError(f"{board['uid']}: variable {variable['name']}: not label_values(...): {variable['query']}")
        found.append(VariableQuery(board["uid"], variable["name"], match["selector"] or "", match["label"]))
    return found


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with ``$name`` and ``${name}`` replaced from ``variables``; unknown names are left as they
    are (Grafana does the same, which is why ``label_replace``'s ``$1`` survives)."""

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        return variables.get(name, match[0])

    return _VARIABLE.sub(replace, expr)
