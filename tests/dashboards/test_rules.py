"""The Prometheus rules: promtool-clean, every alert unit-tested firing and not firing, and the graph's
recording rules aggregated by exactly the graph's row labels."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from dashboards.generate import RULES_DIR
from servicegraph.traffic import HTTP_LABELS, SPAN_LABELS, TCP_ROW_LABELS

from conftest import require_program

RULE_FILES = [RULES_DIR / "recording.yaml", RULES_DIR / "alerts.yaml"]
UNIT_TESTS = sorted((RULES_DIR / "tests").glob("*.yaml"))


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules_is_clean() -> None:
    promtool = require_program("promtool", "prometheus")
    done = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_program("promtool", "prometheus")
    assert UNIT_TESTS
    done = subprocess.run([promtool, "test", "rules", *map(str, UNIT_TESTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    alerts = {rule["alert"] for rule in rules(RULES_DIR / "alerts.yaml")}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        document = yaml.safe_load(path.read_text())
        assert {RULES_DIR / Path(name).name for name in document["rule_files"]} == set(RULE_FILES), path
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == alerts
    assert quiet == alerts


def test_graph_recording_rules_aggregate_by_the_graphs_row_labels() -> None:
    expected = {
        "istio_requests_total": HTTP_LABELS,
        "istio_request_duration_milliseconds_bucket": (*HTTP_LABELS, "le"),
        "istio_request_duration_milliseconds_sum": HTTP_LABELS,
        "istio_tcp_connections_opened_total": TCP_ROW_LABELS,
        "istio_tcp_received_bytes_total": TCP_ROW_LABELS,
        "istio_tcp_sent_bytes_total": TCP_ROW_LABELS,
        "traces_service_graph_request_total": SPAN_LABELS,
        "traces_service_graph_request_failed_total": SPAN_LABELS,
        "traces_service_graph_request_server_seconds_bucket": (*SPAN_LABELS, "le"),
        "traces_service_graph_request_client_seconds_bucket": (*SPAN_LABELS, "le"),
    }
    graph = next(
        g
        for g in yaml.safe_load((RULES_DIR / "recording.yaml").read_text())["groups"]
        if g["name"] == "meshscope-graph"
    )
    found = {}
    for rule in graph["rules"]:
        match = re.fullmatch(r"\s*sum by \(([^)]*)\) \(\s*rate\((\w+)\[(\w+)\]\)\s*\)\s*", rule["expr"])
        assert match, rule["record"]
        labels, series, window = match.groups()
        assert rule["record"].startswith(f"meshscope:{series.removesuffix('_total')}:rate{window}"), rule["record"]
        found[series] = tuple(label.strip() for label in labels.split(","))
    assert found == expected


def test_alerts_only_read_series_that_recording_rules_record() -> None:
    recorded = {rule["record"] for rule in rules(RULES_DIR / "recording.yaml")}
    for alert in rules(RULES_DIR / "alerts.yaml"):
        series = set(re.findall(r"meshscope:[\w:]+", alert["expr"]))
        assert series and series <= recorded, alert["alert"]
