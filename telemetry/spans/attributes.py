"""Cheap reads of OTLP attributes: one pass over a span's attributes, only the keys a reader knows.

Decoding every ``AnyValue`` of every span costs more than the protobuf decode itself. An
``AttributeReader`` is built once for a fixed tuple of keys; ``read`` makes one pass, looks each key up
in a dict and decodes only the values of known keys, into a list indexed like the keys. Envoy's tags
are strings (Zipkin has no other type) and OpenTelemetry SDKs send numbers as ints, so values are read
as text and numbers are parsed from text by whoever needs one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value_text(value: AnyValue) -> str:
    """Any scalar value as text: strings as they are, numbers and booleans printed, others ""."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        number = value.double_value
        return str(int(number)) if number.is_integer() else str(number)
    return ""


def as_int(text: str) -> int | None:
    """A decimal integer's value, or None when ``text`` is not one (the empty string included)."""
    stripped = text.strip()
    if stripped[:1] == "-":
        return -int(stripped[1:]) if stripped[1:].isdigit() else None
    return int(stripped) if stripped.isdigit() else None


class AttributeReader:
    """Reads a fixed set of keys: ``read(attrs)[i]`` is the text of ``keys[i]``, "" when absent."""

    def __init__(self, keys: Sequence[str]) -> None:
        if len(set(keys)) != len(keys):
            raise ValueError("AttributeReader keys must be distinct")
        self.keys: tuple[str, ...] = tuple(keys)
        self._index = {key: position for position, key in enumerate(self.keys)}
        self._absent = [""] * len(self.keys)

    def position(self, key: str) -> int:
        return self._index[key]

    def read(self, attributes: Iterable[KeyValue]) -> list[str]:
        values = self._absent.copy()
        index = self._index.get
        for kv in attributes:
            position = index(kv.key)
            if position is not None:
                value = kv.value
                # string_value is "" for a non-string value: only then is the value's kind asked.
                values[position] = value.string_value or value_text(value)
        return values
