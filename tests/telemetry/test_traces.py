from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.selfmetrics import SelfStats
from telemetry.traces import Normalised, TraceIngest


class Recording:
    def __init__(self) -> None:
        self.items: list[object] = []

    def consume(self, batch: Sequence[object]) -> None:
        self.items.extend(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _one_record(resource_spans: Sequence[ResourceSpans]) -> Normalised:
    return Normalised(records=[Record()], spans=[])


def test_a_request_the_pipeline_refuses_reaches_no_exporter_so_its_retry_is_not_a_duplicate() -> None:
    stats = SelfStats()
    pipeline = Pipeline([("sink", Recording())], stats)
    pipeline.start()
    pipeline.shutdown()  # a closed pipeline refuses everything
    exporter = Recording()
    ingest = TraceIngest(pipeline, stats, _one_record, exporters=[("jaeger", exporter)])
    result = ingest.accept([ResourceSpans()], "otlp_http")
    assert result.refused and exporter.items == []


def test_an_accepted_request_reaches_every_exporter() -> None:
    stats = SelfStats()
    pipeline = Pipeline([("sink", Recording())], stats)
    pipeline.start()
    first, second = Recording(), Recording()
    ingest = TraceIngest(pipeline, stats, _one_record, exporters=[("jaeger", first), ("zipkin", second)])
    result = ingest.accept([ResourceSpans()], "otlp_http")
    assert not result.refused and len(first.items) == len(second.items) == 1
    pipeline.shutdown()
