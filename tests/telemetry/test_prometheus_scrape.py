"""A real Prometheus scrapes a real `meshscope run` fed with access-log lines."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from conftest import require_program
from realparts import free_port, http_get, meshscope_process, prometheus, prometheus_query, wait_for

ACCESSLOGS = Path(__file__).parents[1] / "testdata" / "accesslogs"


def _collector_config(tmp_path: Path, metrics_port: int) -> Path:
    config = {
        "receivers": {
            "filelog": {
                "include": [str(tmp_path / "pods" / "*" / "istio-proxy" / "*.log")],
                "poll_interval": 0.1,
                "checkpoint_file": str(tmp_path / "checkpoint.json"),
            },
            "als": {"endpoint": "127.0.0.1:0"},
            "otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
            "zipkin": {"endpoint": "127.0.0.1:0"},
        },
        "exporters": {"prometheus": {"endpoint": f"127.0.0.1:{metrics_port}"}},
        "graph": {"endpoint": "127.0.0.1:0"},
    }
    path = tmp_path / "meshscope.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _append_lines(tmp_path: Path, times: int) -> None:
    for source, pod_dir in (("istio.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b"),
                            ("reviews.log", "default_reviews-v2-7bf8c9648f-xk2zq_3c4d")):  # fmt: skip
        target = tmp_path / "pods" / pod_dir / "istio-proxy" / "0.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [line for line in (ACCESSLOGS / source).read_text().splitlines() if line.startswith("[")][:-1]
        with open(target, "a") as handle:
            for _ in range(times):
                handle.write("\n".join(lines) + "\n")


def test_prometheus_scrapes_request_rates_by_workload_and_service(tmp_path: Path) -> None:
    binary = require_program("prometheus", "prometheus")
    metrics_port = free_port()
    config = _collector_config(tmp_path, metrics_port)
    with meshscope_process(["run", "-c", str(config)], tmp_path / "meshscope.log") as collector:
        wait_for(lambda: http_get(f"http://127.0.0.1:{metrics_port}/metrics"), what="the collector's /metrics")
        with prometheus(binary, tmp_path, [f"127.0.0.1:{metrics_port}"]) as url:
            query = "sum(rate(istio_requests_total[1m])) by (source_workload, destination_service_name)"

            def edges() -> set[tuple[str, str]]:
                _append_lines(tmp_path, 5)
                result = prometheus_query(url, query)
                found = {(s["metric"].get("source_workload", ""), s["metric"].get("destination_service_name", ""))
                         for s in result if float(s["value"][1]) > 0}  # fmt: skip
                expected = {("productpage-v1", "details"), ("productpage-v1", "reviews"), ("reviews-v2", "ratings"),
                            ("productpage-v1", "PassthroughCluster")}  # fmt: skip
                return found if expected <= found else set()

            found = wait_for(edges, timeout=60, interval=1.0, what="request rates in Prometheus")
            # Server-side entries name their caller through the address the caller's entries taught.
            assert ("productpage-v1", "reviews") in found
        assert collector.poll() is None, "the collector died while being scraped"
    assert collector.returncode == 0, (tmp_path / "meshscope.log").read_text()


def test_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    promtool = require_program("promtool", "prometheus")
    from telemetry.ingest import ingest

    paths = []
    for name in ("istio.log", "json.log"):
        target = tmp_path / "default_productpage-v1-6b746f74dc-9stvs_1a2b" / "istio-proxy" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ACCESSLOGS / name).read_bytes())
        paths.append(str(target))
    exposition = ingest(paths).exposition
    assert b"istio_requests_total{" in exposition and b"istio_tcp_sent_bytes_total{" in exposition
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True)
    findings = [line for line in (checked.stdout + checked.stderr).decode().splitlines() if line.strip()]
    # Istio's own metric name carries a non-base unit; renaming it would break Istio's dashboards and Kiali.
    allowed = 'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"'
    assert [finding for finding in findings if finding != allowed] == []


def test_sigterm_flushes_and_exits_cleanly(tmp_path: Path) -> None:
    metrics_port = free_port()
    config = _collector_config(tmp_path, metrics_port)
    _append_lines(tmp_path, 1)
    with meshscope_process(["run", "-c", str(config)], tmp_path / "meshscope.log") as collector:
        wait_for(
            lambda: (
                b'meshscope_records_received_total{receiver="filelog"}'
                in http_get(f"http://127.0.0.1:{metrics_port}/metrics")
            ),
            what="records received",
        )
        started = time.monotonic()
    assert collector.returncode == 0
    assert time.monotonic() - started < 20
    checkpoint = (tmp_path / "checkpoint.json").read_text()
    assert "0.log" in checkpoint, "the file receiver's offsets were not written on shutdown"
