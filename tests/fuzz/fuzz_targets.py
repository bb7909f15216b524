"""Every parser at the boundary its receiver calls it at, as ``target(data: bytes) -> outcome``.

A target returns "ok" when the input was taken and "rejected" when the parser refused it with its
documented error (the one the receiver turns into a 400, INVALID_ARGUMENT, a counted parse error or
a config error). Any other exception escapes: that is a crasher. The suite's hypothesis tests, the
regression replays under tests/testdata/fuzz/ and benchmarks/fuzz.py all call these same functions.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from envoy.service.accesslog.v3 import als_pb2
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.config import Config
from telemetry.confload import ConfigError, load_file, load_mapping
from telemetry.envoy.clusters import decode_cluster, decode_sni
from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.node import parse_node
from telemetry.envoy.parser import LineParser, compile_format
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record, Span, Workload
from telemetry.receivers.als.entries import http_fields, tcp_fields
from telemetry.receivers.filelog.unwrap import LineUnwrapper
from telemetry.receivers.httpbody import BodyError, decode_content, read_raw
from telemetry.receivers.otlp.jsoncodec import request_from_json
from telemetry.spans.correlation import RequestTraceIndex
from telemetry.spans.from_zipkin import resource_spans_from_json, resource_spans_from_proto3
from telemetry.spans.normalize import SpanNormaliser

Target = Callable[[bytes], str]
OK = "ok"
REJECTED = "rejected"

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
REGRESSIONS = TESTDATA / "fuzz"
CUSTOM_FORMAT = (TESTDATA / "accesslogs" / "custom.format").read_text().rstrip("\n")
REPORTER = Workload(name="reviews-v2", namespace="default", app="reviews", version="v2")
# The body limit of the HTTP targets: small, so that a generated gzip bomb is refused quickly.
BODY_LIMIT = 1 << 20


class CrashError(AssertionError):
    """A parser failed in a way its receiver does not handle (a parser bug, counted as parser_error)."""


_FIELD_TYPES = {cls: tuple(typing.get_type_hints(cls).items()) for cls in (Record, Span)}


def check_typed(items: Iterable[Record | Span]) -> None:
    """Every field of a parser's output has its declared type: a sink must never meet an int label."""
    for item in items:
        for (name, kind), value in zip(_FIELD_TYPES[type(item)], item, strict=True):
            if value.__class__ is not kind:
                raise CrashError(f"{type(item).__name__}.{name} is {value!r}, not {kind.__name__}")


# -- access logs ---------------------------------------------------------------------------------------


def _lines(data: bytes) -> list[str]:
    # As the file readers do: split on newlines, decode strictly; an undecodable line never reaches the parser.
    lines = []
    for raw in data.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return lines


def access_log_target(fmt: str) -> Target:
    """``LineParser.parse_lines`` as the file tailer and ``meshscope ingest`` call it, then ``parse`` per line.

    ``parse_lines`` never raises: it files a parser bug as the reason "parser_error", which is a crash here.
    One parser serves every input, as one serves a whole file; "auto" starts afresh each time, so that
    an input's outcome does not depend on the format an earlier input settled on.
    """
    peers = PeerTable(max_entries=1024)
    fixed = None if fmt == "auto" else LineParser(fmt, REPORTER, peers)

    def target(data: bytes) -> str:
        lines = _lines(data)
        parser = fixed or LineParser(fmt, REPORTER, peers)
        errors: list[tuple[str, str]] = []
        records = parser.parse_lines(lines, errors)
        check_typed(records)
        bugs = [line for reason, line in errors if reason == "parser_error"]
        if bugs:
            # parse() raises the bug itself, with its traceback.
            for line in bugs:
                (fixed or LineParser(fmt, REPORTER, peers)).parse(line)
            raise CrashError(f"parse_lines filed parser_error for {bugs[0]!r}")
        for line in lines[:4]:
            try:
                (fixed or LineParser(fmt, REPORTER, peers)).parse(line)
            except ParseError:
                pass
        return OK if records and not errors else REJECTED

    return target


def wrapped_access_log_target() -> Target:
    """Container runtime logs (CRI, Docker json-file) unwrapped by the file receiver's LineUnwrapper, then parsed."""
    inner = access_log_target("auto")

    def target(data: bytes) -> str:
        unwrapper = LineUnwrapper(max_chars=4096)
        lines = [line for line in map(unwrapper.feed, _lines(data)) if line is not None] + unwrapper.flush()
        return inner("\n".join(lines).encode("utf-8", "surrogatepass"))

    return target


def format_compiler(data: bytes) -> str:
    """An arbitrary format string: compiled (ValueError when meshscope cannot use it), then applied."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return REJECTED
    fmt, _, line = text.partition("\n")
    try:
        extract = compile_format(fmt)
    except ValueError:
        return REJECTED
    try:
        return OK if extract(line) is not None else REJECTED
    except ParseError:
        return REJECTED


def cluster_names(data: bytes) -> str:
    """Istio cluster names and SNIs: any text decodes (possibly to "not Istio's"), never raises."""
    text = data.decode("utf-8", "replace")
    return OK if decode_cluster(text).direction or decode_sni(text).direction else REJECTED


# -- spans ---------------------------------------------------------------------------------------------

_NORMALISER = SpanNormaliser(PeerTable(max_entries=4096), request_index=RequestTraceIndex(10_000))


def _normalise(resource_spans: Sequence[ResourceSpans]) -> str:
    # What TraceIngest.accept does with a decoded request; rejected spans are counted, never raised.
    result = _NORMALISER(resource_spans)
    check_typed(result.records)
    check_typed(result.spans)
    return REJECTED if result.rejected else OK


def zipkin_json(data: bytes) -> str:
    """The Zipkin receiver's JSON route: ParseError is its 400."""
    try:
        resource_spans = resource_spans_from_json(data)
    except ParseError:
        return REJECTED
    return _normalise(resource_spans)


def zipkin_proto3(data: bytes) -> str:
    """The Zipkin receiver's proto3 route: ParseError is its 400."""
    try:
        resource_spans = resource_spans_from_proto3(data)
    except ParseError:
        return REJECTED
    return _normalise(resource_spans)


def otlp_protobuf(data: bytes) -> str:
    """OTLP/HTTP protobuf and OTLP/gRPC: DecodeError is their 400 / INVALID_ARGUMENT."""
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError:
        return REJECTED
    return _normalise(request.resource_spans)


def otlp_json(data: bytes) -> str:
    """OTLP/HTTP JSON: ParseError is its 400."""
    try:
        request = request_from_json(data)
    except ParseError:
        return REJECTED
    return _normalise(request.resource_spans)


# -- ALS -----------------------------------------------------------------------------------------------


def als_message(data: bytes) -> str:
    """One StreamAccessLogsMessage as the ALS service handles the first message of a stream."""
    try:
        message = als_pb2.StreamAccessLogsMessage.FromString(data)
    except DecodeError:
        return REJECTED
    if message.HasField("identifier"):
        try:
            reporter, _ = parse_node(message.identifier.node)
        except ParseError:
            return REJECTED
    else:
        reporter = REPORTER
    kind = message.WhichOneof("log_entries")
    if kind is None:
        return OK
    entries, convert = (
        (message.http_logs.log_entry, http_fields) if kind == "http_logs" else (message.tcp_logs.log_entry, tcp_fields)
    )
    assemble = RecordAssembler(PeerTable(max_entries=1024)).assemble
    outcome = OK
    for entry in entries:
        try:
            check_typed([assemble(convert(entry), reporter)])
        except ParseError:
            outcome = REJECTED
    return outcome


# -- config --------------------------------------------------------------------------------------------

_CONFIG_DIR = tempfile.mkdtemp(prefix="meshscope-fuzz-config-")
atexit.register(shutil.rmtree, _CONFIG_DIR, ignore_errors=True)


def config_file(data: bytes) -> str:
    """``meshscope run -c FILE`` / ``check-config``: anything wrong with the file is a ConfigError."""
    path = os.path.join(_CONFIG_DIR, f"config-{os.getpid()}.yaml")
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        load_file(Config, path, environ={})
    except ConfigError:
        return REJECTED
    return OK


def config_env(data: bytes) -> str:
    """``MESHSCOPE_A__B=value`` overrides: the first line names the variable, the rest is its value."""
    text = data.decode("utf-8", "replace").replace("\x00", "")
    name, _, value = text.partition("\n")
    try:
        load_mapping(Config, {}, environ={f"MESHSCOPE_{name}": value})
    except ConfigError:
        return REJECTED
    return OK


# -- HTTP bodies ---------------------------------------------------------------------------------------

_ENCODINGS = ("gzip", "deflate", "identity", "x-gzip", "br", "")


def http_body(data: bytes) -> str:
    """``decode_content`` and ``read_raw`` as the HTTP receivers call them: BodyError is their 4xx.

    The first byte picks the Content-Encoding, the second whether the raw body is read chunked.
    """
    if len(data) < 2:
        return REJECTED
    encoding = _ENCODINGS[data[0] % len(_ENCODINGS)]
    body = data[2:]
    try:
        if data[1] & 1:
            raw = read_raw(io.BytesIO(body), None, True, BODY_LIMIT)
        else:
            raw = read_raw(io.BytesIO(body), str(len(body)), False, BODY_LIMIT)
        decode_content(raw, encoding, BODY_LIMIT)
    except BodyError:
        return REJECTED
    return OK


def node_identity(data: bytes) -> str:
    """An Envoy Node (ALS identifier, xDS): parse_node's ParseError is the stream's INVALID_ARGUMENT."""
    from envoy.config.core.v3.base_pb2 import Node

    try:
        node = Node.FromString(data)
    except DecodeError:
        return REJECTED
    try:
        parse_node(node)
    except ParseError:
        return REJECTED
    return OK


TARGETS: dict[str, Target] = {
    "accesslog_istio": access_log_target("istio"),
    "accesslog_envoy": access_log_target("envoy"),
    "accesslog_custom": access_log_target(CUSTOM_FORMAT),
    "accesslog_json": access_log_target("json"),
    "accesslog_auto": access_log_target("auto"),
    "accesslog_wrapped": wrapped_access_log_target(),
    "format_compiler": format_compiler,
    "cluster_names": cluster_names,
    "zipkin_json": zipkin_json,
    "zipkin_proto3": zipkin_proto3,
    "otlp_protobuf": otlp_protobuf,
    "otlp_json": otlp_json,
    "als": als_message,
    "node": node_identity,
    "config_file": config_file,
    "config_env": config_env,
    "http_body": http_body,
}
