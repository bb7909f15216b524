"""Zipkin v2 over HTTP: a batch as one JSON array, ``POST /api/v2/spans``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from telemetry.exporters.export_queue import SpanSlice
from telemetry.exporters.http_post import HttpPoster
from telemetry.exporters.zipkin.settings import ZipkinSettings
from telemetry.spans.to_zipkin import ResourceContext, resource_context, span_to_zipkin


class ZipkinTransport:
    def __init__(self, settings: ZipkinSettings) -> None:
        self._poster = HttpPoster(
            settings.url, dict(settings.headers), settings.timeout, settings.compress, "application/json"
        )

    def send(self, batch: Sequence[SpanSlice]) -> int:
        self._poster.post(encode_batch(batch))
        return 0  # Zipkin answers 202 without saying what it kept

    def close(self) -> None:
        self._poster.close()


def encode_batch(batch: Sequence[SpanSlice]) -> bytes:
    encoded: list[dict[str, Any]] = []
    contexts: dict[int, ResourceContext] = {}
    for resource_spans, scope_spans, start, stop in batch:
        # Slices of one message follow each other; the resource is converted once per message.
        context = contexts.get(id(resource_spans))
        if context is None:
            context = contexts[id(resource_spans)] = resource_context(resource_spans.resource)
        scope = scope_spans.scope
        encoded.extend(span_to_zipkin(span, context, scope) for span in scope_spans.spans[start:stop])
    return orjson.dumps(encoded)
