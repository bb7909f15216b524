"""One ExportTraceServiceRequest from a batch of span slices, the received messages copied unchanged.

Spans are never rebuilt as SDK objects: each ResourceSpans keeps its resource and schema URL, each
ScopeSpans its scope and schema URL, and each span every field (unknown ones included), because the
messages are copied with protobuf's own ``CopyFrom``/``append``.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.exporters.export_queue import SpanSlice


def build_request(batch: Sequence[SpanSlice]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    source: ResourceSpans | None = None
    target: ResourceSpans | None = None
    for resource_spans, scope_spans, start, stop in batch:
        if resource_spans is not source:
            source = resource_spans
            target = request.resource_spans.add()
            if resource_spans.HasField("resource"):
                target.resource.CopyFrom(resource_spans.resource)
            target.schema_url = resource_spans.schema_url
        assert target is not None
        if start == 0 and stop == len(scope_spans.spans):
            target.scope_spans.append(scope_spans)
        else:
            part = target.scope_spans.add()
            if scope_spans.HasField("scope"):
                part.scope.CopyFrom(scope_spans.scope)
            part.schema_url = scope_spans.schema_url
            part.spans.extend(scope_spans.spans[start:stop])
    return request
