"""The summary bar: mesh totals, unhealthy node counts, the collector's own health."""

from __future__ import annotations

from typing import Any

from dash import html

from servicegraph.ui.summary import summary_items

SUMMARY = {"rps": 170.26, "success_pct": 98.83, "nodes": 16, "edges": 19, "nodes_degraded": 1, "nodes_failing": 0}


def items(summary: dict[str, Any] | None, status: dict[str, Any] | None, error: str = "") -> dict[str, tuple[str, str]]:
    found = {}
    for item in summary_items(summary, status, error):
        assert isinstance(item, html.Span)
        label, value = item.children
        found[label.children] = (value.children, item.className)
    return found


def test_the_bar_shows_rate_success_and_unhealthy_nodes_with_marks() -> None:
    bar = items(SUMMARY, None)
    assert bar["Traffic"][0] == "170 rps" and bar["Success"][0] == "98.8%"
    assert bar["Degraded"] == ("1 ⚠", "summary-item warn") and bar["Failing"] == ("0", "summary-item")
    assert bar["Graph"][0] == "16 nodes · 19 edges"


def test_no_requests_is_said_rather_than_a_success_rate() -> None:
    assert items({**SUMMARY, "success_pct": None}, None)["Success"][0] == "no requests"


def test_collector_health_is_unknown_without_a_status_endpoint() -> None:
    assert items(SUMMARY, None)["Collector"][0] == "health unknown"


def test_collector_drops_and_parse_errors_are_flagged() -> None:
    status = {"records_per_s": 1234.5, "parse_errors_per_s": 0.5, "drops_per_s": 0.0}
    assert items(SUMMARY, status)["Collector"] == (
        "1,234 records/s · 0.5 parse errors/s · 0 drops/s ⚠",
        "summary-item warn",
    )
    dropping = {**status, "drops_per_s": 12.0}
    assert items(SUMMARY, dropping)["Collector"][1] == "summary-item bad"


def test_a_failed_graph_read_is_shown_with_the_reason() -> None:
    bar = items(None, None, "cannot reach http://collector:8050: refused")
    assert bar["Graph"] == ("✖ cannot reach http://collector:8050: refused", "summary-item bad")


def test_a_long_upstream_error_is_cut_to_one_line() -> None:
    error = "local API /api/graph: HTTP 502: Prometheus query failed: cannot connect; query: " + "sum by (a) " * 50
    value, _ = items(None, None, error)["Graph"]
    assert value.startswith("✖ local API /api/graph: HTTP 502") and value.endswith("…") and len(value) <= 242
