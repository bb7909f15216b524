"""Graph diff: edges and nodes that came or went, error and latency moves, and `meshscope graph diff`."""

from __future__ import annotations

import argparse
import json
from bisect import bisect_left
from pathlib import Path

import networkx as nx
import numpy as np
import orjson
import pytest

from servicegraph.builder import build_graph
from servicegraph.diff import diff_graphs, format_diff
from servicegraph.diff_command import add_parser
from servicegraph.graphjson import to_json
from servicegraph.traffic import BUCKETS, HTTP_WIDTH, SPAN_WIDTH, TCP_WIDTH, Table, Traffic
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

WINDOW = 10.0
Call = tuple[str, str, str, int, int, float]  # source workload, service, destination workload, ok, 5xx, ms

BASE: list[Call] = [
    ("productpage-v1", "reviews", "reviews-v1", 50, 0, 20.0),
    ("productpage-v1", "details", "details-v1", 100, 0, 5.0),
    ("reviews-v1", "ratings", "ratings-v1", 48, 2, 200.0),
]


def graph_of(calls: list[Call]) -> nx.MultiDiGraph:
    keys: list[tuple[str, ...]] = []
    rows: list[np.ndarray] = []
    for source, service, destination, ok, failed, ms in calls:
        for code, count in (("200", ok), ("503", failed)):
            if not count and code == "503":
                continue
            for reporter in ("source", "destination"):
                keys.append((
                    reporter, source, "default", "unknown", source.split("-")[0], "v1", destination, "default",
                    "unknown", destination.split("-")[0], "v1", f"{service}.default.svc.cluster.local", service,
                    "default", "mutual_tls", "http", code, "", "-",
                ))  # fmt: skip
                values = np.zeros(HTTP_WIDTH)
                values[:2] = (count, count * ms)
                values[BUCKETS + bisect_left(DURATION_BUCKETS_MS, ms)] = count
                rows.append(values)
    http = Table(keys, np.array(rows).reshape(len(rows), HTTP_WIDTH))
    return build_graph(Traffic(http, Table.empty(TCP_WIDTH), Table.empty(SPAN_WIDTH), 0.0, WINDOW))


def replaced(calls: list[Call], **by_service: Call) -> list[Call]:
    return [by_service.get(call[1], call) for call in calls]


RATINGS_EDGE = "workload:default:reviews-v1->service:default:ratings:http"


def test_nothing_changed_gives_empty_lists_and_names_the_thresholds() -> None:
    result = diff_graphs(graph_of(BASE), graph_of(BASE))
    for name in ("nodes_added", "nodes_removed", "edges_added", "edges_removed", "edges_changed", "warnings"):
        assert result[name] == [], name
    assert result["edges_unchanged"] == 6
    assert result["thresholds"] == {"error_pct_points": 5.0, "p95_ratio": 0.5, "p95_min_ms": 10.0}
    assert "no changes" in format_diff(result)


def test_an_added_edge_and_its_new_nodes_are_listed_with_their_figures() -> None:
    after = [*BASE, ("reviews-v1", "ratings", "ratings-v2", 30, 0, 10.0)]
    result = diff_graphs(graph_of(BASE), graph_of(after))
    assert [edge["id"] for edge in result["edges_added"]] == [
        "service:default:ratings->workload:default:ratings-v2:http"
    ]
    added = result["edges_added"][0]
    assert added["rps"] == pytest.approx(3.0) and added["error_pct"] == 0.0 and added["protocol"] == "http"
    assert [node["id"] for node in result["nodes_added"]] == ["workload:default:ratings-v2"]
    assert result["nodes_added"][0]["kind"] == "workload"
    assert result["edges_removed"] == [] and result["nodes_removed"] == []
    text = format_diff(result)
    assert "edges added (1):" in text
    assert "+ service:default:ratings -> workload:default:ratings-v2 (http): 3.00 rps, 0.0% errors" in text


def test_a_removed_edge_and_its_nodes_are_listed() -> None:
    result = diff_graphs(graph_of(BASE), graph_of(BASE[:2]))
    assert [edge["id"] for edge in result["edges_removed"]] == [
        "service:default:ratings->workload:default:ratings-v1:http",
        RATINGS_EDGE,
    ]
    assert [node["id"] for node in result["nodes_removed"]] == [
        "service:default:ratings",
        "workload:default:ratings-v1",
    ]
    assert result["edges_removed"][1]["error_pct"] == pytest.approx(4.0)
    assert "- workload:default:reviews-v1 -> service:default:ratings (http)" in format_diff(result)


def test_an_error_rate_jump_fires_the_error_rule_with_both_values() -> None:
    after = replaced(BASE, ratings=("reviews-v1", "ratings", "ratings-v1", 40, 10, 200.0))
    result = diff_graphs(graph_of(BASE), graph_of(after))
    changed = {edge["id"]: edge for edge in result["edges_changed"]}
    assert set(changed) == {RATINGS_EDGE, "service:default:ratings->workload:default:ratings-v1:http"}
    edge = changed[RATINGS_EDGE]
    assert edge["rules"] == ["error_pct"]
    assert edge["before"]["error_pct"] == pytest.approx(4.0) and edge["after"]["error_pct"] == pytest.approx(20.0)
    assert edge["error_pct_delta"] == pytest.approx(16.0)
    assert "errors 4.0% -> 20.0% (+16.0 points)" in format_diff(result)


def test_an_error_move_below_the_threshold_is_not_a_change() -> None:
    after = replaced(BASE, ratings=("reviews-v1", "ratings", "ratings-v1", 46, 4, 200.0))  # 4% -> 8%
    assert diff_graphs(graph_of(BASE), graph_of(after))["edges_changed"] == []
    lower = diff_graphs(graph_of(BASE), graph_of(after), error_pct_threshold=4.0)
    assert [edge["rules"] for edge in lower["edges_changed"]] == [["error_pct"], ["error_pct"]]


def test_a_p95_jump_fires_the_p95_rule() -> None:
    after = replaced(BASE, reviews=("productpage-v1", "reviews", "reviews-v1", 50, 0, 400.0))
    result = diff_graphs(graph_of(BASE), graph_of(after))
    edge = next(edge for edge in result["edges_changed"] if edge["id"].startswith("workload:default:productpage-v1"))
    assert edge["rules"] == ["p95"]
    assert edge["before"]["p95_ms"] == pytest.approx(24.25) and edge["after"]["p95_ms"] == pytest.approx(487.5)
    assert edge["p95_change_ratio"] == pytest.approx(487.5 / 24.25 - 1)
    assert "p95 24.2 ms -> 487.5 ms" in format_diff(result)


def test_a_p95_drop_to_half_fires_too_but_small_latencies_do_not() -> None:
    faster = replaced(BASE, ratings=("reviews-v1", "ratings", "ratings-v1", 48, 2, 40.0))
    assert RATINGS_EDGE in {edge["id"] for edge in diff_graphs(graph_of(BASE), graph_of(faster))["edges_changed"]}
    # details: 5 ms -> 9 ms is +90%, but both are under p95_min_ms.
    jitter = replaced(BASE, details=("productpage-v1", "details", "details-v1", 100, 0, 9.0))
    assert diff_graphs(graph_of(BASE), graph_of(jitter))["edges_changed"] == []
    strict = diff_graphs(graph_of(BASE), graph_of(jitter), p95_min_ms=0.0)
    assert {tuple(edge["rules"]) for edge in strict["edges_changed"]} == {("p95",)}


def test_an_edge_gone_idle_is_present_and_changed_not_removed() -> None:
    after = replaced(BASE, details=("productpage-v1", "details", "details-v1", 0, 0, 5.0))
    result = diff_graphs(graph_of(BASE), graph_of(after))
    assert result["edges_removed"] == [] and result["nodes_removed"] == []
    changed = {edge["id"]: edge for edge in result["edges_changed"]}
    edge = changed["workload:default:productpage-v1->service:default:details:http"]
    assert edge["rules"] == ["activity"] and edge["activity"] == "became idle"
    assert edge["after"]["idle"] is True and "error_pct_delta" not in edge
    back = diff_graphs(graph_of(after), graph_of(BASE))
    assert {edge["activity"] for edge in back["edges_changed"]} == {"became active"}


def test_json_documents_are_read_like_graphs() -> None:
    after = replaced(BASE, ratings=("reviews-v1", "ratings", "ratings-v1", 40, 10, 200.0))
    from_graphs = diff_graphs(graph_of(BASE), graph_of(after))
    from_documents = diff_graphs(orjson.loads(orjson.dumps(to_json(graph_of(BASE)))), to_json(graph_of(after)))
    assert from_documents == from_graphs


def test_graphs_of_different_types_are_compared_with_a_warning() -> None:
    app_graph = graph_of(BASE)
    app_graph.graph["graph_type"] = "app"
    result = diff_graphs(graph_of(BASE), app_graph)
    assert result["warnings"] == ["the graphs are of different types (workload and app): their ids do not match"]
    assert "warning: the graphs are of different types" in format_diff(result)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="error_pct_threshold"):
        diff_graphs(graph_of(BASE), graph_of(BASE), error_pct_threshold=-1)
    with pytest.raises(ValueError, match="not a meshscope graph"):
        diff_graphs({"edges": []}, graph_of(BASE))


# The command.


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshscope graph")
    add_parser(parser.add_subparsers(dest="graph_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    before, after = tmp_path / "a.json", tmp_path / "b.json"
    before.write_bytes(orjson.dumps(to_json(graph_of(BASE))))
    worse = replaced(BASE, ratings=("reviews-v1", "ratings", "ratings-v1", 40, 10, 200.0))
    after.write_bytes(orjson.dumps(to_json(graph_of(worse))))
    return before, after


def test_command_prints_the_diff_and_exits_zero(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(["diff", str(files[0]), str(files[1])]) == 0
    out = capsys.readouterr().out
    assert "edges changed (2):" in out and "errors 4.0% -> 20.0%" in out


def test_command_prints_json_with_the_thresholds_given(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["diff", str(files[0]), str(files[1]), "--json", "--error-threshold", "20", "--p95-threshold", "2"]
    assert run_command(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["thresholds"]["error_pct_points"] == 20.0 and result["thresholds"]["p95_ratio"] == 2.0
    assert result["edges_changed"] == []  # a 16-point move is under 20


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read: No such file or directory"),
        (b"{not json", "not JSON"),
        (b'{"nodes": {}}', "not a meshscope graph"),
        (b'{"nodes": [], "edges": [{"source": "a"}]}', "edges[0]"),
    ],
)
def test_command_names_the_file_it_cannot_use_and_exits_two(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_bytes(content)
    assert run_command(["diff", str(files[0]), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"meshscope graph diff: {bad}: ")
    assert message in captured.err


def test_command_refuses_a_negative_threshold(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_command(["diff", str(files[0]), str(files[1]), "--error-threshold", "-3"])
    assert exit_.value.code == 2
    assert "--error-threshold: must be zero or more" in capsys.readouterr().err
