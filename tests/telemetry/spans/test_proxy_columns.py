"""Proxy spans made Records in columns: each column step gives what the span-by-span step gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.peers import PeerTable
from telemetry.model import Workload
from telemetry.spans import normalize, proxy_columns
from telemetry.spans.normalize import SPAN_KEYS
from telemetry.spans.proxy_columns import RECORD_KEYS, Plan, TagColumns, plan, proxy_records, reorder, split_url

EXAMPLES = settings(max_examples=200, derandomize=True, deadline=None, database=None)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
urls = st.one_of(
    st.sampled_from(["http://reviews:9080/r/1", "https://host", "/only/a/path", "grpc://a/b/c", "x://", "://"]),
    st.text(alphabet=":/ab", max_size=8),
)


@EXAMPLES
@given(st.lists(urls, min_size=1, max_size=6))
def test_urls_split_in_columns_as_one_by_one(column: list[str]) -> None:
    authorities, paths = proxy_columns.split_urls(column)
    assert list(zip(authorities, paths, strict=True)) == [split_url(url) for url in column]


tag_dicts = st.dictionaries(
    st.sampled_from([*RECORD_KEYS, "istio.namespace", "error", "x"]), st.sampled_from(["", "-", "a", "200"]), max_size=6
)


@EXAMPLES
@given(st.lists(tag_dicts, min_size=1, max_size=5))
def test_tag_columns_read_each_span_as_its_attributes_would_be(tags: list[dict[str, str]]) -> None:
    columns = TagColumns().read(tags)
    for index, span_tags in enumerate(tags):
        assert [column[index] for column in columns] == [span_tags.get(key, "") for key in RECORD_KEYS]


def test_tag_columns_picked_by_key_are_in_the_plans_order_with_absent_tags_empty() -> None:
    keys = ("node_id", "http.method", "istio.namespace")
    values = [("n1", "n2", "n3"), ("GET", "PUT", "POST"), ("a", "b", "c")]
    columns = TagColumns.pick(keys, values, lambda column: [column[2], column[0], column[1]])
    assert columns[RECORD_KEYS.index("http.method")] == ["POST", "GET", "PUT"]
    assert columns[RECORD_KEYS.index("node_id")] == ["n3", "n1", "n2"]
    assert columns[RECORD_KEYS.index("http.url")] == ["", "", ""]
    assert len(columns) == len(RECORD_KEYS)


def test_a_plan_groups_spans_by_reporter_in_order_of_appearance_and_restores_their_order() -> None:
    reporters = {(node, "svc"): object() for node in "abc"}
    made = plan(["b", "a", "b", "c", "a"], ["svc"] * 5, reporters)  # type: ignore[arg-type]
    assert made is not None
    assert made.reporters == [reporters["b", "svc"], reporters["a", "svc"], reporters["c", "svc"]]
    assert made.sizes == [2, 2, 1]
    grouped = reorder([0, 1, 2, 3, 4], made.order)
    assert list(grouped) == [0, 2, 1, 4, 3]
    assert list(reorder(grouped, made.restore)) == [0, 1, 2, 3, 4]
    assert plan(["a", "d"], ["svc", "svc"], reporters) is None  # type: ignore[arg-type]  # d not known yet
    single = plan(["a", "a"], ["svc", "svc"], reporters)  # type: ignore[arg-type]
    assert single is not None and single.order is None and single.sizes == [2]


def test_a_plan_declines_requests_of_few_spans_a_proxy(monkeypatch: Any) -> None:
    monkeypatch.setattr(proxy_columns, "_MIN_SPANS_PER_PROXY", 8)
    reporters = {(node, "svc"): object() for node in "ab"}
    assert plan(["a", "b"] * 7, ["svc"] * 14, reporters) is None  # type: ignore[arg-type]
    made = plan(["a", "b"] * 8, ["svc"] * 16, reporters)  # type: ignore[arg-type]
    assert made is not None and made.sizes == [8, 8]
    assert plan(["a"] * 3, ["svc"] * 3, reporters) is not None  # type: ignore[arg-type]  # one proxy: always


def test_envoy_fields_columns_are_each_spans_envoy_fields() -> None:
    values = [f"v{index}" for index in range(len(SPAN_KEYS))]
    spans = [
        {**dict(zip(SPAN_KEYS, values, strict=True)), "http.url": "http://reviews:9080/r/1", "user_agent": "-"},
        {**dict(zip(SPAN_KEYS, values, strict=True)), "http.url": "", "upstream_cluster.name": ""},
    ]
    columns = TagColumns().read(spans)
    fields = proxy_columns._fields_columns(columns, [TRACE, TRACE], ["01" * 8, "02" * 8], [5, 6], ["t1", "t2"])
    for index, span in enumerate(spans):
        span_values = tuple(span.get(key, "") for key in SPAN_KEYS)
        url = span_values[SPAN_KEYS.index("http.url")]
        authority, path = (
            split_url(url)
            if url
            else (span_values[SPAN_KEYS.index("grpc.authority")], span_values[SPAN_KEYS.index("grpc.path")])
        )
        expected = normalize._envoy_fields(
            span_values, TRACE, ["01" * 8, "02" * 8][index], ["t1", "t2"][index], path, authority, [5, 6][index]
        )
        assert tuple(column[index] for column in fields) == tuple(expected)


class _Reporter:
    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.assembler = RecordAssembler(PeerTable())


def _tags(**changes: str) -> dict[str, str]:
    tags = {"component": "proxy", "node_id": "n", "http.url": "http://ratings:9080/r", "http.status_code": "200",
            "upstream_cluster": "outbound|9080|v1|ratings.default.svc.cluster.local"}  # fmt: skip
    tags.update(changes)
    return tags


def _records(tags: list[dict[str, str]], durations: list[int]) -> Any:
    reporter = _Reporter(Workload(name="reviews-v1", namespace="default"))
    count = len(tags)
    return proxy_records(
        Plan([reporter], [count], None, None),  # type: ignore[list-item]
        TagColumns().read(tags),
        [TRACE] * count,
        ["01" * 8] * count,
        durations,
        ["2024-05-01T12:00:00.000Z"] * count,
    )


def test_proxy_spans_of_one_reporter_become_records_in_columns() -> None:
    records = _records([_tags(), _tags(**{"http.status_code": "503"})], [3, 4])
    assert [(record.response_code, record.duration_ms, record.path) for record in records] == [
        (200, 3, "/r"),
        (503, 4, "/r"),
    ]
    assert records[0].destination_service == "ratings.default.svc.cluster.local"


def test_spans_the_columns_cannot_take_are_left_to_the_span_by_span_reading() -> None:
    assert _records([_tags(), {"http.url": "http://a/b"}], [1, 1]) is None  # an application span
    assert _records([_tags(), _tags()], [1, -1]) is None  # ends before it starts
    assert _records([_tags(), _tags(response_size="many")], [1, 1]) is None  # not a number
