"""The graph as the API serves it: built from a source on demand, per window and view, briefly cached.

A UI polling every second and a dashboard of several panels ask for the same graph many times; one
build per ``cache_seconds`` and view answers them all, and concurrent identical requests wait for
the one build in progress instead of each starting their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from servicegraph.builder import GraphOptions, build_graph, neighbours
from servicegraph.graphjson import edge_id
from servicegraph.model import DEGRADED, FAILING
from servicegraph.recent import EdgeRecents
from servicegraph.sources import GraphSource
from servicegraph.traffic import Traffic

log = logging.getLogger(__name__)

_REBUILD_FACTOR = 5.0
_MAX_VIEWS = 64  # graphs kept, each a window and view someone asked for
_REFRESHED_VIEWS = 8  # of those, rebuilt after each tick

_SERIES_FIGURES = ("rps", "error_pct", "client_error_pct", "p50_ms", "p95_ms", "p99_ms", "bytes_sent_per_s",
                   "bytes_received_per_s")  # fmt: skip


class NotFound(LookupError):
    pass


@dataclass
class _Entry:
    version: object  # the source's version it was built from
    asked: float  # when it was last asked for
    built: float  # when it was built
    build_seconds: float = 0.0  # how long building it took
    graph: nx.MultiDiGraph | None = None
    documents: dict[str, bytes] = field(default_factory=dict)  # serialised forms, each made on first request
    renderers: dict[str, Callable[[nx.MultiDiGraph], bytes]] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class GraphService:
    """Graphs per window and view, rebuilt only when the source has something new.

    A source with a ``version`` (the live source: its last tick) changes only at ticks, so a graph and
    its serialised documents are reused until the next tick; ``refresh()``, called right after a tick,
    rebuilds the views asked for in the last ``keep_seconds`` so that requests find them ready. Other
    sources (Prometheus) are re-read at most every ``cache_seconds``. With ``stale_seconds``, a request
    arriving between a tick and the refresh it triggers gets the graph of the tick before (if it is no
    older than that) rather than waiting for a build of its own. A graph whose build takes long is
    refreshed at most every five build-times, so rebuilding never takes more than about a fifth of a core.
    """

    def __init__(
        self,
        source: GraphSource,
        source_name: str,
        points: int = 12,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        recents: EdgeRecents | None = None,
        status: Callable[[], dict[str, float]] | None = None,
        keep_seconds: float = 30.0,
        stale_seconds: float = 0.0,
        unreachable: Callable[[], dict[str, tuple[str, float]]] | None = None,
    ) -> None:
        self.source = source
        self.recents = recents
        self.status = status
        # Backends that did not answer (SelfStats.unreachable): name -> (why, since), for the UI's banner.
        self.unreachable = unreachable
        self.source_name = source_name
        self.points = points
        self._cache_seconds = cache_seconds
        self._keep_seconds = keep_seconds
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._cache: dict[tuple[float, GraphOptions], _Entry] = {}
        self._lock = threading.Lock()

    def _version(self) -> object:
        version = getattr(self.source, "version", None)
        return version if version is not None else int(self._clock() // self._cache_seconds)

    def graph(self, window: float, options: GraphOptions, end: float | None = None) -> nx.MultiDiGraph:
        if end is not None:
            return build_graph(self.source.traffic(window, end), options, self.source_name)
        entry = self._entry((window, options))
        assert entry.graph is not None
        return entry.graph

    def document(
        self, window: float, options: GraphOptions, form: str, render: Callable[[nx.MultiDiGraph], bytes]
    ) -> bytes:
        """The graph serialised by ``render``, made once per graph and form."""
        entry = self._entry((window, options))
        document = entry.documents.get(form)
        if document is None:
            assert entry.graph is not None
            entry.renderers[form] = render
            document = entry.documents[form] = render(entry.graph)
        return document

    def refresh(self) -> None:
        """Rebuild what was asked for recently and is out of date (the ticker calls this after a tick)."""
        now = self._clock()
        with self._lock:
            for key in [key for key, entry in self._cache.items() if now - entry.asked > self._keep_seconds]:
                del self._cache[key]
            # Any window and namespace set can be asked for: only the most recently asked are kept warm.
            wanted = sorted(self._cache.items(), key=lambda item: -item[1].asked)[:_REFRESHED_VIEWS]
        version = self._version()
        for key, previous in wanted:
            # A big graph is rebuilt at most every few build-times: rebuilds take at most ~1/5 of a core.
            if previous.version == version or now - previous.built < _REBUILD_FACTOR * previous.build_seconds:
                continue
            try:
                self._entry(key, asked=previous.asked)
                for form, render in list(previous.renderers.items()):
                    self.document(key[0], key[1], form, render)
            except Exception as error:
                if getattr(error, "unreachable", False):  # an outage, reported as such: no traceback
                    log.warning("refreshing the %s graph of %gs failed: %s", key[1].graph_type, key[0], error)
                else:
                    log.exception("refreshing the %s graph of %gs failed", key[1].graph_type, key[0])

    def _entry(self, key: tuple[float, GraphOptions], asked: float | None = None) -> _Entry:
        version = self._version()
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            owner = entry is None or (entry.version != version and entry.ready.is_set())
            if owner and asked is None and entry is not None and entry.error is None:
                stale_limit = max(self._stale_seconds, (_REBUILD_FACTOR + 1) * entry.build_seconds)
                owner = self._stale_seconds <= 0 or now - entry.built > stale_limit
            if owner:
                entry = self._cache[key] = _Entry(version, now if asked is None else asked, now)
                if len(self._cache) > _MAX_VIEWS:
                    oldest = min(self._cache, key=lambda cached: self._cache[cached].asked)
                    del self._cache[oldest]
            elif asked is None:
                entry.asked = now
        assert entry is not None
        if owner:
            try:
                started = time.perf_counter()
                entry.graph = build_graph(self.source.traffic(key[0]), key[1], self.source_name)
                entry.build_seconds = time.perf_counter() - started
            except Exception as error:
                entry.error = error
                with self._lock:
                    if self._cache.get(key) is entry:
                        del self._cache[key]
            finally:
                entry.ready.set()
        else:
            entry.ready.wait()
        if entry.error is not None:
            raise entry.error
        return entry

    def node_detail(self, node: str, window: float, options: GraphOptions) -> dict[str, Any]:
        graph = self.graph(window, options)
        if node not in graph:
            raise NotFound(f"no node {node!r} in the {options.graph_type} graph of the last {window:g}s")
        series = self._series(window, GraphOptions(options.graph_type, options.namespaces, False, options.health, node))
        points = [_point(traffic, part.nodes[node] if node in part else None) for traffic, part in series]
        return {
            "node": {"id": node, **graph.nodes[node]},
            **neighbours(graph, node),
            "series": points,
        }

    def edge_detail(self, source: str, target: str, window: float, options: GraphOptions) -> dict[str, Any]:
        graph = self.graph(window, options)
        if not graph.has_edge(source, target):
            raise NotFound(
                f"no edge {source!r} -> {target!r} in the {options.graph_type} graph of the last {window:g}s"
            )
        edges = [
            {"id": edge_id(source, target, protocol), "source": source, "target": target, **attrs}
            for protocol, attrs in sorted(graph.get_edge_data(source, target).items())
        ]
        series_options = GraphOptions(options.graph_type, options.namespaces, False, options.health, source)
        parts = self._series(window, series_options)
        series = {
            edge["protocol"]: [
                _point(traffic, (part.get_edge_data(source, target) or {}).get(edge["protocol"]))
                for traffic, part in parts
            ]
            for edge in edges
        }
        recent = (
            self.recents.for_edge(graph.nodes[source], graph.nodes[target])
            if self.recents is not None
            else {"slowest": [], "failed": [], "failures": []}
        )
        return {
            "edges": edges,
            "series": series,
            "traces": {"slowest": recent["slowest"], "failed": recent["failed"]},
            "failures": recent["failures"],
        }

    def _series(self, window: float, options: GraphOptions) -> list[tuple[Traffic, nx.MultiDiGraph]]:
        parts = self.source.traffic_series(window, self.points)
        return [(traffic, build_graph(traffic, options, self.source_name)) for traffic in parts]


def _point(traffic: Traffic, attrs: dict[str, Any] | None) -> dict[str, Any]:
    point: dict[str, Any] = {"start": traffic.start, "end": traffic.end}
    for name in _SERIES_FIGURES:
        point[name] = attrs.get(name) if attrs else (None if name.startswith("p") else 0.0)
    return point


def summary(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """Totals for a summary bar: calls per second (each counted once), their success share, unhealthy nodes."""
    requests = float(graph.graph.get("requests", 0.0))
    errors = float(graph.graph.get("errors", 0.0))
    seconds = max(float(graph.graph.get("window", 1.0)), 1e-9)
    health = [state for _, state in graph.nodes(data="health")]
    return {
        "rps": requests / seconds,
        "success_pct": 100.0 * (1 - errors / requests) if requests else None,
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "nodes_degraded": health.count(DEGRADED),
        "nodes_failing": health.count(FAILING),
    }
