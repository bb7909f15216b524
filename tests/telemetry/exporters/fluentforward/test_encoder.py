"""The fast entry encoder decodes to exactly the events of record_event, with the Record's time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.envoy.parser import ParseError, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.fluentforward import encoder as encoder_module
from telemetry.exporters.fluentforward.encoder import (
    EncodedBatch,
    EntryEncoder,
    RowBatch,
    entry_ends,
    parse_event_time,
)
from telemetry.exporters.log_event import record_event, reporter_namespace
from telemetry.model import IDENTITY_FIELDS, Record, Workload

ACCESSLOGS = Path(__file__).parents[3] / "testdata" / "accesslogs"
FALLBACK = "2030-01-02T03:04:05.678Z"
NOW = (1_900_000_000, 123_456_789)
REPORTER = Workload("productpage-v1", "default", "productpage", "v1")


def decode(out: dict[str, tuple[bytes, int]]) -> list[tuple[str, object, dict]]:  # type: ignore[type-arg]
    decoded = []
    for tag, (entries, count) in out.items():
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(bytes(entries))
        items = list(unpacker)
        assert len(items) == count
        decoded.extend((tag, when, event) for when, event in items)
    return decoded


def golden_records(include_original: bool) -> list[Record]:
    records = []
    for path in sorted(ACCESSLOGS.glob("*.log")):
        fmt = (ACCESSLOGS / "custom.format").read_text().rstrip("\n") if path.name == "custom.log" else "auto"
        parser = make_parser(fmt, REPORTER, PeerTable(), keep_original=include_original)
        for line in path.read_text().splitlines():
            try:
                records.append(parser.parse(line))
            except ParseError:
                continue
    return records


def expected_time(record: Record) -> tuple[int, int]:
    if not record.start_time:
        return NOW
    parsed = parse_event_time(record.start_time)
    return parsed if parsed is not None else NOW


def check(records: list[Record], include_original: bool, tag: str = "meshscope.access.{namespace}") -> None:
    encoder = EntryEncoder(tag, include_original)
    encoded = encoder.encode(records, FALLBACK, NOW)
    decoded = decode(encoded)
    assert encoder.unencodable == 0
    # The helper process's way (through the pipe as a RowBatch, by a fresh encoder) gives the same bytes.
    piped = RowBatch.from_pipe(msgpack.unpackb(msgpack.packb(RowBatch.of(records).pipe_form()), use_list=False))
    assert EntryEncoder(tag, include_original).encode_all([piped], FALLBACK, NOW) == encoded
    assert len(decoded) == len(records)
    by_tag: dict[str, list[tuple[object, dict]]] = {}  # type: ignore[type-arg]
    for got_tag, when, event in decoded:
        by_tag.setdefault(got_tag, []).append((when, event))
    # Within a tag the order is the Records' order.
    for record in records:
        want_tag = tag.replace("{namespace}", reporter_namespace(record))
        when, event = by_tag[want_tag].pop(0)
        assert event == record_event(record, FALLBACK, include_original)
        assert isinstance(when, msgpack.ExtType) and when.code == 0
        seconds, nanoseconds = int.from_bytes(when.data[:4], "big"), int.from_bytes(when.data[4:], "big")
        assert (seconds, nanoseconds) == expected_time(record)


def test_every_golden_access_log_record_encodes_to_its_record_event() -> None:
    records = golden_records(include_original=True)
    assert len(records) >= 25
    check(records, include_original=True)
    check(records, include_original=False)
    # Twice through one encoder: the cached identities and times give the same bytes.
    encoder = EntryEncoder("meshscope.access.{namespace}")
    assert encoder.encode(records, FALLBACK, NOW) == encoder.encode(records, FALLBACK, NOW)


def test_the_event_time_is_the_proxy_start_time_to_the_nanosecond() -> None:
    base = Record(reporter="source", source_namespace="shop", protocol="http", response_code=200)
    cases = {
        "2024-05-04T17:22:59.001Z": (1714843379, 1_000_000),
        "2024-05-04T19:22:59.123456789+02:00": (1714843379, 123_456_789),
        "2024-05-04T17:22:59Z": (1714843379, 0),
        "2024-05-04T17:22:59.5-01:30": (1714848779, 500_000_000),
        "not a time": NOW,
        "": NOW,
        # Outside what an EventTime's unsigned 32-bit seconds hold: the fallback, not a wrapped time.
        "00010101": NOW,
        "1970-01-01T00:30:00+01:00": NOW,
        "2200-01-01T00:00:00Z": NOW,
    }
    encoder = EntryEncoder("t.{namespace}")
    for _ in range(2):  # the second round reads the caches
        for text, want in cases.items():
            ((tag, when, event),) = decode(encoder.encode([base._replace(start_time=text)], FALLBACK, NOW))
            assert tag == "t.shop"
            assert (int.from_bytes(when.data[:4], "big"), int.from_bytes(when.data[4:], "big")) == want, text
            assert event["@timestamp"] == (text or FALLBACK)


def test_a_record_no_event_can_hold_is_counted_and_the_batch_goes_on() -> None:
    good = Record(reporter="source", source_namespace="a", response_code=200)
    bad = good._replace(duration_ms=1 << 62)  # event.duration in ns overflows a msgpack integer
    encoder = EntryEncoder("t.{namespace}")
    decoded = decode(encoder.encode([good, bad, good], FALLBACK, NOW))
    assert len(decoded) == 2 and encoder.unencodable == 1


text = st.text(max_size=40)
maybe_unknown = st.one_of(st.just("unknown"), st.just(""), st.text(max_size=20))
addresses = st.one_of(
    st.just(""),
    st.builds(lambda a, b, p: f"10.{a}.0.{b}:{p}", st.integers(0, 255), st.integers(0, 255), st.integers(0, 65535)),
    st.builds(lambda p: f"[::1]:{p}", st.integers(0, 65535)),
    st.just("unix:/var/run/x.sock"),
    st.just("envoy://internal"),
    st.text(alphabet="0123456789abcdef.:[]", max_size=30),
)
times = st.one_of(
    st.just(""),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda moment: moment.isoformat().replace("+00:00", "Z")
    ),
    st.text(alphabet="0123456789-T:.Z+", max_size=30),
)
records = st.builds(
    Record,
    reporter=st.sampled_from(["source", "destination", "unknown"]),
    source_workload=maybe_unknown,
    source_namespace=maybe_unknown,
    source_principal=maybe_unknown,
    source_app=maybe_unknown,
    source_version=maybe_unknown,
    destination_workload=maybe_unknown,
    destination_namespace=maybe_unknown,
    destination_principal=maybe_unknown,
    destination_app=maybe_unknown,
    destination_version=maybe_unknown,
    destination_service=maybe_unknown,
    destination_service_name=maybe_unknown,
    destination_service_namespace=maybe_unknown,
    connection_security_policy=st.sampled_from(["mutual_tls", "none", "unknown"]),
    protocol=st.sampled_from(["http", "grpc", "tcp"]),
    response_code=st.integers(0, 599),
    grpc_status=st.sampled_from(["", "0", "2", "14"]),
    response_flags=st.sampled_from(["-", "UF,URX", "NR"]),
    duration_ms=st.integers(0, 10**9),
    bytes_received=st.integers(0, 2**40),
    bytes_sent=st.integers(0, 2**40),
    method=st.sampled_from(["", "GET", "POST"]),
    authority=text,
    path=text,
    source_address=addresses,
    destination_address=addresses,
    upstream_cluster=text,
    trace_id=st.sampled_from(["", "4bf92f3577b34da6a3ce929d0e0e4736"]),
    span_id=st.sampled_from(["", "00f067aa0ba902b7"]),
    request_id=text,
    start_time=times,
    user_agent=text,
    route_name=text,
    original=text,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, min_size=1, max_size=20), st.booleans())
def test_generated_records_encode_to_their_record_event(batch: list[Record], include_original: bool) -> None:
    check(batch, include_original)


def test_the_cached_identity_half_holds_only_fields_of_the_identity_key() -> None:
    from telemetry.exporters.log_event import KNOWN_FIELDS

    # The encoder caches these entries per Record[:IDENTITY_FIELDS]: a field beyond it would go stale.
    assert all(index < IDENTITY_FIELDS for index, _ in KNOWN_FIELDS)


@pytest.mark.parametrize(
    ("address", "ip", "port"),
    [
        ("10.1.2.3:8080", "10.1.2.3", 8080),
        ("[fd00::1]:9080", "fd00::1", 9080),
        ("3scale-gateway:443", None, 443),  # a hostname that starts with a digit
        ("unix:/var/run/a:b", None, None),  # a socket path with colons
        ("1.2.3.4:²", "1.2.3.4", None),  # a port of non-ASCII digits
    ],
)
def test_only_an_ip_goes_into_the_ip_fields_in_both_encoders(address: str, ip: str | None, port: int | None) -> None:
    # Elasticsearch refuses a whole document whose ip field does not parse as an ip.
    record = Record(source_address=address, destination_address=address, start_time="2024-05-04T17:22:59.046Z")
    event = record_event(record, FALLBACK)
    for side in ("source", "destination"):
        assert event[f"{side}.address"] == address
        assert event.get(f"{side}.ip") == ip
        assert event.get(f"{side}.port") == port
    check([record], include_original=False)


def test_a_row_batch_crosses_the_pipe_and_encodes_to_the_same_bytes_as_its_records() -> None:
    records = golden_records(include_original=True) * 3
    batch = RowBatch.of(records)
    assert len(batch) == len(records)
    # Each peer-pair identity crosses once per batch; a Record carries an index and its row.
    assert len(batch.keys) == len({record[:IDENTITY_FIELDS] for record in records}) < len(records)
    received = RowBatch.from_pipe(msgpack.unpackb(msgpack.packb(batch.pipe_form()), use_list=False))
    encoder = EntryEncoder("meshscope.access.{namespace}", include_original=True)
    want = encoder.encode(records, FALLBACK, NOW)
    assert encoder.encode_all([received], FALLBACK, NOW) == want
    # A slice keeps the keys; two slices encoded into one output are the whole batch again.
    middle = len(records) // 2
    assert encoder.encode_all([received[:middle], received[middle:]], FALLBACK, NOW) == want
    check(records, include_original=True)


@pytest.mark.parametrize(
    "values",
    [
        "not a batch",
        [[], [0], []],  # an index without a row
        [[("a",) * 15], [1], [("x",) * 20]],  # an index beyond the keys
        [[("a",) * 14], [0], [("x",) * 20]],  # a key of the wrong size
        [[("a",) * 15], [0], [("x",) * 19]],  # a row of the wrong size
    ],
)
def test_a_pipe_message_that_is_not_a_row_batch_is_refused(values: object) -> None:
    with pytest.raises(ValueError):
        RowBatch.from_pipe(values)


def test_the_caches_stay_within_their_bound_and_the_events_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "_CACHE_LIMIT", 8)
    records = [
        Record(reporter="source", source_namespace=f"ns{n % 11}", source_workload=f"w{n % 13}", method=f"M{n}",
               response_code=200 + n % 7, source_address=f"10.0.0.{n % 200}:{1000 + n}",
               destination_address=f"10.1.0.{n % 50}:80", start_time=f"2024-05-04T17:22:{n % 60:02d}.{n:03d}Z")
        for n in range(300)
    ]  # fmt: skip
    encoder = EntryEncoder("t.{namespace}")
    for _ in range(2):
        decoded = decode(encoder.encode(records, FALLBACK, NOW))
        assert sorted(repr(sorted(event.items())) for _, _, event in decoded) == sorted(
            repr(sorted(record_event(record, FALLBACK).items())) for record in records
        )
    caches = (encoder._identities, encoder._tags, encoder._shapes, encoder._destinations, encoder._heads,
              encoder._hosts)  # fmt: skip
    for cache in caches:
        assert 0 < len(cache) <= 8


def segments_decoded(batch: EncodedBatch) -> list[tuple[str, object, dict]]:  # type: ignore[type-arg]
    return decode({f"{index}:{tag}": (entries, count) for index, (tag, entries, count) in enumerate(batch.segments)})


def test_encoded_segments_hold_the_same_entries_as_encoding_the_records_and_slice_at_any_event() -> None:
    records = golden_records(include_original=True)
    records += [record._replace(source_namespace="other", reporter="source") for record in records[:40]]
    tag = "meshscope.access.{namespace}"
    whole = EncodedBatch(EntryEncoder(tag, True).encode_segments(records, FALLBACK, NOW))
    expected = EntryEncoder(tag, True).encode(records, FALLBACK, NOW)
    assert len(whole) == len(records) and len(whole.segments) == len(expected) >= 2
    assert {tag: (entries, count) for tag, entries, count in whole.segments} == expected
    events = [(tag.partition(":")[2], when, event) for tag, when, event in segments_decoded(whole)]
    for start, stop in ((0, len(records)), (0, 1), (3, 17), (len(records) - 45, len(records) - 5), (5, 5)):
        part = whole[start:stop]
        assert len(part) == stop - start
        decoded = [(tag.partition(":")[2], when, event) for tag, when, event in segments_decoded(part)]
        assert decoded == events[start:stop]
        heads = msgpack.unpackb(msgpack.packb(part.heads()), use_list=False)
        frames = [entries for _, entries, _ in part.segments]
        piped = EncodedBatch.from_pipe(
            [(tag, bytes(entries), count) for (tag, count), entries in zip(heads, frames, strict=True)]
        )
        assert piped.segments == part.segments


def test_an_encoded_batch_from_the_pipe_is_refused_when_a_segment_is_visibly_not_its_count_of_entries() -> None:
    (segment,) = EntryEncoder("t").encode_segments(golden_records(False)[:3], FALLBACK, NOW)
    tag, entries, count = segment
    entries = bytes(entries)
    assert len(EncodedBatch.from_pipe([[tag, entries, count]])) == 3
    assert len(EncodedBatch.from_pipe([(tag, bytearray(entries), count)])) == 3  # as recv_frame reads it
    first_end = entry_ends(entries, 3)[0]
    for bad in (
        [[tag, entries[:first_end], 0]],
        [[tag, entries, -1]],
        [[tag, entries, True]],
        [[tag, b"\xc1" + entries[1:], count]],  # not msgpack
        [[tag, entries[3:], count]],  # not at an entry's start
        [[tag, entries[:first_end], 200]],  # too short to hold that many entries
        [[tag, entries.decode("latin-1"), count]],
        [[tag, entries]],
        [[1, entries, count]],
        "x",
    ):
        with pytest.raises(ValueError):
            EncodedBatch.from_pipe(bad)


def test_a_segment_whose_count_or_end_is_wrong_is_refused_where_it_is_split() -> None:
    # The check on arrival costs the same for any number of entries; reading a segment through is left to
    # where it is split, and there it refuses what is not exactly its count of whole entries.
    (segment,) = EntryEncoder("t").encode_segments(golden_records(False)[:3], FALLBACK, NOW)
    tag, entries, count = segment
    entries = bytes(entries)
    assert len(EncodedBatch.from_pipe([[tag, entries, count]])[1:2]) == 1
    for bad_entries, bad_count in (
        (entries[:-1], count),  # the last entry cut short
        (entries + b"\xc0", count),  # something after the last entry
        (entries, 2),
        (entries, 4),
    ):
        batch = EncodedBatch.from_pipe([[tag, bad_entries, bad_count]])
        assert len(batch) == bad_count
        with pytest.raises(ValueError):
            batch[1:2]


def test_entry_ends_finds_every_entry_of_a_segment_of_any_size() -> None:
    records = golden_records(include_original=True) * 2  # sizes with each msgpack array header: fixarray, array16
    for size in (1, 15, 16, 40):
        ((_, entries, count),) = EntryEncoder("t", True).encode_segments(records[:size], FALLBACK, NOW)
        ends = entry_ends(entries, count)
        assert len(ends) == count == size and ends[-1] == len(entries)
        unpacker = msgpack.Unpacker(raw=False)
        starts = [0, *ends[:-1]]
        for start, end, record in zip(starts, ends, records[:size], strict=True):
            when, event = msgpack.unpackb(entries[start:end], raw=False)
            assert event == record_event(record, FALLBACK, True)
        unpacker.feed(entries)
        assert len(list(unpacker)) == count


# Values each path must treat as record_event + msgpack do: non-ASCII, empty, at and beyond msgpack's
# integer limits, surrogates that have no UTF-8 form, and types that are not str or int.
ODD_VALUES = [
    {"path": "/ünïcødé/日本/🚀", "user_agent": "curl/8 (Ω)", "authority": "bücher.example"},
    {"path": "", "user_agent": "", "request_id": "", "trace_id": "", "span_id": "", "start_time": ""},
    {"bytes_received": 2**64 - 1, "bytes_sent": 0, "duration_ms": 0},
    {"bytes_received": 2**64},  # beyond a msgpack integer: unencodable
    {"bytes_sent": -(2**63) - 1},  # below one: unencodable
    {"duration_ms": 2**62},  # its event.duration in ns overflows: unencodable
    {"path": "/\ud800"},  # a lone surrogate has no UTF-8 form: unencodable
    {"user_agent": b"bytes"},  # not a str: packed as bin by both, as record_event would be
    {"request_id": object()},  # no msgpack form at all: unencodable
    {"path": "x" * 70_000, "original": "y" * 300},  # str32 and str16 headers
    {"source_address": "10.0.0.1:99999999999999999999999"},  # a port beyond a msgpack integer: unencodable
]


def packs(value: object) -> bool:
    try:
        msgpack.packb(value)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("odd", ODD_VALUES, ids=lambda odd: ",".join(odd))
@pytest.mark.parametrize("include_original", [False, True])
def test_odd_values_encode_as_record_event_or_are_counted_and_skipped_on_every_path(
    odd: dict[str, object], include_original: bool
) -> None:
    good = golden_records(include_original=True)[:4]
    odd_record = good[0]._replace(**odd)  # type: ignore[arg-type]
    odd_records = (odd_record, odd_record._replace(reporter="destination", destination_namespace="other"))
    batch = [good[1], odd_records[0], good[2], odd_records[1], good[3]]
    encodable = packs(record_event(odd_record, FALLBACK, include_original))
    want = [record for record in batch if encodable or all(record is not odd for odd in odd_records)]
    skipped = len(batch) - len(want)
    tag = "t.{namespace}"
    expected = sorted(
        (
            tag.replace("{namespace}", reporter_namespace(record)),
            repr(sorted(record_event(record, FALLBACK, include_original).items())),
        )
        for record in want
    )

    def events(decoded: list[tuple[str, object, dict]]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        return sorted((got_tag.rpartition(":")[2], repr(sorted(event.items()))) for got_tag, _, event in decoded)

    # The sink's way: Records, a RowBatch from the pipe, both in one output ...
    encoder = EntryEncoder(tag, include_original)
    out = encoder.encode(batch, FALLBACK, NOW)
    assert events(decode(out)) == expected
    assert encoder.unencodable == skipped
    if packs(RowBatch.of(batch).pipe_form()):
        piped = RowBatch.from_pipe(msgpack.unpackb(msgpack.packb(RowBatch.of(batch).pipe_form()), use_list=False))
        encoder = EntryEncoder(tag, include_original)
        doubled = {key: (entries + entries, count * 2) for key, (entries, count) in out.items()}
        assert encoder.encode_all([piped, batch], FALLBACK, NOW) == doubled
        assert encoder.unencodable == 2 * skipped
    # ... and a parsing worker's: segments holding the same entries, which split at any event.
    encoder = EntryEncoder(tag, include_original)
    segments = EncodedBatch(encoder.encode_segments(batch, FALLBACK, NOW))
    assert encoder.unencodable == skipped
    assert len(segments) == len(want)
    whole = segments_decoded(segments)
    assert events(whole) == expected
    one_by_one = [segments_decoded(segments[n : n + 1]) for n in range(len(want))]
    assert [event for ((_, _, event),) in one_by_one] == [event for _, _, event in whole]


def test_a_batch_encoded_as_one_list_of_any_length_is_its_entries_one_after_the_other() -> None:
    # One batch's entries are encoded as one flat list whose array header (1, 3 or 5 bytes, by its length)
    # is cut off: every size gives the bytes of encoding each Record alone.
    records = golden_records(include_original=True) * 120  # > 65,535 values: an array32 header
    encoder = EntryEncoder("t.{namespace}", include_original=True)
    for size in (1, 2, 100, len(records)):
        want: dict[str, tuple[bytes, int]] = {}
        for record in records[:size]:
            for tag, (entries, count) in encoder.encode([record], FALLBACK, NOW).items():
                before, counted = want.get(tag, (b"", 0))
                want[tag] = (before + entries, counted + count)
        assert encoder.encode(records[:size], FALLBACK, NOW) == want


def test_a_value_whose_encoding_recurses_without_end_costs_its_record_only() -> None:
    good = Record(reporter="source", source_namespace="a", response_code=200)
    looped: list[object] = []
    looped.append(looped)
    bad = good._replace(path=looped)  # type: ignore[arg-type]
    encoder = EntryEncoder("t.{namespace}")
    assert len(decode(encoder.encode([good, bad, good], FALLBACK, NOW))) == 2 and encoder.unencodable == 1
    assert len(decode(encoder.encode([good], FALLBACK, NOW))) == 1 and encoder.unencodable == 1


def test_entry_ends_refuses_a_count_no_segment_can_hold_with_a_value_error() -> None:
    ((_, entries, count),) = EntryEncoder("t").encode_segments(golden_records(False)[:2], FALLBACK, NOW)
    for wrong in (0, -1, 1 << 32):
        with pytest.raises(ValueError):
            entry_ends(entries, wrong)


def test_a_long_segment_split_again_and_again_is_read_through_once(monkeypatch: pytest.MonkeyPatch) -> None:
    records = golden_records(False) * 40
    batch = EncodedBatch(EntryEncoder("t").encode_segments(records, FALLBACK, NOW))
    assert len(batch.segments) == 1
    reads: list[int] = []
    real = encoder_module.entry_ends
    monkeypatch.setattr(
        encoder_module, "entry_ends", lambda entries, count: reads.append(count) or real(entries, count)
    )
    taken = []
    while len(batch):
        taken.append(batch[:100])
        batch = batch[100:]
    assert reads == [len(records)]
    whole = b"".join(bytes(part.segments[0][1]) for part in taken)
    assert whole == bytes(EncodedBatch(EntryEncoder("t").encode_segments(records, FALLBACK, NOW)).segments[0][1])
