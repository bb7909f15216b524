"""`meshscope demo` and `meshscope run` as real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from realparts import free_port, http_get, wait_for

# Every receiver on a free port, so tests never collide with a running collector or each other.
EPHEMERAL_RECEIVERS = {
    "MESHSCOPE_RECEIVERS__ALS__ENDPOINT": "127.0.0.1:0",
    "MESHSCOPE_RECEIVERS__OTLP__GRPC__ENDPOINT": "127.0.0.1:0",
    "MESHSCOPE_RECEIVERS__OTLP__HTTP__ENDPOINT": "127.0.0.1:0",
    "MESHSCOPE_RECEIVERS__ZIPKIN__ENDPOINT": "127.0.0.1:0",
    "MESHSCOPE_GRAPH__ENDPOINT": "127.0.0.1:0",
}


def _sample_total(text: str, metric: str, *labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_demo_serves_istio_metrics_from_files_and_als_with_the_default_faults(tmp_path: Path) -> None:
    port, graph_port = free_port(), free_port()
    env = {**os.environ, **EPHEMERAL_RECEIVERS, "MESHSCOPE_EXPORTERS__PROMETHEUS__ENDPOINT": f"127.0.0.1:{port}",
           "MESHSCOPE_GRAPH__ENDPOINT": f"127.0.0.1:{graph_port}"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "telemetry.cli", "demo", "--duration", "12", "--rate", "60", "--no-browser",
         "--log-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:

        def metrics() -> str:
            text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
            ready = (
                'receiver="als"' in text
                and 'receiver="zipkin"' in text
                and _sample_total(
                    text, "istio_requests_total", 'destination_service_name="ratings"', 'response_code="503"'
                )
                and _sample_total(
                    text, "istio_tcp_connections_opened_total", 'destination_service_name="PassthroughCluster"'
                )
                and _sample_total(text, "istio_tcp_connections_opened_total", 'destination_service_name="mysqldb"')
            )
            return text if ready else ""

        text = wait_for(metrics, timeout=30, interval=0.5, what="demo metrics from files and ALS, HTTP and TCP")
        ratings = _sample_total(text, "istio_requests_total", 'reporter="source"', 'destination_service_name="ratings"')
        failed = _sample_total(text, "istio_requests_total", 'reporter="source"', 'destination_service_name="ratings"',
                               'response_code="503"', 'response_flags="FI"')  # fmt: skip
        assert 0 < failed < ratings

        # Calls to reviews v3 are delayed by the client's proxy (as Istio injects faults), so the client
        # sees every one of them slow while calls to v1 stay fast.
        def under_a_second(workload: str) -> tuple[float, float]:
            labels = ('reporter="source"', f'destination_workload="{workload}"')
            return (_sample_total(text, "istio_request_duration_milliseconds_bucket", *labels, 'le="1000"'),
                    _sample_total(text, "istio_request_duration_milliseconds_count", *labels))  # fmt: skip

        fast_v3, all_v3 = under_a_second("reviews-v3")
        fast_v1, all_v1 = under_a_second("reviews-v1")
        assert all_v3 > 0 and fast_v3 == 0
        assert all_v1 > 0 and fast_v1 == all_v1
        assert _sample_total(text, "istio_tcp_connections_opened_total", 'destination_service_name="mysqldb"') > 0
        # productpage reaches the external host with its own TLS: TCP through PassthroughCluster.
        assert (
            _sample_total(text, "istio_tcp_connections_opened_total", 'destination_service_name="PassthroughCluster"')
            > 0
        )
        # The live graph of the same traffic, and the span pairs' metrics beside Istio's.
        # It reads the counters every graph.resolution seconds (2 s): wait for a read after the traffic.
        expected = {("app:default:productpage", "service:default:reviews"),
                    ("app:default:reviews", "service:default:ratings"), ("service:default:reviews", "app:default:reviews")}  # fmt: skip

        def app_graph() -> dict:  # type: ignore[type-arg]
            graph = json.loads(http_get(f"http://127.0.0.1:{graph_port}/api/graph?window=1m&graph_type=app"))
            return graph if expected <= {(edge["source"], edge["target"]) for edge in graph["edges"]} else {}

        graph = wait_for(app_graph, timeout=15, interval=0.5, what="the Bookinfo edges in the live graph")
        ratings = next(e for e in graph["edges"] if e["id"] == "app:default:reviews->service:default:ratings:http")
        assert ratings["error_pct"] > 0 and ratings["response_codes"].get("503", 0) > 0
        assert "traces_service_graph_request_total" in text
    finally:
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/metrics" in output
    assert re.search(r"envoy ALS +grpc://127\.0\.0\.1:\d+", output)


def test_run_without_a_config_starts_every_receiver(tmp_path: Path) -> None:
    port = free_port()
    als_port = free_port()
    env = {
        **os.environ,
        **EPHEMERAL_RECEIVERS,
        "MESHSCOPE_EXPORTERS__PROMETHEUS__ENDPOINT": f"127.0.0.1:{port}",
        "MESHSCOPE_RECEIVERS__ALS__ENDPOINT": f"127.0.0.1:{als_port}",
    }
    process = subprocess.Popen([sys.executable, "-m", "telemetry.cli", "run"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, text=True)  # fmt: skip
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics"), what="the metrics endpoint")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"grpc://127.0.0.1:{als_port}" in output
    assert "/var/log/pods/*/istio-proxy/*.log" in output
    assert re.search(r"OTLP gRPC +127\.0\.0\.1:\d+", output) and re.search(
        r"OTLP HTTP +http://127\.0\.0\.1:\d+/v1/traces", output
    )
    assert re.search(r"Zipkin +http://127\.0\.0\.1:\d+/api/v2/spans", output)
    assert re.search(r"graph & UI +http://127\.0\.0\.1:\d+/ ", output)


def test_run_reports_config_errors_instead_of_starting(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("exporters:\n  prometheus:\n    endpoint: nowhere\n")
    done = subprocess.run(
        [sys.executable, "-m", "telemetry.cli", "run", "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "exporters.prometheus.endpoint" in done.stderr
