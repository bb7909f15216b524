"""A warm request of proxy spans made Records in columns: ``RecordAssembler.assemble_columns`` per proxy.

Once every proxy that reports in a request is known (the normaliser made its assembler when its first
span came), nothing the normaliser does while reading the request changes the peer table: a proxy span
has no local address to learn, only a new proxy's node id teaches one. Each Record then depends only on
its span, its proxy and the peer table, so the spans of each proxy can be assembled together, column by
column, and the Records put back in the request's order: the same Records, in the same order, as
assembling them one by one. Anything else (a new proxy, an application span, a span ending before it
starts, a counter that is not a number) answers None, and the caller reads the request span by span,
which says what is wrong where.

Every step is one pass over a column in C (``map``, ``zip``, an ``itemgetter`` of positions to group
the spans by proxy and to put their Records back); Python runs per proxy, not per span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import add, eq, itemgetter
from typing import Any, NamedTuple, Protocol

from telemetry.envoy.istio import RecordAssembler
from telemetry.model import Record, Workload

# The tags a proxy span's Record is made from, and the two that make a span a proxy's.
RECORD_KEYS: tuple[str, ...] = (
    "component",
    "node_id",
    "upstream_cluster.name",
    "upstream_cluster",
    "http.status_code",
    "http.method",
    "http.url",
    "http.protocol",
    "response_flags",
    "peer.address",
    "upstream_address",
    "guid:x-request-id",
    "request_size",
    "response_size",
    "user_agent",
    "grpc.status_code",
    "grpc.path",
    "grpc.authority",
)
(
    _COMPONENT, _NODE_ID, _CLUSTER_NAME, _CLUSTER, _HTTP_STATUS, _METHOD, _URL, _PROTOCOL, _FLAGS, _PEER_ADDRESS,
    _UPSTREAM_ADDRESS, _REQUEST_ID, _REQUEST_SIZE, _RESPONSE_SIZE, _USER_AGENT, _GRPC_STATUS, _GRPC_PATH,
    _GRPC_AUTHORITY,
) = range(len(RECORD_KEYS))  # fmt: skip

_PROXY = "proxy"
_DASH_IS_ABSENT = {"-": ""}  # .get(value, value): Envoy tags an absent header or address as "-"
_MAX_GETTERS = 1024
_MIN_SPANS_PER_PROXY = 8  # fewer, on average, and a request is assembled span by span
Column = Sequence[Any]


class Reporter(Protocol):
    """What the normaliser keeps per reporting proxy (its ``_Reporter``)."""

    @property
    def workload(self) -> Workload: ...

    @property
    def assembler(self) -> RecordAssembler: ...


class TagColumns:
    """The RECORD_KEYS columns of many spans' tags (dicts of strings), "" where a span has no such tag:
    ``pick`` them from columns by key when every span has the same ones, else ``read`` each span.

    ``read`` keeps one getter per order of keys (at most _MAX_GETTERS) across requests. Not thread-safe
    (the normaliser's lock covers it).
    """

    def __init__(self) -> None:
        self._getters: dict[tuple[str, ...], Callable[[Any], tuple[str, ...]]] = {}

    def read(self, tags: Sequence[Mapping[str, str]]) -> list[Column]:
        """The columns of tags whose keys vary from span to span: one getter per order of keys."""
        getters = self._getters
        rows = []
        for span_tags in tags:
            keys = tuple(span_tags)
            getter = getters.get(keys) or self._new_getter(keys)
            rows.append(getter([*span_tags.values(), ""]))
        return list(zip(*rows, strict=True))

    @staticmethod
    def pick(keys: Sequence[str], values: Sequence[Column], order: Order | None) -> list[Column]:
        """The RECORD_KEYS columns of spans that all carry the tags ``keys``, whose ``values`` are given
        by key, a column each; in ``order`` (see ``plan``)."""
        found = dict(zip(keys, values, strict=True))
        absent = [""] * len(values[0])
        return [reorder(found[key], order) if key in found else absent for key in RECORD_KEYS]

    def _new_getter(self, keys: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
        position = {key: index for index, key in enumerate(keys)}
        absent = len(keys)  # the "" appended to the values
        getter = itemgetter(*(position.get(key, absent) for key in RECORD_KEYS))
        if len(self._getters) >= _MAX_GETTERS:
            self._getters.clear()
        self._getters[keys] = getter
        return getter


Order = Callable[[Sequence[Any]], Sequence[Any]]  # an itemgetter of positions: one pass in C


class Plan(NamedTuple):
    """Which known proxy reports each span: ``reporters`` in order of first appearance, each with its
    count of spans (``sizes``); ``order`` picks a column's items grouped by reporter and ``restore``
    puts them back (both None when there is only one reporter)."""

    reporters: list[Reporter]
    sizes: list[int]
    order: Order | None
    restore: Order | None


def plan(node_ids: Column, services: Column, reporters: Mapping[tuple[str, str], Reporter]) -> Plan | None:
    """The reporters of spans with these node ids and resource services; None if one is not known yet."""
    count = len(node_ids)
    service_of = dict(zip(node_ids, services, strict=True))  # in order of first appearance
    keys: Column
    if all(map(eq, map(service_of.__getitem__, node_ids), services)):
        # Each proxy under one service, as usual: its spans are told apart by node id alone (no tuples).
        keys, names, pairs = node_ids, list(service_of), list(service_of.items())
    else:
        keys = list(zip(node_ids, services, strict=True))
        names = pairs = list(dict.fromkeys(keys))
    found = list(map(reporters.get, pairs))
    if None in found:
        return None
    if len(found) == 1:
        return Plan(found, [count], None, None)  # type: ignore[arg-type]
    if count < _MIN_SPANS_PER_PROXY * len(found):
        return None  # each proxy's assemble_columns call costs ~16 µs: span by span is cheaper here
    number = {name: index for index, name in enumerate(names)}
    numbers = list(map(number.__getitem__, keys))
    sizes = Counter(numbers)
    # A stable sort: each reporter's spans keep their order.
    positions = sorted(range(count), key=numbers.__getitem__)
    return Plan(
        found,  # type: ignore[arg-type]
        [sizes[index] for index in range(len(found))],
        itemgetter(*positions),
        itemgetter(*sorted(range(count), key=positions.__getitem__)),
    )


def reorder(items: Sequence[Any], order: Order | None) -> Sequence[Any]:
    """``items`` in ``plan``'s order (the spans grouped by reporter)."""
    return items if order is None else order(items)


def proxy_records(
    reporters: Plan,
    tag_columns: list[Column],
    trace_ids: Column,
    span_ids: Column,
    durations_ms: Column,
    start_texts: Column,
) -> list[Record] | None:
    """The Records of spans that are all proxy spans, in the request's order; None otherwise.

    The columns are in ``reporters.order``; ``tag_columns`` as ``TagColumns.read`` makes them; ids in
    lower-case hex (checked already); ``durations_ms`` whole milliseconds, and ``start_texts`` as
    ``normalize.start_time_text`` gives them.
    """
    count = len(trace_ids)
    components, node_ids = tag_columns[_COMPONENT], tag_columns[_NODE_ID]
    if not (all(node_ids) or components.count(_PROXY) == count or all(map(_is_proxy, components, node_ids))):
        return None
    if min(durations_ms) < 0:  # a span that ends before it starts: rejected span by span
        return None
    fields = _fields_columns(tag_columns, trace_ids, span_ids, durations_ms, start_texts)
    if reporters.order is None:
        reporter = reporters.reporters[0]
        return reporter.assembler.assemble_columns(fields, reporter.workload)
    records: list[Record] = []
    start = 0
    for reporter, size in zip(reporters.reporters, reporters.sizes, strict=True):
        end = start + size
        made = reporter.assembler.assemble_columns([column[start:end] for column in fields], reporter.workload)
        if made is None:
            return None
        records += made
        start = end
    return list(reporters.restore(records))  # type: ignore[misc]


def _is_proxy(component: str, node_id: str) -> bool:
    return component == _PROXY or bool(node_id)


def _fields_columns(
    tags: list[Column], trace_ids: Column, span_ids: Column, durations_ms: Column, start_texts: Column
) -> list[Column]:
    """EnvoyFields as columns, each field as ``normalize._envoy_fields`` sets it."""
    count = len(trace_ids)
    empty = [""] * count
    urls = tags[_URL]
    if all(urls):
        authorities, paths = split_urls(urls)
    else:
        authorities, paths = [], []
        for url, authority, path in zip(urls, tags[_GRPC_AUTHORITY], tags[_GRPC_PATH], strict=True):
            if url:
                authority, path = split_url(url)
            authorities.append(authority)
            paths.append(path)
    cluster_names, clusters = tags[_CLUSTER_NAME], tags[_CLUSTER]
    if any(cluster_names):
        clusters = [name or cluster for name, cluster in zip(cluster_names, clusters, strict=True)]
    # In EnvoyFields' order (a test checks it against _envoy_fields).
    return [
        start_texts, tags[_METHOD], paths, _dash_absent(tags[_PROTOCOL]), tags[_HTTP_STATUS], tags[_FLAGS],
        empty, empty, empty, tags[_REQUEST_SIZE], tags[_RESPONSE_SIZE], durations_ms, empty, empty,
        _dash_absent(tags[_USER_AGENT]), _dash_absent(tags[_REQUEST_ID]), authorities,
        _dash_absent(tags[_UPSTREAM_ADDRESS]), _dash_absent(clusters), empty, empty,
        _dash_absent(tags[_PEER_ADDRESS]), empty, empty, tags[_GRPC_STATUS], trace_ids, span_ids, empty, empty, empty,
    ]  # fmt: skip


def _dash_absent(column: Column) -> Column:
    return list(map(_DASH_IS_ABSENT.get, column, column)) if "-" in column else column


def split_urls(urls: Column) -> tuple[list[str], list[str]]:
    """``split_url`` of each URL, in C when every one has a scheme."""
    schemes = list(map(str.partition, urls, repeat("://")))
    if not all(map(itemgetter(1), schemes)):
        pairs = list(map(split_url, urls))
        return list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs))
    rests = list(map(str.partition, map(itemgetter(2), schemes), repeat("/")))
    return list(map(itemgetter(0), rests)), list(map(add, map(itemgetter(1), rests), map(itemgetter(2), rests)))


def split_url(url: str) -> tuple[str, str]:
    """(authority, path) of Envoy's ``http.url`` tag: ``http://reviews:9080/r/0`` -> ``reviews:9080``, ``/r/0``."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return "", url
    host_start = scheme_end + 3
    slash = url.find("/", host_start)
    if slash < 0:
        return url[host_start:], ""
    return url[host_start:slash], url[slash:]
