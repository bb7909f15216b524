"""The live graph source: sliding windows over the collector's own cumulative metrics.

Nothing is counted twice per Record: the metrics sink already aggregates every Record into Istio's
series, and the span pairer into the servicegraph connector's series. Every ``resolution`` seconds a
tick reads those cumulative rows (a key keeps its row index forever, so rows line up across ticks);
each window keeps a ring of ``points`` interval deltas, cut every ``window / points`` seconds. A
window's traffic is the sum of its ring's deltas plus what happened since the ring's last cut; a
chart's points are the deltas themselves.

Deltas are stored sparse (only the non-zero cells, in float32: exact for counts below 2**24 per
interval, and rates do not need more), so an idle series costs nothing and an active one a few cells.
Rows that have not changed for ``idle_expiry`` seconds leave the graph.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from servicegraph.traffic import HTTP_WIDTH, SPAN_WIDTH, TCP_WIDTH, Table, Traffic
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics

_TABLES = ("http", "tcp", "spans")
_WIDTHS = {"http": HTTP_WIDTH, "tcp": TCP_WIDTH, "spans": SPAN_WIDTH}


class TableSource(Protocol):
    def table(self) -> Table: ...


@dataclass
class _Delta:
    start: float
    end: float
    cells: dict[str, tuple[np.ndarray, np.ndarray]]  # table -> (flat cell indices, values)


@dataclass
class _Ring:
    window: float
    interval: float
    deltas: deque[_Delta]
    cut_time: float | None = None
    cut: dict[str, np.ndarray] = field(default_factory=dict)  # cumulative values at the last cut


@dataclass
class _Tick:
    time: float
    values: dict[str, np.ndarray]
    keys: dict[str, list[tuple[str, ...]]]
    last_active: dict[str, np.ndarray]


class LiveSource:
    def __init__(
        self,
        metrics: IstioMetrics,
        spans: TableSource | None = None,
        windows: Sequence[float] = (60.0, 300.0, 900.0, 3600.0),
        points: int = 12,
        idle_expiry: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._spans = spans
        self._idle_expiry = idle_expiry
        self._clock = clock
        self._rings = [_Ring(w, w / points, deque(maxlen=points)) for w in sorted(set(windows))]
        self._keys: dict[str, list[tuple[str, ...]]] = {name: [] for name in _TABLES}
        self._last_active: dict[str, np.ndarray] = {name: np.zeros(0) for name in _TABLES}
        self._latest: _Tick | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> float:
        """Changes at every tick, and only then: what the windows read is fixed in between."""
        latest = self._latest
        return latest.time if latest is not None else 0.0

    def series_counts(self) -> dict[str, int]:
        """Label sets per table the windows track (the graph's size in series)."""
        return {name: len(keys) for name, keys in self._keys.items()}

    @property
    def windows(self) -> list[float]:
        return [ring.window for ring in self._rings]

    # Ticking: the owner calls tick() every few seconds (the graph runtime's ticker does).

    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        values = self._read()
        with self._lock:
            previous = self._latest
            for name, cumulative in values.items():
                active = self._last_active[name]
                grown = np.zeros(len(cumulative))
                grown[: len(active)] = active
                before = previous.values[name] if previous else np.zeros((0, cumulative.shape[1]))
                changed = np.ones(len(cumulative), dtype=bool)
                changed[: len(before)] = np.any(cumulative[: len(before)] != before, axis=1)
                grown[changed] = now
                self._last_active[name] = grown
            for ring in self._rings:
                if ring.cut_time is None:
                    ring.cut_time, ring.cut = now, values
                elif now - ring.cut_time >= ring.interval:
                    ring.deltas.append(_Delta(ring.cut_time, now, _sparse_deltas(values, ring.cut)))
                    ring.cut_time, ring.cut = now, values
            # The key lists only ever grow, so the tick can share them: its rows are their first len(values).
            self._latest = _Tick(now, values, dict(self._keys), dict(self._last_active))

    def _read(self) -> dict[str, np.ndarray]:
        request_keys, request_rows, tcp_keys, tcp_rows = self._metrics.rows()
        values = {
            "http": _dense(request_rows, HTTP_WIDTH),
            "tcp": _dense(tcp_rows, TCP_WIDTH),
        }
        _extend_keys(self._keys["http"], request_keys)
        _extend_keys(self._keys["tcp"], tcp_keys)
        if self._spans is not None:
            table = self._spans.table()
            values["spans"] = table.values
            _extend_keys(self._keys["spans"], table.keys)
        else:
            values["spans"] = np.zeros((0, SPAN_WIDTH))
        return values

    # Reading.

    def _ring_for(self, window: float) -> _Ring:
        for ring in self._rings:
            if ring.window >= window:
                return ring
        return self._rings[-1]

    def traffic(self, window: float, end: float | None = None) -> Traffic:
        with self._lock:
            latest = self._latest
            ring = self._ring_for(window)
            deltas = list(ring.deltas)
            cut_time, cut = ring.cut_time, ring.cut
        if latest is None:
            now = self._clock()
            return Traffic.empty(now - window, now)
        slack = ring.interval / 2
        if end is None or end >= latest.time:
            end = latest.time
            start = end - window - slack
            chosen = [delta for delta in deltas if delta.start >= start]
            totals = _sum_deltas(latest, chosen)
            if cut_time is not None and cut_time < latest.time:
                for name, partial in _sparse_deltas(latest.values, cut).items():
                    _add_cells(totals[name], partial)
            begin = chosen[0].start if chosen else (cut_time if cut_time is not None else end)
        else:
            chosen = [delta for delta in deltas if delta.end <= end + slack and delta.start >= end - window - slack]
            totals = _sum_deltas(latest, chosen)
            begin = chosen[0].start if chosen else end - window
            end = chosen[-1].end if chosen else end
        return self._traffic_of(latest, totals, begin, end)

    def traffic_series(self, window: float, points: int, end: float | None = None) -> list[Traffic]:
        with self._lock:
            latest = self._latest
            ring = self._ring_for(window)
            deltas = list(ring.deltas)
        if latest is None:
            return []
        end = latest.time if end is None else end
        chosen = [d for d in deltas if d.end <= end + ring.interval / 2 and d.start >= end - window - ring.interval]
        return [self._traffic_of(latest, _sum_deltas(latest, [delta]), delta.start, delta.end) for delta in chosen]

    def _traffic_of(self, latest: _Tick, totals: dict[str, np.ndarray], start: float, end: float) -> Traffic:
        tables = {}
        horizon = end - self._idle_expiry
        for name in _TABLES:
            values = totals[name]
            keep = np.flatnonzero((latest.last_active[name] >= horizon) | values.any(axis=1))
            keys = latest.keys[name]
            tables[name] = Table([keys[i] for i in keep.tolist()], values[keep])
        return Traffic(tables["http"], tables["tcp"], tables["spans"], start, end)


def _dense(rows: list[list[float]] | list[list[int]], width: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def _extend_keys(keys: list[tuple[str, ...]], source: Sequence[tuple[object, ...]]) -> None:
    # Keys only ever append; only the new ones are converted.
    for key in source[len(keys) :]:
        keys.append(tuple(str(value) for value in key))


def _sparse_deltas(
    values: dict[str, np.ndarray], cut: dict[str, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cells = {}
    for name, cumulative in values.items():
        delta = cumulative.copy()
        before = cut.get(name)
        if before is not None and len(before):
            delta[: len(before)] -= before
        flat = delta.ravel()
        index = np.flatnonzero(flat)
        cells[name] = (index.astype(np.int64), flat[index].astype(np.float32))
    return cells


def _add_cells(total: np.ndarray, cells: tuple[np.ndarray, np.ndarray]) -> None:
    # Row-major flat indices stay valid as a table grows: rows only append, the width is fixed.
    index, values = cells
    total.ravel()[index] += values


def _sum_deltas(latest: _Tick, deltas: list[_Delta]) -> dict[str, np.ndarray]:
    totals = {name: np.zeros_like(latest.values[name]) for name in _TABLES}
    for delta in deltas:
        for name, cells in delta.cells.items():
            _add_cells(totals[name], cells)
    return totals


def cumulative_traffic(metrics: IstioMetrics, spans: TableSource | None, start: float, end: float) -> Traffic:
    """Everything counted so far as one window from ``start`` to ``end`` (offline ingest has no ticks)."""
    request_keys, request_rows, tcp_keys, tcp_rows = metrics.rows()
    span_table = spans.table() if spans is not None else Table.empty(SPAN_WIDTH)

    def table(keys: Sequence[tuple[object, ...]], rows: list[list[float]] | list[list[int]], width: int) -> Table:
        return Table([tuple(str(value) for value in key) for key in keys], _dense(rows, width))

    return Traffic(
        table(request_keys, request_rows, HTTP_WIDTH), table(tcp_keys, tcp_rows, TCP_WIDTH), span_table, start, end
    )
