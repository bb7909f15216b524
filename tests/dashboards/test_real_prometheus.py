"""The generated dashboards and the rules against a real Prometheus scraping a real `meshscope demo`.

One demo and one Prometheus (scraping every second, the rules loaded) are shared by the module. Every
query of every panel runs through Prometheus's HTTP API with Grafana's variables substituted, and must
return data, save the panels ALLOWED_EMPTY names (each with the reason a healthy demo leaves it empty).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from dashboards.generate import RULES_DIR, dashboards
from dashboards.queries import PanelQuery, panel_queries, substitute, variable_queries

from conftest import require_program
from realparts import free_port, http_get, meshscope_process, prometheus, prometheus_query, wait_for

pytestmark = pytest.mark.prometheus

# Grafana's built-in variables: rate windows of a minute (the demo runs for well under one, so a window
# holds every sample there is), an instant table's range likewise.
BUILT_INS = {"__rate_interval": "1m", "__range": "1m", "__interval": "15s"}
# Template variables as the UI's links set them, with values from the demo. A query passes if it
# returns data for one of its dashboard's variable sets: an HTTP service (reviews), one that calls a
# database (ratings) and the database (mysqldb), so that HTTP and TCP panels both have traffic to show.
VARIABLE_SETS: dict[str, list[dict[str, str]]] = {
    "meshscope-mesh": [{}],
    "meshscope-service": [{"namespace": "default", "service": name} for name in ("reviews", "ratings", "mysqldb")],
    "meshscope-workload": [
        {"namespace": "default", "workload": name, "app": ".*", "version": ".*"}
        for name in ("reviews-v2", "ratings-v1", "mysqldb-v1")
    ],
    "meshscope-servicegraph": [{}],
    "meshscope-self": [{"instance": ".*"}],
}
NO_INPUT_ERRORS = "the demo's proxies write only well-formed access-log lines and spans"
NO_EXPORTER = "the demo configures no trace exporter (no Jaeger or Zipkin), so nothing is exported or fails to be"
ALLOWED_EMPTY: dict[tuple[str, str, str], str] = {
    ("meshscope-self", "Parse errors", "A"): NO_INPUT_ERRORS,
    ("meshscope-self", "Parse errors by reason", "A"): NO_INPUT_ERRORS,
    ("meshscope-self", "Records lost", "A"): "a healthy demo loses nothing: the pipeline's, sinks' and exporters' "
    "drop counters are born with their first drop",
    ("meshscope-self", "Export failures", "A"): NO_EXPORTER,
    ("meshscope-self", "Exports", "A"): NO_EXPORTER,
    ("meshscope-self", "Exports", "B"): NO_EXPORTER,
    ("meshscope-self", "Series folded by the cardinality cap", "A"): "the demo's few dozen label sets are far "
    "below the per-metric cap of 10,000",
}
# Recording rules that record only failures a healthy demo does not have.
RULES_ALLOWED_EMPTY = {
    "meshscope:parse_errors:rate5m": NO_INPUT_ERRORS,
    "meshscope:parse_error_ratio:rate5m": NO_INPUT_ERRORS,
    "meshscope:records_lost:rate5m": "a healthy demo loses nothing",
    "meshscope:export_failures:rate5m": NO_EXPORTER,
}
RULE_FILES = [RULES_DIR / "recording.yaml", RULES_DIR / "alerts.yaml"]


@dataclass(frozen=True)
class Stack:
    prometheus: str
    metrics: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = require_program("prometheus", "prometheus")
    workdir = tmp_path_factory.mktemp("dashboards-demo")
    metrics = f"127.0.0.1:{free_port()}"
    config = workdir / "meshscope.yaml"
    ephemeral = {"endpoint": "127.0.0.1:0"}
    config.write_text(
        yaml.safe_dump(
            {
                "receivers": {
                    "als": ephemeral,
                    "otlp": {"grpc": ephemeral, "http": ephemeral},
                    "zipkin": ephemeral,
                },
                "exporters": {"prometheus": {"endpoint": metrics}},
                "graph": ephemeral,
            }
        )
    )
    args = ["demo", "--no-browser", "--rate", "60", "-c", str(config), "--log-dir", str(workdir / "pods")]
    with meshscope_process(args, workdir / "meshscope.log") as demo:
        wait_for(lambda: b"istio_requests_total{" in http_get(f"http://{metrics}/metrics"), what="the demo's metrics")
        with prometheus(binary, workdir, [metrics], rule_files=[str(path) for path in RULE_FILES]) as url:
            # Enough data: 20 scrapes, and the series every dashboard reads.
            def ready() -> bool:
                scrapes = prometheus_query(url, 'count_over_time(up{job="meshscope"}[1m])')
                needed = ("istio_tcp_sent_bytes_total", "traces_service_graph_request_total", "meshscope_queue_depth")
                return bool(scrapes and float(scrapes[0]["value"][1]) >= 20) and all(
                    prometheus_query(url, name) for name in needed
                )

            wait_for(ready, timeout=60, interval=1.0, what="20 scrapes of the demo")
            yield Stack(url, metrics)
        assert demo.poll() is None, (workdir / "meshscope.log").read_text()


def query_range(url: str, expr: str, seconds: int = 20) -> list[dict[str, Any]]:
    end = time.time()
    params = {"query": expr, "start": f"{end - seconds:.3f}", "end": f"{end:.3f}", "step": "5"}
    answer = json.loads(http_get(f"{url}/api/v1/query_range?" + urllib.parse.urlencode(params)))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]  # type: ignore[no-any-return]


def label_values(url: str, label: str, selector: str) -> list[str]:
    query = urllib.parse.urlencode({"match[]": selector}) if selector else ""
    answer = json.loads(http_get(f"{url}/api/v1/label/{label}/values?{query}"))
    assert answer["status"] == "success", answer
    return answer["data"]  # type: ignore[no-any-return]


def answers(url: str, query: PanelQuery, variables: dict[str, str]) -> list[dict[str, Any]]:
    expr = substitute(query.expr, {**BUILT_INS, **variables})
    return prometheus_query(url, expr) if query.instant else query_range(url, expr)


def all_panel_queries() -> list[PanelQuery]:
    return [query for text in dashboards().values() for query in panel_queries(json.loads(text))]


def test_every_panel_query_returns_data_on_the_demo(stack: Stack) -> None:
    queries = all_panel_queries()
    assert set(ALLOWED_EMPTY) <= {query.key for query in queries}, "ALLOWED_EMPTY names a query that is gone"

    def empty_ones() -> list[PanelQuery]:
        # Every query runs (a malformed one fails here, allowed-empty or not); data is asked of the others.
        results = {
            query.key: any(answers(stack.prometheus, query, variables) for variables in VARIABLE_SETS[query.dashboard])
            for query in queries
        }
        return [query for query in queries if not results[query.key] and query.key not in ALLOWED_EMPTY]

    # Some series are born late (the first unpaired span, a rare response code): ask again for a while.
    deadline = time.monotonic() + 20
    empty = empty_ones()
    while empty and time.monotonic() < deadline:
        time.sleep(2)
        empty = empty_ones()
    assert [(query.dashboard, query.panel, query.ref_id, query.expr) for query in empty] == []


def test_allowed_empty_panels_are_empty_for_the_reason_given(stack: Stack) -> None:
    # If one of them has data now, its justification is wrong and it belongs in the checked set.
    allowed = [query for query in all_panel_queries() if query.key in ALLOWED_EMPTY]
    with_data = [query.key for query in allowed if answers(stack.prometheus, query, VARIABLE_SETS[query.dashboard][0])]
    assert with_data == []


def test_variables_offer_the_demos_namespaces_services_and_workloads(stack: Stack) -> None:
    values: dict[tuple[str, str], list[str]] = {}
    for text in dashboards().values():
        board = json.loads(text)
        for variable in variable_queries(board):
            selector = substitute(variable.selector, VARIABLE_SETS[variable.dashboard][0] | {"namespace": "default"})
            values[(variable.dashboard, variable.name)] = label_values(stack.prometheus, variable.label, selector)
    assert "default" in values[("meshscope-service", "namespace")]
    assert {"reviews", "ratings", "mysqldb", "details", "productpage"} <= set(values[("meshscope-service", "service")])
    assert {"reviews-v1", "reviews-v2", "reviews-v3", "mysqldb-v1"} <= set(values[("meshscope-workload", "workload")])
    assert {"reviews", "ratings"} <= set(values[("meshscope-workload", "app")])
    assert {"v1", "v2", "v3"} <= set(values[("meshscope-workload", "version")])
    assert stack.metrics in values[("meshscope-self", "instance")]


def test_workload_dashboard_answers_an_app_link_like_a_workload_link(stack: Stack) -> None:
    # The UI links app nodes with var-app and var-version; the workload variable stays All.
    board = json.loads(dashboards()["meshscope-workload.json"])
    query = next(q for q in panel_queries(board) if q.panel == "Incoming requests by source")
    by_app = {"namespace": "default", "workload": ".*", "app": "reviews", "version": "v3"}
    by_workload = {"namespace": "default", "workload": "reviews-v3", "app": ".*", "version": ".*"}
    callers = [
        {series["metric"]["source_workload"] for series in answers(stack.prometheus, query, variables)}
        for variables in (by_app, by_workload)
    ]
    assert callers[0] == callers[1]
    assert "productpage-v1" in callers[0]


def test_node_graph_frames_have_the_fields_grafana_reads(stack: Stack) -> None:
    board = json.loads(dashboards()["meshscope-servicegraph.json"])
    graphs = [panel for panel in board["panels"] if panel["type"] == "nodeGraph"]
    assert len(graphs) == 2
    for panel in graphs:
        targets = {target["refId"]: target["expr"] for target in panel["targets"]}
        nodes = prometheus_query(stack.prometheus, substitute(targets["nodes"], BUILT_INS))
        edges = prometheus_query(stack.prometheus, substitute(targets["edges"], BUILT_INS))
        assert nodes and edges, panel["title"]
        ids = {node["metric"]["id"] for node in nodes}
        assert all(node["metric"]["title"] == node["metric"]["id"] for node in nodes)
        for edge in edges:
            labels = edge["metric"]
            assert labels["id"] == f"{labels['source']}->{labels['target']}"
            # Grafana's node graph fails on an edge whose end is not a node.
            assert {labels["source"], labels["target"]} <= ids, (panel["title"], labels)


def test_recording_rules_produce_series(stack: Stack) -> None:
    records = sorted(
        {rule["record"] for group in yaml.safe_load(RULE_FILES[0].read_text())["groups"] for rule in group["rules"]}
    )

    def missing() -> list[str]:
        return [
            name for name in records if name not in RULES_ALLOWED_EMPTY and not prometheus_query(stack.prometheus, name)
        ]

    wait_for(lambda: not missing(), timeout=15, interval=1.0, what="series from every recording rule")
    rules = json.loads(http_get(f"{stack.prometheus}/api/v1/rules"))["data"]["groups"]
    unhealthy = [
        (rule["name"], rule.get("lastError")) for group in rules for rule in group["rules"] if rule["health"] != "ok"
    ]
    assert unhealthy == []
    loaded = {rule["name"] for group in rules for rule in group["rules"] if rule["type"] == "alerting"}
    assert loaded == {
        "MeshscopeEdgeErrorRateHigh", "MeshscopeLatencySLOFastBurn", "MeshscopeLatencySLOSlowBurn",
        "MeshscopeDroppingRecords", "MeshscopeExportFailing", "MeshscopeParseErrorSpike",
    }  # fmt: skip


def test_recorded_edge_error_ratio_singles_out_the_demos_failing_ratings_calls(stack: Stack) -> None:
    ratios = prometheus_query(stack.prometheus, "meshscope:edge_error_ratio:rate5m")
    by_edge = {(s["metric"]["source_workload"], s["metric"]["destination_service_name"]): float(s["value"][1])
               for s in ratios}  # fmt: skip
    # ratings aborts about 10% of calls; the other edges fail rarely, under the alert's 5%.
    assert {edge for edge, ratio in by_edge.items() if ratio > 0.05} == {
        ("reviews-v2", "ratings"),
        ("reviews-v3", "ratings"),
    }
    assert len(by_edge) > 2


# -- Istio's own dashboards' typical queries on meshscope's metrics --------------------------------------


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}


def test_istio_success_rate_by_reporter(stack: Stack) -> None:
    success = _by(
        prometheus_query(
            stack.prometheus,
            'sum by (reporter) (rate(istio_requests_total{response_code!~"5.*"}[1m])) '
            "/ sum by (reporter) (rate(istio_requests_total[1m]))",
        ),
        "reporter",
    )
    # ratings' aborts are injected by its callers' proxies: the callers see them, ratings never does.
    assert 0.5 < success["source"] < success["destination"] <= 1, success


def test_istio_p90_by_destination_workload(stack: Stack) -> None:
    p90 = _by(
        prometheus_query(
            stack.prometheus,
            "histogram_quantile(0.90, sum by (le, destination_workload, destination_workload_namespace) "
            '(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])))',
        ),
        "destination_workload",
    )
    # reviews v3 is delayed by its callers' proxies beyond a second; v1 is not.
    assert p90["reviews-v3"] > 1000 > p90["reviews-v1"] > 0


def test_istio_tcp_bytes_by_workload(stack: Stack) -> None:
    received = _by(
        prometheus_query(
            stack.prometheus,
            'sum by (destination_workload) (rate(istio_tcp_received_bytes_total{reporter="destination"}[1m]))',
        ),
        "destination_workload",
    )
    sent = _by(
        prometheus_query(
            stack.prometheus, 'sum by (source_workload) (rate(istio_tcp_sent_bytes_total{reporter="source"}[1m]))'
        ),
        "source_workload",
    )
    assert received.get("mysqldb-v1", 0) > 0
    assert sent.get("ratings-v1", 0) > 0 and sent.get("productpage-v1", 0) > 0


def test_istio_mtls_requests_by_source(stack: Stack) -> None:
    mtls = _by(
        prometheus_query(
            stack.prometheus,
            "sum by (source_workload, source_workload_namespace) "
            '(rate(istio_requests_total{reporter="destination", connection_security_policy="mutual_tls"}[1m]))',
        ),
        "source_workload",
    )
    assert mtls.get("productpage-v1", 0) > 0
