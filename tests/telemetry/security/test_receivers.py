"""Bearer tokens and TLS on every network receiver, with the real clients: the OpenTelemetry SDK's OTLP
exporters, grpc stubs, http.client and urllib over HTTPS."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from certs import KeyPair
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from traceharness import TraceHarness, check_otlp_sample_trace, emit_sample_trace

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.factory import create_receiver as create_als
from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver as create_otlp
from telemetry.receivers.otlp.receiver import OtlpReceiver
from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.factory import create_receiver as create_zipkin
from telemetry.receivers.zipkin.receiver import ZipkinReceiver
from telemetry.security.config import AuthConfig, TlsConfig
from telemetry.selfmetrics import SelfStats

TOKEN = "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f1a"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ZIPKIN_SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "id": "eee19b7ec3c1b174",
    "kind": "SERVER",
    "name": "get /api",
    "timestamp": 1_714_564_800_000_000,
    "duration": 2500,
    "localEndpoint": {"serviceName": "frontend"},
}


def tls_of(pair: KeyPair, client_ca: KeyPair | None = None) -> TlsConfig:
    return TlsConfig(str(pair.cert), str(pair.key), str(client_ca.cert) if client_ca is not None else "")


class Otlp:
    def __init__(self, harness: TraceHarness, receiver: OtlpReceiver) -> None:
        self.harness, self.receiver = harness, receiver

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.receiver.grpc_port}"

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.receiver.http_port}/v1/traces"

    def refusals(self, receiver: str) -> int:
        return self.harness.stats.parse_errors.get((receiver, "unauthenticated"), 0)


class Zipkin:
    def __init__(self, harness: TraceHarness, receiver: ZipkinReceiver) -> None:
        self.harness, self.receiver = harness, receiver


@pytest.fixture
def make_otlp() -> Iterator[Callable[..., Otlp]]:
    made: list[Otlp] = []

    def make(auth: AuthConfig | None = None, tls: TlsConfig | None = None) -> Otlp:
        harness = TraceHarness.create()
        security: dict[str, Any] = {"auth": auth or AuthConfig(), "tls": tls or TlsConfig()}
        config = OtlpConfig(
            OtlpGrpcConfig(endpoint="127.0.0.1:0", **security), OtlpHttpConfig(endpoint="127.0.0.1:0", **security)
        )
        receiver = create_otlp(config, harness.ingest, harness.stats)
        receiver.start()
        made.append(Otlp(harness, receiver))
        return made[-1]

    yield make
    for running in made:
        running.receiver.shutdown()
        running.harness.close()


@pytest.fixture
def make_zipkin() -> Iterator[Callable[..., Zipkin]]:
    made: list[Zipkin] = []

    def make(auth: AuthConfig | None = None, tls: TlsConfig | None = None) -> Zipkin:
        harness = TraceHarness.create()
        config = ZipkinConfig(endpoint="127.0.0.1:0", auth=auth or AuthConfig(), tls=tls or TlsConfig())
        receiver = create_zipkin(config, harness.ingest, harness.stats)
        receiver.start()
        made.append(Zipkin(harness, receiver))
        return made[-1]

    yield make
    for running in made:
        running.receiver.shutdown()
        running.harness.close()


def one_span_request() -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    return request.SerializeToString()


def grpc_export(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> ExportTraceServiceResponse:
    call = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
    return call(one_span_request(), timeout=10, metadata=metadata)


def http_post(
    port: int, path: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- bearer tokens -------------------------------------------------------------------------------------


def test_otlp_grpc_takes_the_sdk_exporter_with_the_token_and_refuses_calls_without_it(
    make_otlp: Callable[..., Otlp],
) -> None:
    otlp = make_otlp(auth=AuthConfig(TOKEN))
    sent = emit_sample_trace(
        GrpcSpanExporter(endpoint=otlp.target, insecure=True, headers={"authorization": f"Bearer {TOKEN}"})
    )
    check_otlp_sample_trace(otlp.harness.normaliser, sent)

    with grpc.insecure_channel(otlp.target) as channel:
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
            with pytest.raises(grpc.RpcError) as raised:
                grpc_export(channel, metadata)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert TOKEN not in raised.value.details()
        assert "bearer token is not valid" in raised.value.details()
        grpc_export(channel, (("authorization", f"bearer {TOKEN}"),))  # the scheme is case-insensitive
    assert otlp.refusals("otlp_grpc") == 3
    assert len(otlp.harness.normaliser.spans()) == 3  # the sample trace's two, and the last call's one


def test_otlp_http_answers_401_with_a_challenge_and_takes_the_sdk_exporter_with_the_token(
    make_otlp: Callable[..., Otlp],
) -> None:
    otlp = make_otlp(auth=AuthConfig(TOKEN))
    port = otlp.receiver.http_port

    status, headers, body = http_post(port, "/v1/traces", one_span_request(), "application/x-protobuf")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="meshscope"'
    from google.rpc import code_pb2, status_pb2

    assert status_pb2.Status.FromString(body).code == code_pb2.UNAUTHENTICATED

    status, headers, body = http_post(port, "/v1/traces", b"{}", "application/json", {"Authorization": "Bearer nope"})
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="meshscope", error="invalid_token"')
    assert json.loads(body)["code"] == code_pb2.UNAUTHENTICATED
    # Nothing is told about paths to a client without the token: not even that one does not exist.
    assert http_post(port, "/elsewhere", b"", "text/plain")[0] == 401
    assert otlp.refusals("otlp_http") == 3
    assert otlp.harness.normaliser.spans() == []

    sent = emit_sample_trace(HttpSpanExporter(endpoint=otlp.url(), headers={"Authorization": f"Bearer {TOKEN}"}))
    check_otlp_sample_trace(otlp.harness.normaliser, sent)


def test_zipkin_answers_401_without_the_token_and_202_with_it(make_zipkin: Callable[..., Zipkin]) -> None:
    zipkin = make_zipkin(auth=AuthConfig(TOKEN))
    body = json.dumps([ZIPKIN_SPAN]).encode()
    port = zipkin.receiver.port

    status, headers, answer = http_post(port, "/api/v2/spans", body, "application/json")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="meshscope"')
    assert b"authorization: Bearer <token>" in answer
    assert http_post(port, "/api/v2/spans", body, "application/json", {"Authorization": "Basic " + TOKEN})[0] == 401
    assert zipkin.harness.stats.parse_errors[("zipkin", "unauthenticated")] == 2
    assert zipkin.harness.normaliser.spans() == []

    assert http_post(port, "/api/v2/spans", body, "application/json", {"Authorization": f"Bearer {TOKEN}"})[0] == 202
    assert [span.name for span in zipkin.harness.normaliser.spans()] == ["get /api"]


def test_receivers_without_a_token_configured_take_requests_as_before(make_zipkin: Callable[..., Zipkin]) -> None:
    zipkin = make_zipkin()
    body = json.dumps([ZIPKIN_SPAN]).encode()
    assert http_post(zipkin.receiver.port, "/api/v2/spans", body, "application/json")[0] == 202


class Als:
    def __init__(self, stats: SelfStats, pipeline: Pipeline, receiver: Any) -> None:
        self.stats, self.pipeline, self.receiver = stats, pipeline, receiver

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.receiver.port}"


@pytest.fixture
def make_als() -> Iterator[Callable[..., Als]]:
    made: list[Als] = []

    def make(auth: AuthConfig | None = None, tls: TlsConfig | None = None) -> Als:
        stats = SelfStats()
        pipeline = Pipeline([], stats, queue_size=100, batch_size=10, batch_timeout=0.01)
        pipeline.start()
        config = AlsConfig(endpoint="127.0.0.1:0", auth=auth or AuthConfig(), tls=tls or TlsConfig())
        receiver = create_als(config, pipeline, stats, PeerTable())
        receiver.start()
        made.append(Als(stats, pipeline, receiver))
        return made[-1]

    yield make
    for running in made:
        running.receiver.shutdown()
        running.pipeline.shutdown()


def empty_stream(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """A stream that names its proxy and carries no entries."""
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = "sidecar~10.244.0.12~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local"
    message.identifier.log_name = "envoy.access_loggers.http_grpc"
    stub = als_pb2_grpc.AccessLogServiceStub(channel)
    stub.StreamAccessLogs(iter([message]), timeout=10, metadata=metadata)


def test_als_streams_need_the_token_in_their_metadata(make_als: Callable[..., Als]) -> None:
    als = make_als(auth=AuthConfig(TOKEN))
    with grpc.insecure_channel(als.target) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            empty_stream(channel)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        empty_stream(channel, (("authorization", f"Bearer {TOKEN}"),))
    assert als.stats.parse_errors == {("als", "unauthenticated"): 1}


# --- TLS ----------------------------------------------------------------------------------------------


def test_otlp_grpc_over_tls_takes_the_sdk_exporter_trusting_the_certificate(
    make_otlp: Callable[..., Otlp], server_pair: KeyPair
) -> None:
    otlp = make_otlp(tls=tls_of(server_pair), auth=AuthConfig(TOKEN))
    credentials = grpc.ssl_channel_credentials(root_certificates=server_pair.cert_bytes())
    exporter = GrpcSpanExporter(
        endpoint=otlp.target, credentials=credentials, headers={"authorization": f"Bearer {TOKEN}"}
    )
    check_otlp_sample_trace(otlp.harness.normaliser, emit_sample_trace(exporter))

    # A plaintext client gets nowhere.
    with grpc.insecure_channel(otlp.target) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            grpc_export(channel, (("authorization", f"Bearer {TOKEN}"),))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_otlp_http_over_tls_takes_the_sdk_exporter_given_the_certificate_file(
    make_otlp: Callable[..., Otlp], server_pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these variables override a session's CA file, which is how the SDK passes certificate_file.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    otlp = make_otlp(tls=tls_of(server_pair))

    def exporter() -> HttpSpanExporter:
        return HttpSpanExporter(endpoint=otlp.url("https"), certificate_file=str(server_pair.cert))

    check_otlp_sample_trace(otlp.harness.normaliser, emit_sample_trace(exporter()))

    # Plain HTTP to the TLS port: the connection ends, no answer, and the server keeps serving.
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        http_post(otlp.receiver.http_port, "/v1/traces", one_span_request(), "application/x-protobuf")
    emit_sample_trace(exporter())
    assert len(otlp.harness.normaliser.spans()) == 4


def https_post(port: int, context: ssl.SSLContext, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("POST", "/api/v2/spans", body=body, headers={"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    finally:
        connection.close()


def test_zipkin_over_tls_with_a_token_answers_an_https_client_that_trusts_it(
    make_zipkin: Callable[..., Zipkin], server_pair: KeyPair, other_pair: KeyPair
) -> None:
    zipkin = make_zipkin(tls=tls_of(server_pair), auth=AuthConfig(TOKEN))
    trusting = ssl.create_default_context(cafile=str(server_pair.cert))
    body = json.dumps([ZIPKIN_SPAN]).encode()

    assert https_post(zipkin.receiver.port, trusting, body, {}) == 401
    assert https_post(zipkin.receiver.port, trusting, body, {"Authorization": f"Bearer {TOKEN}"}) == 202
    assert [span.name for span in zipkin.harness.normaliser.spans()] == ["get /api"]

    # A client that trusts another certificate refuses the server.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_post(zipkin.receiver.port, ssl.create_default_context(cafile=str(other_pair.cert)), body, {})


def test_client_ca_file_admits_only_clients_with_a_certificate_it_signed(
    make_zipkin: Callable[..., Zipkin], server_pair: KeyPair, client_pair: KeyPair, other_pair: KeyPair
) -> None:
    zipkin = make_zipkin(tls=tls_of(server_pair, client_ca=client_pair))
    body = json.dumps([ZIPKIN_SPAN]).encode()

    def context(client: KeyPair | None) -> ssl.SSLContext:
        result = ssl.create_default_context(cafile=str(server_pair.cert))
        if client is not None:
            result.load_cert_chain(str(client.cert), str(client.key))
        return result

    assert https_post(zipkin.receiver.port, context(client_pair), body, {}) == 202
    for stranger in (None, other_pair):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_post(zipkin.receiver.port, context(stranger), body, {})
    assert len(zipkin.harness.normaliser.spans()) == 1


def test_als_over_mutual_tls(make_als: Callable[..., Als], server_pair: KeyPair, client_pair: KeyPair) -> None:
    als = make_als(tls=tls_of(server_pair, client_ca=client_pair))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=server_pair.cert_bytes(),
        private_key=client_pair.key_bytes(),
        certificate_chain=client_pair.cert_bytes(),
    )
    with grpc.secure_channel(als.target, credentials) as channel:
        empty_stream(channel)
    anonymous = grpc.ssl_channel_credentials(root_certificates=server_pair.cert_bytes())
    with grpc.secure_channel(als.target, anonymous) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            empty_stream(channel)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
