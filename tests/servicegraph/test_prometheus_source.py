"""PrometheusSource: the PromQL it sends, how it reads Prometheus's answers, and a real scale-out.

The scale-out test runs three real collectors behind one real Prometheus: A and B each read half of a
demo mesh's access logs (job ``halves``), C reads all of them (job ``whole``). The graph source must
see the same traffic through either job, and the same traffic C itself counted.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from servicegraph.builder import GraphOptions, build_graph
from servicegraph.model import GRAPH_TYPES
from servicegraph.sources.prometheus import (
    COLUMN_QUERIES,
    REQUESTS_TOTAL,
    TABLE_WIDTHS,
    ColumnQuery,
    PrometheusSource,
    PrometheusSourceError,
    assemble,
    decumulate,
    increase_query,
    parse_data,
    promql_duration,
    validate_selector,
)
from servicegraph.traffic import (
    BUCKETS,
    CONNECTIONS,
    DURATION_MS_SUM,
    HTTP_LABELS,
    N_BUCKETS,
    REQUEST_BYTES_SUM,
    REQUESTS,
    RESPONSE_BYTES_SUM,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_LABELS,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    TCP_RECEIVED_BYTES,
    TCP_ROW_LABELS,
    TCP_SENT_BYTES,
    Table,
    Traffic,
)
from telemetry.demo import PODS, DemoConfig, EntryGenerator, Pod, pod_log_path
from telemetry.envoy.presets import ISTIO
from telemetry.envoy.render import compile_renderer
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

from conftest import require_program
from realparts import free_port, http_get, meshscope_process, prometheus, wait_for

TESTDATA = Path(__file__).parents[1] / "testdata" / "prometheus_source"
T_MS = 1_700_000_000_000  # the evaluation time of the hand-written answers


def _answer(name: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((TESTDATA / name).read_text())
    return answer


def _query(series: str) -> ColumnQuery:
    return next(query for query in COLUMN_QUERIES if query.series == series)


def _assembled(
    answers: Sequence[tuple[ColumnQuery, dict[str, Any]]], times_ms: Sequence[int], step: float
) -> list[Traffic]:
    return assemble([(query, parse_data(answer["data"])) for query, answer in answers], times_ms, step)


# -- the PromQL -------------------------------------------------------------------------------------------


def test_counter_query_sums_the_windows_increase_by_the_row_labels_in_order() -> None:
    query = increase_query(REQUESTS_TOTAL, ("reporter", "source_workload"), 'job="mesh-a"', "300s")
    assert query == 'sum by (reporter, source_workload) (increase(istio_requests_total{job="mesh-a"}[300s]))'


def test_histogram_queries_keep_le_after_the_row_labels() -> None:
    query = _query("istio_request_duration_milliseconds_bucket").promql("", "1m")
    assert query == (f"sum by ({', '.join(HTTP_LABELS)}, le) "
                     "(increase(istio_request_duration_milliseconds_bucket[1m]))")  # fmt: skip


def test_every_column_of_every_table_is_filled_by_exactly_one_query() -> None:
    filled: dict[str, list[int]] = defaultdict(list)
    for query in COLUMN_QUERIES:
        width = N_BUCKETS if query.histogram else 1
        filled[query.table].extend(range(query.column, query.column + width))
        assert query.labels == {"http": HTTP_LABELS, "tcp": TCP_ROW_LABELS, "spans": SPAN_LABELS}[query.table]
    for table, width in TABLE_WIDTHS.items():
        assert sorted(filled[table]) == list(range(width)), table


def test_connector_seconds_are_scaled_to_milliseconds_and_istio_values_are_not() -> None:
    scales = {query.series: query.scale for query in COLUMN_QUERIES}
    assert scales["traces_service_graph_request_client_seconds_sum"] == 1000.0
    assert scales["traces_service_graph_request_server_seconds_bucket"] == 1000.0
    assert scales["istio_request_duration_milliseconds_sum"] == 1.0
    assert scales["traces_service_graph_request_total"] == 1.0


@pytest.mark.parametrize(
    ("seconds", "expected"), [(300, "300s"), (60.0, "60s"), (2.5, "2500ms"), (0.001, "1ms"), (3600.0004, "3600s")]
)
def test_window_becomes_a_promql_duration_without_fractions(seconds: float, expected: str) -> None:
    assert promql_duration(seconds) == expected


def test_a_window_under_a_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        promql_duration(0.0001)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ""),
        ('job="mesh-a"', 'job="mesh-a"'),
        ('  job="mesh-a",cluster="east" ', 'job="mesh-a",cluster="east"'),
        ('{job=~"a|b", cluster!="x",}', 'job=~"a|b", cluster!="x"'),
        ("job='a',path!~`/x{1}\"`", "job='a',path!~`/x{1}\"`"),
        ('name="with \\" quote and } brace"', 'name="with \\" quote and } brace"'),
    ],
)
def test_well_formed_selectors_are_accepted(selector: str, expected: str) -> None:
    assert validate_selector(selector) == expected


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ('job="mesh-a', "unbalanced quotes"),
        ("job='mesh-a\"", "unbalanced quotes"),
        ('job="mesh-a"}', "unbalanced braces"),
        ('{job="mesh-a"', "unbalanced braces"),
        ('job="a"} or vector(1) {x="y"', "unbalanced braces"),
        ("job", "not a list of label matchers"),
        ("job=mesh-a", "not a list of label matchers"),
        ('job="a" cluster="b"', "not a list of label matchers"),
    ],
)
def test_malformed_selectors_are_refused_naming_the_selector(selector: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^selector: .*{reason}"):
        PrometheusSource("http://127.0.0.1:9090", selector)


def test_the_selector_goes_into_every_querys_metric_selector() -> None:
    source = PrometheusSource("http://127.0.0.1:9090/", 'job="mesh-a",cluster="east"')
    for query in COLUMN_QUERIES:
        assert f'{query.series}{{job="mesh-a",cluster="east"}}[30s]' in query.promql(source.selector, "30s")
    assert source.url == "http://127.0.0.1:9090"


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="^url: "):
        PrometheusSource("127.0.0.1:9090")


# -- reading answers --------------------------------------------------------------------------------------


def test_histogram_buckets_are_decumulated_onto_our_bounds() -> None:
    cumulative = {0.5: 1.0, 1.0: 1.0, 5.0: 4.0, 2500.0: 9.0, math.inf: 10.0}
    counts = decumulate(cumulative)
    assert counts.tolist() == [1, 0, 3] + [0] * 7 + [5] + [0] * 8 + [1]


def test_foreign_bucket_bounds_go_to_the_first_of_our_buckets_at_least_as_high() -> None:
    [traffic] = _assembled([(_query("istio_request_duration_milliseconds_bucket"), _answer("foreign_buckets.json"))],
                     [T_MS], 60.0)  # fmt: skip
    [key] = traffic.http.keys
    buckets = traffic.http.values[0, BUCKETS : BUCKETS + N_BUCKETS]
    bound = {value: index for index, value in enumerate(DURATION_BUCKETS_MS)}
    # le=3 -> 5 ms, le=7 -> 10 ms, le=20 -> 25 ms, le=1000 -> 1000 ms (equal), +Inf -> +Inf.
    expected = np.zeros(N_BUCKETS)
    expected[[bound[5], bound[10], bound[25], bound[1000], N_BUCKETS - 1]] = [2, 3, 4, 0, 1]
    assert buckets.tolist() == expected.tolist()
    assert traffic.http.values[0, :BUCKETS].tolist() == [0, 0, 0, 0]


def test_labels_prometheus_does_not_store_read_back_as_istio_writes_them() -> None:
    [traffic] = _assembled([(_query("istio_request_duration_milliseconds_bucket"), _answer("foreign_buckets.json"))],
                     [T_MS], 60.0)  # fmt: skip
    [key] = traffic.http.keys
    labelled = dict(zip(HTTP_LABELS, key, strict=True))
    assert labelled["source_workload"] == "web" and labelled["response_code"] == "200"
    assert labelled["grpc_response_status"] == ""  # Istio leaves it empty on HTTP; Prometheus drops empty labels
    assert labelled["destination_workload"] == "unknown"
    assert all(isinstance(value, str) for value in key)


def test_span_pair_latencies_in_seconds_become_milliseconds() -> None:
    answers = [
        (_query("traces_service_graph_request_client_seconds_bucket"), _answer("span_client_buckets.json")),
        (_query("traces_service_graph_request_client_seconds_sum"), _answer("span_client_sum.json")),
    ]
    [traffic] = _assembled(answers, [T_MS], 60.0)
    assert traffic.spans.keys == [("productpage", "", "mysql", "", "database")]
    row = traffic.spans.values[0]
    assert row[SPAN_CLIENT_MS_SUM] == pytest.approx(1250.0)
    bound = {value: index for index, value in enumerate(DURATION_BUCKETS_MS)}
    client = row[SPAN_CLIENT_BUCKETS : SPAN_CLIENT_BUCKETS + N_BUCKETS]
    assert {index: count for index, count in enumerate(client) if count} == {bound[5]: 1, bound[10]: 2, bound[2500]: 1}
    assert not row[SPAN_SERVER_BUCKETS:].any()


def test_recorded_answers_fill_rows_keyed_in_label_order_and_keep_idle_ones() -> None:
    answers = [(query, _answer(f"recorded/{query.series}.json")) for query in COLUMN_QUERIES[:5]]
    end_ms = round(float(answers[0][1]["data"]["result"][0]["value"][0]) * 1000)
    [traffic] = _assembled(answers, [end_ms], 30.0)
    assert traffic.start == pytest.approx(end_ms / 1000 - 30.0) and traffic.end == end_ms / 1000
    http = traffic.http
    assert len(http) == len(answers[0][1]["data"]["result"]) > 5
    requests = http.values[:, REQUESTS]
    for key, row in zip(http.keys, http.values, strict=True):
        assert len(key) == len(HTTP_LABELS)
        # Every request falls in one bucket; increase() extrapolates each bucket series alike.
        assert row[BUCKETS:].sum() == pytest.approx(row[REQUESTS], rel=1e-9)
        assert (row[BUCKETS:] >= 0).all()
    assert (requests == 0).any(), "the recording should hold idle label sets, kept as zero rows"
    assert (requests > 0).any()
    grpc = [key for key in http.keys if key[HTTP_LABELS.index("request_protocol")] == "grpc"]
    assert grpc and all(key[HTTP_LABELS.index("grpc_response_status")] != "" for key in grpc)


def test_a_recorded_range_answer_becomes_one_traffic_per_step_oldest_first() -> None:
    answer = _answer("recorded/istio_requests_total.range.json")
    stamps = sorted({round(float(t) * 1000) for series in answer["data"]["result"] for t, _ in series["values"]})
    step_ms = stamps[1] - stamps[0]
    series = _assembled([(_query(REQUESTS_TOTAL), answer)], stamps, step_ms / 1000)
    assert [traffic.end for traffic in series] == [t / 1000 for t in stamps]
    assert all(traffic.seconds == pytest.approx(step_ms / 1000) for traffic in series)
    for index, traffic in enumerate(series):
        expected = {
            tuple(s["metric"].get(label, "" if label == "grpc_response_status" else "unknown") for label in HTTP_LABELS)
            for s in answer["data"]["result"]
            if any(round(float(t) * 1000) == stamps[index] for t, _ in s["values"])
        }
        assert set(traffic.http.keys) == expected
    assert sum(float(traffic.http.values[:, REQUESTS].sum()) for traffic in series) > 0


def _matrix(*samples: tuple[int, str]) -> dict[str, Any]:
    values = [[t / 1000, value] for t, value in samples]
    return {"data": {"resultType": "matrix", "result": [{"metric": {"reporter": "source"}, "values": values}]}}


def test_range_samples_a_millisecond_off_the_evaluation_times_land_on_the_nearest() -> None:
    times_ms = [T_MS, T_MS + 1714, T_MS + 3428]
    answer = _matrix((T_MS, "1"), (T_MS + 1713, "2"), (T_MS + 3428, "4"))  # Prometheus truncates to the ms
    series = _assembled([(_query(REQUESTS_TOTAL), answer)], times_ms, 1.714)
    assert [t.http.values[0, REQUESTS] for t in series] == [1, 2, 4]


def test_a_sample_far_from_every_evaluation_time_is_refused() -> None:
    answer = _matrix((T_MS + 857, "1"))
    with pytest.raises(ValueError, match="not near an evaluation time"):
        _assembled([(_query(REQUESTS_TOTAL), answer)], [T_MS, T_MS + 1714], 1.714)


def test_an_answer_that_is_not_a_vector_or_matrix_is_refused() -> None:
    with pytest.raises(ValueError, match="resultType 'scalar'"):
        parse_data({"resultType": "scalar", "result": [1, "2"]})
    with pytest.raises(ValueError, match="malformed vector"):
        parse_data({"resultType": "vector", "result": [{"metric": {}}]})


# -- failures ---------------------------------------------------------------------------------------------


def test_an_unreachable_prometheus_is_an_error_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PrometheusSourceError, match=f"{url}/api/v1/query failed: cannot connect") as error:
        PrometheusSource(url, timeout=2).traffic(60)
    assert "istio_" in str(error.value) or "traces_service_graph" in str(error.value)  # the query is named


def test_a_prometheus_that_does_not_answer_in_time_is_an_error() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(PrometheusSourceError, match=r"no answer within 0.5 s"):
            PrometheusSource(url, timeout=0.5).traffic_series(60, 6)
        # The queries run at once: the whole call waits about one timeout, not one per query.
        assert time.monotonic() - started < 0.5 * len(COLUMN_QUERIES) / 2


class _ProxyRefusingPost(BaseHTTPRequestHandler):
    """A read-only proxy in front of Prometheus: POST is refused; GET answers every query with one row."""

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_error(405)

    def do_GET(self) -> None:  # noqa: N802
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        at = float(params["time"][0])
        assert isinstance(self.server, _ProxyServer)
        if self.server.mode == "not_json":
            body = b"<html>gateway</html>"
        else:
            answer = {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"reporter": "source", "le": "+Inf"}, "value": [at, "3"]}]}}  # fmt: skip
            body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ProxyServer(ThreadingHTTPServer):
    request_queue_size = 64  # all queries connect at once
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyRefusingPost)
        self.mode = mode


@contextmanager
def _proxy(mode: str) -> Iterator[str]:
    server = _ProxyServer(mode)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_proxy_that_refuses_post_is_asked_with_get() -> None:
    with _proxy("answer") as url:
        traffic = PrometheusSource(url).traffic(60, T_MS / 1000)
    assert traffic.http.values[:, REQUESTS].tolist() == [3.0]
    assert traffic.tcp.values[:, CONNECTIONS].tolist() == [3.0]
    assert traffic.spans.values[:, SPAN_REQUESTS].tolist() == [3.0]


def test_an_answer_that_is_not_json_is_an_error_naming_the_url() -> None:
    with (
        _proxy("not_json") as url,
        pytest.raises(PrometheusSourceError, match=f"{url}/api/v1/query failed: the answer is not JSON"),
    ):
        PrometheusSource(url).traffic(60)


# -- three real collectors behind a real Prometheus ------------------------------------------------------

DEMO_REQUESTS = 60
WINDOW_MS = 12_000  # the compared window: long against the 1 s scrape interval, so extrapolation stays small
COLLECTORS = ("a", "b", "c")
# Istio's text format does not print the gRPC status; with it, gRPC calls are rows of their own.
ACCESS_LOG_FORMAT = ISTIO.rstrip("\n") + " %GRPC_STATUS%\n"
JOBS = {"halves": ("a", "b"), "whole": ("c",)}
ISTIO_COUNTERS = {
    "istio_requests_total": (HTTP_LABELS, REQUESTS),
    "istio_request_duration_milliseconds_sum": (HTTP_LABELS, DURATION_MS_SUM),
    "istio_request_bytes_sum": (HTTP_LABELS, REQUEST_BYTES_SUM),
    "istio_response_bytes_sum": (HTTP_LABELS, RESPONSE_BYTES_SUM),
    "istio_tcp_connections_opened_total": (TCP_ROW_LABELS, CONNECTIONS),
    "istio_tcp_received_bytes_total": (TCP_ROW_LABELS, TCP_RECEIVED_BYTES),
    "istio_tcp_sent_bytes_total": (TCP_ROW_LABELS, TCP_SENT_BYTES),
}


@dataclass
class _Collector:
    name: str
    logs: Path
    port: int
    lines: int = 0  # lines written to its logs so far

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _demo_requests(count: int) -> list[list[tuple[Pod, str]]]:
    """Per gateway request of the simulated Bookinfo mesh: each proxy's access-log line (Istio format)."""
    config = DemoConfig(
        seed=11, not_found_share=0.1, upstream_failure_share=0.05, external_share=0.3, mysql_connection_share=0.5
    )
    generator = EntryGenerator(config)
    render = compile_renderer(ACCESS_LOG_FORMAT)
    now_ms = time.time() * 1000
    return [[(entry.pod, render(entry.fields)) for entry in generator.request(now_ms + index * 50.0)]
            for index in range(count)]  # fmt: skip


def _write(collector: _Collector, lines: list[tuple[Pod, str]]) -> None:
    by_pod: dict[Pod, list[str]] = defaultdict(list)
    for pod, line in lines:
        by_pod[pod].append(line)
    for pod, pod_lines in by_pod.items():
        path = pod_log_path(collector.logs, pod)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write("\n".join(pod_lines) + "\n")
    collector.lines += len(lines)


def _config(collector: _Collector, folder: Path) -> Path:
    config = {
        "pipeline": {"batch_timeout": 0.05},
        "receivers": {
            "filelog": {
                "include": [str(collector.logs / "*" / "istio-proxy" / "*.log")],
                "format": ACCESS_LOG_FORMAT,
                "poll_interval": 0.05,
            },
            "als": {"enabled": False},
            "otlp": {"grpc": {"enabled": False}, "http": {"enabled": False}},
            "zipkin": {"enabled": False},
        },
        "exporters": {"prometheus": {"endpoint": collector.target}},
        "graph": {"enabled": False},
    }
    path = folder / f"{collector.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _exposed(collector: _Collector) -> dict[str, dict[tuple[str, ...], float]]:
    """The collector's own /metrics: per Istio counter (and duration bucket), the value of each row key."""
    text = http_get(f"http://{collector.target}/metrics").decode()
    rows: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ISTIO_COUNTERS:
                labels = ISTIO_COUNTERS[sample.name][0]
                rows[sample.name][tuple(sample.labels[label] for label in labels)] = sample.value
            elif sample.name == "istio_request_duration_milliseconds_bucket":
                key = tuple(sample.labels[label] for label in (*HTTP_LABELS, "le"))
                rows[sample.name][key] = sample.value
    return rows


def _records_counted(collector: _Collector) -> float:
    rows = _exposed(collector)
    return sum(rows["istio_requests_total"].values()) + sum(rows["istio_tcp_connections_opened_total"].values())


def _counted_all(collector: _Collector) -> bool:
    return _records_counted(collector) == collector.lines


def _wait_counted(collectors: Sequence[_Collector]) -> None:
    for collector in collectors:
        wait_for(partial(_counted_all, collector), timeout=15, interval=0.05,
                 what=f"collector {collector.name} to count {collector.lines} records")  # fmt: skip


def _prometheus_at(url: str, query: str, at_ms: int) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": query, "time": f"{at_ms / 1000:.3f}"})
    answer = json.loads(http_get(f"{url}/api/v1/query?{params}"))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _wait_scraped(url: str, collectors: Sequence[_Collector]) -> int:
    """A time (ms) at which Prometheus's latest sample of every collector holds all the lines it was given."""

    def scraped() -> int:
        at_ms = int(time.time() * 1000)
        query = "sum by (instance) (istio_requests_total) + on (instance) sum by (instance) (istio_tcp_connections_opened_total)"
        totals = {s["metric"]["instance"]: float(s["value"][1]) for s in _prometheus_at(url, query, at_ms)}
        return at_ms if all(totals.get(c.target) == c.lines for c in collectors) else 0

    return wait_for(scraped, timeout=15, interval=0.2, what="Prometheus to scrape every collector's totals")


def _wait_sampled_after(url: str, at_ms: int) -> None:
    """Until every collector's series have a sample stamped after ``at_ms`` (and so all those before it).

    Not ``up``: a failed scrape records ``up``, but no sample of the target's series.
    """
    latest = "max by (instance) (timestamp(istio_requests_total))"

    def sampled() -> bool:
        answer = _prometheus_at(url, latest, int(time.time() * 1000))
        return len([s for s in answer if float(s["value"][1]) * 1000 > at_ms]) == len(COLLECTORS)

    wait_for(sampled, timeout=15, interval=0.1, what=f"a sample of every collector after {at_ms / 1000:.3f}")


def _extrapolation_bound(url: str, job: str, ports: list[int], window_ms: int, end_ms: int) -> float:
    """How much increase() may overstate this job's targets' counts over the window ending at ``end_ms``.

    increase() scales the difference between the window's first and last samples by the window's share
    those samples span, extrapolating at most to the window's edges: the factor lies between 1 and
    window / (last sample - first sample), read here from the series' own sample times.
    """
    answer = _prometheus_at(url, f'istio_requests_total{{job="{job}"}}[{window_ms}ms]', end_ms)
    bounds = []
    for series in answer:
        times_ms = [round(float(t) * 1000) for t, _ in series["values"]]  # whole ms: exact differences
        bounds.append(window_ms / (times_ms[-1] - times_ms[0]))
    assert {series["metric"]["instance"] for series in answer} == {f"127.0.0.1:{port}" for port in ports}
    return max(bounds)


def _increments(before: dict[str, dict[tuple[str, ...], float]], after: dict[str, dict[tuple[str, ...], float]],
                table: str) -> dict[tuple[str, ...], np.ndarray]:  # fmt: skip
    """What a collector counted between two reads of its /metrics, as rows of a Traffic table."""
    width = TABLE_WIDTHS[table]
    rows: dict[tuple[str, ...], np.ndarray] = defaultdict(lambda: np.zeros(width))
    for name, (labels, column) in ISTIO_COUNTERS.items():
        if (labels is HTTP_LABELS) != (table == "http"):
            continue
        for key, value in after.get(name, {}).items():
            rows[key][column] += value - before.get(name, {}).get(key, 0.0)
    if table == "http":
        cumulative: dict[tuple[str, ...], dict[float, float]] = defaultdict(dict)
        buckets = "istio_request_duration_milliseconds_bucket"
        for key, value in after.get(buckets, {}).items():
            cumulative[key[:-1]][float(key[-1])] = value - before.get(buckets, {}).get(key, 0.0)
        for key, by_le in cumulative.items():
            running = 0.0
            for index, le in enumerate(sorted(by_le)):
                rows[key][BUCKETS + index] += by_le[le] - running
                running = by_le[le]
    return rows


def _within(value: np.ndarray, counted: np.ndarray, bound: float) -> bool:
    """``counted <= value <= counted * bound``, cell by cell, give or take float rounding."""
    slack = 1e-7 * np.maximum(np.abs(counted), 1.0)
    return bool(np.all(value >= counted - slack) and np.all(value <= counted * bound + slack))


def _close(first: np.ndarray, second: np.ndarray, tolerance: float) -> bool:
    return bool(np.all(np.abs(first - second) <= tolerance * np.maximum(np.abs(first), np.abs(second)) + 1e-9))


def _rows(table: Table) -> dict[tuple[str, ...], np.ndarray]:
    return dict(zip(table.keys, table.values, strict=True))


@contextmanager
def _collectors(tmp_path: Path) -> Iterator[dict[str, _Collector]]:
    collectors = {name: _Collector(name, tmp_path / name / "pods", free_port()) for name in COLLECTORS}
    with ExitStack() as stack:
        processes = [
            stack.enter_context(meshscope_process(["run", "-c", str(_config(c, tmp_path))], tmp_path / f"{c.name}.log"))
            for c in collectors.values()
        ]
        for collector in collectors.values():
            wait_for(partial(http_get, f"http://{collector.target}/metrics"), timeout=30,
                     what=f"collector {collector.name}'s /metrics")  # fmt: skip
        yield collectors
        assert all(process.poll() is None for process in processes), "a collector died during the test"
    for process, name in zip(processes, COLLECTORS, strict=True):
        assert process.returncode == 0, (tmp_path / f"{name}.log").read_text()


def test_halves_and_whole_behind_one_prometheus_give_the_same_traffic(tmp_path: Path) -> None:
    binary = require_program("prometheus", "prometheus")
    requests = _demo_requests(DEMO_REQUESTS)
    everything = [line for request in requests for line in request]
    half = len(requests) // 2
    with _collectors(tmp_path) as collectors:
        a, b, c = collectors["a"], collectors["b"], collectors["c"]
        jobs = {job: [collectors[name].target for name in names] for job, names in JOBS.items()}
        with prometheus(binary, tmp_path, [], jobs=jobs) as url:
            # Priming, so that the compared window holds only complete, identically named rows:
            # 1. Text access logs name a peer only once its own proxy's lines have taught its address.
            #    One proxy's log at a time, the same in every collector, makes the rows named "unknown"
            #    while learning the same everywhere (they stay idle afterwards).
            for pod in PODS:
                lines = [line for line in everything if line[0] == pod]
                for collector in collectors.values():
                    _write(collector, lines)
                _wait_counted(list(collectors.values()))
            # 2. Every row the compared traffic will touch exists before the window: increase() cannot
            #    count a series' first sample, so a series born inside the window would lose it.
            for collector in collectors.values():
                _write(collector, everything)
            _wait_counted(list(collectors.values()))
            primed = {name: _exposed(collector) for name, collector in collectors.items()}
            window_start_ms = _wait_scraped(url, list(collectors.values()))
            # Every target's first sample in the window must be scraped before the traffic, or part of the
            # traffic would hide in it.
            _wait_sampled_after(url, window_start_ms)

            # The traffic: A reads the first half of the requests, B the second half, C all of them.
            _write(a, [line for request in requests[:half] for line in request])
            _write(b, [line for request in requests[half:] for line in request])
            _write(c, everything)
            _wait_counted([a, b, c])
            final = {name: _exposed(collector) for name, collector in collectors.items()}
            traffic_scraped_ms = _wait_scraped(url, [a, b, c]) - window_start_ms
            window_ms = max(WINDOW_MS, math.ceil(2 * traffic_scraped_ms / 1000) * 1000)
            end_ms = window_start_ms + window_ms
            time.sleep(max(0.0, end_ms / 1000 - time.time()))
            # A scrape stamped before the end may be stored after it, the more so under load: wait for one
            # stamped after it, so that every query below sees the same samples.
            _wait_sampled_after(url, end_ms)

            window, end = window_ms / 1000, end_ms / 1000
            whole_source = PrometheusSource(url, 'job="whole"')
            halves = PrometheusSource(url, 'job="halves"').traffic(window, end)
            whole = whole_source.traffic(window, end)
            bound = {job: _extrapolation_bound(url, job, [collectors[name].port for name in names], window_ms, end_ms)
                     for job, names in JOBS.items()}  # fmt: skip
            # The whole traffic was in Prometheus before the window's middle (see window_ms).
            series = whole_source.traffic_series(window, 2, end)
            # 7 points: a step of 1714.28... ms, which Prometheus and we must round alike.
            cuts = {points: whole_source.traffic_series(window, points, end) for points in (4, 7)}
            one_by_one = {points: [whole_source.traffic(t.end - t.start, t.end) for t in cut]
                          for points, cut in cuts.items()}  # fmt: skip

            with pytest.raises(PrometheusSourceError, match=rf"{url}/api/v1/query failed: HTTP 400: bad_data"):
                PrometheusSource(url, 'job=~"("').traffic(window, end)  # Prometheus refuses the regex

    # The demo traffic exercised what the graph has to handle.
    labelled = [dict(zip(HTTP_LABELS, key, strict=True)) for key in whole.http.keys]
    assert {row["reporter"] for row in labelled} == {"source", "destination"}
    assert {"200", "404", "503"} <= {row["response_code"] for row in labelled}
    assert {"http", "grpc"} <= {row["request_protocol"] for row in labelled}
    assert len({(row["source_workload"], row["destination_service_name"]) for row in labelled}) >= 5
    assert len(whole.tcp) >= 2 and whole.tcp.values[:, CONNECTIONS].sum() > 0
    # These collectors expose no span-pair metrics (their graph is off): the spans tables are empty.
    assert len(whole.spans) == len(halves.spans) == 0

    # The tolerance: increase() extrapolates each target's counts by a factor between 1 and
    # window / (its last - its first sample in the window), read from Prometheus (about 12/11 here).
    # Every cell of one job is counted * a factor in that range, so two jobs' cells differ by at most
    # (largest factor - 1) of the larger one; nothing else may differ.
    tolerance = max(bound.values()) - 1
    assert 0 < tolerance < 0.5, bound
    for table in ("http", "tcp"):
        halves_rows, whole_rows = _rows(getattr(halves, table)), _rows(getattr(whole, table))
        assert set(halves_rows) == set(whole_rows), table
        for key, row in whole_rows.items():
            assert _close(halves_rows[key], row, tolerance), (table, key, halves_rows[key], row)
        assert any(row.any() for row in whole_rows.values()) and any(not row.any() for row in whole_rows.values())

        # Each job against what its collectors counted themselves in the window.
        counted_whole = _increments(primed["c"], final["c"], table)
        counted_halves = _increments(primed["a"], final["a"], table)
        for key, row in _increments(primed["b"], final["b"], table).items():
            counted_halves[key] = counted_halves[key] + row
        for key, row in whole_rows.items():
            expected = counted_whole.get(key, np.zeros_like(row))
            assert _within(row, expected, bound["whole"]), (table, key, row, expected)
            expected = counted_halves.get(key, np.zeros_like(row))
            assert _within(halves_rows[key], expected, bound["halves"]), (table, key, halves_rows[key], expected)
        assert {key for key, row in counted_whole.items() if row.any()} <= set(whole_rows)

    # A series' points are the window's consecutive parts, oldest first, each read as traffic() would.
    for points, cut in cuts.items():
        assert len(cut) == points and cut[-1].end == end
        assert [t.end - t.start for t in cut] == pytest.approx([window / points] * points, abs=1e-3)
        assert [b.start for b in cut[1:]] == pytest.approx([a.end for a in cut[:-1]], abs=1e-3)
        for point, alone in zip(cut, one_by_one[points], strict=True):
            assert point.http.keys == alone.http.keys and np.allclose(point.http.values, alone.http.values)
            assert point.tcp.keys == alone.tcp.keys and np.allclose(point.tcp.values, alone.tcp.values)
    # The traffic came in the first half; the second half saw none of it, yet keeps its rows (idle).
    assert series[0].http.values[:, REQUESTS].sum() > 0
    assert set(series[1].http.keys) == set(whole.http.keys) and not series[1].http.values.any()

    _assert_same_graphs(halves, whole, tolerance)


def _assert_same_graphs(halves: Traffic, whole: Traffic, tolerance: float) -> None:
    for graph_type in GRAPH_TYPES:
        options = GraphOptions(graph_type=graph_type)
        first, second = build_graph(halves, options, "prometheus"), build_graph(whole, options, "prometheus")
        assert set(first.nodes) == set(second.nodes), graph_type
        assert set(first.edges(keys=True)) == set(second.edges(keys=True)), graph_type
        for source, target, key, figures in second.edges(keys=True, data=True):
            other = first.edges[source, target, key]
            for name in ("rps", "requests", "errors"):
                assert _close(np.array(other[name]), np.array(figures[name]), tolerance), (source, target, name)
