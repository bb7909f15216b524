"""OTLP trace requests parsed lean: each span's attribute keys and string values as two lists.

Walking a span's ``KeyValue`` messages from Python makes four objects per attribute and costs five
times the protobuf decode itself. The lean schema here is the official one (copied from the generated
descriptors, renamed into its own package) with one change: ``Span.attributes`` (field 9) is declared
as a *singular* message, ``MergedAttributes { repeated string key = 1; MergedAnyValue value = 2; }``,
``MergedAnyValue`` holding every field of ``AnyValue``, each repeated. Protobuf merges repeated
occurrences of a singular message field, so upb itself gathers a span's keys, in order, into one list
and the string values of their ``AnyValue`` s into another (``value.string_value``).

The two lists pair up exactly when every attribute has a key field and exactly one string value. A
span whose lists differ in length (a number, a boolean, an absent value) is read from its official
message instead. The one case lengths cannot catch, an attribute with no key field (proto3 leaves an
empty key out) beside one without a string value, is caught per request by ``CensusData``: every span
merged into one message whose ``attributes`` stays repeated, so its length is the request's number of
attributes; when that differs from the number of keys the lean spans hold, the whole request is read
from the official messages. (Not caught: a message repeating one of its own singular fields, or an
``AnyValue`` with two of its oneof fields set, which protobuf resolves by "last wins" and the lists do
not; no encoder writes either.)

As ``MergedAnyValue`` declares every field of ``AnyValue``, the lean schema accepts exactly the bytes
the official one does and can stand in for it: ``decode_request`` parses only the lean form, and the
official messages (for the exporters, or a span with a non-string attribute) are parsed from the same
bytes when first asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.traces import OtlpSpans

_OFFICIAL = "opentelemetry.proto."
_LEAN = "meshscope.lean."
_COMMON = ".meshscope.lean.common.v1."
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
_SPAN_ATTRIBUTES = 9  # opentelemetry.proto.trace.v1.Span.attributes


def _renamed(module: Any) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    proto.name = "meshscope/lean/" + proto.name
    proto.package = proto.package.replace(_OFFICIAL, _LEAN)
    proto.dependency[:] = ["meshscope/lean/" + name for name in proto.dependency]
    proto.ClearField("options")

    def rename(message: descriptor_pb2.DescriptorProto) -> None:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace("." + _OFFICIAL, "." + _LEAN)
        for nested in message.nested_type:
            rename(nested)

    for message in proto.message_type:
        rename(message)
    return proto


def _build() -> tuple[Any, ...]:
    common, resource, trace = (_renamed(module) for module in (common_pb2, resource_pb2, trace_pb2))
    # Every AnyValue field, repeated: the lean parse then accepts exactly the bytes the official one does.
    merged_value = common.message_type.add(name="MergedAnyValue")
    (any_value,) = (message for message in common.message_type if message.name == "AnyValue")
    for field in any_value.field:
        merged_value.field.add().CopyFrom(field)
        merged_value.field[-1].label = _REPEATED
        merged_value.field[-1].ClearField("oneof_index")
    merged = common.message_type.add(name="MergedAttributes")
    merged.field.add(name="key", number=1, label=_REPEATED, type=_STRING)
    merged.field.add(name="value", number=2, label=_OPTIONAL, type=_MESSAGE, type_name=_COMMON + "MergedAnyValue")
    (span,) = (message for message in trace.message_type if message.name == "Span")
    (attributes,) = (field for field in span.field if field.number == _SPAN_ATTRIBUTES)
    attributes.label = _OPTIONAL
    attributes.type_name = _COMMON + "MergedAttributes"

    # The census: ResourceSpans, ScopeSpans and Spans each declared singular, so everything merges
    # into one Span whose repeated attributes field holds every attribute of the request.
    census = descriptor_pb2.FileDescriptorProto(name="meshscope/lean/census.proto", package="meshscope.lean.census")
    census.syntax = "proto3"
    prefix = ".meshscope.lean.census."
    for name, number, child, label in (
        ("Span", _SPAN_ATTRIBUTES, "", _REPEATED),  # each attribute's bytes, not parsed: only counted
        ("ScopeSpans", 2, "Span", _OPTIONAL),
        ("ResourceSpans", 2, "ScopeSpans", _OPTIONAL),
        ("TracesData", 1, "ResourceSpans", _OPTIONAL),
    ):
        message = census.message_type.add(name=name)
        if child:
            message.field.add(name="items", number=number, label=label, type=_MESSAGE, type_name=prefix + child)
        else:
            message.field.add(name="items", number=number, label=label, type=_BYTES)

    pool = descriptor_pool.DescriptorPool()
    for proto in (common, resource, trace, census):
        pool.Add(proto)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        for name in (_LEAN + "trace.v1.TracesData", "meshscope.lean.census.TracesData")
    )


LeanTracesData, CensusData = _build()


def attribute_count(body: bytes) -> int:
    """How many span attributes (KeyValue messages) a request's bytes hold."""
    return len(CensusData.FromString(body).items.items.items.items)


def decode_request(body: bytes) -> OtlpSpans:
    """An ExportTraceServiceRequest's bytes, parsed lean; the official messages are parsed when first asked for.

    Raises DecodeError exactly when ``ExportTraceServiceRequest.FromString`` would, with its message: the
    lean schema accepts the same bytes, and the rare bytes it does not take (a packed encoding where
    the official schema has a single scalar) are parsed the official way.
    """
    try:
        lean = LeanTracesData.FromString(body).resource_spans
    except DecodeError:
        return OtlpSpans(ExportTraceServiceRequest.FromString(body).resource_spans, body)
    return OtlpSpans(None, body, lean)


def lean_resource_spans(body: bytes) -> Sequence[Any] | None:
    """The lean ResourceSpans of a request's (or TracesData's) bytes; None if they do not parse."""
    try:
        return LeanTracesData.FromString(body).resource_spans
    except DecodeError:
        return None
