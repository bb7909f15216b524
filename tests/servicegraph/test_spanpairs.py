"""SpanPairer: client/server span pairs, database and virtual-node edges, expiry, bounds, threads; golden files.

Golden testdata: spans in (tests/testdata/spans/*.spans.json), span-pair rows out (*.expected.json). Each
input is a timeline of batches and expiry ticks on a fake clock, then a shutdown; the output is every row
of the connector metrics (labels, totals, non-empty buckets), compared without order, the unpaired
counts, the pairer's counters and the running number of pairs after each event. Regenerate after an
intended change with MESHSCOPE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from servicegraph.connector_metrics import ServiceGraphMetrics
from servicegraph.spanpairs import SpanPairer, SpanPairingConfig
from servicegraph.traffic import (
    N_BUCKETS,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_FAILED,
    SPAN_LABELS,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    SPAN_SERVER_MS_SUM,
)
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS
from telemetry.model import Span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
START_NS = 1_714_843_200_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Rig(NamedTuple):
    pairer: SpanPairer
    metrics: ServiceGraphMetrics
    clock: FakeClock


class Row(NamedTuple):
    requests: float
    failed: float
    client_ms: float
    server_ms: float


def make_rig(ttl: float = 10.0, max_items: int = 1000) -> Rig:
    clock = FakeClock()
    metrics = ServiceGraphMetrics()
    return Rig(SpanPairer(SpanPairingConfig(ttl=ttl, max_items=max_items), metrics, clock), metrics, clock)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def span(
    span_id: str,
    kind: str = "unspecified",
    service: str = "productpage",
    parent: str = "",
    *,
    ms: float = 10.0,
    trace: str = TRACE,
    namespace: str = "default",
    **fields: object,
) -> Span:
    return Span(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        kind=kind,
        service=service,
        namespace=namespace,
        start_ns=START_NS,
        end_ns=START_NS + int(ms * 1_000_000),
        **fields,  # type: ignore[arg-type]
    )


def rows(metrics: ServiceGraphMetrics) -> dict[tuple[str, ...], Row]:
    table = metrics.table()
    return {
        key: Row(
            *(float(values[column]) for column in (SPAN_REQUESTS, SPAN_FAILED, SPAN_CLIENT_MS_SUM, SPAN_SERVER_MS_SUM))
        )
        for key, values in zip(table.keys, table.values, strict=True)
    }


def edges(metrics: ServiceGraphMetrics) -> dict[tuple[str, str, str], float]:
    """(client, server, connection_type) -> requests."""
    return {(key[0], key[2], key[4]): row.requests for key, row in rows(metrics).items()}


CLIENT = span("00000000000000c1", "client", "productpage", parent="00000000000000a1", ms=30, peer_service="reviews")
SERVER = span("00000000000000d1", "server", "reviews", parent="00000000000000c1", ms=20)


# -- client/server pairs ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["client_first", "server_first"])
def test_client_and_server_pair_in_either_order(rig: Rig, order: str) -> None:
    batch = [CLIENT, SERVER] if order == "client_first" else [SERVER, CLIENT]
    rig.pairer.consume(batch)

    assert rows(rig.metrics) == {
        ("productpage", "default", "reviews", "default", ""): Row(requests=1, failed=0, client_ms=30, server_ms=20)
    }
    rig.pairer.shutdown()
    assert rig.metrics.unpaired == 0
    assert len(rows(rig.metrics)) == 1  # the paired client never turns into a virtual-node edge


def test_pair_across_consume_calls_and_namespaces(rig: Rig) -> None:
    server = span("00000000000000d1", "server", "ratings", parent="00000000000000c1", namespace="shop")
    rig.pairer.consume([server])
    rig.clock.now += 5
    rig.pairer.consume([CLIENT])

    assert list(rows(rig.metrics)) == [("productpage", "default", "ratings", "shop", "")]


@pytest.mark.parametrize("failing", ["client", "server"])
def test_pair_failed_when_either_side_has_an_error(rig: Rig, failing: str) -> None:
    client = CLIENT._replace(error=failing == "client")
    server = SERVER._replace(error=failing == "server")
    rig.pairer.consume(
        [
            client,
            server,
            span("00000000000000c2", "client"),
            span("00000000000000d2", "server", "reviews", "00000000000000c2"),
        ]
    )

    assert rows(rig.metrics)[("productpage", "default", "reviews", "default", "")][:2] == (2, 1)


def test_spans_of_other_traces_do_not_pair(rig: Rig) -> None:
    rig.pairer.consume([CLIENT, SERVER._replace(trace_id="f" * 32)])
    assert rows(rig.metrics) == {}
    assert rig.pairer.waiting == 2


def test_duplicate_delivery_is_ignored(rig: Rig) -> None:
    rig.pairer.consume([CLIENT, SERVER])
    rig.pairer.consume([SERVER, CLIENT])
    assert edges(rig.metrics) == {("productpage", "reviews", ""): 1}


def test_self_call_client_server_is_a_pair(rig: Rig) -> None:
    rig.pairer.consume([CLIENT._replace(service="reviews"), SERVER])
    assert edges(rig.metrics) == {("reviews", "reviews", ""): 1}


# -- databases and root spans ---------------------------------------------------------------------------


def test_database_span_completes_at_once(rig: Rig) -> None:
    rig.pairer.consume(
        [
            span(
                "00000000000000e1",
                "client",
                "ratings",
                parent="00000000000000d1",
                ms=4,
                db_system="mysql",
                db_name="ratings",
            ),
            span(
                "00000000000000e2", "client", "ratings", parent="00000000000000d1", ms=2, db_system="redis", error=True
            ),
        ]
    )

    assert rows(rig.metrics) == {
        ("ratings", "default", "mysql/ratings", "", "database"): Row(1, 0, 4, 4),
        ("ratings", "default", "redis", "", "database"): Row(1, 1, 2, 2),
    }


def test_database_span_is_never_also_a_virtual_node_or_a_client(rig: Rig) -> None:
    database = span("00000000000000e1", "client", "ratings", ms=4, db_system="mysql", db_name="ratings")
    database_server = span("00000000000000f1", "server", "mysql", parent="00000000000000e1")
    rig.pairer.consume([database, database_server])
    rig.pairer.shutdown()

    assert edges(rig.metrics) == {("ratings", "mysql/ratings", "database"): 1}
    assert rig.metrics.unpaired == 0


def test_root_server_span_completes_at_once_from_user(rig: Rig) -> None:
    rig.pairer.consume([span("00000000000000a1", "server", "productpage", ms=50, error=True)])
    assert rows(rig.metrics) == {("user", "", "productpage", "default", "virtual_node"): Row(1, 1, 50, 50)}


# -- expiry ----------------------------------------------------------------------------------------------


def test_unpaired_client_becomes_virtual_node_after_ttl(rig: Rig) -> None:
    anonymous = span("00000000000000c2", "client", "productpage", ms=7)
    rig.pairer.consume([CLIENT, anonymous])
    rig.clock.now += 9.9
    rig.pairer.expire()
    assert rows(rig.metrics) == {} and rig.metrics.unpaired == 0

    rig.clock.now += 0.1
    rig.pairer.expire()

    assert rows(rig.metrics) == {
        ("productpage", "default", "reviews", "", "virtual_node"): Row(1, 0, 30, 30),
        ("productpage", "default", "unknown", "", "virtual_node"): Row(1, 0, 7, 7),
    }
    assert rig.metrics.unpaired == 2 and rig.metrics.expired == 2
    assert len(rig.pairer) == 0


def test_missing_parent_server_becomes_unknown_client_after_ttl(rig: Rig) -> None:
    rig.pairer.consume([SERVER])
    rig.pairer.expire(rig.clock.now + 10)

    assert rows(rig.metrics) == {("unknown", "", "reviews", "default", "virtual_node"): Row(1, 0, 20, 20)}
    assert rig.metrics.unpaired == 1


def test_expiry_is_by_arrival_time(rig: Rig) -> None:
    rig.pairer.consume([span("0000000000000001", "client", "early")])
    rig.clock.now += 5
    rig.pairer.consume([span("0000000000000002", "client", "late")])
    rig.clock.now += 5
    rig.pairer.expire()

    assert edges(rig.metrics) == {("early", "unknown", "virtual_node"): 1}
    rig.clock.now += 5
    rig.pairer.expire()
    assert edges(rig.metrics) == {("early", "unknown", "virtual_node"): 1, ("late", "unknown", "virtual_node"): 1}


def test_unpaired_spans_are_counted_by_the_side_that_was_seen(rig: Rig) -> None:
    registry_rows = {}
    rig.pairer.consume([CLIENT, span("00000000000000d9", "server", "details", parent="0000000000000099")])
    rig.pairer.shutdown()
    for family in rig.metrics.collect():
        if family.name == "traces_service_graph_unpaired_spans":
            registry_rows = {(s.labels["client"], s.labels["server"]): s.value for s in family.samples}
    assert registry_rows == {("productpage", ""): 1, ("", "details"): 1}


def test_kindless_spans_waiting_for_a_parent_expire_silently_but_are_counted(rig: Rig) -> None:
    rig.pairer.consume([span("0000000000000011", "internal", "reviews", parent="0000000000000010")])
    rig.pairer.expire(rig.clock.now + 10)

    assert rows(rig.metrics) == {}
    assert rig.metrics.unpaired == 0 and rig.metrics.expired == 1 and len(rig.pairer) == 0


def test_paired_span_is_kept_ttl_after_it_paired_for_late_children(rig: Rig) -> None:
    producer = span("0000000000000031", "producer", "orders", messaging_system="kafka", messaging_destination="orders")
    rig.pairer.consume([producer])
    rig.clock.now += 5
    rig.pairer.consume([span("0000000000000032", "consumer", "billing", parent="0000000000000031")])
    rig.clock.now += 9  # 14 s after the producer arrived, 9 s after it paired: still there for a late consumer
    rig.pairer.expire()
    rig.pairer.consume([span("0000000000000033", "consumer", "shipping", parent="0000000000000031")])
    assert edges(rig.metrics) == {
        ("orders", "billing", "messaging_system"): 1,
        ("orders", "shipping", "messaging_system"): 1,
    }

    rig.clock.now += 1
    rig.pairer.expire()
    assert len(rig.pairer) == 1 and rig.metrics.expired == 2  # the producer and billing's consumer span
    rig.pairer.consume([span("0000000000000034", "consumer", "audit", parent="0000000000000031")])
    rig.pairer.shutdown()
    assert edges(rig.metrics)[("unknown", "audit", "virtual_node")] == 1
    assert rig.metrics.unpaired == 1


def test_shutdown_expires_pending(rig: Rig) -> None:
    rig.pairer.consume([CLIENT, span("00000000000000d9", "server", "details", parent="0000000000000099")])
    assert rig.pairer.flush(1.0) is True
    assert rows(rig.metrics) == {}

    rig.pairer.shutdown()
    rig.pairer.shutdown()

    assert edges(rig.metrics) == {
        ("productpage", "reviews", "virtual_node"): 1,
        ("unknown", "details", "virtual_node"): 1,
    }
    assert rig.metrics.unpaired == 2 and len(rig.pairer) == 0
    rig.pairer.consume([SERVER])
    assert rig.metrics.dropped == 1 and len(rows(rig.metrics)) == 2


# -- spans without kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["parent_first", "child_first"])
def test_spans_without_kind_pair_across_services(rig: Rig, order: str) -> None:
    parent = span("0000000000000041", "internal", "frontend", ms=40)
    child = span("0000000000000042", "unspecified", "legacy", parent="0000000000000041", ms=15, error=True)
    same_service_child = span("0000000000000043", "internal", "frontend", parent="0000000000000041")
    batch = [parent, child, same_service_child]
    rig.pairer.consume(batch if order == "parent_first" else batch[::-1])
    rig.pairer.shutdown()

    assert rows(rig.metrics) == {("frontend", "default", "legacy", "default", ""): Row(1, 1, 40, 15)}
    assert rig.metrics.unpaired == 0


def test_client_with_a_kindless_child_in_another_service_pairs_once(rig: Rig) -> None:
    uninstrumented = span("00000000000000d1", "internal", "reviews", parent="00000000000000c1", ms=20)
    rig.pairer.consume([uninstrumented, CLIENT])
    rig.pairer.shutdown()

    assert edges(rig.metrics) == {("productpage", "reviews", ""): 1}
    assert rig.metrics.unpaired == 0


def test_server_under_a_kindless_parent_in_another_service_is_not_unpaired(rig: Rig) -> None:
    parent = span("00000000000000c1", "internal", "productpage")
    rig.pairer.consume([SERVER, parent])
    rig.pairer.shutdown()

    assert edges(rig.metrics) == {("productpage", "reviews", ""): 1}
    assert rig.metrics.unpaired == 0


def test_client_server_pair_is_not_also_counted_as_a_parent_child_pair(rig: Rig) -> None:
    # frontend server -> frontend client -> reviews server -> reviews internal -> reviews client -> ratings server
    trace = [
        span("0000000000000051", "server", "frontend"),
        span("0000000000000052", "client", "frontend", parent="0000000000000051"),
        span("0000000000000053", "server", "reviews", parent="0000000000000052"),
        span("0000000000000054", "internal", "reviews", parent="0000000000000053"),
        span("0000000000000055", "client", "reviews", parent="0000000000000054"),
        span("0000000000000056", "server", "ratings", parent="0000000000000055"),
    ]
    for seed in range(5):
        rig_ = make_rig()
        shuffled = list(trace)
        random.Random(seed).shuffle(shuffled)
        for one in shuffled:
            rig_.pairer.consume([one])
        rig_.pairer.shutdown()
        assert edges(rig_.metrics) == {
            ("user", "frontend", "virtual_node"): 1,
            ("frontend", "reviews", ""): 1,
            ("reviews", "ratings", ""): 1,
        }, f"arrival order {[s.span_id[-2:] for s in shuffled]}"
        assert rig_.metrics.unpaired == 0


# -- messaging ---------------------------------------------------------------------------------------------


def test_messaging_producer_consumer(rig: Rig) -> None:
    producer = span(
        "0000000000000061", "producer", "orders", ms=3, messaging_system="kafka", messaging_destination="orders"
    )
    consumer = span("0000000000000062", "consumer", "billing", parent="0000000000000061", ms=80)
    rig.pairer.consume([consumer, producer])

    assert rows(rig.metrics) == {("orders", "default", "billing", "default", "messaging_system"): Row(1, 0, 3, 80)}


def test_messaging_virtual_nodes_name_the_system_and_destination(rig: Rig) -> None:
    rig.pairer.consume(
        [
            span("0000000000000071", "producer", "orders", messaging_system="kafka", messaging_destination="orders"),
            span("0000000000000072", "producer", "orders", peer_service="broker.internal"),
            span("0000000000000073", "consumer", "billing", parent="0000000000000070", messaging_system="rabbitmq"),
            span("0000000000000074", "consumer", "audit", messaging_system="kafka", messaging_destination="orders"),
        ]
    )
    assert edges(rig.metrics) == {("kafka/orders", "audit", "messaging_system"): 1}  # a root consumer: at once

    rig.pairer.shutdown()
    assert edges(rig.metrics) == {
        ("kafka/orders", "audit", "messaging_system"): 1,
        ("orders", "kafka/orders", "messaging_system"): 1,
        ("orders", "broker.internal", "virtual_node"): 1,
        ("rabbitmq", "billing", "messaging_system"): 1,
    }
    assert rig.metrics.unpaired == 3


# -- bounds ---------------------------------------------------------------------------------------------------


def test_store_full_drops_are_counted() -> None:
    rig = make_rig(max_items=2)
    rig.pairer.consume([span(f"000000000000000{n}", "client", f"svc{n}") for n in range(1, 4)])

    assert rig.metrics.dropped == 1 and len(rig.pairer) == 2
    rig.pairer.consume([span("00000000000000f3", "server", "reviews", parent="0000000000000003")])
    assert rig.metrics.dropped == 2  # svc3's server found no client and no room either

    rig.pairer.shutdown()
    # Dropped spans never become virtual-node edges: only the two stored clients do.
    assert edges(rig.metrics) == {("svc1", "unknown", "virtual_node"): 1, ("svc2", "unknown", "virtual_node"): 1}
    families = {family.name: family for family in rig.metrics.collect()}
    assert [sample.value for sample in families["traces_service_graph_dropped_spans"].samples] == [2]


def test_full_store_evicts_lookup_only_spans_before_dropping() -> None:
    rig = make_rig(max_items=3)
    root_client = CLIENT._replace(parent_span_id="")
    rig.pairer.consume([root_client, SERVER])  # paired: both kept for lookups only
    rig.pairer.consume([span("0000000000000081", "client", "a"), span("0000000000000082", "client", "b")])

    assert rig.metrics.dropped == 0 and rig.metrics.evicted == 1 and len(rig.pairer) == 3
    rig.pairer.consume([span("0000000000000083", "client", "c"), span("0000000000000084", "client", "d")])
    assert rig.metrics.evicted == 2 and rig.metrics.dropped == 1
    rig.pairer.shutdown()
    assert sorted(client for client, _, kind in edges(rig.metrics) if kind == "virtual_node") == ["a", "b", "c"]


def test_server_pairs_with_its_client_when_the_store_is_full() -> None:
    rig = make_rig(max_items=2)
    rig.pairer.consume([span("0000000000000001", "client", "svc1"), span("0000000000000002", "client", "svc2")])
    rig.pairer.consume([span("00000000000000f1", "server", "reviews", parent="0000000000000001")])

    assert edges(rig.metrics) == {("svc1", "reviews", ""): 1}
    assert rig.metrics.dropped == 0 and rig.metrics.evicted == 1  # svc1's client made room once paired


def test_full_store_expires_due_spans_to_make_room() -> None:
    rig = make_rig(max_items=1)
    rig.pairer.consume([span("0000000000000091", "client", "old")])
    rig.clock.now += 10
    rig.pairer.consume([span("0000000000000092", "client", "new")])

    assert rig.metrics.dropped == 0 and rig.metrics.expired == 1
    assert edges(rig.metrics) == {("old", "unknown", "virtual_node"): 1}


def test_config_validation_names_the_key() -> None:
    assert SpanPairingConfig().validate() == []
    assert SpanPairingConfig(ttl=0, max_items=0).validate() == [
        "ttl: must be positive",
        "max_items: must be at least 1",
    ]
    with pytest.raises(ValueError, match="ttl: must be positive"):
        SpanPairer(SpanPairingConfig(ttl=-1), ServiceGraphMetrics())


# -- threads ----------------------------------------------------------------------------------------------------


def test_concurrent_consume_from_four_threads() -> None:
    pairs = 5000
    services = [f"svc{n}" for n in range(8)]
    spans = []
    for n in range(pairs):
        trace = f"{n:032x}"
        client, server = services[n % 8], services[(n + 3) % 8]
        spans.append(span(f"{2 * n + 1:016x}", "client", client, trace=trace))
        spans.append(span(f"{2 * n + 2:016x}", "server", server, parent=f"{2 * n + 1:016x}", trace=trace))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that an unguarded store would show it
    try:
        for round_number in range(4):  # a race shows in some interleavings only: several rounds
            random.Random(round_number).shuffle(spans)  # most pairs' two spans go to different threads
            rig = make_rig(max_items=100_000)
            start = threading.Barrier(4)

            def feed(mine: list[Span], pairer: SpanPairer = rig.pairer, start: threading.Barrier = start) -> None:
                start.wait()
                for i in range(0, len(mine), 4):
                    pairer.consume(mine[i : i + 4])

            threads = [threading.Thread(target=feed, args=(spans[i::4],)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rig.pairer.shutdown()

            got = edges(rig.metrics)
            assert got == {(services[n], services[(n + 3) % 8], ""): pairs / 8 for n in range(8)}
            assert rig.metrics.unpaired == 0 and rig.metrics.dropped == 0
    finally:
        sys.setswitchinterval(interval)


# -- golden files ------------------------------------------------------------------------------------

SPANS = Path(__file__).parents[1] / "testdata" / "spans"
UPDATE = os.environ.get("MESHSCOPE_UPDATE_GOLDEN") == "1"
BOUNDS = [str(bound) for bound in DURATION_BUCKETS_MS] + ["+Inf"]


def _buckets(values: Any, first: int) -> dict[str, int]:
    return {BOUNDS[i]: int(values[first + i]) for i in range(N_BUCKETS) if values[first + i]}


def run(case: Path) -> dict[str, Any]:
    spec = json.loads(case.read_text())
    now = [0.0]
    metrics = ServiceGraphMetrics()
    pairer = SpanPairer(SpanPairingConfig(ttl=spec["ttl"], max_items=spec["max_items"]), metrics, lambda: now[0])
    requests_after_event = []
    for event in spec["events"]:
        now[0] = event["at"]
        if event.get("expire"):
            pairer.expire()
        else:
            pairer.consume([Span(**fields) for fields in event["spans"]])
        requests_after_event.append(int(metrics.table().values[:, SPAN_REQUESTS].sum()))
    pairer.shutdown()
    table = metrics.table()
    rows = [
        {
            **dict(zip(SPAN_LABELS, key, strict=True)),
            "requests": int(values[SPAN_REQUESTS]),
            "failed": int(values[SPAN_FAILED]),
            "client_ms_sum": round(float(values[SPAN_CLIENT_MS_SUM]), 6),
            "server_ms_sum": round(float(values[SPAN_SERVER_MS_SUM]), 6),
            "client_buckets_ms": _buckets(values, SPAN_CLIENT_BUCKETS),
            "server_buckets_ms": _buckets(values, SPAN_SERVER_BUCKETS),
        }
        for key, values in zip(table.keys, table.values, strict=True)
    ]
    family = next(f for f in metrics.collect() if f.name == "traces_service_graph_unpaired_spans")
    unpaired = [{**sample.labels, "count": int(sample.value)} for sample in family.samples]
    return {
        "rows": sorted(rows, key=lambda row: [row[label] for label in SPAN_LABELS]),
        "unpaired": sorted(unpaired, key=lambda row: (row["client"], row["server"])),
        "counters": {name: getattr(metrics, name) for name in ("unpaired", "dropped", "expired", "evicted")},
        "requests_after_event": requests_after_event,
    }


@pytest.mark.parametrize("case", sorted(SPANS.glob("*.spans.json")), ids=lambda path: path.name.split(".")[0])
def test_span_files_produce_the_expected_pairs(case: Path) -> None:
    got = run(case)
    expected_file = case.with_name(case.name.replace(".spans.json", ".expected.json"))
    if UPDATE:
        expected_file.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(expected_file.read_text())
    # Without order: the rows as sets of canonical JSON lines.
    assert sorted(json.dumps(row, sort_keys=True) for row in got["rows"]) == sorted(
        json.dumps(row, sort_keys=True) for row in expected["rows"]
    )
    assert {k: v for k, v in got.items() if k != "rows"} == {k: v for k, v in expected.items() if k != "rows"}
