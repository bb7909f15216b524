from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.model import Record
from telemetry.spans.correlation import RecentTraces, RequestTraceIndex, is_failure

TRACE_A = "a" * 32
TRACE_B = "b" * 32


def _log_record(request_id: str, trace_id: str = "") -> Record:
    return Record(reporter="source", source_workload="productpage-v1", request_id=request_id, trace_id=trace_id)


def test_access_log_records_get_the_trace_id_their_request_id_was_seen_with() -> None:
    index = RequestTraceIndex(max_entries=100)
    index.remember_records([Record(request_id="req-1", trace_id=TRACE_A), Record(request_id="", trace_id=TRACE_B)])
    index.remember("req-2", TRACE_B)
    records = [_log_record("req-1"), _log_record("req-2"), _log_record("req-3"), _log_record("req-1", "c" * 32)]

    filled = index.fill_trace_ids(records)

    assert [record.trace_id for record in filled] == [TRACE_A, TRACE_B, "", "c" * 32]
    assert filled[2] is records[2] and filled[3] is records[3]
    assert filled[0]._replace(trace_id="") == records[0]
    assert index.filled == 2 and len(index) == 2


def test_nothing_to_fill_returns_the_same_list() -> None:
    index = RequestTraceIndex(max_entries=10)
    records = [_log_record("req-1")]
    assert index.fill_trace_ids(records) is records  # empty index
    index.remember("other", TRACE_A)
    assert index.fill_trace_ids(records) is records  # no match
    assert index.filled == 0


def test_request_index_is_bounded_and_counts_evictions_oldest_first() -> None:
    index = RequestTraceIndex(max_entries=3)
    for number in range(5):
        index.remember(f"req-{number}", f"{number:032x}")
    index.remember("req-4", TRACE_A)  # an update, not an insertion

    assert len(index) == 3 and index.evicted == 2
    assert index.trace_id_of("req-0") is None and index.trace_id_of("req-1") is None
    assert index.trace_id_of("req-2") == f"{2:032x}" and index.trace_id_of("req-4") == TRACE_A


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(
        st.lists(st.tuples(st.sampled_from(["", "r1", "r2", "r3", "r4", "r5"]), st.sampled_from(["", "t1", "t2"])))
    ),
)
def test_records_remembered_in_batches_as_one_by_one(max_entries: int, batches: list[list[tuple[str, str]]]) -> None:
    # Batches with room for all and ids throughout take a quicker way than the others.
    in_batches, one_by_one = RequestTraceIndex(max_entries), RequestTraceIndex(max_entries)
    for batch in batches:
        in_batches.remember_records(
            [Record(request_id=request_id, trace_id=trace_id) for request_id, trace_id in batch]
        )
        for request_id, trace_id in batch:
            one_by_one.remember(request_id, trace_id)
    assert list(in_batches._trace_of.items()) == list(one_by_one._trace_of.items())
    assert in_batches.evicted == one_by_one.evicted


def _call(
    trace: int,
    duration: int,
    code: int = 200,
    *,
    reporter: str = "source",
    source: str = "productpage-v1",
    destination: str = "reviews.default.svc.cluster.local",
    **extra: object,
) -> Record:
    return Record(
        reporter=reporter,
        source_workload=source,
        source_namespace="default",
        destination_service=destination,
        trace_id=f"{trace:032x}",
        duration_ms=duration,
        response_code=code,
        start_time=f"2024-01-01T00:00:{trace % 60:02d}.000Z",
        **extra,  # type: ignore[arg-type]
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_traces_keep_the_slowest_and_the_latest_failed_per_edge() -> None:
    traces = RecentTraces(slowest=3, failed=2, window=60.0, clock=_Clock())
    traces.consume([_call(n, duration=n * 10) for n in range(1, 8)])
    traces.consume([_call(20, 5, 503), _call(21, 7, 0, response_flags="UF"), _call(22, 9, 503)])
    traces.consume([_call(30, 2000, reporter="destination")])  # the server's view of a call: not counted

    result = traces.query(("productpage-v1", "default"), "reviews.default.svc.cluster.local")

    assert [entry["duration_ms"] for entry in result["slowest"]] == [70, 60, 50]
    assert [entry["trace_id"] for entry in result["failed"]] == [f"{22:032x}", f"{21:032x}"]
    assert result["failed"][0] == {
        "trace_id": f"{22:032x}",
        "duration_ms": 9,
        "error": True,
        "response_code": 503,
        "start_time": "2024-01-01T00:00:22.000Z",
    }
    assert traces.query(("productpage-v1", "default"), "ratings.default.svc.cluster.local") == {
        "slowest": [],
        "failed": [],
        "failures": [],
    }
    assert traces.query(("reviews-v1", "default"), "reviews.default.svc.cluster.local") == {
        "slowest": [],
        "failed": [],
        "failures": [],
    }


def test_successes_without_trace_ids_and_server_views_of_known_callers_are_ignored() -> None:
    traces = RecentTraces(clock=_Clock())
    traces.consume(
        [
            Record(reporter="source", source_workload="a", destination_service="b", response_code=200),
            _call(1, 10, reporter="destination"),
            _call(2, 10, reporter="destination", source="unknown"),  # a caller outside the mesh
        ]
    )
    assert traces.edges() == [("unknown", "default", "reviews.default.svc.cluster.local")]


def test_recent_failing_requests_are_kept_as_lines_with_or_without_a_trace_id() -> None:
    traces = RecentTraces(failed=2, clock=_Clock())
    failing = Record(
        reporter="source", source_workload="productpage-v1", source_namespace="default",
        destination_service="reviews.default.svc.cluster.local", response_code=503, response_flags="UF",
        method="GET", path="/reviews/1", authority="reviews:9080", start_time="2024-05-04T17:22:59.010Z",
        duration_ms=3,
    )  # fmt: skip
    traces.consume([failing._replace(path=f"/reviews/{n}") for n in range(3)] + [failing._replace(response_code=200)])
    failures = traces.query(("productpage-v1", "default"), "reviews.default.svc.cluster.local")["failures"]
    assert [f["line"] for f in failures] == [
        '[2024-05-04T17:22:59.010Z] "GET /reviews/2" 503 UF 3ms reviews:9080 - -',
        '[2024-05-04T17:22:59.010Z] "GET /reviews/1" 503 UF 3ms reviews:9080 - -',
    ]
    assert failures[0]["trace_id"] == "" and failures[0]["response_flags"] == "UF"


def test_edges_are_capped_with_drops_counted() -> None:
    traces = RecentTraces(max_edges=2, clock=_Clock())
    traces.consume([_call(n, 10, destination=f"svc-{n}") for n in range(5)])
    assert len(traces) == 2 and traces.dropped == 3


def test_slowest_come_from_the_last_one_to_two_windows_and_idle_edges_are_forgotten() -> None:
    clock = _Clock()
    traces = RecentTraces(slowest=2, window=60.0, clock=clock)
    edge = (("productpage-v1", "default"), "reviews.default.svc.cluster.local")
    traces.consume([_call(1, 5000)])
    clock.now += 60
    traces.consume([_call(2, 10)])
    assert [e["duration_ms"] for e in traces.query(*edge)["slowest"]] == [5000, 10]  # previous window still shown
    clock.now += 60
    traces.consume([_call(3, 20)])
    assert [e["duration_ms"] for e in traces.query(*edge)["slowest"]] == [20, 10]  # two windows ago: gone
    traces.consume([_call(4, 1, destination="other")])
    clock.now += 180
    traces.consume([_call(5, 1, destination="other")])
    # Both edges were idle for two windows; "other" comes back with its new Record.
    assert traces.edges() == [("productpage-v1", "default", "other")] and traces.forgotten == 2


def test_recent_traces_is_a_sink() -> None:
    traces = RecentTraces()
    assert traces.flush(1.0) is True
    traces.shutdown()
    traces.shutdown()


def test_failure_is_5xx_no_response_or_a_grpc_error() -> None:
    assert is_failure(Record(response_code=503))
    assert is_failure(Record(response_code=0, response_flags="UF"))
    assert is_failure(Record(protocol="grpc", response_code=200, grpc_status="14"))
    assert not is_failure(Record(protocol="grpc", response_code=200, grpc_status="0"))
    assert not is_failure(Record(response_code=404))
    assert not is_failure(Record(protocol="tcp", response_code=0))


def test_a_full_index_makes_room_for_a_batch_of_new_request_ids_oldest_first() -> None:
    index, one_by_one = RequestTraceIndex(max_entries=100), RequestTraceIndex(max_entries=100)
    first = [Record(request_id=f"old-{n}", trace_id=f"{n:032x}") for n in range(100)]
    batch = [Record(request_id=f"new-{n}", trace_id=f"{n + 1000:032x}") for n in range(30)]
    for records in (first, batch):
        index.remember_records(records)
        for record in records:
            one_by_one.remember(record.request_id, record.trace_id)
    assert index.evicted == 30 and len(index) == 100
    assert list(index._trace_of.items()) == list(one_by_one._trace_of.items())
    assert index.trace_id_of("old-29") is None and index.trace_id_of("old-30") == f"{30:032x}"
    assert index.trace_id_of("new-29") == f"{1029:032x}"
