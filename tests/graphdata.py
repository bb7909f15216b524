"""Graph test inputs: Records and spans from testdata files into the aggregations the graph reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servicegraph.connector_metrics import ServiceGraphMetrics
from servicegraph.sources.live import cumulative_traffic
from servicegraph.spanpairs import SpanPairer, SpanPairingConfig
from servicegraph.traffic import Traffic
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import Record, Span

GRAPHS = Path(__file__).parent / "testdata" / "graphs"


def records_of(path: Path) -> list[Record]:
    """``[{"count": n, "record": {field: value}}]`` -> the Records, each repeated ``count`` times."""
    return [Record(**entry["record"]) for entry in json.loads(path.read_text()) for _ in range(entry["count"])]


def spans_of(path: Path) -> list[Span]:
    return [Span(**span) for span in json.loads(path.read_text())]


def aggregate(records: list[Record], spans: list[Span]) -> tuple[IstioMetrics, ServiceGraphMetrics]:
    metrics = IstioMetrics()
    metrics.consume(records)
    span_metrics = ServiceGraphMetrics()
    pairer = SpanPairer(SpanPairingConfig(), span_metrics)
    pairer.consume(spans)
    pairer.shutdown()  # what is still unpaired becomes virtual-node pairs now
    return metrics, span_metrics


def case_traffic(case: str, seconds: float = 100.0) -> Traffic:
    folder = GRAPHS / case
    spans = spans_of(folder / "spans.json") if (folder / "spans.json").exists() else []
    metrics, span_metrics = aggregate(records_of(folder / "records.json"), spans)
    return cumulative_traffic(metrics, span_metrics, 0.0, seconds)


def rounded(document: Any) -> Any:
    """Floats to 3 decimals, so goldens do not depend on the last bits of a division."""
    if isinstance(document, float):
        return round(document, 3)
    if isinstance(document, dict):
        return {key: rounded(value) for key, value in document.items()}
    if isinstance(document, list):
        return [rounded(value) for value in document]
    return document
