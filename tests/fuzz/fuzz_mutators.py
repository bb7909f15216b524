"""Input mutations for fuzzing: byte-level changes of valid seeds, and structure-level changes.

- byte mutations: bit flips, interesting bytes and numbers, tokens of the formats, chunks deleted,
  repeated or inserted, two seeds spliced, truncation (stacked 1 to 4 at a time);
- structure mutations: JSON seeds are decoded and a random node replaced, removed or added; protobuf
  seeds are decoded and a random field, at any depth, set to an extreme value (descriptor-driven, so
  every message type is covered); configs get random values at the schema's own key paths.

All randomness comes from the ``random.Random`` given: benchmarks/fuzz.py seeds one per target, the
suite lets hypothesis drive one (``st.randoms``), so a run is reproducible either way.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Callable
from typing import Any

import orjson
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.accesslog.v3.als_pb2 import StreamAccessLogsMessage
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry.config import Config
from telemetry.spans import zipkin_proto3

MAX_INPUT = 64 * 1024

INTERESTING_BYTES = b'\x00\x01\x7f\x80\xff"{}[]:,-|%\n\r\t \\.~_'
INTERESTING_NUMBERS = [
    b"0", b"-1", b"-0", b"1e400", b"-1e400", b"NaN", b"1.5", b"9" * 19, b"9" * 40, b"18446744073709551616",
    b"9223372036854775808", b"-9223372036854775809", b"4294967296", b"2147483648", b"1000", b"599", b"0x10",
]  # fmt: skip
TOKENS = [
    b"-", b'"', b"%", b"%%", b"%START_TIME%", b"%REQ(:PATH)%", b"%DURATION:3%", b"%RESP(", b"{", b"}", b"[", b"]",
    b"null", b"true", b"false", b"[]", b"{}", b'""', b"\\u0000", b"\\ud800", b"\\", b"\xc3\xa9", b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80", b"outbound|", b"inbound|", b"|", b"||", b"outbound_.", b"_.", b".svc.", b"~", b"sidecar~",
    b"router~", b"::", b"[::1]:80", b"10.0.0.1:80", b"*a", b"&a ", b"!!timestamp ", b"!!binary ", b"? ", b"---",
    b": ", b"- ", b"!!python/object ", b"<<: ", b"\t", b"\r\n", b"0\r\n\r\n", b"ffffffff\r\n", b"\x1f\x8b\x08",
    b"x\x9c", b"traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01",
]  # fmt: skip


class Mutator:
    """Byte and structure mutations of one target's seeds."""

    def __init__(self, name: str, corpus: list[bytes], rng: random.Random) -> None:
        self.name = name
        self.corpus = corpus
        self.rng = rng
        self.structured = _STRUCTURED.get(name)

    def next(self) -> bytes:
        rng = self.rng
        seed = rng.choice(self.corpus)
        if self.structured is not None and rng.random() < 0.35:
            try:
                data = self.structured(seed, rng)
            except (DecodeError, orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
                data = seed
            if rng.random() < 0.3:
                data = self.bytes(data)
            return data[:MAX_INPUT]
        return self.bytes(seed)[:MAX_INPUT]

    def bytes(self, seed: bytes) -> bytes:
        rng = self.rng
        data = bytearray(seed)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            _BYTE_MUTATIONS[rng.randrange(len(_BYTE_MUTATIONS))](self, data)
        return bytes(data)

    def _position(self, data: bytearray) -> int:
        return self.rng.randrange(len(data) + 1)

    def flip(self, data: bytearray) -> None:
        if data:
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)

    def interesting_byte(self, data: bytearray) -> None:
        if data:
            data[self.rng.randrange(len(data))] = self.rng.choice(INTERESTING_BYTES)

    def random_bytes(self, data: bytearray) -> None:
        at = self._position(data)
        data[at:at] = self.rng.randbytes(self.rng.choice((1, 2, 4, 8, 16)))

    def delete(self, data: bytearray) -> None:
        if data:
            start = self.rng.randrange(len(data))
            del data[start : start + self.rng.choice((1, 2, 4, 16, 64, 1024))]

    def repeat(self, data: bytearray) -> None:
        if data:
            start = self.rng.randrange(len(data))
            chunk = data[start : start + self.rng.choice((1, 4, 16, 256))]
            at = self._position(data)
            data[at:at] = chunk * self.rng.choice((1, 2, 16, 200))

    def token(self, data: bytearray) -> None:
        at = self._position(data)
        token = self.rng.choice(TOKENS)
        if self.rng.random() < 0.5 and data:
            # Replace what is there: keeps lengths (and so framing) plausible.
            data[at : at + len(token)] = token
        else:
            data[at:at] = token

    def number(self, data: bytearray) -> None:
        digits = [index for index in range(len(data)) if 48 <= data[index] <= 57]
        if not digits:
            return self.token(data)
        start = end = self.rng.choice(digits)
        while start > 0 and 48 <= data[start - 1] <= 57:
            start -= 1
        while end < len(data) and 48 <= data[end] <= 57:
            end += 1
        data[start:end] = self.rng.choice(INTERESTING_NUMBERS)

    def splice(self, data: bytearray) -> None:
        other = self.rng.choice(self.corpus)
        if data and other:
            data[self.rng.randrange(len(data)) :] = other[self.rng.randrange(len(other)) :]

    def truncate(self, data: bytearray) -> None:
        if data:
            del data[self.rng.randrange(len(data)) :]


_BYTE_MUTATIONS: list[Callable[[Mutator, bytearray], None]] = [
    Mutator.flip,
    Mutator.flip,
    Mutator.interesting_byte,
    Mutator.interesting_byte,
    Mutator.random_bytes,
    Mutator.delete,
    Mutator.repeat,
    Mutator.token,
    Mutator.token,
    Mutator.number,
    Mutator.number,
    Mutator.splice,
    Mutator.truncate,
]

# -- structure mutations -----------------------------------------------------------------------------

_STRINGS = [
    "", "-", "0", "-1", "1e3", "NaN", " ", "GET", "inbound|9080||", "outbound|9080|v1|r.d.svc.cluster.local",
    "PassthroughCluster", "[::1]:80", "10.0.0.1:99999", "x" * 300, "\x00", "é", "\ud7ff", "😀", "sidecar~1~p.n~d",
    "router~~~", "~~~~", "proxy", "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "{\"a\":{\"b\":1}}", "%", "a" * 33,
]  # fmt: skip
_INTS = [0, 1, -1, 7, 200, 599, 1000, 2**31 - 1, -(2**31), 2**32, 2**53, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, 10**30]
_FLOATS = [0.0, -0.0, 1.5, 1e308, -1e308, 1e-320, 123456789.0]


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice((True, False))
    if choice == 2:
        return rng.choice(_INTS)
    if choice == 3:
        return rng.choice(_FLOATS)
    if choice in (4, 5):
        return rng.choice(_STRINGS)
    if choice == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(_STRINGS): _json_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _json_nodes(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    nodes = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            nodes += _json_nodes(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            nodes += _json_nodes(value, (*path, index))
    return nodes


def _mutate_json(seed: bytes, rng: random.Random) -> bytes:
    document = orjson.loads(seed)
    keys = [key for node in _json_nodes(document) for key in node[-1:] if isinstance(key, str)] or ["x"]
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(_json_nodes(document))
        if not path:
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = rng.randrange(4)
        if action == 0:
            del parent[path[-1]]
        elif action == 1 and isinstance(parent, dict):
            parent[rng.choice(keys)] = _json_value(rng)
        elif action == 2 and isinstance(parent, list):
            parent.append(parent[path[-1]] if rng.random() < 0.5 else _json_value(rng))
        else:
            parent[path[-1]] = _json_value(rng)
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


def _scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(_STRINGS)
    if kind == FieldDescriptor.TYPE_BYTES:
        size = rng.choice((0, 1, 4, 7, 8, 9, 15, 16, 17, 32))
        return rng.choice((bytes(size), b"\xff" * size, rng.randbytes(size)))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice(_FLOATS + [float("nan"), float("inf")])
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice([value.number for value in field.enum_type.values] + [-1, 99])
    bits = {
        FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
        FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
        FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
        FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
        FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
        FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
        FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    }.get(kind, (-(2**63), 2**63 - 1))
    low, high = bits
    return rng.choice([low, high, 0, 1, -1 if low < 0 else 2, rng.randint(low, high)])


def _mutate_message(message: Message, rng: random.Random, depth: int = 0) -> None:
    fields = message.DESCRIPTOR.fields
    if not fields:
        return
    field = rng.choice(fields)
    value = getattr(message, field.name)
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if is_map:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        # Sorted: a protobuf map's order may differ between processes, and runs must be reproducible.
        key = rng.choice(sorted(value)) if value and rng.random() < 0.6 else _scalar(key_field, rng)
        if value_field.message_type is not None:
            if depth < 6:
                _mutate_message(value[key], rng, depth + 1)
        else:
            value[key] = _scalar(value_field, rng)
    elif field.message_type is not None:
        if depth >= 6:
            return
        if field.is_repeated:
            if value and rng.random() < 0.7:
                item = rng.choice(list(value))
            else:
                item = value.add()
            _mutate_message(item, rng, depth + 1)
        else:
            if rng.random() < 0.05:
                message.ClearField(field.name)
            else:
                _mutate_message(value, rng, depth + 1)
    elif field.is_repeated:
        value.append(_scalar(field, rng))
    else:
        setattr(message, field.name, _scalar(field, rng))


def _protobuf(message_class: type[Message]) -> Callable[[bytes, random.Random], bytes]:
    def mutate(seed: bytes, rng: random.Random) -> bytes:
        message = message_class.FromString(seed)
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            _mutate_message(message, rng)
        return message.SerializeToString(deterministic=True)

    return mutate


def _config_paths(cls: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    paths: list[tuple[tuple[str, ...], Any]] = []
    for field in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[field.name]
        path = (*prefix, field.name)
        paths.append((path, tp))
        if dataclasses.is_dataclass(tp):
            paths += _config_paths(tp, path)
    return paths


_CONFIG_PATHS = _config_paths(Config)


def _mutate_config(seed: bytes, rng: random.Random) -> bytes:
    # JSON is YAML: a structure at the schema's own paths, written as one flow document.
    document: dict[str, Any] = {}
    for _ in range(rng.choice((1, 2, 4))):
        path, _ = rng.choice(_CONFIG_PATHS)
        node = document
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[path[-1]] = _json_value(rng)
    text = orjson.dumps(document)
    if rng.random() < 0.3:
        text = seed + b"\n" + text[1:-1].replace(b",", b"\n")
    return text


def _mutate_env(seed: bytes, rng: random.Random) -> bytes:
    path, _ = rng.choice(_CONFIG_PATHS)
    return "__".join(path).upper().encode() + b"\n" + orjson.dumps(_json_value(rng))


_STRUCTURED: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "accesslog_json": _mutate_json,
    "zipkin_json": _mutate_json,
    "otlp_json": _mutate_json,
    "zipkin_proto3": _protobuf(zipkin_proto3.ListOfSpans),
    "otlp_protobuf": _protobuf(ExportTraceServiceRequest),
    "als": _protobuf(StreamAccessLogsMessage),
    "node": _protobuf(Node),
    "config_file": _mutate_config,
    "config_env": _mutate_env,
}
