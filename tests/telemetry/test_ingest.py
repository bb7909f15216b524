from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert "         1   50.0%  productpage-v1.default -> reviews.default (http)" in done.stdout
    assert 'source_workload="productpage-v1"' in metrics_out.read_text()
    graph = json.loads(graph_out.read_text())
    edge = next(e for e in graph["edges"] if e["target"] == "default/mysqldb")
    assert (edge["source"], edge["protocol"], edge["requests"], edge["bytes_sent"]) == (
        "default/productpage-v1",
        "tcp",
        1,
        3900,
    )
    assert {
        "id": "default/productpage-v1",
        "kind": "workload",
        "name": "productpage-v1",
        "namespace": "default",
    } in graph["nodes"]


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


def test_edges_survive_the_series_cap_folding_into_overflow() -> None:
    from telemetry.ingest import format_summary, ingest

    result = ingest([str(ACCESSLOGS / "istio.log")], reporter=None, max_series_per_metric=3)
    overflow = [totals for key, totals in result.edges.items() if key[0] == "overflow"]
    assert overflow and overflow[0].requests > 0 and overflow[0].errors == 0
    assert "overflow.overflow -> overflow.overflow" in format_summary(result)
