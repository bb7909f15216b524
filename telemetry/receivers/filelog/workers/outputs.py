"""What the collector needs back from parsing workers, decided once from its sinks.

- ``metrics``: the IstioMetrics the workers' totals are merged into (the Prometheus sink's, or the graph's
  own when Prometheus is off), and ``metrics_sinks``, the pipeline sinks that aggregate into it: Records
  sent back bypass those, since their totals already arrived.
- ``encoded``: a sink the workers encode events for (the Fluentd forward sink), which then needs no Records.
- ``records``: which Records the other sinks need. ``"all"`` when any sink needs every Record (the log
  sinks: Fluentd, Elasticsearch; any sink the collector does not know); ``"traces"`` when the only other
  sink is the recent-traces index, which looks at client-side (or caller-unknown) Records that failed or
  carry a trace id, and, while spans are correlating request ids to trace ids, those with a request id
  (sent in a compact form, see ``for_recent_traces``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import RECORD_FIELDS, UNKNOWN, Record

RecordNeeds = Literal["all", "traces"]

# Sinks whose needs are known: the metrics aggregations and the recent-traces index.
METRICS_SINKS = frozenset({"prometheus", "graph"})
TRACES_SINK = "recent_traces"


def _never() -> bool:
    return False


def _unknown(request_id: str) -> str | None:
    return None


@dataclass(frozen=True)
class EncodedOutput:
    """A sink that takes its events encoded by the workers (the Fluentd forward sink): they encode each
    chunk's Records with its tag template (and the raw line when ``include_original``) and the collector
    hands the result (an ``EncodedBatch``) to ``consume``, so the sink neither gets nor encodes Records.
    Records whose trace id the collector may fill in from its request-id index go the usual way."""

    sink: str
    tag: str
    include_original: bool
    consume: Callable[[Any], None]


@dataclass
class WorkerOutputs:
    metrics: IstioMetrics | None = None
    metrics_sinks: frozenset[str] = frozenset()
    records: RecordNeeds = "all"  # what the sinks other than the metrics ones and ``encoded`` need
    correlating: Callable[[], bool] = field(default=_never)  # True while the request-id index is in use
    trace_id_of: Callable[[str], str | None] = field(default=_unknown)  # the request-id index's lookup
    encoded: EncodedOutput | None = None

    @property
    def aggregate(self) -> bool:
        return self.metrics is not None


def needs_of(sink_names: Sequence[str], encoded: str | None = None) -> RecordNeeds:
    """``"traces"`` when every sink besides the metrics ones (and the one ``encoded`` for) is the
    recent-traces index, else ``"all"``."""
    others = set(sink_names) - METRICS_SINKS - {TRACES_SINK, encoded}
    return "all" if others else "traces"


# What the recent-traces index reads of a Record that may only be given a trace id by its request id.
COMPACT_FIELDS = (
    "reporter", "source_workload", "source_namespace", "destination_service", "protocol", "response_code",
    "grpc_status", "duration_ms", "start_time", "request_id",
)  # fmt: skip
_COMPACT = tuple(RECORD_FIELDS.index(name) for name in COMPACT_FIELDS)
_REPORTER, _SOURCE_WORKLOAD, _PROTOCOL, _RESPONSE_CODE, _GRPC_STATUS, _TRACE_ID, _REQUEST_ID = map(
    RECORD_FIELDS.index,
    ("reporter", "source_workload", "protocol", "response_code", "grpc_status", "trace_id", "request_id"),
)


def for_recent_traces(records: Sequence[Record], correlating: bool) -> list[tuple[object, ...]]:
    """What the recent-traces index (``RecentTraces.consume``) would look at, in order, as plain tuples.

    Client-side (or caller-unknown) Records that failed or carry a trace id go whole (the index keeps failing
    Records). While the request-id index is in use (``correlating``), the other client-side Records with a
    request id may still be given a trace id: they go as the few fields the index reads (``COMPACT_FIELDS``),
    a quarter of the cost of a whole one, and the collector makes a Record of those whose request id it knows
    (``from_compact``).
    """
    kept: list[tuple[object, ...]] = []
    append = kept.append
    compact = itemgetter(*_COMPACT)
    # By index, and request_failed inlined: this runs for every Record a worker parses.
    for record in records:
        if record[_REPORTER] != "source" and record[_SOURCE_WORKLOAD] != UNKNOWN:
            continue
        if record[_PROTOCOL] == "tcp":
            failed = False
        elif grpc_status := record[_GRPC_STATUS]:
            failed = grpc_status != "0"
        else:
            code = record[_RESPONSE_CODE]
            failed = code >= 500 or code == 0
        if failed or record[_TRACE_ID]:
            append(tuple(record))
        elif correlating and record[_REQUEST_ID]:
            append(compact(record))
    return kept


def from_compact(values: Sequence[object], trace_id: str) -> Record:
    """A Record of the compact fields, given the trace id its request id has."""
    return Record(**dict(zip(COMPACT_FIELDS, values, strict=True)), trace_id=trace_id)  # type: ignore[arg-type]
