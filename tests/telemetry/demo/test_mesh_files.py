from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.demo import (
    PODS,
    DemoConfig,
    SimulatedMesh,
    pod_log_path,
    write_benchmark_lines,
)
from telemetry.envoy.parser import make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.receivers.filelog.identity import identity_from_path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    # The file receiver recognises kubelet's layout under a folder named "pods".
    return tmp_path / "pods"


def test_each_proxy_writes_its_own_file_at_a_kubernetes_pod_log_path(log_dir):
    mesh = SimulatedMesh(DemoConfig(), log_dir)
    mesh.emit(300)
    mesh.shutdown()
    assert mesh.requests_sent == 300
    for pod in PODS:
        path = pod_log_path(log_dir, pod)
        assert path.parent.name == "istio-proxy" and path.name == "0.log"
        namespace, pod_name, uid = path.parent.parent.name.split("_")
        assert (namespace, pod_name) == (pod.namespace, pod.pod_name)
        assert pod_name.startswith(pod.workload + "-") and len(uid) == 36
        assert len(_lines(path)) == mesh.lines_written[pod.workload] > 0
        identity = identity_from_path(str(path))
        assert identity is not None and (identity.name, identity.namespace) == (
            pod.workload,
            pod.namespace,
        )
    gateway = next(pod for pod in PODS if pod.gateway)
    assert mesh.lines_written[gateway.workload] == 300


def test_the_written_files_parse_into_records_from_both_reporters(log_dir):
    mesh = SimulatedMesh(DemoConfig(seed=3), log_dir)
    mesh.emit(200)
    mesh.shutdown()
    peers = PeerTable()
    reporters: dict[str, set[str]] = {}
    for pod in PODS:
        path = pod_log_path(log_dir, pod)
        parser = make_parser("auto", identity_from_path(str(path)), peers)
        reporters[pod.workload] = {parser.parse(line).reporter for line in _lines(path)}
    assert reporters["istio-ingressgateway"] == {"source"}
    assert reporters["productpage-v1"] == {"source", "destination"}
    assert reporters["details-v1"] == reporters["mysqldb-v1"] == reporters["reviews-v1"] == {"destination"}
    assert reporters["reviews-v3"] == reporters["ratings-v1"] == {"source", "destination"}


def test_the_writer_thread_sends_rate_times_duration_requests_then_stops(log_dir):
    mesh = SimulatedMesh(DemoConfig(rate=400.0, duration=0.25, batch_interval=0.02), log_dir)
    mesh.start()
    assert mesh.wait(timeout=30)
    mesh.shutdown()
    assert mesh.requests_sent == 100
    for pod in PODS:
        assert len(_lines(pod_log_path(log_dir, pod))) == mesh.lines_written[pod.workload]


def test_shutdown_is_idempotent_and_stops_an_endless_run(log_dir):
    mesh = SimulatedMesh(DemoConfig(rate=50.0), log_dir)
    mesh.start()
    mesh.emit(5)
    mesh.shutdown()
    sent = mesh.requests_sent
    mesh.shutdown()
    mesh.emit(5)  # after shutdown: nothing more is written
    assert mesh.wait(timeout=0) and mesh.requests_sent == sent >= 5


def test_an_invalid_config_is_refused(log_dir):
    with pytest.raises(ValueError, match="rate: must be positive"):
        SimulatedMesh(DemoConfig(rate=-1), log_dir)


@pytest.mark.parametrize("fmt", ["istio", "json", "envoy"])
def test_benchmark_lines_are_written_in_the_requested_format(tmp_path, fmt):
    path = tmp_path / "bench.log"
    written = write_benchmark_lines(path, 2500, fmt, distinct=1000)
    lines = _lines(path)
    assert len(lines) == 2500 and written == path.stat().st_size
    parser = make_parser(
        fmt,
        identity_from_path("pods/default_productpage-v1-dj967m6wj4-qxnpd_x/istio-proxy/0.log"),
        PeerTable(),
    )
    assert all(parser.parse(line).start_time for line in lines[:1100])
    if fmt == "istio":
        assert 330 <= written / len(lines) <= 400
