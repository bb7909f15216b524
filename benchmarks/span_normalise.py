"""Span normalisation throughput: OTLP ExportTraceServiceRequest bytes -> Records / Spans, on one core.

Batches of 512 spans with ~12 attributes each (Istio proxy spans, or application spans with the usual
HTTP/RPC/DB semantic-convention attributes), serialised once; each batch is decoded and normalised
as the OTLP receivers do (the lean parse of otlp_lean, attributes read from it), and, for comparison,
decoded with the official protobuf classes and normalised from those messages. A bare decode is
measured alongside for reference. Each kind runs in a fresh process so that peak RSS is its own; rates
are per CPU-second of that process (one thread), so that other load on the machine does not count.

    python benchmarks/span_normalise.py [--spans 500000] [--kinds proxy,app]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

from telemetry.envoy.peers import PeerTable  # noqa: E402
from telemetry.pipeline import tune_gc  # noqa: E402
from telemetry.spans.correlation import RequestTraceIndex  # noqa: E402
from telemetry.spans.normalize import SpanNormaliser  # noqa: E402
from telemetry.spans.otlp_lean import decode_request  # noqa: E402
from telemetry.traces import Normalised  # noqa: E402

BATCH = 512
START_NS = 1_714_843_200_000_000_000
PODS = [
    ("productpage-v1", "productpage", "v1", "10.244.0.11"),
    ("reviews-v1", "reviews", "v1", "10.244.0.13"),
    ("reviews-v2", "reviews", "v2", "10.244.0.14"),
    ("reviews-v3", "reviews", "v3", "10.244.0.15"),
    ("ratings-v1", "ratings", "v1", "10.244.0.16"),
]
CALLS = [("details", "10.244.0.12"), ("reviews", "10.244.0.14"), ("ratings", "10.244.0.16")]


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _proxy_span(rng: random.Random, index: int) -> Span:
    workload, app, version, ip = PODS[index % len(PODS)]
    service, upstream_ip = CALLS[index % len(CALLS)]
    code = rng.choice((200,) * 18 + (503, 404))
    tags = {
        "component": "proxy",
        "node_id": f"sidecar~{ip}~{workload}-7bf8c9648f-xk2zq.default~default.svc.cluster.local",
        "guid:x-request-id": str(uuid.UUID(int=rng.getrandbits(128))),
        "http.url": f"http://{service}:9080/{service}/{index % 50}",
        "http.method": "GET",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
        "peer.address": ip,
        "upstream_cluster.name": f"outbound|9080||{service}.default.svc.cluster.local",
        "upstream_address": f"{upstream_ip}:9080",
        "http.status_code": str(code),
        "response_flags": "-" if code != 503 else "UF,URX",
        "istio.canonical_service": app,
        "istio.canonical_revision": version,
        "response_size": str(rng.randint(100, 6000)),
    }
    return _span(rng, tags, Span.SPAN_KIND_CLIENT)


def _app_span(rng: random.Random, index: int) -> Span:
    service, _ = CALLS[index % len(CALLS)]
    attributes: dict[str, str | int] = {
        "http.request.method": "GET",
        "http.response.status_code": rng.choice((200,) * 18 + (503, 404)),
        "url.full": f"http://{service}:9080/{service}/{index % 50}",
        "url.scheme": "http",
        "server.address": service,
        "server.port": 9080,
        "network.protocol.version": "1.1",
        "network.peer.address": "10.244.0.14",
        "user_agent.original": "python-requests/2.31",
        "http.request.body.size": 0,
        "http.response.body.size": rng.randint(100, 6000),
        "thread.name": "MainThread",
    }
    return _span(rng, attributes, Span.SPAN_KIND_CLIENT)


def _span(rng: random.Random, attributes: dict[str, str | int], kind: int) -> Span:
    start = START_NS + rng.randint(0, 10**12)
    return Span(
        trace_id=rng.getrandbits(128).to_bytes(16, "big"),
        span_id=rng.getrandbits(64).to_bytes(8, "big"),
        parent_span_id=rng.getrandbits(64).to_bytes(8, "big"),
        kind=kind,
        name="outbound",
        start_time_unix_nano=start,
        end_time_unix_nano=start + rng.randint(1, 900) * 1_000_000,
        attributes=[_kv(key, value) for key, value in attributes.items()],
    )


def batches(kind: str, spans: int) -> list[bytes]:
    rng = random.Random(7)
    make = _proxy_span if kind == "proxy" else _app_span
    out = []
    for first in range(0, spans, BATCH):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        service = "reviews.default" if kind == "proxy" else "productpage"
        resource_spans.resource.attributes.append(_kv("service.name", service))
        resource_spans.resource.attributes.append(_kv("k8s.namespace.name", "default"))
        resource_spans.scope_spans.add().spans.extend(make(rng, first + i) for i in range(min(BATCH, spans - first)))
        out.append(request.SerializeToString())
    return out


def measure(kind: str, spans: int) -> None:
    tune_gc()  # as the collector runs
    payloads = batches(kind, spans)
    decode = ExportTraceServiceRequest.FromString
    started = time.process_time()
    for payload in payloads:
        decode(payload)
    bare = spans / (time.process_time() - started)

    # As the OTLP receivers do it: the bytes parsed lean (otlp_lean), the attributes read from that.
    lean_rate = _normalise_rate(payloads, lambda normalise, payload: normalise.normalise_batch(decode_request(payload)))
    # From decoded messages (a caller with only ResourceSpans: the attributes walked in Python).
    rate, records, app_spans = _normalise_rate(
        payloads, lambda normalise, payload: normalise(decode(payload).resource_spans), counts=True
    )
    assert records + app_spans == spans, (records, app_spans)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{kind:6s} {spans:>9,} spans  decode+normalise {lean_rate:>10,.0f} spans/CPU-s as received"
        f"  ({rate:>9,.0f}/s from messages; bare decode {bare:>11,.0f}/s)  -> {records:,} Records,"
        f" {app_spans:,} Spans  peak RSS {peak_mib:,.0f} MiB"
    )


def _normalise_rate(
    payloads: list[bytes], run: Callable[[SpanNormaliser, bytes], Normalised], counts: bool = False
) -> Any:
    normalise = SpanNormaliser(PeerTable(), request_index=RequestTraceIndex())
    records = app_spans = 0
    started = time.process_time()
    for payload in payloads:
        result = run(normalise, payload)
        records += len(result.records)
        app_spans += len(result.spans)
    rate = (records + app_spans) / (time.process_time() - started)
    return (rate, records, app_spans) if counts else rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--kinds", default="proxy,app")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.spans)
        return
    for kind in args.kinds.split(","):
        subprocess.run([sys.executable, __file__, "--child", kind, "--spans", str(args.spans)], check=True)


if __name__ == "__main__":
    main()
