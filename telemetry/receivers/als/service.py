"""One ALS stream: identify the reporting proxy, turn each message's entries into Records, hand them on.

Envoy opens a long-lived stream per access logger and worker thread and names itself (``identifier``)
on the first message only. Each message's Records go to the pipeline as one batch. A bad entry ends the
stream with INVALID_ARGUMENT, after the message's good entries have been handed on.

Overload is answered with gRPC flow control, not refusal: while a message waits for room in a full
pipeline its stream is not read, so grpc stops granting HTTP/2 window and Envoy's writes back up (Envoy
then buffers, and past its own buffer counts ``access_logs.grpc_access_log.logs_dropped``, where an
operator can see it). The wait is bounded (``backpressure_wait``); only a pipeline full for that long
refuses the message with RESOURCE_EXHAUSTED, its Records counted as
``dropped{stage="pipeline",reason="queue_full"}``, and ends the stream (Envoy opens a new one).

Messages arrive as bytes and are decoded here rather than by grpc: grpcio (1.85) rejects an undecodable
request stream itself, but then ``Server.stop`` can wait forever for that call. Decoding here also
lets an undecodable message be counted and answered like any other malformed input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import grpc
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf.message import DecodeError

from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.node import parse_node
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record, Workload
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.entries import http_fields, tcp_fields
from telemetry.receivers.grpcserver import abort
from telemetry.selfmetrics import SelfStats

RECEIVER = "als"
SERVICE_NAME = als_pb2.DESCRIPTOR.services_by_name["AccessLogService"].full_name


class AccessLogService:
    def __init__(
        self,
        pipeline: Pipeline,
        stats: SelfStats,
        peers: PeerTable,
        backpressure_wait: float = 10.0,
    ) -> None:
        self._pipeline = pipeline
        self._stats = stats
        self._peers = peers
        self._wait = backpressure_wait

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The handler to add to a grpc server for envoy.service.accesslog.v3.AccessLogService."""
        method = grpc.stream_unary_rpc_method_handler(
            self.stream_access_logs, response_serializer=als_pb2.StreamAccessLogsResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {"StreamAccessLogs": method})

    def stream_access_logs(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> als_pb2.StreamAccessLogsResponse:
        reporter: Workload | None = None
        # One assembler per stream: its identity cache belongs to one reporter, and streams run concurrently.
        assembler = RecordAssembler(self._peers)
        try:
            for message in self._decoded(request_iterator, context):
                if reporter is None:
                    reporter = self._identify(message, context)
                self._handle(message, reporter, assembler, context)
        except grpc.RpcError:
            # The client went away or the server is stopping: everything read so far was handed on.
            pass
        return als_pb2.StreamAccessLogsResponse()

    def _decoded(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[als_pb2.StreamAccessLogsMessage]:
        decode = als_pb2.StreamAccessLogsMessage.FromString
        for data in request_iterator:
            try:
                message = decode(data)
            except DecodeError as error:
                self._stats.parse_error(RECEIVER, "undecodable_message")
                abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"undecodable_message: not a StreamAccessLogsMessage ({len(data)} bytes): {error}",
                )
            yield message

    def _identify(self, message: als_pb2.StreamAccessLogsMessage, context: grpc.ServicerContext) -> Workload:
        if not message.HasField("identifier"):
            self._reject(context, "missing_identifier", "the first message of a stream has no identifier", message)
        try:
            reporter, ip = parse_node(message.identifier.node)
        except ParseError as error:
            self._reject(context, error.reason, str(error), message)
        self._peers.learn(ip, reporter)
        return reporter

    def _handle(
        self,
        message: als_pb2.StreamAccessLogsMessage,
        reporter: Workload,
        assembler: RecordAssembler,
        context: grpc.ServicerContext,
    ) -> None:
        records: list[Record] = []
        failures: list[ParseError] = []
        assemble = assembler.assemble
        # A message carries either HTTP or TCP entries (a oneof); an empty one carries none.
        kind = message.WhichOneof("log_entries")
        if kind == "http_logs":
            entries, convert = message.http_logs.log_entry, http_fields
        elif kind == "tcp_logs":
            entries, convert = message.tcp_logs.log_entry, tcp_fields
        else:
            return
        for entry in entries:
            try:
                records.append(assemble(convert(entry), reporter))
            except ParseError as error:
                failures.append(error)
        for failure in failures:
            self._stats.parse_error(RECEIVER, failure.reason)
        # Waiting here is the flow control: the next message is not read until this one is queued.
        if records and not self._pipeline.submit(records, RECEIVER, wait=self._wait):
            # The last resort, after a bounded wait; the pipeline has counted the refused records.
            abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"collector pipeline is full: {len(records)} entries refused",
            )
        if failures:
            first = failures[0]
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(failures)} malformed {kind} entries ({first.reason}: {first}); the other {len(records)} were kept",
            )

    def _reject(
        self, context: grpc.ServicerContext, reason: str, text: str, message: als_pb2.StreamAccessLogsMessage
    ) -> NoReturn:
        # Without an identity none of the message's entries can be attributed: each is a parse error.
        kind = message.WhichOneof("log_entries")
        lost = len(getattr(message, kind).log_entry) if kind else 0
        self._stats.parse_error(RECEIVER, reason, max(lost, 1))
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{reason}: {text}")
