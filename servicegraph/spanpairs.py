"""Client/server span pairing: application ``Span``s in, service-graph edges (``ServiceGraphMetrics``) out.

``SpanPairer`` is a ``SpanSink``: the trace receivers hand it every application span, it pairs the two
ends of each call and adds the pair to ``ServiceGraphMetrics``. The rules, as implemented:

Pairs (each recorded once, as soon as both ends are present, whatever their arrival order or batch):

- **client/server**: a CLIENT or PRODUCER span is the parent of a SERVER or CONSUMER span (same trace,
  ``server.parent_span_id == client.span_id``). client = the client span's service and namespace,
  server = the server span's; connection_type ``""``, or ``"messaging_system"`` when the parent is a
  producer or the child a consumer. Every child pairs with its parent, so one producer read by two
  consumers makes two pairs (fan-out); a self-call (same service on both sides) is a pair too.
- **database**: a CLIENT span with ``db_system`` set completes at once, never waiting: server =
  ``"{db_system}/{db_name}"`` (``"mysql/ratings"``), or ``db_system`` alone when there is no name, in
  namespace ``""``; connection_type ``"database"``; server_ms = client_ms. A database client span is
  never the client of another pair: a child under it (a database's own server span) has found its
  parent and forms nothing, since the database edge already counts that call.
- **parent/child across services** (for spans without kinds, or with kinds that are not
  client->server): every span is kept by ``(trace_id, span_id)``, so a child finds its parent and a
  parent finds the children that arrived before it. A parent and child in different services (service
  or namespace differ) form a pair: client = the parent's service, server = the child's, durations of
  each side, connection_type as above. In the same service they form nothing. A client->server pair is
  never also counted by this rule (a parent/child link forms at most one pair), and a client span that
  paired with any child this way no longer waits for a server.
- **root server**: a SERVER span with no parent completes at once as a pair from the virtual client
  ``"user"`` (connection_type ``"virtual_node"``), as the connector's virtual-node feature does. A root
  CONSUMER completes at once from its messaging node (below; ``"messaging_system"``), or from ``"user"``
  when it names no messaging system or destination.

``failed`` is either side's ``error``; a side's duration is ``(end_ns - start_ns) / 1e6`` ms (0 if
negative). A virtual side (user, unknown, peer, database, broker) takes the duration of the side that
was seen, so both histograms of a virtual edge are meaningful, and has namespace ``""``
(``VIRTUAL_NAMESPACE``). A span's own namespace is never ``""`` (the normaliser says ``"unknown"`` at
least), so the namespace is how a reader of the rows tells a virtual peer from a service: a
``"messaging_system"`` row between two services is a producer/consumer pair, one with a ``""`` side
names the broker (``"kafka/orders"``) on that side.

Expiry (by the injected clock; ``expire()`` runs from the graph's ticker, ``shutdown()`` expires all):

- A span waits while it has an obligation: a client/producer span until some child pairs with it, any
  span with a parent until that parent arrives. Once it has waited ``ttl`` seconds, it expires:
  - an unpaired CLIENT becomes a pair to the virtual server ``peer_service`` or ``"unknown"``
    (``"virtual_node"``); an unpaired PRODUCER to its messaging node, ``"{messaging_system}/
    {messaging_destination}"`` (or whichever of the two is set; ``"messaging_system"`` when a system is
    named, else ``"virtual_node"``), else ``peer_service``, else ``"unknown"`` (``"virtual_node"``);
  - a SERVER whose parent never arrived becomes a pair from the virtual client ``"unknown"``
    (``"virtual_node"``); a CONSUMER likewise, from its messaging node when it names one;
  - each of these counts one ``traces_service_graph_unpaired_spans_total`` (label ``client`` for a
    client/producer, ``server`` for a server/consumer: the service whose partner is missing);
  - any other span whose parent never arrived (kept only for the parent/child rule) expires silently.
- A span with no (or no remaining) obligation is kept for lookups only, ``ttl`` seconds from the
  moment its last obligation cleared (a producer may still find another consumer, a parent another
  child), then expires silently. Every span leaving by age counts in ``expired``.
- Expiry walks two insertion-ordered dicts from their oldest end and stops at the first young entry:
  O(expired), never O(store).

Bounds: at most ``max_items`` spans in the store, waiting or kept. When it is full a new span first
makes room by expiring what is due, then by evicting the oldest lookup-only span (counted in
``evicted``; that costs at most a late child its parent); only when every stored span is still waiting
is the new span not stored: it is counted in ``dropped`` (``traces_service_graph_dropped_spans_total``)
and never expires into an edge. It still pairs, at arrival, with whatever is stored. A span whose
``(trace_id, span_id)`` is already stored is a duplicate delivery and is ignored; spans consumed after
``shutdown()`` are counted as dropped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from servicegraph.connector_metrics import Pair, ServiceGraphMetrics
from servicegraph.traffic import CONNECTION_DATABASE, CONNECTION_DIRECT, CONNECTION_MESSAGING, CONNECTION_VIRTUAL
from telemetry.model import UNKNOWN, Span

USER = "user"  # the virtual client of a root server span
VIRTUAL_NAMESPACE = ""

_CALLING = frozenset(("client", "producer"))
_CALLED = frozenset(("server", "consumer"))

SpanId = tuple[str, str]  # (trace_id, span_id)

# A stored span is a list (cheaper to build than an object): its key, the Span, when it entered its
# current dict, whether it still waits for its parent, whether it is a client/producer still unpaired.
_KEY, _SPAN, _SINCE, _WAITS_PARENT, _CLIENT_OPEN = range(5)
Entry = list[Any]  # [SpanId, Span, float, bool, bool]


@dataclass
class SpanPairingConfig:
    ttl: float = 10.0  # seconds a span waits for its partner (and is kept for lookups)
    max_items: int = 100_000  # spans stored at most, waiting or kept

    def validate(self) -> list[str]:
        errors = []
        if not self.ttl > 0:
            errors.append("ttl: must be positive")
        if self.max_items < 1:
            errors.append("max_items: must be at least 1")
        return errors


class SpanPairer:
    """A ``SpanSink`` pairing client and server spans into ``ServiceGraphMetrics``; thread-safe."""

    def __init__(
        self,
        config: SpanPairingConfig,
        metrics: ServiceGraphMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        errors = config.validate()
        if errors:
            raise ValueError("; ".join(errors))
        self._ttl = config.ttl
        self._max_items = config.max_items
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        # Every stored span is in exactly one of these, oldest first: waiting (has an obligation) or
        # kept (lookups only). Moving an entry from waiting to kept appends it with a fresh time, so
        # both stay ordered by _SINCE.
        self._waiting: OrderedDict[SpanId, Entry] = OrderedDict()
        self._kept: OrderedDict[SpanId, Entry] = OrderedDict()
        # Children that arrived before their parent, by (trace_id, parent_span_id).
        self._orphans: dict[SpanId, list[Entry]] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._waiting) + len(self._kept)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # -- SpanSink -------------------------------------------------------------------------------------

    def consume(self, batch: Sequence[Span]) -> None:
        if not batch:
            return
        pairs: list[Pair] = []
        unpaired: dict[tuple[str, str], int] = {}
        dropped = expired = evicted = 0
        waiting, kept, orphans = self._waiting, self._kept, self._orphans
        with self._lock:
            if self._closed:
                dropped = len(batch)
            else:
                now = self._clock()
                for span in batch:
                    key = (span.trace_id, span.span_id)
                    if key in waiting or key in kept:
                        continue
                    kind = span.kind
                    is_database = kind == "client" and bool(span.db_system)
                    entry: Entry = [key, span, now, False, kind in _CALLING and not is_database]
                    if is_database:
                        client_ms = _duration_ms(span)
                        pairs.append(
                            (span.service, span.namespace, _database_node(span), VIRTUAL_NAMESPACE,
                             CONNECTION_DATABASE, span.error, client_ms, client_ms)
                        )  # fmt: skip
                    parent_key = (span.trace_id, span.parent_span_id)
                    if span.parent_span_id:
                        parent = waiting.get(parent_key) or kept.get(parent_key)
                        if parent is None:
                            entry[_WAITS_PARENT] = True
                        else:
                            _link(parent, entry, pairs)
                            self._settle(parent, now)
                    elif kind in _CALLED:
                        pairs.append(_root_pair(span))
                    children = orphans.pop(key, None)
                    if children is not None:
                        for child in children:
                            child[_WAITS_PARENT] = False
                            _link(entry, child, pairs)
                            self._settle(child, now)
                    if len(waiting) + len(kept) >= self._max_items:
                        made = self._expire_locked(now, pairs, unpaired)
                        expired += made
                        if not made and kept:
                            kept.popitem(last=False)
                            evicted += 1
                        if len(waiting) + len(kept) >= self._max_items:
                            dropped += 1
                            continue
                    if entry[_WAITS_PARENT] or entry[_CLIENT_OPEN]:
                        waiting[key] = entry
                        if entry[_WAITS_PARENT]:
                            siblings = orphans.get(parent_key)
                            if siblings is None:
                                orphans[parent_key] = [entry]
                            else:
                                siblings.append(entry)
                    else:
                        kept[key] = entry
        self._report(pairs, unpaired, dropped=dropped, expired=expired, evicted=evicted)

    def flush(self, timeout: float) -> bool:
        # Pairs are recorded synchronously; a waiting span is not buffered output but an unfinished call.
        return True

    def shutdown(self) -> None:
        """Expire every stored span (unpaired ones become virtual-node pairs); later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.expire(float("inf"))

    def expire(self, now: float | None = None) -> None:
        """Expire what has been stored ``ttl`` seconds (the graph's ticker calls this every few seconds)."""
        pairs: list[Pair] = []
        unpaired: dict[tuple[str, str], int] = {}
        with self._lock:
            expired = self._expire_locked(self._clock() if now is None else now, pairs, unpaired)
        self._report(pairs, unpaired, expired=expired)

    # -- internals ------------------------------------------------------------------------------------

    def _settle(self, entry: Entry, now: float) -> None:
        """Move a stored entry whose obligations have just cleared from waiting to kept."""
        if entry[_WAITS_PARENT] or entry[_CLIENT_OPEN]:
            return
        key = entry[_KEY]
        if self._waiting.pop(key, None) is not None:
            entry[_SINCE] = now
            self._kept[key] = entry

    def _expire_locked(self, now: float, pairs: list[Pair], unpaired: dict[tuple[str, str], int]) -> int:
        deadline = now - self._ttl
        expired = 0
        waiting = self._waiting
        while waiting:
            entry = next(iter(waiting.values()))
            if entry[_SINCE] > deadline:
                break
            waiting.popitem(last=False)
            expired += 1
            span: Span = entry[_SPAN]
            if entry[_CLIENT_OPEN]:
                pairs.append(_unpaired_client_pair(span))
                unpaired[(span.service, "")] = unpaired.get((span.service, ""), 0) + 1
            if entry[_WAITS_PARENT]:
                parent_key = (span.trace_id, span.parent_span_id)
                siblings = self._orphans[parent_key]
                siblings.remove(entry)
                if not siblings:
                    del self._orphans[parent_key]
                if span.kind in _CALLED:
                    pairs.append(_unpaired_server_pair(span))
                    unpaired[("", span.service)] = unpaired.get(("", span.service), 0) + 1
        kept = self._kept
        while kept:
            entry = next(iter(kept.values()))
            if entry[_SINCE] > deadline:
                break
            kept.popitem(last=False)
            expired += 1
        return expired

    def _report(
        self,
        pairs: list[Pair],
        unpaired: dict[tuple[str, str], int],
        *,
        dropped: int = 0,
        expired: int = 0,
        evicted: int = 0,
    ) -> None:
        # Outside the pairer's lock: the metrics have their own, and receivers should not queue on both.
        metrics = self._metrics
        if pairs:
            metrics.add_pairs(pairs)
        if unpaired:
            metrics.record_unpaired_many(unpaired.items())
        if dropped:
            metrics.record_dropped(dropped)
        if expired:
            metrics.record_expired(expired)
        if evicted:
            metrics.record_evicted(evicted)


def _link(parent: Entry, child: Entry, pairs: list[Pair]) -> None:
    """The pair a parent and its child form, if any; clears the parent's client obligation if so."""
    p: Span = parent[_SPAN]
    c: Span = child[_SPAN]
    if p.kind == "client" and p.db_system:
        return
    if not (p.kind in _CALLING and c.kind in _CALLED) and p.service == c.service and p.namespace == c.namespace:
        return
    messaging = p.kind == "producer" or c.kind == "consumer"
    pairs.append(
        (p.service, p.namespace, c.service, c.namespace, CONNECTION_MESSAGING if messaging else CONNECTION_DIRECT,
         p.error or c.error, _duration_ms(p), _duration_ms(c))
    )  # fmt: skip
    parent[_CLIENT_OPEN] = False


def _duration_ms(span: Span) -> float:
    return max(span.end_ns - span.start_ns, 0) / 1e6


def _database_node(span: Span) -> str:
    return f"{span.db_system}/{span.db_name}" if span.db_name else span.db_system


def _messaging_node(span: Span) -> str:
    if span.messaging_system and span.messaging_destination:
        return f"{span.messaging_system}/{span.messaging_destination}"
    return span.messaging_system or span.messaging_destination


def _root_pair(span: Span) -> Pair:
    client, connection_type = USER, CONNECTION_VIRTUAL
    if span.kind == "consumer":
        client = _messaging_node(span) or USER
        connection_type = CONNECTION_MESSAGING if span.messaging_system else CONNECTION_VIRTUAL
    duration = _duration_ms(span)
    return (client, VIRTUAL_NAMESPACE, span.service, span.namespace, connection_type, span.error, duration, duration)


def _unpaired_client_pair(span: Span) -> Pair:
    server, connection_type = "", CONNECTION_VIRTUAL
    if span.kind == "producer":
        server = _messaging_node(span)
        if span.messaging_system:
            connection_type = CONNECTION_MESSAGING
    server = server or span.peer_service or UNKNOWN
    duration = _duration_ms(span)
    return (span.service, span.namespace, server, VIRTUAL_NAMESPACE, connection_type, span.error, duration, duration)


def _unpaired_server_pair(span: Span) -> Pair:
    client, connection_type = "", CONNECTION_VIRTUAL
    if span.kind == "consumer":
        client = _messaging_node(span)
        if span.messaging_system:
            connection_type = CONNECTION_MESSAGING
    client = client or UNKNOWN
    duration = _duration_ms(span)
    return (client, VIRTUAL_NAMESPACE, span.service, span.namespace, connection_type, span.error, duration, duration)
