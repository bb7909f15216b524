from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ACCESSLOGS = Path(__file__).parents[1] / "testdata" / "accesslogs"


def meshscope(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry.cli", *args],
        input=stdin.decode() if stdin is not None else None, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_ingest_summarises_and_writes_metrics_and_graph(tmp_path: Path) -> None:
    metrics_out, graph_out = tmp_path / "metrics.prom", tmp_path / "graph.json"
    done = meshscope("ingest", str(ACCESSLOGS / "istio.log"), "--workload", "productpage-v1", "--namespace", "default",
                     "--metrics-out", str(metrics_out), "--graph-out", str(graph_out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "records: 10 from 12 lines" in done.stdout
    assert "format_mismatch: 2" in done.stdout
    # productpage -> reviews: one 200 and one 503 URX,UF, reported by the client.
    assert "         1   50.0%  productpage.default -> reviews.default (http)" in done.stdout
    assert 'source_workload="productpage-v1"' in metrics_out.read_text()
    graph = json.loads(graph_out.read_text())
    assert graph["graph_type"] == "workload" and graph["source"] == "ingest"
    edge = next(e for e in graph["edges"] if e["target"] == "service:default:mysqldb")
    assert (edge["source"], edge["protocol"], edge["requests"]) == ("workload:default:productpage-v1", "tcp", 1)
    assert edge["bytes_sent_per_s"] * graph["window"] == pytest.approx(3900)
    node = next(n for n in graph["nodes"] if n["id"] == "workload:default:productpage-v1")
    assert (node["kind"], node["name"], node["namespace"]) == ("workload", "productpage-v1", "default")


def test_ingest_writes_the_graph_in_the_format_its_extension_names(tmp_path: Path) -> None:
    import networkx as nx

    dot, graphml = tmp_path / "graph.dot", tmp_path / "graph.graphml"
    for target, graph_type in ((dot, "service"), (graphml, "app")):
        done = meshscope("ingest", str(ACCESSLOGS / "istio.log"), "--workload", "productpage-v1", "--namespace",
                         "default", "--graph-out", str(target), "--graph-type", graph_type)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert dot.read_text().startswith("digraph") and '"service:default:reviews"' in dot.read_text()
    assert "app:default:productpage" in nx.read_graphml(graphml)
    refused = meshscope("ingest", str(ACCESSLOGS / "istio.log"), "--graph-out", str(tmp_path / "graph.png"))
    assert refused.returncode == 2 and "--graph-out" in refused.stderr and not (tmp_path / "graph.png").exists()


def test_ingest_reads_stdin_with_an_explicit_format() -> None:
    done = meshscope("ingest", "-", "--format", "envoy", "--workload", "front-envoy", "--namespace", "edge",
                     stdin=(ACCESSLOGS / "envoy.log").read_bytes())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "records: 3 from 3 lines" in done.stdout
    assert "1  100.0%  front-envoy.edge -> orders.internal (http)" in done.stdout  # 504 UT


def test_ingest_rejects_a_bad_format_and_a_missing_file(tmp_path: Path) -> None:
    bad_format = meshscope("ingest", str(ACCESSLOGS / "istio.log"), "--format", "%NOTHING_KNOWN%")
    assert bad_format.returncode == 2 and "--format" in bad_format.stderr
    missing = meshscope("ingest", str(tmp_path / "nope.log"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_ingest_counts_non_utf8_and_overlong_lines(tmp_path: Path) -> None:
    good = (ACCESSLOGS / "istio.log").read_bytes().splitlines()[1]
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join([good, b"\xff\xfe broken", b"x" * 5000, good]) + b"\n")
    done = meshscope("ingest", str(path), "--max-line-bytes", "1000", "--workload", "w", "--namespace", "n")
    assert done.returncode == 0, done.stderr
    assert "records: 2 from 4 lines" in done.stdout
    assert "not_utf8: 1" in done.stdout and "too_long: 1" in done.stdout


def test_ingest_shows_a_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import os
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    # A terminal of 0 columns (a fresh pty) leaves tqdm nothing to draw in.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "telemetry.cli", "ingest", str(ACCESSLOGS / "istio.log")],
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    terminal = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(primary)
        process.communicate(timeout=60)
    done = process
    assert done.returncode == 0
    assert b"ingest:" in terminal and b"B/s" in terminal, terminal
    piped = meshscope("ingest", str(ACCESSLOGS / "istio.log"))
    assert "ingest:" not in piped.stderr


def test_the_series_cap_folds_label_sets_without_losing_calls() -> None:
    from telemetry.ingest import ingest

    capped = ingest([str(ACCESSLOGS / "istio.log")], reporter=None, max_series_per_metric=3)
    whole = ingest([str(ACCESSLOGS / "istio.log")], reporter=None)
    # The overflow series has no peers to draw, so its calls leave the graph but stay in the metrics.
    assert capped.traffic.http.values[:, 0].sum() == whole.traffic.http.values[:, 0].sum()
    assert capped.graph().graph["requests"] < whole.graph().graph["requests"]
    assert "meshscope_metric_series_overflow" in capped.exposition.decode()


def test_ingest_of_json_lines_counts_what_a_chunk_read_whole_would_hide(tmp_path: Path) -> None:
    # Most chunks of good JSON lines are read without being split; bad lines still count one by one.
    good = (ACCESSLOGS / "json.log").read_bytes().splitlines()[0]
    lines = [good] * 3000
    lines[1500] = good[:60]
    lines[2500] = b"\xff" + good
    lines[2800] = good[:-1] + b',"pad":"' + b"p" * 2000 + b'"}'
    path = tmp_path / "json.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = meshscope("ingest", str(path), "--max-line-bytes", "1500", "--workload", "w", "--namespace", "n")
    assert done.returncode == 0, done.stderr
    assert "records: 2997 from 3000 lines" in done.stdout
    assert "bad_json: 1" in done.stdout and "not_utf8: 1" in done.stdout and "too_long: 1" in done.stdout
