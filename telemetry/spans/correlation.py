"""Tying access logs to traces, and remembering which traces to show for an edge of the graph.

``RequestTraceIndex``: Istio's default access-log formats carry the request id but no trace id, while
every proxy span carries both (``guid:x-request-id``). The index remembers request id -> trace id from
proxy-span Records, so access-log Records can be given their trace id (``fill_trace_ids``).

``RecentTraces``: per edge (source workload and namespace -> destination service), the slowest and the
most recent failed traces, for "show me a slow / failed request on this edge" in the UI.

Both are bounded and thread-safe; what they drop is counted.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

from telemetry.model import Record, request_failed

_SOURCE = "source"
_request_and_trace_id = attrgetter("request_id", "trace_id")


class RequestTraceIndex:
    """A bounded FIFO map from x-request-id to trace id; the oldest entry makes room, counted in ``evicted``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        # OrderedDict: popping a plain dict's first key again and again is O(n) (it skips deleted slots).
        self._trace_of: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.filled = 0  # Records given a trace id

    def remember(self, request_id: str, trace_id: str) -> None:
        if request_id and trace_id:
            with self._lock:
                self._put(request_id, trace_id)

    def remember_records(self, records: Iterable[Record]) -> None:
        """Learns from every Record that has both ids (proxy spans' Records have)."""
        pairs = list(map(_request_and_trace_id, records))
        with self._lock:
            trace_of = self._trace_of
            if len(trace_of) + len(pairs) <= self._max and all(map(all, pairs)):
                # Room for all and each has both ids: what the loop below does, in C (a known request id
                # keeps its place, a new one goes last).
                trace_of.update(pairs)
                return
            # _put, inlined: this runs for every proxy span.
            for request_id, trace_id in pairs:
                if not (request_id and trace_id):
                    continue
                if request_id in trace_of:
                    trace_of[request_id] = trace_id
                    continue
                if len(trace_of) >= self._max:
                    trace_of.popitem(last=False)
                    self.evicted += 1
                trace_of[request_id] = trace_id

    def _put(self, request_id: str, trace_id: str) -> None:
        trace_of = self._trace_of
        if request_id in trace_of:
            trace_of[request_id] = trace_id
            return
        if len(trace_of) >= self._max:
            # FIFO, not LRU: a request's proxies report within seconds, so age of learning is what counts.
            trace_of.popitem(last=False)
            self.evicted += 1
        trace_of[request_id] = trace_id

    def trace_id_of(self, request_id: str) -> str | None:
        with self._lock:
            return self._trace_of.get(request_id)

    def fill_trace_ids(self, records: list[Record]) -> list[Record]:
        """The Records, those without a trace id but with a known request id given theirs.

        Returns ``records`` itself when nothing was filled, a new list otherwise.
        """
        filled: list[Record] | None = None
        with self._lock:
            trace_of = self._trace_of
            if not trace_of:
                return records
            get = trace_of.get
            for position, record in enumerate(records):
                if record.trace_id or not record.request_id:
                    continue
                trace_id = get(record.request_id)
                if trace_id is None:
                    continue
                if filled is None:
                    filled = list(records)
                filled[position] = record._replace(trace_id=trace_id)
                self.filled += 1
        return records if filled is None else filled

    def __len__(self) -> int:
        return len(self._trace_of)


class Edge(NamedTuple):
    source_workload: str
    source_namespace: str
    destination_service: str


class TraceRef(NamedTuple):
    trace_id: str
    duration_ms: int
    error: bool
    response_code: int
    start_time: str

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


def is_failure(record: Record) -> bool:
    return request_failed(record.protocol, record.response_code, record.grpc_status)


@dataclass
class _EdgeTraces:
    # Slowest: two generations of min-heaps of (duration, trace id, ref), rotated every window, so the
    # slowest shown are from the last one to two windows rather than of all time.
    current: list[tuple[int, str, TraceRef]] = field(default_factory=list)
    previous: list[tuple[int, str, TraceRef]] = field(default_factory=list)
    failed: deque[TraceRef] = field(default_factory=deque)
    failures: deque[Record] = field(default_factory=deque)  # failing Records, with or without a trace id
    seen_generation: int = 0


class RecentTraces:
    """Per edge: the slowest ``slowest`` traces of the last one to two ``window`` s, and the ``failed`` most recent failed ones.

    A Sink (``consume``/``flush``/``shutdown``). Edges are Records' source workload and namespace ->
    destination service; only Records with a trace id count, and only the client's (source reporter)
    view when there is one, which is what the caller waited for (injected delays and aborts included);
    a server-side Record counts only when its client is unknown (a caller outside the mesh). At most
    ``max_edges`` edges are kept: a Record of an edge that does not fit is counted in ``dropped``; edges
    without traffic for two windows are forgotten.
    """

    def __init__(
        self,
        slowest: int = 10,
        failed: int = 10,
        max_edges: int = 10_000,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slowest <= 0 or failed <= 0 or max_edges <= 0 or window <= 0:
            raise ValueError("slowest, failed, max_edges and window must be positive")
        self._slowest = slowest
        self._failed = failed
        self._max_edges = max_edges
        self._window = window
        self._clock = clock
        self._edges: dict[Edge, _EdgeTraces] = {}
        self._last_seen: dict[Edge, int] = {}
        self._started = clock()
        self._generation = 0  # whole windows since start
        self._lock = threading.Lock()
        self.dropped = 0  # Records whose edge did not fit under max_edges
        self.forgotten = 0  # edges forgotten for lack of traffic

    # -- Sink -----------------------------------------------------------------------------------------

    def consume(self, batch: Sequence[Record]) -> None:
        with self._lock:
            self._rotate()
            generation = self._generation
            edges = self._edges
            last_seen = self._last_seen
            slowest, failed_max = self._slowest, self._failed
            for record in batch:
                trace_id = record.trace_id
                if record.reporter != _SOURCE and record.source_workload != "unknown":
                    continue
                error = is_failure(record)
                if not trace_id and not error:
                    continue
                edge = Edge(record.source_workload, record.source_namespace, record.destination_service)
                traces = edges.get(edge)
                if traces is None:
                    if len(edges) >= self._max_edges:
                        self.dropped += 1
                        continue
                    traces = edges[edge] = _EdgeTraces(seen_generation=generation)
                if traces.seen_generation != generation:
                    recent = traces.seen_generation == generation - 1
                    traces.previous, traces.current = (traces.current if recent else []), []
                    traces.seen_generation = generation
                last_seen[edge] = generation
                if error:
                    failures = traces.failures
                    failures.append(record)
                    if len(failures) > failed_max:
                        failures.popleft()
                    if not trace_id:
                        continue
                duration = record.duration_ms
                heap = traces.current
                if len(heap) < slowest or duration > heap[0][0]:
                    ref = TraceRef(trace_id, duration, error, record.response_code, record.start_time)
                    if len(heap) < slowest:
                        heapq.heappush(heap, (duration, trace_id, ref))
                    else:
                        heapq.heapreplace(heap, (duration, trace_id, ref))
                if error:
                    failed = traces.failed
                    failed.append(TraceRef(trace_id, duration, error, record.response_code, record.start_time))
                    if len(failed) > failed_max:
                        failed.popleft()

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass

    # -- queries --------------------------------------------------------------------------------------

    def query(self, source: tuple[str, str], destination: str) -> dict[str, list[dict[str, object]]]:
        """``{"slowest": [...], "failed": [...], "failures": [...]}`` for ``(workload, namespace) -> service``.

        Slowest first; failed newest first; one entry per trace id. Each trace entry is a dict of
        trace_id, duration_ms, error, response_code, start_time. ``failures`` are the most recent failing
        requests, newest first, as access-log-like lines (``line``) and their fields.
        """
        edge = Edge(source[0], source[1], destination)
        with self._lock:
            self._rotate()
            traces = self._edges.get(edge)
            if traces is None:
                return {"slowest": [], "failed": [], "failures": []}
            age = self._generation - traces.seen_generation
            candidates = [ref for _, _, ref in traces.current] if age <= 1 else []
            if age == 0:
                candidates += [ref for _, _, ref in traces.previous]
            failed = list(reversed(traces.failed))
            failures = list(reversed(traces.failures))
        return {
            "failures": [failure_line(record) for record in failures],
            "slowest": [ref.as_dict() for ref in _distinct(sorted(candidates, key=_slowest_first))[: self._slowest]],
            "failed": [ref.as_dict() for ref in _distinct(failed)],
        }

    def edges(self) -> list[Edge]:
        with self._lock:
            return list(self._edges)

    def __len__(self) -> int:
        return len(self._edges)

    def _rotate(self) -> None:
        generation = int((self._clock() - self._started) // self._window)
        if generation == self._generation:
            return
        self._generation = generation
        stale = [edge for edge, seen in self._last_seen.items() if seen < self._generation - 1]
        for edge in stale:
            del self._edges[edge]
            del self._last_seen[edge]
        self.forgotten += len(stale)


def failure_line(record: Record) -> dict[str, object]:
    """A failing request as an access-log-like line and the fields a UI shows beside it."""
    request = f'"{record.method} {record.path}"' if record.method else '"-"'
    status = f"{record.response_code}" + (f" grpc-status={record.grpc_status}" if record.grpc_status else "")
    line = (
        f"[{record.start_time or '-'}] {request} {status} {record.response_flags} {record.duration_ms}ms "
        f"{record.authority or '-'} {record.upstream_cluster or '-'} {record.destination_address or '-'}"
        + (f" trace={record.trace_id}" if record.trace_id else "")
    )
    return {
        "line": line, "start_time": record.start_time, "response_code": record.response_code,
        "grpc_status": record.grpc_status, "response_flags": record.response_flags,
        "duration_ms": record.duration_ms, "trace_id": record.trace_id, "reporter": record.reporter,
    }  # fmt: skip


def _slowest_first(ref: TraceRef) -> tuple[int, str]:
    return (-ref.duration_ms, ref.trace_id)


def _distinct(refs: Iterable[TraceRef]) -> list[TraceRef]:
    seen: set[str] = set()
    kept = []
    for ref in refs:
        if ref.trace_id not in seen:
            seen.add(ref.trace_id)
            kept.append(ref)
    return kept
