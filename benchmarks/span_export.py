"""Trace export throughput: spans/s through the export queue to a local capture server, per protocol.

Batches of 512 spans with 12 attributes each go through meshscope's real exporters (OTLP gRPC, OTLP
HTTP protobuf, Zipkin v2 JSON) with their default queue and batch settings, to a server in a separate
process (so it does not compete for the exporter's GIL) that reads each request and answers success
without decoding it. Each protocol runs in a fresh process so that peak RSS is its own.

    python benchmarks/span_export.py [--spans 200000] [--protocols grpc,http,zipkin]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import subprocess
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status  # noqa: E402

from telemetry.exporters.otlp.config import OtlpConfig  # noqa: E402
from telemetry.exporters.otlp.factory import create_exporter as create_otlp  # noqa: E402
from telemetry.exporters.zipkin.config import ZipkinConfig  # noqa: E402
from telemetry.exporters.zipkin.factory import create_exporter as create_zipkin  # noqa: E402
from telemetry.selfmetrics import SelfStats  # noqa: E402

BATCH = 512
DISTINCT_BATCHES = 16


def text(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def number(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def make_batch(index: int) -> ResourceSpans:
    spans = []
    for n in range(BATCH):
        serial = index * BATCH + n
        start = 1_714_564_800_000_000_000 + serial * 1_000_000
        spans.append(
            Span(
                trace_id=serial.to_bytes(16, "big"),
                span_id=(serial + 1).to_bytes(8, "big"),
                parent_span_id=serial.to_bytes(8, "big"),
                name=f"reviews.default.svc.cluster.local:9080/reviews/{serial % 50}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 12_345_678,
                attributes=[
                    text(
                        "node_id",
                        "sidecar~10.244.0.7~productpage-v1-6b746f74dc-9rlmh.default~default.svc.cluster.local",
                    ),
                    text("zone", "us-east-1a"),
                    text("guid:x-request-id", "0f0e6a5c-3b1c-4a7e-9b51-1e0d2c7a9f42"),
                    text("http.url", f"http://reviews:9080/reviews/{serial % 50}"),
                    text("http.method", "GET"),
                    text("downstream_cluster", "-"),
                    text("user_agent", "python-requests/2.31"),
                    text("http.protocol", "HTTP/1.1"),
                    text("peer.address", "10.244.0.7"),
                    number("request_size", 0),
                    number("response_size", 4_321),
                    text("upstream_cluster", "outbound|9080|v2|reviews.default.svc.cluster.local"),
                ],
                status=Status(code=Status.STATUS_CODE_ERROR if serial % 20 == 0 else Status.STATUS_CODE_UNSET),
            )
        )
    return ResourceSpans(
        resource=Resource(attributes=[text("service.name", "productpage.default")]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="envoy"), spans=spans)],
    )


def serve(port_out: Any) -> None:
    """Capture servers that read each request and answer success without decoding it."""

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b""

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": grpc.unary_unary_rpc_method_handler(export)}
    )
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    grpc_server.add_generic_rpc_handlers((handler,))
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    port_out.send((grpc_port, http_server.server_port))
    threading.Event().wait()


def run(protocol: str, total: int, grpc_port: int, http_port: int) -> None:
    stats = SelfStats()
    if protocol == "zipkin":
        exporter = create_zipkin(ZipkinConfig(enabled=True, endpoint=f"http://127.0.0.1:{http_port}"), stats)
        queue_size = ZipkinConfig().queue_size
    else:
        wire = "grpc" if protocol == "grpc" else "http/protobuf"
        port = grpc_port if protocol == "grpc" else http_port
        exporter = create_otlp(OtlpConfig(enabled=True, endpoint=f"127.0.0.1:{port}", protocol=wire), stats)  # type: ignore[arg-type]
        queue_size = OtlpConfig().queue_size
    batches = [make_batch(index) for index in range(DISTINCT_BATCHES)]
    stage = f"exporter:{protocol if protocol == 'zipkin' else 'otlp'}"
    started = time.perf_counter()
    sent = 0
    while sent < total:
        # Producers faster than the backend would only fill the queue and drop: wait for room instead.
        while stats.queue_depth(stage) > queue_size - BATCH:
            time.sleep(0.001)
        exporter.consume([batches[(sent // BATCH) % DISTINCT_BATCHES]])
        sent += BATCH
    assert exporter.flush(120), "the export did not finish"
    elapsed = time.perf_counter() - started
    exporter.shutdown()
    exported = sum(stats.exported.values())
    assert exported == sent and not stats.dropped, (stats.exported, stats.dropped, stats.export_failures)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{protocol:7} {exported:>9,} spans {elapsed:7.2f} s {exported / elapsed:>10,.0f} spans/s  peak RSS {peak_mb:6.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--protocols", default="grpc,http,zipkin")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        grpc_port, http_port = (int(port) for port in args.ports.split(","))
        run(args.run, args.spans, grpc_port, http_port)
        return
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(send,), daemon=True)
    server.start()
    grpc_port, http_port = receive.recv()
    print(f"{args.spans:,} spans in batches of {BATCH}, 12 attributes each; one exporter per fresh process")
    try:
        for protocol in args.protocols.split(","):
            command = [sys.executable, __file__, "--run", protocol, "--spans", str(args.spans)]
            subprocess.run([*command, "--ports", f"{grpc_port},{http_port}"], check=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
