"""Zipkin's proto3 messages (package ``zipkin.proto3``), defined at runtime with protobuf's descriptor API.

There is no official Python package for openzipkin/zipkin-api's ``zipkin.proto``; these are its
messages, field for field, so that decoding is protobuf's own (upb) rather than a hand-written
wire parser. Only what a collector reads is defined: ListOfSpans, Span, Endpoint, Annotation.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as Field

_PACKAGE = "zipkin.proto3"
_OPTIONAL = Field.LABEL_OPTIONAL
_REPEATED = Field.LABEL_REPEATED

# zipkin.proto3.Span.Kind
KIND_UNSPECIFIED, KIND_CLIENT, KIND_SERVER, KIND_PRODUCER, KIND_CONSUMER = range(5)


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    label: int = _OPTIONAL,
    type_name: str = "",
) -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="meshscope/zipkin/proto3/zipkin.proto", package=_PACKAGE, syntax="proto3"
    )

    span = file.message_type.add(name="Span")
    kind = span.enum_type.add(name="Kind")
    for number, name in enumerate(("SPAN_KIND_UNSPECIFIED", "CLIENT", "SERVER", "PRODUCER", "CONSUMER")):
        kind.value.add(name=name, number=number)
    tags = span.nested_type.add(name="TagsEntry")
    tags.options.map_entry = True
    _field(tags, "key", 1, Field.TYPE_STRING)
    _field(tags, "value", 2, Field.TYPE_STRING)
    _field(span, "trace_id", 1, Field.TYPE_BYTES)
    _field(span, "parent_id", 2, Field.TYPE_BYTES)
    _field(span, "id", 3, Field.TYPE_BYTES)
    _field(span, "kind", 4, Field.TYPE_ENUM, type_name=f".{_PACKAGE}.Span.Kind")
    _field(span, "name", 5, Field.TYPE_STRING)
    _field(span, "timestamp", 6, Field.TYPE_FIXED64)
    _field(span, "duration", 7, Field.TYPE_UINT64)
    _field(span, "local_endpoint", 8, Field.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Endpoint")
    _field(span, "remote_endpoint", 9, Field.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Endpoint")
    _field(span, "annotations", 10, Field.TYPE_MESSAGE, _REPEATED, f".{_PACKAGE}.Annotation")
    _field(span, "tags", 11, Field.TYPE_MESSAGE, _REPEATED, f".{_PACKAGE}.Span.TagsEntry")
    _field(span, "debug", 12, Field.TYPE_BOOL)
    _field(span, "shared", 13, Field.TYPE_BOOL)

    endpoint = file.message_type.add(name="Endpoint")
    _field(endpoint, "service_name", 1, Field.TYPE_STRING)
    _field(endpoint, "ipv4", 2, Field.TYPE_BYTES)
    _field(endpoint, "ipv6", 3, Field.TYPE_BYTES)
    _field(endpoint, "port", 4, Field.TYPE_INT32)

    annotation = file.message_type.add(name="Annotation")
    _field(annotation, "timestamp", 1, Field.TYPE_FIXED64)
    _field(annotation, "value", 2, Field.TYPE_STRING)

    spans = file.message_type.add(name="ListOfSpans")
    _field(spans, "spans", 1, Field.TYPE_MESSAGE, _REPEATED, f".{_PACKAGE}.Span")
    return file


# A private pool: the default one may already hold another definition of zipkin.proto3 (another
# library's generated code), and two definitions of one name in one pool are an error.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
ListOfSpans = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.ListOfSpans"))
ZipkinSpan = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.Span"))
Endpoint = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.Endpoint"))
Annotation = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.Annotation"))
