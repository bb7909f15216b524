from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from telemetry.demo import (
    DESTINATION,
    SOURCE,
    Abort,
    Delay,
    DemoConfig,
    FaultRule,
    LogEntry,
    generate,
)

REQUESTS = 3000


@pytest.fixture(scope="module")
def entries() -> list[LogEntry]:
    return generate(REQUESTS)


def _client_calls_to(entries: list[LogEntry], service: str, subset: str | None = None) -> list[LogEntry]:
    return [
        entry
        for entry in entries
        if entry.reporter == SOURCE
        and entry.call.destination is not None
        and entry.call.destination.service == service
        and (subset is None or entry.call.subset == subset)
    ]


def test_the_same_seed_generates_the_same_entries():
    first = [entry.fields for entry in generate(50, DemoConfig(seed=7))]
    assert first == [entry.fields for entry in generate(50, DemoConfig(seed=7))]
    assert first != [entry.fields for entry in generate(50, DemoConfig(seed=8))]


def test_every_call_that_reached_a_server_is_logged_by_both_proxies(entries):
    by_call: dict[int, list[LogEntry]] = defaultdict(list)
    for entry in entries:
        by_call[id(entry.call)].append(entry)
    for logged in by_call.values():
        call = logged[0].call
        reporters = sorted(entry.reporter for entry in logged)
        assert reporters == ([DESTINATION, SOURCE] if call.reached_server else [SOURCE])
        if call.reached_server:
            server, client = sorted(logged, key=lambda entry: entry.reporter)
            # Istio's two sides of a call meet at the client proxy's upstream local address.
            assert client.fields["upstream_local_address"] == server.fields["downstream_remote_address"]
            assert client.fields["upstream_host"] == server.fields["downstream_local_address"]
            assert client.fields.get("request_id") == server.fields.get("request_id")
            assert int(client.fields["duration"]) >= int(server.fields["duration"])


def test_sidecar_entries_are_laid_out_as_istio_prints_them(entries):
    client = next(e for e in _client_calls_to(entries, "reviews", "v2") if e.call.reached_server)
    server = next(e for e in entries if e.call is client.call and e.reporter == DESTINATION)
    assert client.fields["upstream_cluster"] == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert client.fields["upstream_host"] == "10.244.0.14:9080"
    assert client.fields["upstream_local_address"].startswith("10.244.0.11:")
    assert client.fields["downstream_remote_address"].startswith("10.244.0.11:")
    assert "requested_server_name" not in client.fields
    assert server.fields["upstream_cluster"] == "inbound|9080||"
    assert server.fields["upstream_local_address"].startswith("127.0.0.6:")
    assert server.fields["downstream_local_address"] == "10.244.0.14:9080"
    assert server.fields["requested_server_name"] == "outbound_.9080_.v2_.reviews.default.svc.cluster.local"


def test_the_gateway_only_logs_its_outbound_side(entries):
    gateway = [entry for entry in entries if entry.pod.workload == "istio-ingressgateway"]
    assert len(gateway) == REQUESTS
    assert {entry.reporter for entry in gateway} == {SOURCE}
    assert {entry.fields["upstream_cluster"] for entry in gateway} == {
        "outbound|9080||productpage.default.svc.cluster.local"
    }
    assert all(entry.fields["downstream_local_address"] == "10.244.0.10:8080" for entry in gateway)


def test_the_default_faults_abort_about_one_ratings_call_in_ten_with_503_fi(entries):
    calls = _client_calls_to(entries, "ratings")
    aborted = [entry for entry in calls if entry.fields["response_flags"] == "FI"]
    assert 0.07 <= len(aborted) / len(calls) <= 0.13
    assert {entry.fields["response_code"] for entry in aborted} == {"503"}
    assert {entry.fields["response_code_details"] for entry in aborted} == {"fault_filter_abort"}
    # The fault filter answers in the client's proxy: ratings never sees these calls.
    assert not any(entry.call.reached_server for entry in aborted)
    assert all("upstream_host" not in entry.fields for entry in aborted)


def test_the_default_faults_delay_every_call_to_reviews_v3(entries):
    durations = {
        subset: [int(entry.fields["duration"]) for entry in _client_calls_to(entries, "reviews", subset)]
        for subset in ("v1", "v2", "v3")
    }
    v3 = _client_calls_to(entries, "reviews", "v3")
    assert all(entry.fields["response_flags"].startswith("DI") for entry in v3)
    assert min(durations["v3"]) >= 2000
    assert statistics.median(durations["v3"]) > 20 * max(
        statistics.median(durations["v1"]), statistics.median(durations["v2"])
    )


def test_faults_follow_their_selectors():
    config = DemoConfig(
        faults=[
            FaultRule(
                destination="reviews",
                subset="v1",
                source="productpage",
                abort=Abort(100.0, 500),
            ),
            FaultRule(destination="details", route="/nowhere", delay=Delay(100.0, 5000)),
        ]
    )
    entries = generate(300, config)
    v1 = _client_calls_to(entries, "reviews", "v1")
    assert v1 and all(entry.fields["response_flags"] == "FI" and entry.fields["response_code"] == "500" for entry in v1)
    others = [entry for entry in entries if entry not in v1 and entry.reporter == SOURCE]
    assert not any(flag in entry.fields["response_flags"] for entry in others for flag in ("FI", "DI"))


def test_a_parent_lasts_at_least_as_long_as_each_of_its_calls(entries):
    by_request: dict[str, list[LogEntry]] = defaultdict(list)
    for entry in entries:
        by_request[entry.call.request.request_id].append(entry)
    for logged in by_request.values():
        inbound = {
            entry.pod.workload: int(entry.fields["duration"]) for entry in logged if entry.reporter == DESTINATION
        }
        gateway = next(int(e.fields["duration"]) for e in logged if e.pod.workload == "istio-ingressgateway")
        for entry in logged:
            assert int(entry.fields["duration"]) <= gateway
            if entry.reporter == SOURCE and entry.pod.workload in inbound:
                assert int(entry.fields["duration"]) <= inbound[entry.pod.workload]


def test_all_entries_of_one_request_share_its_request_and_trace_ids(entries):
    ids: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if "request_id" in entry.fields:
            ids[entry.fields["request_id"]].add(entry.fields["trace_id"])
    assert len(ids) == REQUESTS
    assert all(len(traces) == 1 for traces in ids.values())


def test_ratings_opens_tcp_connections_to_mysqldb_logged_on_both_sides(entries):
    client = [
        entry
        for entry in entries
        if entry.fields.get("upstream_cluster") == "outbound|3306||mysqldb.default.svc.cluster.local"
    ]
    server = [entry for entry in entries if entry.pod.workload == "mysqldb-v1"]
    assert client and len(client) == len(server)
    assert {entry.pod.workload for entry in client} == {"ratings-v1"}
    assert {entry.fields["upstream_cluster"] for entry in server} == {"inbound|3306||"}
    assert all("method" not in entry.fields and entry.fields["response_code"] == "0" for entry in client + server)
    assert all(int(entry.fields["bytes_sent"]) > 0 for entry in client)


def test_productpage_reaches_an_external_host_through_the_passthrough_cluster(entries):
    external = [entry for entry in entries if entry.fields.get("upstream_cluster") == "PassthroughCluster"]
    assert external
    assert {entry.pod.workload for entry in external} == {"productpage-v1"}
    assert {entry.fields["requested_server_name"] for entry in external} == {"api.external.example"}
    assert not any(entry.call.reached_server for entry in external)


def test_background_errors_include_404s_and_upstream_connection_failures(entries):
    gateway_codes = [e.fields["response_code"] for e in entries if e.pod.workload == "istio-ingressgateway"]
    assert 0.01 < gateway_codes.count("404") / REQUESTS < 0.06
    failures = [entry for entry in entries if "UF" in entry.fields.get("response_flags", "")]
    assert failures and all("URX" in entry.fields["response_flags"] for entry in failures)
    assert not any(entry.call.reached_server for entry in failures)


def test_productpage_calls_details_over_grpc(entries):
    details = [
        entry for entry in entries if entry.call.destination is not None and entry.call.destination.service == "details"
    ]
    assert details
    assert all(entry.fields["protocol"] == "HTTP/2" and entry.fields["method"] == "POST" for entry in details)
    assert all(entry.fields["grpc_status"] in ("0", "14") for entry in details)


def test_an_invalid_config_is_rejected_with_the_path_of_each_error():
    config = DemoConfig(rate=0, faults=[FaultRule(destination="ratings", abort=Abort(150.0, 503))])
    assert config.validate() == [
        "rate: must be positive",
        "faults[0].abort.percentage: must be between 0 and 100",
    ]
