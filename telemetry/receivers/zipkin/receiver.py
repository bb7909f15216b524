"""The Zipkin v2 receiver: ``POST /api/v2/spans`` with a JSON list of spans or a proto3 ListOfSpans.

Answers as Zipkin's own collector does: 202 with no body once the spans are taken, 400 with the reason
as text when the body cannot be read; and 503 with Retry-After when the pipeline is full.
"""

from __future__ import annotations

from telemetry.envoy.errors import ParseError
from telemetry.receivers.httpbody import BodyError
from telemetry.receivers.httpserver import HttpReceiverServer, Response, text
from telemetry.receivers.serving import ServingReceiver
from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.selfmetrics import SelfStats
from telemetry.spans.from_zipkin import read_json, resource_spans_from_proto3
from telemetry.traces import OtlpSpans, SpanBatch, TraceIngest

RECEIVER = "zipkin"
PATH = "/api/v2/spans"
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def _proto3(body: bytes) -> SpanBatch:
    return OtlpSpans(resource_spans_from_proto3(body))


# JSON is read for the normaliser as it is, made OTLP only for the exporters (see from_zipkin.read_json).
_DECODERS = {JSON: read_json, PROTOBUF: _proto3}


class SpansRoute:
    path = PATH
    media_types = frozenset(_DECODERS)

    def __init__(self, ingest: TraceIngest) -> None:
        self._ingest = ingest

    def handle(self, body: bytes, media_type: str) -> Response:
        try:
            spans = _DECODERS[media_type](body)
        except ParseError as error:
            raise BodyError(400, error.reason, f"{error.reason}: {error}") from None
        # Zipkin has no partial success: spans the normaliser rejects are counted by TraceIngest.
        if self._ingest.accept(spans, RECEIVER).refused:
            return text(503, "collector pipeline is full: retry later", (("Retry-After", "1"),))
        return Response(202)

    def error(self, error: BodyError, media_type: str) -> Response:
        return text(error.status, str(error))


class ZipkinReceiver(ServingReceiver):
    def __init__(self, config: ZipkinConfig, ingest: TraceIngest, stats: SelfStats) -> None:
        self._server = HttpReceiverServer(
            config.endpoint,
            [SpansRoute(ingest)],
            RECEIVER,
            stats,
            max_body_bytes=config.max_body_bytes,
            max_connections=config.max_connections,
            auth=config.auth,
            tls=config.tls,
        )
