from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from telemetry.envoy.peers import PeerTable
from telemetry.model import Record, Span, Workload
from telemetry.spans.correlation import RequestTraceIndex
from telemetry.spans.normalize import SpanNormaliser, reporter_of, split_url, start_time_text

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT, SERVER, PRODUCER = OtlpSpan.SPAN_KIND_CLIENT, OtlpSpan.SPAN_KIND_SERVER, OtlpSpan.SPAN_KIND_PRODUCER
START_NS = 1_704_067_200_123_456_789  # 2024-01-01T00:00:00.123Z

PRODUCTPAGE_NODE = "sidecar~10.244.0.11~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"
REVIEWS_V2_NODE = "sidecar~10.244.0.14~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local"
REVIEWS_V3_NODE = "sidecar~10.244.0.15~reviews-v3-84779c7bbc-8wpbm.default~default.svc.cluster.local"
RATINGS_NODE = "sidecar~10.244.0.16~ratings-v1-b6994bb9-gl6nx.default~default.svc.cluster.local"
GATEWAY_NODE = "router~10.244.0.10~istio-ingressgateway-5c9d8f7b6-qk2lm.istio-system~istio-system.svc.cluster.local"


def _value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=str(value))


def _attributes(attributes: dict[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in attributes.items()]


def otlp_span(
    tags: dict[str, object],
    *,
    kind: int = CLIENT,
    trace_id: bytes = bytes.fromhex(TRACE),
    span_id: str = "00f067aa0ba902b7",
    parent: str = "",
    duration_ms: float = 12.7,
    name: str = "",
    error: bool = False,
) -> OtlpSpan:
    span = OtlpSpan(
        trace_id=trace_id,
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        kind=kind,
        name=name,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + int(duration_ms * 1_000_000),
        attributes=_attributes(tags),
    )
    if error:
        span.status.code = Status.STATUS_CODE_ERROR
    return span


def resource_spans(spans: list[OtlpSpan], **resource: object) -> ResourceSpans:
    return ResourceSpans(
        resource=Resource(attributes=_attributes(resource)),
        scope_spans=[ScopeSpans(spans=spans)],
    )


def proxy_tags(node_id: str, app: str, version: str, namespace: str = "default", **extra: object) -> dict[str, object]:
    """The tags every Istio proxy span has, as Envoy's Zipkin/OpenTelemetry tracer and Istio set them."""
    tags: dict[str, object] = {
        "component": "proxy",
        "node_id": node_id,
        "zone": "",
        "downstream_cluster": "-",
        "http.protocol": "HTTP/1.1",
        "istio.canonical_service": app,
        "istio.canonical_revision": version,
        "istio.namespace": namespace,
        "istio.mesh_id": "cluster.local",
    }
    tags.update(extra)
    return tags


def _outbound_reviews_to_ratings(
    node: str = REVIEWS_V2_NODE, version: str = "v2", span_id: str = "00f067aa0ba902b7", **extra: object
) -> OtlpSpan:
    tags = proxy_tags(
        node,
        "reviews",
        version,
        **{
            "guid:x-request-id": "6a3c8d1e-1f0b-4c8e-9d2a-7b5e4f3c2d1a",
            "http.url": "http://ratings:9080/ratings/0",
            "http.method": "GET",
            "user_agent": "curl/8.5.0",
            "peer.address": "10.244.0.14",
            "request_size": "0",
            "response_size": "48",
            "upstream_cluster": "outbound|9080||ratings.default.svc.cluster.local",
            "upstream_cluster.name": "outbound|9080||ratings.default.svc.cluster.local",
            "upstream_address": "10.244.0.16:9080",
            "http.status_code": "200",
            "response_flags": "-",
            **extra,
        },
    )
    return otlp_span(tags, kind=CLIENT, span_id=span_id)


def _inbound_at_ratings(peer_ip: str, span_id: str = "00f067aa0ba902b7") -> OtlpSpan:
    tags = proxy_tags(
        RATINGS_NODE,
        "ratings",
        "v1",
        **{
            "guid:x-request-id": "6a3c8d1e-1f0b-4c8e-9d2a-7b5e4f3c2d1a",
            "http.url": "http://ratings:9080/ratings/0",
            "http.method": "GET",
            "user_agent": "curl/8.5.0",
            "peer.address": peer_ip,
            "request_size": "0",
            "response_size": "48",
            "upstream_cluster": "inbound|9080||",
            "upstream_cluster.name": "inbound|9080||",
            "upstream_address": "10.244.0.16:9080",
            "http.status_code": "200",
            "response_flags": "-",
        },
    )
    return otlp_span(tags, kind=SERVER, span_id=span_id, duration_ms=9.2)


def _normaliser(peers: PeerTable | None = None) -> SpanNormaliser:
    return SpanNormaliser(peers if peers is not None else PeerTable())


def test_outbound_sidecar_client_span_becomes_a_source_record_field_by_field() -> None:
    normalise = _normaliser()
    # ratings' own spans teach the peer table who is at 10.244.0.16, as its node id says.
    normalise([resource_spans([_inbound_at_ratings("10.244.0.14")], **{"service.name": "ratings.default"})])

    result = normalise([resource_spans([_outbound_reviews_to_ratings()], **{"service.name": "reviews.default"})])

    assert result.rejected == 0 and result.spans == []
    assert result.records == [
        Record(
            reporter="source",
            source_workload="reviews-v2",
            source_namespace="default",
            source_principal="unknown",
            source_app="reviews",
            source_version="v2",
            destination_workload="ratings-v1",
            destination_namespace="default",
            destination_principal="unknown",
            destination_app="ratings",
            destination_version="v1",
            destination_service="ratings.default.svc.cluster.local",
            destination_service_name="ratings",
            destination_service_namespace="default",
            connection_security_policy="unknown",
            protocol="http",
            response_code=200,
            grpc_status="",
            response_flags="-",
            duration_ms=12,
            bytes_received=0,
            bytes_sent=48,
            method="GET",
            authority="ratings:9080",
            path="/ratings/0",
            source_address="10.244.0.14",
            destination_address="10.244.0.16:9080",
            upstream_cluster="outbound|9080||ratings.default.svc.cluster.local",
            trace_id=TRACE,
            span_id="00f067aa0ba902b7",
            request_id="6a3c8d1e-1f0b-4c8e-9d2a-7b5e4f3c2d1a",
            start_time="2024-01-01T00:00:00.123Z",
            user_agent="curl/8.5.0",
            route_name="",
        )
    ]


def test_inbound_server_spans_name_each_caller_by_its_own_node_address() -> None:
    normalise = _normaliser()
    # The callers' outbound spans carry their node ids: reviews-v2 at .14 and reviews-v3 at .15.
    normalise([resource_spans([_outbound_reviews_to_ratings()])])
    normalise(
        [resource_spans([_outbound_reviews_to_ratings(REVIEWS_V3_NODE, "v3", **{"peer.address": "10.244.0.15"})])]
    )

    result = normalise(
        [
            resource_spans(
                [
                    _inbound_at_ratings("10.244.0.14", "1111111111111111"),
                    _inbound_at_ratings("10.244.0.15", "2222222222222222"),
                ]
            )
        ]
    )

    from_v2, from_v3 = result.records
    for record in (from_v2, from_v3):
        assert record.reporter == "destination"
        assert (record.destination_workload, record.destination_app, record.destination_version) == (
            "ratings-v1",
            "ratings",
            "v1",
        )
        # No SNI on a span: the service is named by the authority, in the server's namespace, by its
        # full host as the client side names it.
        assert (record.destination_service, record.destination_service_name) == (
            "ratings.default.svc.cluster.local",
            "ratings",
        )
        assert record.destination_service_namespace == "default"
        assert record.connection_security_policy == "none"
        assert record.upstream_cluster == "inbound|9080||"
        assert record.duration_ms == 9
        assert record.response_code == 200
    assert (from_v2.source_workload, from_v2.source_version, from_v2.source_address) == (
        "reviews-v2",
        "v2",
        "10.244.0.14",
    )
    assert (from_v3.source_workload, from_v3.source_version, from_v3.source_address) == (
        "reviews-v3",
        "v3",
        "10.244.0.15",
    )
    assert (from_v2.span_id, from_v3.span_id) == ("1111111111111111", "2222222222222222")


def test_gateway_span_reports_as_source_with_the_external_client_address() -> None:
    tags = proxy_tags(
        GATEWAY_NODE,
        "istio-ingressgateway",
        "latest",
        "istio-system",
        **{
            "http.url": "http://bookinfo.example.com/productpage",
            "http.method": "GET",
            "peer.address": "192.0.2.33",
            "upstream_cluster.name": "outbound|9080||productpage.default.svc.cluster.local",
            "upstream_cluster": "outbound|9080||productpage.default.svc.cluster.local",
            "upstream_address": "10.244.0.11:9080",
            "http.status_code": "200",
            "response_flags": "-",
            "request_size": "0",
            "response_size": "5120",
        },
    )
    peers = PeerTable()
    peers.pin("10.244.0.11", Workload("productpage-v1", "default", "productpage", "v1"))

    (record,) = _normaliser(peers)([resource_spans([otlp_span(tags, kind=CLIENT)])]).records

    assert record.reporter == "source"
    assert (record.source_workload, record.source_namespace, record.source_app) == (
        "istio-ingressgateway",
        "istio-system",
        "istio-ingressgateway",
    )
    assert record.destination_workload == "productpage-v1"
    assert record.destination_service == "productpage.default.svc.cluster.local"
    assert (record.authority, record.path, record.source_address) == (
        "bookinfo.example.com",
        "/productpage",
        "192.0.2.33",
    )
    assert record.bytes_sent == 5120


def test_fault_abort_keeps_flags_code_and_an_unknown_destination_workload() -> None:
    span = _outbound_reviews_to_ratings(
        **{
            "http.status_code": "503",
            "response_flags": "FI",
            "upstream_address": "-",
            "response_size": "18",
            "error": "true",
        }
    )

    (record,) = _normaliser()([resource_spans([span])]).records

    assert (record.response_code, record.response_flags, record.bytes_sent) == (503, "FI", 18)
    assert record.destination_workload == "unknown"
    assert record.destination_address == ""
    assert record.destination_service_name == "ratings"


def test_grpc_proxy_span_is_grpc_with_its_numeric_status() -> None:
    tags = proxy_tags(
        PRODUCTPAGE_NODE,
        "productpage",
        "v1",
        **{
            "http.url": "http://details:9080/bookinfo.Details/GetDetails",
            "http.method": "POST",
            "http.protocol": "HTTP/2",
            "peer.address": "10.244.0.11",
            "upstream_cluster.name": "outbound|9080||details.default.svc.cluster.local",
            "upstream_cluster": "outbound|9080||details.default.svc.cluster.local",
            "http.status_code": "200",
            "grpc.status_code": "14",
            "grpc.path": "/bookinfo.Details/GetDetails",
            "response_flags": "UF,URX",
            "request_size": "212",
            "response_size": "91",
        },
    )

    (record,) = _normaliser()([resource_spans([otlp_span(tags)])]).records

    assert (record.protocol, record.grpc_status, record.response_code) == ("grpc", "14", 200)
    assert (record.method, record.path, record.authority) == ("POST", "/bookinfo.Details/GetDetails", "details:9080")
    assert (record.response_flags, record.bytes_received) == ("UF,URX", 212)


def test_proxy_span_with_int_attributes_and_no_url_reads_grpc_path_and_authority() -> None:
    # Envoy's OpenTelemetry tracer may send numbers as ints; a gRPC span may lack http.url.
    tags = proxy_tags(
        PRODUCTPAGE_NODE,
        "productpage",
        "v1",
        **{
            "grpc.path": "/bookinfo.Details/GetDetails",
            "grpc.authority": "details:9080",
            "http.method": "POST",
            "http.status_code": 200,
            "grpc.status_code": 0,
            "request_size": 212,
            "response_size": 180,
            "upstream_cluster": "outbound|9080||details.default.svc.cluster.local",
        },
    )

    (record,) = _normaliser()([resource_spans([otlp_span(tags)])]).records

    assert (record.path, record.authority, record.grpc_status, record.response_code) == (
        "/bookinfo.Details/GetDetails",
        "details:9080",
        "0",
        200,
    )
    assert (record.bytes_received, record.bytes_sent) == (212, 180)


def test_connection_without_method_is_tcp() -> None:
    tags = {
        "component": "proxy",
        "node_id": RATINGS_NODE,
        "upstream_cluster": "outbound|3306||mysqldb.default.svc.cluster.local",
        "request_size": "200",
        "response_size": "900",
    }

    (record,) = _normaliser()([resource_spans([otlp_span(tags)])]).records

    assert (record.protocol, record.destination_service_name, record.bytes_sent) == ("tcp", "mysqldb", 900)


def test_reporter_without_node_id_is_named_by_the_resource_service() -> None:
    assert reporter_of("", "front", "edge", "", "front-envoy") == (Workload("front-envoy", "edge", "front"), "")
    workload, ip = reporter_of(GATEWAY_NODE, "istio-ingressgateway", "", "", "x")
    assert (workload.name, workload.namespace, workload.gateway, ip) == (
        "istio-ingressgateway",
        "istio-system",
        True,
        "10.244.0.10",
    )


def test_reporter_from_a_bare_node_id_derives_app_and_version_like_a_log_path() -> None:
    workload, ip = reporter_of(REVIEWS_V2_NODE, "", "", "", "x")
    assert (workload, ip) == (Workload("reviews-v2", "default", "reviews", "v2"), "10.244.0.14")
    statefulset = "sidecar~10.244.0.30~mysql-0.db~db.svc.cluster.local"
    assert reporter_of(statefulset, "", "", "", "x")[0] == Workload("mysql", "db", "mysql")


def test_canonical_tags_win_over_the_derived_app_and_version() -> None:
    workload, _ = reporter_of(REVIEWS_V2_NODE, "reviews-svc", "default", "2.1", "x")
    assert workload == Workload("reviews-v2", "default", "reviews-svc", "2.1")
    workload, _ = reporter_of(REVIEWS_V2_NODE, "", "default", "canary", "x")
    assert (workload.app, workload.version) == ("reviews", "canary")


def test_reporter_cache_is_bounded_and_drops_the_oldest_first(monkeypatch) -> None:
    import telemetry.spans.normalize as normalize

    monkeypatch.setattr(normalize, "_MAX_REPORTERS", 2)
    normaliser = _normaliser()
    for node in (PRODUCTPAGE_NODE, REVIEWS_V2_NODE, REVIEWS_V3_NODE):
        normaliser([resource_spans([_outbound_reviews_to_ratings(node=node)])])
    assert [node for node, _ in normaliser._reporters] == [REVIEWS_V2_NODE, REVIEWS_V3_NODE]
    # A cached reporter keeps its place: eviction is first-in, first-out, O(1) per new reporter.
    normaliser([resource_spans([_outbound_reviews_to_ratings(node=REVIEWS_V2_NODE)])])
    normaliser([resource_spans([_outbound_reviews_to_ratings(node=RATINGS_NODE)])])
    assert [node for node, _ in normaliser._reporters] == [REVIEWS_V3_NODE, RATINGS_NODE]


def test_helpers_split_urls_and_print_start_times_like_envoy() -> None:
    assert split_url("http://reviews:9080/reviews/0?x=1") == ("reviews:9080", "/reviews/0?x=1")
    assert split_url("/only/a/path") == ("", "/only/a/path")
    assert split_url("https://host") == ("host", "")
    assert start_time_text(START_NS) == "2024-01-01T00:00:00.123Z"
    assert start_time_text(0) == ""


# -- application spans --------------------------------------------------------------------------------


def _app(spans: list[OtlpSpan], **resource: object) -> list[Span]:
    result = _normaliser()([resource_spans(spans, **resource)])
    assert result.rejected == 0 and result.records == []
    return result.spans


def test_http_server_span_with_new_status_attribute() -> None:
    (span,) = _app(
        [
            otlp_span(
                {"http.request.method": "GET", "http.response.status_code": 503, "server.address": "productpage"},
                kind=SERVER,
                parent="00f067aa0ba902b7",
                span_id="1000000000000001",
                name="GET /productpage",
            )
        ],
        **{"service.name": "productpage", "k8s.namespace.name": "default", "service.namespace": "ignored"},
    )
    assert span == Span(
        trace_id=TRACE,
        span_id="1000000000000001",
        parent_span_id="00f067aa0ba902b7",
        kind="server",
        service="productpage",
        namespace="default",
        name="GET /productpage",
        start_ns=START_NS,
        end_ns=START_NS + 12_700_000,
        error=True,
        http_status=503,
        peer_service="",  # server.address on a server span is the server itself
    )


def test_http_client_span_with_old_status_attribute_and_net_peer_name() -> None:
    (span,) = _app(
        [otlp_span({"http.method": "GET", "http.status_code": "404", "net.peer.name": "reviews"}, kind=CLIENT)],
        **{"service.name": "productpage", "service.namespace": "shop"},
    )
    assert (span.kind, span.http_status, span.error, span.peer_service, span.namespace, span.parent_span_id) == (
        "client",
        404,
        False,
        "reviews",
        "shop",
        "",
    )


def test_grpc_client_span_with_non_ok_status_is_an_error() -> None:
    spans = _app(
        [
            otlp_span(
                {"rpc.system": "grpc", "rpc.grpc.status_code": 14, "server.address": "details"},
                span_id="0000000000000001",
            ),
            otlp_span(
                {"rpc.system": "grpc", "rpc.grpc.status_code": 0, "peer.service": "details"}, span_id="0000000000000002"
            ),
        ],
        **{"service.name": "productpage"},
    )
    assert [(s.rpc_system, s.error, s.peer_service, s.namespace) for s in spans] == [
        ("grpc", True, "details", "unknown"),
        ("grpc", False, "details", "unknown"),
    ]


def test_database_and_messaging_spans() -> None:
    db, db_new, producer = _app(
        [
            otlp_span(
                {"db.system": "mysql", "db.name": "test", "server.address": "mysqldb"}, span_id="0000000000000001"
            ),
            otlp_span(
                {"db.system": "postgresql", "db.namespace": "orders", "peer.service": "pg"}, span_id="0000000000000002"
            ),
            otlp_span(
                {"messaging.system": "kafka", "messaging.destination.name": "orders", "server.address": "kafka-0"},
                kind=PRODUCER,
                span_id="0000000000000003",
                error=True,
            ),
        ],
        **{"service.name": "ratings", "k8s.namespace.name": "default"},
    )
    assert (db.db_system, db.db_name, db.peer_service, db.error) == ("mysql", "test", "mysqldb", False)
    assert (db_new.db_system, db_new.db_name, db_new.peer_service) == ("postgresql", "orders", "pg")
    assert (
        producer.kind,
        producer.messaging_system,
        producer.messaging_destination,
        producer.peer_service,
        producer.error,
    ) == (
        "producer",
        "kafka",
        "orders",
        "kafka-0",
        True,
    )


def test_old_messaging_destination_attribute_is_read() -> None:
    (span,) = _app([otlp_span({"messaging.system": "rabbitmq", "messaging.destination": "jobs"}, kind=PRODUCER)])
    assert (span.messaging_system, span.messaging_destination, span.service) == ("rabbitmq", "jobs", "unknown")


# -- bad input ------------------------------------------------------------------------------------------


def test_unreadable_spans_are_rejected_with_a_reason_and_the_rest_kept() -> None:
    good_app = otlp_span({"http.response.status_code": 200}, kind=SERVER, span_id="0000000000000009")
    short_trace = otlp_span({"http.response.status_code": 200}, trace_id=bytes(8))
    zero_span = otlp_span({"http.response.status_code": 200}, span_id="0000000000000000")
    bad_counter = _outbound_reviews_to_ratings(request_size="lots")
    backwards = _outbound_reviews_to_ratings(span_id="0000000000000007")
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    good_proxy = _outbound_reviews_to_ratings(span_id="0000000000000008")

    result = _normaliser()(
        [
            resource_spans([good_app, short_trace, zero_span], **{"service.name": "productpage"}),
            resource_spans([bad_counter, backwards, good_proxy], **{"service.name": "reviews.default"}),
        ]
    )

    assert result.rejected == 4
    assert [span.span_id for span in result.spans] == ["0000000000000009"]
    assert [record.span_id for record in result.records] == ["0000000000000008"]
    assert "resource 0: trace id" in result.error
    assert "4 spans rejected" in result.error
    assert result.refused is False


def test_empty_input_gives_an_empty_result() -> None:
    result = _normaliser()([])
    assert (result.records, result.spans, result.rejected, result.error) == ([], [], 0, "")


def test_proxy_spans_teach_the_request_index_their_trace_ids() -> None:
    index = RequestTraceIndex(max_entries=10)
    normalise = SpanNormaliser(PeerTable(), request_index=index)

    normalise([resource_spans([_outbound_reviews_to_ratings()])])

    assert index.trace_id_of("6a3c8d1e-1f0b-4c8e-9d2a-7b5e4f3c2d1a") == TRACE
