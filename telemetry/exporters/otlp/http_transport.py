"""OTLP over HTTP: the request as protobuf, ``POST {endpoint}/v1/traces``, optionally gzipped."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.exporters.export_queue import SpanSlice
from telemetry.exporters.http_post import HttpPoster
from telemetry.exporters.otlp.request import build_request
from telemetry.exporters.otlp.settings import OtlpSettings

log = logging.getLogger(__name__)


class HttpTransport:
    def __init__(self, settings: OtlpSettings) -> None:
        self._poster = HttpPoster(
            settings.endpoint,
            dict(settings.headers),
            settings.timeout,
            settings.compression == "gzip",
            "application/x-protobuf",
        )

    def send(self, batch: Sequence[SpanSlice]) -> int:
        body = self._poster.post(build_request(batch).SerializeToString())
        if not body:
            return 0
        try:
            response = ExportTraceServiceResponse.FromString(body)
        except DecodeError:
            # Delivered (2xx); a backend answering something else than the protobuf response is tolerated.
            log.debug("OTLP/HTTP response from %s is not an ExportTraceServiceResponse", self._poster.url)
            return 0
        return response.partial_success.rejected_spans

    def close(self) -> None:
        self._poster.close()
