"""OTLP/HTTP: ``POST /v1/traces`` with a protobuf or JSON ExportTraceServiceRequest, answered in kind.

Errors are answered as the spec asks, with a ``google.rpc.Status`` in the request's encoding; a full
pipeline is 503 with Retry-After, which OTLP exporters retry.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from telemetry.envoy.errors import ParseError
from telemetry.receivers.httpbody import BodyError
from telemetry.receivers.httpserver import HttpReceiverServer, Response
from telemetry.receivers.otlp.config import OtlpHttpConfig
from telemetry.receivers.otlp.export import HTTP_RECEIVER, export_response
from telemetry.receivers.otlp.jsoncodec import message_to_json, request_from_json
from telemetry.receivers.serving import ServingReceiver
from telemetry.selfmetrics import SelfStats
from telemetry.spans.otlp_lean import decode_request
from telemetry.traces import OtlpSpans, TraceIngest

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER = (("Retry-After", "1"),)

_STATUS_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
}


def _encode(message: Message, media_type: str) -> bytes:
    return message_to_json(message) if media_type == JSON else message.SerializeToString()


class TracesRoute:
    path = PATH
    media_types = frozenset({PROTOBUF, JSON})

    def __init__(self, ingest: TraceIngest) -> None:
        self._ingest = ingest

    def handle(self, body: bytes, media_type: str) -> Response:
        try:
            if media_type == JSON:
                spans = OtlpSpans(request_from_json(body).resource_spans)
            else:
                # Parsed lean: the normaliser reads attributes from that far faster than from messages.
                spans = decode_request(body)
        except ParseError as error:
            raise BodyError(400, error.reason, f"{error.reason}: {error}") from None
        except DecodeError as error:
            raise BodyError(400, "bad_protobuf", f"bad_protobuf: not an ExportTraceServiceRequest: {error}") from None
        result = self._ingest.accept(spans, HTTP_RECEIVER)
        if result.refused:
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="collector pipeline is full: retry later")
            return Response(503, _encode(status, media_type), media_type, RETRY_AFTER)
        return Response(200, _encode(export_response(result), media_type), media_type)

    def error(self, error: BodyError, media_type: str) -> Response:
        status = status_pb2.Status(code=_STATUS_CODES.get(error.status, code_pb2.INVALID_ARGUMENT), message=str(error))
        return Response(error.status, _encode(status, media_type), media_type)


class OtlpHttpReceiver(ServingReceiver):
    def __init__(self, config: OtlpHttpConfig, ingest: TraceIngest, stats: SelfStats) -> None:
        self._server = HttpReceiverServer(
            config.endpoint,
            [TracesRoute(ingest)],
            HTTP_RECEIVER,
            stats,
            max_body_bytes=config.max_body_bytes,
            max_connections=config.max_connections,
            auth=config.auth,
            tls=config.tls,
        )
