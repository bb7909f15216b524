"""The collector's /metrics is the same whether access logs are parsed in its process or by two workers.

A real Collector (real pipeline, Prometheus sink, recent-traces index) tails real files; its receiver is
driven by ``poll()`` so both runs read the same data in the same steps. Compared: every Istio series
(counters, histogram buckets, sums), the overflow counter, records received and parse errors by reason.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry.collector import Collector
from telemetry.config import Config
from telemetry.envoy.peers import PeerTable
from telemetry.model import Workload

TESTS = Path(__file__).resolve().parents[4]
ACCESSLOGS = TESTS / "testdata" / "accesslogs"
PRODUCTPAGE = "default_productpage-v1-6b746f74dc-9stvs_1a2b"

# Golden cases (as tests/telemetry/test_golden.py): format, then (log file, pod directory) in reading order.
GOLDEN: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "istio": ("auto", [("istio.log", PRODUCTPAGE), ("reviews.log", "default_reviews-v2-7bf8c9648f-xk2zq_3c4d")]),
    "istio-upstream-cluster": ("istio-upstream-cluster", [("istio_upstream_cluster.log", PRODUCTPAGE)]),
    "istio-mixer": ("auto", [("istio_mixer.log", PRODUCTPAGE)]),
    "envoy": ("auto", [("envoy.log", "edge_front-envoy-5d9c7b8f6d-abcde_5e6f")]),
    "json": ("auto", [("json.log", PRODUCTPAGE)]),
    "custom": (
        (ACCESSLOGS / "custom.format").read_text().rstrip("\n"),
        [("custom.log", "default_ratings-v1-5d8f9c7b6a-qwert_7a8b")],
    ),
    "cri": ("auto", [("cri.log", PRODUCTPAGE)]),
}
COMPARED = ("istio_", "meshscope_metric_series_overflow", "meshscope_records_received", "meshscope_parse_errors")


def compared_samples(exposition: bytes) -> list[str]:
    return sorted(line for line in exposition.decode().splitlines() if line.startswith(COMPARED))


def run_collector(
    root: Path,
    fmt: str,
    workers: int,
    steps: list[Callable[[], None]],
    peers: PeerTable | None = None,
    recent: dict[object, object] | None = None,
    traces: dict[str, str] | None = None,
) -> list[str]:
    """Each step writes files, then the receiver polls until nothing is left; the samples at the end.

    ``recent`` is filled with what the recent-traces index holds for each edge; ``traces`` are request id ->
    trace id pairs known before (as proxy spans teach them)."""
    config = Config()
    filelog = config.receivers.filelog
    filelog.include = [str(root / "pods" / "*" / "istio-proxy" / "*.log")]
    filelog.format = fmt
    filelog.workers = workers
    filelog.checkpoint_file = str(root / f"checkpoint-{workers}.json")
    config.receivers.als.enabled = False
    config.receivers.otlp.grpc.enabled = False
    config.receivers.otlp.http.enabled = False
    config.receivers.zipkin.enabled = False
    config.graph.enabled = False
    collector = Collector(config, peers=peers or PeerTable())
    for request_id, trace_id in (traces or {}).items():
        collector._request_index.remember(request_id, trace_id)
    receiver = collector.receiver("filelog")
    assert receiver is not None
    collector.pipeline.start()
    try:
        for step in steps:
            step()
            while receiver.poll():  # type: ignore[attr-defined]
                pass
        assert collector.pipeline.flush(30.0)
        assert collector.metrics is not None
        if recent is not None:
            for edge in collector.recent_traces.edges():
                recent[edge] = collector.recent_traces.query(edge[:2], edge[2])
        return compared_samples(collector.metrics.exposition())
    finally:
        collector.shutdown()


def golden_steps(root: Path, files: list[tuple[str, str]]) -> list[Callable[[], None]]:
    def copy(name: str, pod_dir: str) -> Callable[[], None]:
        def step() -> None:
            target = root / "pods" / pod_dir / "istio-proxy" / "0.log"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ACCESSLOGS / name, target)

        return step

    return [copy(name, pod_dir) for name, pod_dir in files]


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_files_give_the_same_metrics_with_workers_as_in_process(case: str, tmp_path: Path) -> None:
    fmt, files = GOLDEN[case]
    in_process = run_collector(tmp_path / "a", fmt, 0, golden_steps(tmp_path / "a", files))
    with_workers = run_collector(tmp_path / "b", fmt, 2, golden_steps(tmp_path / "b", files))
    assert any(line.startswith("istio_requests_total") or line.startswith("istio_tcp") for line in in_process)
    assert with_workers == in_process


def test_peers_learned_from_one_workers_file_name_the_caller_in_another_workers_file(tmp_path: Path) -> None:
    # productpage's own log teaches its pod address; reviews' inbound entries come from that address. The two
    # files go to different workers, so the name can only come through the collector.
    fmt, files = GOLDEN["istio"]
    samples = run_collector(tmp_path, fmt, 2, golden_steps(tmp_path, files))
    inbound_from_productpage = [
        line
        for line in samples
        if line.startswith("istio_requests_total{")
        and 'reporter="destination"' in line
        and 'destination_workload="reviews-v2"' in line
        and 'source_workload="productpage-v1"' in line
    ]
    assert inbound_from_productpage


# -- a generated file set of ~100,000 lines ----------------------------------------------------------------

PODS = [
    ("productpage-v1-6b746f74dc-9stvs", "10.244.0.9"),
    ("reviews-v1-5d8f9c7b6a-aaaaa", "10.244.0.11"),
    ("reviews-v2-7bf8c9648f-xk2zq", "10.244.0.12"),
    ("reviews-v3-6c5d8f9b7a-bbbbb", "10.244.0.13"),
    ("ratings-v1-5d8f9c7b6a-qwert", "10.244.0.14"),
    ("details-v1-79f774bdb9-ccccc", "10.244.0.10"),
]
ISTIO_TEXT = (
    '[2024-05-04T17:22:{second:02d}.{milli:03d}Z] "{method} {path} {proto}" {code} {flags} via_upstream - "-" '
    '{received} {sent} {duration} {duration} "-" "bench/1.0" "{request_id}" "{authority}" "{upstream}" '
    "{cluster} {local} {downstream_local} {remote} {sni} default"
)
TCP_TEXT = (
    '[2024-05-04T17:22:{second:02d}.{milli:03d}Z] "- - -" 0 {flags} - - "-" {received} {sent} {duration} - "-" "-" '
    '"-" "-" "{upstream}" {cluster} {local} {downstream_local} {remote} - -'
)


def generated_lines(pod: int, count: int, rng: random.Random) -> list[str]:
    """Client- and server-side HTTP entries with varied codes, flags, sizes and durations, TCP entries, bad lines."""
    _, own_ip = PODS[pod]
    lines = []
    for index in range(count):
        peer_name, peer_ip = PODS[rng.randrange(len(PODS))]
        service = peer_name.split("-")[0]
        second, milli = (index // 1000) % 60, index % 1000
        roll = rng.random()
        if roll < 0.002:
            lines.append("this is not an access-log line " + str(index))
        elif roll < 0.05:
            lines.append(
                TCP_TEXT.format(
                    second=second,
                    milli=milli,
                    flags=rng.choice(["-", "UF"]),
                    received=rng.randrange(0, 10**6),
                    sent=rng.randrange(0, 10**7),
                    duration=rng.randrange(1, 10**5),
                    upstream="10.244.1.5:5432",
                    cluster="outbound|5432||postgres.db.svc.cluster.local",
                    local=f"{own_ip}:{40000 + index % 20000}",
                    downstream_local="10.96.5.5:5432",
                    remote=f"{own_ip}:{30000 + index % 20000}",
                )  # fmt: skip
            )
        else:
            code = rng.choice([200] * 40 + [201, 204, 404, 429, 500, 503, 503, 0])
            inbound = rng.random() < 0.5
            lines.append(
                ISTIO_TEXT.format(
                    second=second,
                    milli=milli,
                    method=rng.choice(["GET", "POST"]),
                    path=f"/{service}/{index % 7}",
                    proto=rng.choice(["HTTP/1.1", "HTTP/2"]),
                    code=code,
                    flags="UF,URX" if code == 503 else ("DC" if code == 0 else "-"),
                    received=rng.choice([0, 0, 12, 345, 70000]),
                    sent=rng.randrange(0, 2 * 10**6),
                    duration=rng.choice([0, 1, 3, 8, 30, 120, 700, 4000, 40000]),
                    request_id=f"r{pod}-{index}",
                    authority=f"{service}:9080",
                    upstream=f"{own_ip if inbound else peer_ip}:9080",
                    cluster="inbound|9080||" if inbound else f"outbound|9080||{service}.default.svc.cluster.local",
                    local=f"127.0.0.6:{40000 + index % 20000}" if inbound else f"{own_ip}:{40000 + index % 20000}",
                    downstream_local=f"{own_ip}:9080" if inbound else "10.96.0.30:9080",
                    remote=f"{peer_ip}:{30000 + index % 20000}" if inbound else f"{own_ip}:{50000 + index % 10000}",
                    sni=f"outbound_.9080_._.{service}.default.svc.cluster.local" if inbound else "-",
                )  # fmt: skip
            )
    return lines


def writer(root: Path, contents: dict[int, str]) -> Callable[[], None]:
    """A step writing each pod's log file under ``root``."""

    def step() -> None:
        for pod, text in contents.items():
            target = root / "pods" / f"default_{PODS[pod][0]}_{pod:04d}" / "istio-proxy" / "0.log"
            target.parent.mkdir(parents=True)
            target.write_text(text)

    return step


def pinned_peers() -> PeerTable:
    # Pinned, so which name an address has does not depend on which file was read first.
    peers = PeerTable()
    for pod, ip in PODS:
        workload = "-".join(pod.split("-")[:-2])
        app, _, version = workload.rpartition("-")
        peers.pin(ip, Workload(name=workload, namespace="default", app=app, version=version))
    return peers


def test_a_generated_100k_line_file_set_gives_the_same_metrics_with_workers(tmp_path: Path) -> None:
    rng = random.Random(9)
    contents = {pod: "".join(line + "\n" for line in generated_lines(pod, 16_700, rng)) for pod in range(len(PODS))}

    recent_in_process: dict[object, object] = {}
    recent_with_workers: dict[object, object] = {}
    in_process = run_collector(
        tmp_path / "a", "auto", 0, [writer(tmp_path / "a", contents)], pinned_peers(), recent_in_process
    )
    with_workers = run_collector(
        tmp_path / "b", "auto", 2, [writer(tmp_path / "b", contents)], pinned_peers(), recent_with_workers
    )
    received = [line for line in in_process if line.startswith("meshscope_records_received")]
    assert received and float(received[0].split()[-1]) > 99_000
    assert any(line.startswith("istio_tcp_sent_bytes_total") for line in in_process)
    assert any('reason="format_mismatch"' in line for line in in_process)
    assert with_workers == in_process
    # Workers send back only the Records the recent-traces index looks at: it holds the same failures.
    assert len(recent_in_process) >= 6
    assert recent_with_workers == recent_in_process


def test_records_given_trace_ids_by_request_id_reach_recent_traces_the_same_with_workers(tmp_path: Path) -> None:
    # While the request-id index is in use, workers send back every client-side Record with a request id,
    # since the collector may give it a trace id: the slowest traces per edge are then the same.
    rng = random.Random(5)
    contents = {pod: "".join(line + "\n" for line in generated_lines(pod, 2000, rng)) for pod in range(len(PODS))}
    traces = {f"r{pod}-{index}": f"{pod:02d}{index:030d}" for pod in range(len(PODS)) for index in range(0, 2000, 3)}

    recent: list[dict[object, object]] = [{}, {}]
    for workers, found in zip((0, 2), recent, strict=True):
        root = tmp_path / str(workers)
        run_collector(root, "auto", workers, [writer(root, contents)], pinned_peers(), found, traces)
    slowest = [entry for edge in recent[0].values() for entry in edge["slowest"]]  # type: ignore[index]
    assert len(slowest) >= 30 and all(entry["trace_id"] in traces.values() for entry in slowest)
    assert recent[1] == recent[0]
