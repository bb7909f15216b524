"""Records straight to msgpack Forward-protocol entries: the events of ``record_event``, built faster.

``record_event`` + ``msgpack.packb`` costs 6-9 µs per Record, most of it building and packing ~30
entries, and packing costs ~30 ns per key or value: what repeats is packed once and cached. Per
peer-pair identity (``Record[:IDENTITY_FIELDS]``) the encoder keeps the packed identity entries and the
event's tag; per request *shape* (``ShapeKey``: protocol, status, flags, method, authority, cluster,
route: fields with few distinct values) their entries; per upstream address and per source host theirs.
Per Record it lists only the rest (times, sizes, path, ids, user agent, source address and port) as keys
and values, after the cached pieces and a map header it picks itself. High-cardinality
fields stay out of the cached keys, so a cache that thrashes cannot make encoding slower than packing
everything. Decoded, an entry's map equals ``record_event(record)`` key for key (the key order differs,
which msgpack maps and Elasticsearch do not care about); tests prove it over the golden access logs and
generated Records.

Everything is encoded by msgspec, which writes msgpack's bytes in ~60% of msgpack's time and copies a
``msgspec.Raw`` (the cached pieces) as it is: a batch's entries for one tag are one flat list of Raw
pieces, keys and values, encoded in one call (the list's own array header is cut off). The flat list
cannot leave out one Record whose value msgpack cannot hold (an integer beyond 64 bits, a lone
surrogate): only encoding finds those, so a batch whose encoding fails is encoded again entry by entry,
and the Records that fail are counted (``unencodable``) and skipped, as before.

The per-Record loop works on a Record split in two: its identity (an ``Identity``, looked up once per
distinct key) and its *row*, ``Record[IDENTITY_FIELDS:]``. The helper process receives Records in that
form (``RowBatch``: each identity key once per batch, then an index and a row per Record), so it never
rebuilds Records; Records handed over in the collector's own process are split on the way in.

File tailing's parsing workers encode in their own processes (``encode_segments``) and the sink receives
an ``EncodedBatch``: per tag the entries' bytes and how many they are. It takes and drops exact numbers
of events as with Records: a segment split in the middle is read for where its entries end.

An entry is ``[EventTime, map]``: the event time is the Record's start time (the proxy's clock) with
nanoseconds, as the ext type 0 that fluent-logger's ``EventTime`` defines.
"""

from __future__ import annotations

import calendar
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import accumulate
from operator import itemgetter
from typing import Any

import msgpack
import msgspec
from fluent.sender import EventTime
from msgspec import Raw

from telemetry.exporters.log_event import DATASET, KNOWN_FIELDS, add_address, looks_like_ip, reporter_namespace
from telemetry.model import IDENTITY_FIELDS, UNKNOWN, Record, request_failed

IdentityKey = tuple[Any, ...]  # Record[:IDENTITY_FIELDS]
Row = tuple[Any, ...]  # Record[IDENTITY_FIELDS:]: what happened on one request
Encoded = dict[str, tuple[bytes | bytearray, int]]  # tag -> (concatenated entries, how many)
# tag -> (what msgspec encodes as the entries, or the entries encoded apart; how many entries)
Items = dict[str, tuple[list[Any], int]]
# The fields of a request with few distinct values: their entries are packed once per combination.
ShapeKey = tuple[str, int, str, str, str, str, str, str]

identity_key: Callable[[Sequence[Any]], IdentityKey] = itemgetter(slice(0, IDENTITY_FIELDS))
ROW_FIELDS = len(Record._fields) - IDENTITY_FIELDS
record_row: Callable[[Sequence[Any]], Row] = itemgetter(slice(IDENTITY_FIELDS, None))

_NS_PER_MS = 1_000_000
_DAY = 86_400
# fixarray(2) + fixext8 (type 0) + seconds + nanoseconds: the head of every entry, before the map header.
_ENTRY_HEAD = struct.Struct(">BBbII")
_EVENT_TIME_TYPE = EventTime(0, 0).code
# The map header of an entry, by its number of entries (fixmap below 16, map16 above; never more than ~40).
_MAP_HEADERS = tuple(Raw(bytes([0x80 | n]) if n < 16 else struct.pack(">BH", 0xDE, n)) for n in range(256))
_CACHE_LIMIT = 50_000  # entries per cache; a full cache is emptied (identities, times and ports recur)
# Only timestamps of this shape are cached in two halves ("YYYY-MM-DDTHH:MM:SS" and the rest).
_EXTENDED = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?$", re.ASCII)

# The entries of a ShapeKey's fields after the protocol, left out when empty ("": the flags are there
# even when empty).
_SHAPE_OPTIONAL = ("http.response.status_code", "meshscope.grpc_status", "", "http.request.method", "url.domain",
                   "meshscope.upstream_cluster", "meshscope.route_name")  # fmt: skip
_NO_RAW = Raw(b"")
_NO_ENTRIES = (_NO_RAW, 0)
_RAW_PIECES = 6  # the Raw pieces that start an entry in ``encode_rows``: head, map header, three cached parts
_DATASET_ENTRY = msgpack.packb("event.dataset") + msgpack.packb(DATASET)


def _strip_map_header(packed: bytes) -> bytes:
    first = packed[0]
    if first & 0xF0 == 0x80:
        return packed[1:]
    return packed[3:] if first == 0xDE else packed[5:]


def entry_head(seconds: int, nanoseconds: int) -> bytes:
    return _ENTRY_HEAD.pack(0x92, 0xD7, _EVENT_TIME_TYPE, seconds & 0xFFFFFFFF, nanoseconds)


class Identity:
    """What every Record of one peer pair shares: its tag and the packed identity entries."""

    __slots__ = ("tag", "packed", "entries")

    def __init__(self, tag: str, packed: Raw, entries: int) -> None:
        self.tag = tag
        self.packed = packed
        self.entries = entries


class RowBatch:
    """Records as the collector hands them to the helper process: each distinct identity key once, then
    per Record the index of its key and its row. Slicing keeps the keys (a sink takes part of a batch)."""

    __slots__ = ("keys", "indexes", "rows")

    def __init__(self, keys: Sequence[IdentityKey], indexes: Sequence[int], rows: Sequence[Row]) -> None:
        self.keys = keys
        self.indexes = indexes
        self.rows = rows

    @classmethod
    def of(cls, records: Sequence[Sequence[Any]]) -> RowBatch:
        index: dict[IdentityKey, int] = {}
        setdefault = index.setdefault
        indexes = [setdefault(record[:IDENTITY_FIELDS], len(index)) for record in records]
        return cls(list(index), indexes, list(map(record_row, records)))

    def pipe_form(self) -> list[Any]:
        """What msgpack packs (``from_pipe`` reads it back): plain lists and tuples of str and int."""
        return [self.keys, self.indexes, self.rows]

    @classmethod
    def from_pipe(cls, values: Any) -> RowBatch:
        """From the unpacked ``pipe_form``; ValueError when it is not one (values are checked by encoding)."""
        if not isinstance(values, (list, tuple)) or len(values) != 3:
            raise ValueError("not a batch of Records")
        keys, indexes, rows = values
        if len(indexes) != len(rows) or any(len(key) != IDENTITY_FIELDS for key in keys):
            raise ValueError("a batch of Records with indexes and rows that do not match")
        if rows and set(map(len, rows)) != {ROW_FIELDS}:
            raise ValueError(f"a batch of Records with rows that do not have {ROW_FIELDS} fields")
        if indexes and not 0 <= min(indexes) <= max(indexes) < len(keys):
            raise ValueError("a batch of Records with an identity index out of range")
        return cls(keys, indexes, rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> RowBatch:
        return RowBatch(self.keys, self.indexes[part], self.rows[part])


Segment = tuple[str, bytes | bytearray, int]  # (tag, concatenated entries, how many)
_ENTRIES = msgspec.msgpack.Decoder(list[Raw])  # an array's items as they are (views, nothing decoded)
# Every entry starts with fixarray(2) and a fixext8 of type 0 (its EventTime), and holds at least a map
# header after the EventTime.
_ENTRY_START = bytes(entry_head(0, 0)[:3])
_MIN_ENTRY = _ENTRY_HEAD.size + 1


def entry_ends(entries: bytes | bytearray, count: int) -> list[int]:
    """Where each of ``count`` concatenated msgpack entries ends; ValueError when ``entries`` are not
    exactly that many whole msgpack objects."""
    if not 0 < count < 1 << 32:
        raise ValueError(f"not a number of encoded events: {count}")
    try:
        items = _ENTRIES.decode(array_header(count) + entries)  # read as an array of ``count`` items
    except (msgspec.DecodeError, RecursionError) as error:
        raise ValueError(f"not {count} encoded events: {error}") from None
    return list(accumulate(map(len, items)))


class EncodedBatch:
    """Events encoded already (by a parsing worker, ``EntryEncoder.encode_segments``): per tag, the entries'
    bytes and how many they are. A sink takes or drops any number of events from the head exactly as it
    does Records: a segment split in the middle is read for where its entries end (``entry_ends``: ~0.3 µs
    an entry, for that segment only; finding the ends while encoding cost a worker twice that for every
    event). The sink joins a segment's entries into its chunk as they are; Fluentd receives the same
    entries, chunked the same way, as had the sink encoded the Records itself."""

    __slots__ = ("segments", "count", "_ends")

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = segments
        self.count = sum(count for _, _, count in segments)
        # Segment index -> its entry ends, once read: a sink takes a batch's head and later its rest.
        self._ends: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, part: slice) -> EncodedBatch:
        start, stop, _ = part.indices(self.count)
        taken: list[Segment] = []
        taken_ends: dict[int, list[int]] = {}
        first = 0  # position of the segment's first event in the batch
        for index, (tag, entries, events) in enumerate(self.segments):
            low, high = max(start - first, 0), min(stop - first, events)
            first += events
            if low >= high:
                continue
            if low == 0 and high == events:
                if index in self._ends:
                    taken_ends[len(taken)] = self._ends[index]
                taken.append((tag, entries, events))
                continue
            ends = self._ends.get(index)
            if ends is None:
                ends = self._ends[index] = entry_ends(entries, events)
            base = ends[low - 1] if low else 0
            # The part keeps its ends (from its own start): a sink that splits a long segment again and
            # again reads it once, not once per split.
            taken_ends[len(taken)] = [end - base for end in ends[low:high]] if base else ends[low:high]
            taken.append((tag, entries[base : ends[high - 1]], high - low))
        part_batch = EncodedBatch(taken)
        part_batch._ends = taken_ends
        return part_batch

    def heads(self) -> list[tuple[str, int]]:
        """What goes through a pipe before the entries (each segment's entries follow as a frame of its own,
        which nothing copies): per segment, its tag and how many entries it holds."""
        return [(tag, events) for tag, _, events in self.segments]

    @classmethod
    def from_pipe(cls, values: Any) -> EncodedBatch:
        """From (tag, entries, count) segments as read from a pipe; ValueError when they are not that.

        Each segment gets a structural check that costs the same for any number of entries (its types, an
        entry head at its start, at least ``count`` entries' minimum size), not a read through its entries
        (~0.3 µs an event, the helper's largest cost for encoded events): the segments come from this
        program's own parsing workers, framed by the pipe. A segment is read through where it is split
        (``entry_ends``); one that fails then raises ValueError there and the sink drops it (``malformed``)."""
        if not isinstance(values, (list, tuple)):
            raise ValueError("not a batch of encoded events")
        segments: list[Segment] = []
        for segment in values:
            if not (isinstance(segment, (list, tuple)) and len(segment) == 3):
                raise ValueError("an encoded segment is not [tag, entries, count]")
            tag, entries, events = segment
            if not (
                isinstance(tag, str) and isinstance(entries, (bytes, bytearray)) and type(events) is int and events > 0
            ):
                raise ValueError("an encoded segment is not [tag, entries, count]")
            if len(entries) < events * _MIN_ENTRY or not entries.startswith(_ENTRY_START):
                raise ValueError(f"an encoded segment is not {events} encoded events")
            segments.append((tag, entries, events))
        return cls(segments)


Batch = Sequence[Record] | RowBatch | EncodedBatch


def parse_event_time(timestamp: str) -> tuple[int, int] | None:
    """RFC 3339 text -> (Unix seconds, nanoseconds); None when it is not a timestamp an EventTime can hold
    (its seconds are an unsigned 32-bit number: 1970 to 2106)."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    offset = moment.utcoffset()
    seconds = calendar.timegm(moment.timetuple()) - (int(offset.total_seconds()) if offset else 0)
    fraction = timestamp[19:].partition(".")[2]
    digits = ""
    for char in fraction:
        if char not in "0123456789":
            break
        digits += char
    nanoseconds = int(digits[:9].ljust(9, "0")) if digits else 0
    if not 0 <= seconds < 1 << 32:
        return None
    return seconds, nanoseconds


class EntryEncoder:
    """Encodes batches of Records into per-tag concatenations of msgpack ``[time, record]`` entries."""

    def __init__(self, tag_template: str, include_original: bool = False) -> None:
        self._tag_template = tag_template
        self._include_original = include_original
        self._identities: dict[IdentityKey, Identity] = {}
        self._tags: dict[str, str] = {}  # one object per tag: the loop tells tags apart with ``is``
        self._heads: dict[str, Raw] = {}  # start time -> entry head (array header and EventTime)
        self._seconds: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> Unix seconds (as UTC)
        self._fractions: dict[str, tuple[int, int]] = {}  # ".123Z" / "+02:00" tail -> (ns, offset s)
        self._shapes: dict[ShapeKey, tuple[Raw, int]] = {}  # -> packed entries, how many
        self._destinations: dict[str, tuple[Raw, int]] = {}  # upstream address -> packed entries, how many
        self._hosts: dict[str, tuple[Raw, int]] = {}  # source host -> its packed source.ip entry (or none)
        encoder = msgspec.msgpack.Encoder()  # the same bytes as msgpack's packb, in ~60% of the time
        self._encode: Callable[[Any], bytes] = encoder.encode
        self._encode_into: Callable[[Any, bytearray, int], None] = encoder.encode_into
        self.unencodable = 0  # Records skipped because a field could not be encoded (the sink counts them)

    # -- what is cached --------------------------------------------------------------------------------

    def identity(self, key: IdentityKey) -> Identity:
        found = self._identities.get(key)
        if found is None:
            if len(self._identities) >= _CACHE_LIMIT:
                self._identities.clear()
            found = self._identities[key] = self._build_identity(Record(*key))
        return found

    def identities(self, keys: Sequence[IdentityKey]) -> list[Identity]:
        found: list[Identity | None] = list(map(self._identities.get, keys))
        if all(found):
            return found  # type: ignore[return-value]
        return [identity or self.identity(key) for identity, key in zip(found, keys, strict=True)]

    def _build_identity(self, record: Record) -> Identity:
        entries: dict[str, Any] = {
            "meshscope.reporter": record.reporter,
            "meshscope.connection_security_policy": record.connection_security_policy,
        }
        for index, key in KNOWN_FIELDS:  # all of them are identity fields (the cache key)
            value = record[index]
            if value and value != UNKNOWN:
                entries[key] = value
        tag = self._tag_template.replace("{namespace}", reporter_namespace(record))
        if len(self._tags) >= _CACHE_LIMIT:
            self._tags.clear()
        tag = self._tags.setdefault(tag, tag)
        packed = _DATASET_ENTRY + _strip_map_header(msgpack.packb(entries))
        return Identity(tag, Raw(packed), len(entries) + 1)

    def event_time(self, timestamp: str) -> tuple[int, int] | None:
        seconds = self._seconds.get(timestamp[:19])
        tail = self._fractions.get(timestamp[19:])
        if seconds is None or tail is None:
            parsed = parse_event_time(timestamp)
            if parsed is None or not _EXTENDED.match(timestamp):
                return parsed
            # Split what was parsed into the two cached halves: whole seconds and (fraction, zone).
            naive = parse_event_time(timestamp[:19])
            # Cached halves combine with any zone (within a day): only seconds a day inside the range.
            if naive is None or not _DAY <= naive[0] < (1 << 32) - _DAY:
                return parsed
            offset = naive[0] - parsed[0]
            if len(self._seconds) >= _CACHE_LIMIT:
                self._seconds.clear()
            if len(self._fractions) >= _CACHE_LIMIT:
                self._fractions.clear()
            self._seconds[timestamp[:19]] = naive[0]
            self._fractions[timestamp[19:]] = (parsed[1], offset)
            return parsed
        return seconds - tail[1], tail[0]

    def _head(self, start_time: str, now: Raw) -> Raw:
        """The entry head of a start time not in ``_heads`` yet (``now`` when it is no time)."""
        when = self.event_time(start_time)
        if when is None:
            return now  # not cached: ``now`` differs from one batch to the next
        if len(self._heads) >= _CACHE_LIMIT:
            self._heads.clear()
        head = self._heads[start_time] = Raw(entry_head(*when))
        return head

    def _shape(self, key: ShapeKey) -> tuple[Raw, int]:
        """The packed entries of a request's low-cardinality fields (a ``ShapeKey``) and how many."""
        protocol, response_code, grpc_status, response_flags = key[:4]
        entries: dict[str, Any] = {
            "event.outcome": "failure" if request_failed(protocol, response_code, grpc_status) else "success",
            "network.protocol": protocol,
            "meshscope.response_flags": response_flags,
        }
        for value, name in zip(key[1:], _SHAPE_OPTIONAL, strict=True):
            if value and name:
                entries[name] = value
        if len(self._shapes) >= _CACHE_LIMIT:
            self._shapes.clear()
        found = self._shapes[key] = (Raw(_strip_map_header(msgpack.packb(entries))), len(entries))
        return found

    def _destination(self, address: str) -> tuple[Raw, int]:
        entries: dict[str, Any] = {}
        add_address(entries, "destination", address)
        if len(self._destinations) >= _CACHE_LIMIT:
            self._destinations.clear()
        found = self._destinations[address] = (Raw(_strip_map_header(msgpack.packb(entries))), len(entries))
        return found

    def _source_ip(self, host: str) -> tuple[Raw, int]:
        ip = looks_like_ip(host)
        entry = (Raw(_strip_map_header(msgpack.packb({"source.ip": host}))), 1) if ip else _NO_ENTRIES
        if len(self._hosts) >= _CACHE_LIMIT:
            self._hosts.clear()
        self._hosts[host] = entry
        return entry

    # -- encoding --------------------------------------------------------------------------------------

    def encode(self, records: Sequence[Record], fallback_timestamp: str, now: tuple[int, int]) -> Encoded:
        """tag -> (concatenated entries, how many) for ``records`` in order.

        ``fallback_timestamp``/``now`` stand for a Record without a start time (``@timestamp`` and event
        time), as ``record_event``'s fallback does.
        """
        return self.encode_all([records], fallback_timestamp, now)

    def encode_all(self, batches: Sequence[Batch], fallback_timestamp: str, now: tuple[int, int]) -> Encoded:
        """``encode`` for batches in a row (Records, RowBatches, EncodedBatches), as one output."""
        items: Items = {}
        unencodable = self.unencodable
        for batch in batches:
            self._add(batch, fallback_timestamp, now, items, False)
        try:
            return {tag: (_encoded(self._encode_into, values), count) for tag, (values, count) in items.items()}
        except Exception:  # noqa: BLE001 - whatever a value makes msgspec raise, that Record alone is skipped
            # A value msgpack cannot hold (only encoding finds it): again entry by entry, skipping those.
            self.unencodable = unencodable
        items = {}
        for batch in batches:
            self._add(batch, fallback_timestamp, now, items, True)
        return {tag: (b"".join(values), count) for tag, (values, count) in items.items()}

    def encode_segments(
        self, records: Sequence[Record], fallback_timestamp: str, now: tuple[int, int]
    ) -> list[Segment]:
        """``encode`` as an ``EncodedBatch``'s segments: each tag's entries and how many."""
        return [
            (tag, entries, count)
            for tag, (entries, count) in self.encode_all([records], fallback_timestamp, now).items()
        ]

    def _add(self, batch: Batch, fallback_timestamp: str, now: tuple[int, int], out: Items, apart: bool) -> None:
        if isinstance(batch, EncodedBatch):
            for tag, entries, events in batch.segments:
                values, count = out.pop(tag) if tag in out else ([], 0)
                values.append(Raw(entries) if not apart else entries)
                out[tag] = (values, count + events)
        elif isinstance(batch, RowBatch):
            identities = self.identities(batch.keys)
            self.encode_rows(map(identities.__getitem__, batch.indexes), batch.rows, fallback_timestamp, now, out,
                             apart)  # fmt: skip
        else:
            identities = self.identities(list(map(identity_key, batch)))
            self.encode_rows(identities, map(record_row, batch), fallback_timestamp, now, out, apart)

    def encode_rows(
        self,
        identities: Iterable[Identity],
        rows: Iterable[Row],
        fallback_timestamp: str,
        now: tuple[int, int],
        out: Items,
        apart: bool,
    ) -> None:
        """The loop of ``encode``: one Identity and one row per Record, added to ``out`` per tag: the values
        msgspec encodes as the tag's entries (``apart`` False), or each entry encoded apart (``apart``:
        a value that cannot be encoded skips only its Record, counted in ``unencodable``)."""
        encode = self._encode
        heads = self._heads
        shapes = self._shapes
        destinations = self._destinations
        now_head = Raw(entry_head(*now))
        map_headers = _MAP_HEADERS
        include_original = self._include_original
        hosts = self._hosts
        last_tag: str | None = None
        values: list[Any] = []
        count = 0
        for identity, (
            protocol, response_code, grpc_status, response_flags, duration_ms, bytes_received, bytes_sent,
            method, authority, path, source_address, destination_address, upstream_cluster, trace_id, span_id,
            request_id, start_time, user_agent, route_name, original,
        ) in zip(identities, rows, strict=True):  # fmt: skip
            try:
                key = (protocol, response_code, grpc_status, response_flags, method, authority, upstream_cluster,
                       route_name)  # fmt: skip
                shape = shapes.get(key) or self._shape(key)
                head = heads.get(start_time) if start_time else now_head
                if head is None:
                    head = self._head(start_time, now_head)
                destination = (
                    destinations.get(destination_address) or self._destination(destination_address)
                    if destination_address
                    else _NO_ENTRIES
                )
                # One entry as what msgspec encodes: its head, its map header (set below), the cached entries
                # (Raw: copied as they are), then the map's other keys and values in turn. Encoded as a list,
                # whose array header is left out: the same bytes as packing ``[time, dict]``.
                entry: list[Any] = [head, None, identity.packed, shape[0], destination[0], _NO_RAW,
                                    "@timestamp", start_time or fallback_timestamp, "event.duration",
                                    duration_ms * _NS_PER_MS, "source.bytes", bytes_received, "destination.bytes",
                                    bytes_sent]  # fmt: skip
                if path:
                    entry += ("url.path", path)
                if request_id:
                    entry += ("http.request.id", request_id)
                if trace_id:
                    entry += ("trace.id", trace_id)
                if span_id:
                    entry += ("span.id", span_id)
                if user_agent:
                    entry += ("user_agent.original", user_agent)
                source_ip = 0
                if source_address:
                    # The common ip:port case of add_address inline, anything else through it. A port of
                    # ASCII digits has no ":", so the address has exactly one; "[" starts a bracketed host.
                    # Source ports vary too much to cache whole addresses as destinations are; hosts recur
                    # (their packed source.ip entry is cached). Nor are ports cached: a cache of ephemeral
                    # ports is large and rarely hit, and in a parsing worker it cost more than int().
                    host, _, port = source_address.partition(":")
                    if port.isdigit() and port.isascii() and host[:1] != "[":
                        entry += ("source.address", source_address, "source.port", int(port))
                        entry[5], source_ip = hosts.get(host) or self._source_ip(host)
                    else:
                        address: dict[str, Any] = {}
                        add_address(address, "source", source_address)
                        for pair in address.items():
                            entry += pair
                if include_original and original:
                    entry += ("event.original", original)
                entry[1] = map_headers[identity.entries + shape[1] + destination[1] + source_ip
                                       + (len(entry) - _RAW_PIECES >> 1)]  # fmt: skip
                if apart:
                    packed = encode(entry)
                    entry = packed[len(array_header(len(entry))) :]  # type: ignore[assignment]
            except Exception:
                # A value no event can hold (record_event would fail on it the same way): this Record
                # is counted and skipped, the batch goes on.
                self.unencodable += 1
                continue
            tag = identity.tag
            if tag is not last_tag:
                if count:
                    out[last_tag] = (values, count)  # type: ignore[index]
                values, count = out.pop(tag, None) or ([], 0)
                last_tag = tag
            if apart:
                values.append(entry)
            else:
                values += entry
            count += 1
        if count:
            out[last_tag] = (values, count)  # type: ignore[index]


def _encoded(encode_into: Callable[[Any, bytearray, int], None], values: list[Any]) -> bytearray:
    """The values encoded as a list, without the list's header: the tag's entries, one after the other."""
    buffer = bytearray()
    encode_into(values, buffer, 0)
    del buffer[: len(array_header(len(values)))]  # at the front: no copy
    return buffer


def array_header(count: int) -> bytes:
    """The msgpack array header of ``count`` items: what the encoder cuts off a list of an entry's (or a
    tag's entries') pieces, and what reads a segment back as an array of its entries."""
    if count < 16:
        return bytes([0x90 | count])
    return struct.pack(">BH", 0xDC, count) if count < 0x10000 else struct.pack(">BI", 0xDD, count)
