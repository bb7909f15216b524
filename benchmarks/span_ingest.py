"""Span ingest throughput: real HTTP requests into the OTLP/HTTP (protobuf) and Zipkin v2 (JSON) receivers.

Batches of 512 spans with 12 attributes each are posted over one keep-alive connection by a client in
a child process; the receiver decodes them and hands them through a real TraceIngest and a real
Pipeline: first with a trivial normaliser that only counts (receive + decode), then end to end with the
collector's normaliser and the Istio metrics aggregation. CPU time is the receiving process's own (the client's
is not in it), so spans per CPU-second is the receive+decode cost per core.

    python benchmarks/span_ingest.py [--batches 200] [--spans 512] [--repeat 3] [--proxies 20]

Each batch holds the spans of ``--proxies`` proxies (each with its own local service of four), spread
evenly: 20 (the default) as a collector forwarding a mesh's spans would send them, 1 as each Envoy
sends its own.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans  # noqa: E402

from telemetry.model import Record  # noqa: E402
from telemetry.pipeline import Pipeline, tune_gc  # noqa: E402
from telemetry.receivers.otlp.config import OtlpHttpConfig  # noqa: E402
from telemetry.receivers.otlp.factory import create_http_receiver  # noqa: E402
from telemetry.receivers.zipkin.config import ZipkinConfig  # noqa: E402
from telemetry.receivers.zipkin.factory import create_receiver as create_zipkin  # noqa: E402
from telemetry.selfmetrics import SelfStats  # noqa: E402
from telemetry.spans.from_zipkin import ZipkinSpans  # noqa: E402
from telemetry.traces import Normalised, OtlpSpans, SpanBatch, TraceIngest  # noqa: E402

SERVICES = ["productpage", "reviews", "ratings", "details"]


def tags(rng: random.Random, node: int) -> dict[str, str]:
    return {
        "http.method": "GET",
        "http.url": f"http://reviews:9080/reviews/{rng.randint(0, 10**6)}",
        "http.status_code": rng.choice(["200", "200", "200", "503"]),
        "http.protocol": "HTTP/1.1",
        "user_agent": "python-requests/2.31",
        "request_size": "0",
        "response_size": str(rng.randint(100, 6000)),
        "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
        "node_id": f"sidecar~10.244.0.{node % 250}~productpage-v1.default~default.svc.cluster.local",
        "guid:x-request-id": os.urandom(16).hex(),
        "istio.namespace": "default",
        "component": "proxy",
    }


def zipkin_body(rng: random.Random, count: int, nodes: Sequence[int] = range(20)) -> bytes:
    spans = []
    for index in range(count):
        node = nodes[index % len(nodes)]
        start = 1_714_564_800_000_000 + index * 10
        spans.append(
            {
                "traceId": os.urandom(16).hex(),
                "id": os.urandom(8).hex(),
                "parentId": os.urandom(8).hex(),
                "kind": "CLIENT",
                "name": "reviews.default.svc.cluster.local:9080/*",
                "timestamp": start,
                "duration": rng.randint(100, 90_000),
                "localEndpoint": {"serviceName": SERVICES[node % 4], "ipv4": "10.244.0.7"},
                "remoteEndpoint": {"serviceName": "reviews", "ipv4": "10.244.0.12", "port": 9080},
                "tags": tags(rng, node),
            }
        )
    return orjson.dumps(spans)


def otlp_body(rng: random.Random, count: int, nodes: Sequence[int] = range(20)) -> bytes:
    request = ExportTraceServiceRequest()
    groups = [request.resource_spans.add() for _ in SERVICES]
    for group, service in zip(groups, SERVICES, strict=True):
        group.resource.attributes.add(key="service.name").value.string_value = service
        group.scope_spans.add()
    for index in range(count):
        node = nodes[index % len(nodes)]
        span = (
            groups[node % 4]
            .scope_spans[0]
            .spans.add(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                parent_span_id=os.urandom(8),
                name="reviews.default.svc.cluster.local:9080/*",
                kind=3,
                start_time_unix_nano=1_714_564_800_000_000_000 + index,
                end_time_unix_nano=1_714_564_800_090_000_000 + index,
            )
        )
        for key, value in tags(rng, node).items():
            span.attributes.add(key=key).value.string_value = value
    return request.SerializeToString()


def client(port: int, path: str, content_type: str, bodies: Sequence[bytes], batches: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for index in range(batches):
        connection.request("POST", path, body=bodies[index % len(bodies)], headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"{path}: HTTP {response.status}")
    connection.close()


class CountingNormaliser:
    """Counts the spans as the receiver decoded them: OTLP protobuf parsed lean only, Zipkin JSON read but
    not made OTLP (see otlp_lean.decode_request, from_zipkin.read_json)."""

    def __init__(self) -> None:
        self.spans = 0

    def __call__(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        self.spans += sum(len(scope.spans) for item in resource_spans for scope in item.scope_spans)
        return Normalised([Record()], [])

    def normalise_batch(self, batch: SpanBatch) -> Normalised:
        if isinstance(batch, ZipkinSpans) and batch.columns is not None:
            self.spans += len(batch.columns.services)
            return Normalised([Record()], [])
        if isinstance(batch, ZipkinSpans) and batch.groups is not None:
            self.spans += sum(len(spans) for scopes in batch.groups.values() for spans in scopes.values())
            return Normalised([Record()], [])
        if isinstance(batch, OtlpSpans) and batch.lean is not None:
            self.spans += sum(len(scope.spans) for item in batch.lean for scope in item.scope_spans)
            return Normalised([Record()], [])
        return self(batch.resource_spans)


class NullSink:
    def consume(self, batch: Sequence[Record]) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class RealNormaliser:
    """The collector's own normaliser (these are proxy spans: each becomes a Record), counting spans."""

    def __init__(self) -> None:
        from telemetry.envoy.peers import PeerTable
        from telemetry.spans.correlation import RequestTraceIndex
        from telemetry.spans.normalize import SpanNormaliser

        self._normalise = SpanNormaliser(PeerTable(), request_index=RequestTraceIndex())
        self.spans = 0

    def __call__(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        return self._count(self._normalise(resource_spans))

    def normalise_batch(self, batch: SpanBatch) -> Normalised:
        return self._count(self._normalise.normalise_batch(batch))

    def _count(self, result: Normalised) -> Normalised:
        self.spans += len(result.records) + len(result.spans) + result.rejected
        return result


def measure(kind: str, batches: int, spans: int, end_to_end: bool, results: Any = None, proxies: int = 20) -> None:
    tune_gc()
    rng = random.Random(7)
    stats = SelfStats()
    if end_to_end:
        from telemetry.exporters.prometheus.config import PrometheusConfig
        from telemetry.exporters.prometheus.sink import PrometheusSink

        sink = PrometheusSink(PrometheusConfig(), stats, serve=False)
    else:
        sink = NullSink()
    pipeline = Pipeline([("sink", sink)], stats)
    pipeline.start()
    normaliser = RealNormaliser() if end_to_end else CountingNormaliser()
    ingest = TraceIngest(pipeline, stats, normalise=normaliser)
    if kind == "otlp-http-protobuf":
        receiver = create_http_receiver(OtlpHttpConfig(endpoint="127.0.0.1:0"), ingest, stats)
        path, content_type, make = "/v1/traces", "application/x-protobuf", otlp_body
    else:
        receiver = create_zipkin(ZipkinConfig(endpoint="127.0.0.1:0"), ingest, stats)
        path, content_type, make = "/api/v2/spans", "application/json", zipkin_body
    # Eight bodies: with fewer than 20 proxies each, each body its own (the first 20 are the same).
    bodies = [make(rng, spans, range(number * proxies, (number + 1) * proxies) if proxies < 20 else range(proxies))
              for number in range(8)]  # fmt: skip
    receiver.start()
    # The client runs in its own process so that its CPU time is not counted as the receiver's.
    warmup = multiprocessing.Process(target=client, args=(receiver.port, path, content_type, bodies, 8))
    warmup.start()
    warmup.join()
    normaliser.spans = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    sender = multiprocessing.Process(target=client, args=(receiver.port, path, content_type, bodies, batches))
    sender.start()
    sender.join()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    receiver.shutdown()
    pipeline.shutdown(timeout=600)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    count = normaliser.spans
    assert count == batches * spans, (count, batches * spans)
    line = (
        f"{kind + (' end-to-end' if end_to_end else ''):31s} {count:>9,d} spans  {len(bodies[0]) / spans:6.0f} B/span  "
        f"{count / elapsed:>9,.0f} spans/s wall  {count / cpu:>9,.0f} spans/CPU-s  "
        f"peak RSS {after.ru_maxrss / 1024:.0f} MiB"
    )
    if results is None:
        print(line)
    else:
        results.put((count / cpu, line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--proxies", type=int, default=20, help="proxies whose spans each batch holds")
    parser.add_argument("--kinds", default="otlp-http-protobuf,zipkin-json")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row; the fastest (by CPU) is shown, with the range"
    )
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for end_to_end in (False, True):
        for kind in args.kinds.split(","):
            # A fresh process per measurement, so that peak RSS is its own. End to end: the real
            # normaliser turns the proxy spans into Records, which the Istio metrics aggregate. On a
            # shared machine other processes slow some runs down: the best of several is the code's.
            results = context.Queue()
            runs = []
            for _ in range(args.repeat):
                process = context.Process(
                    target=measure, args=(kind, args.batches, args.spans, end_to_end, results, args.proxies)
                )
                process.start()
                runs.append(results.get())
                process.join()
                if process.exitcode:
                    raise SystemExit(f"{kind} failed")
            rate, line = max(runs)
            spread = f"  (of {len(runs)}: {min(runs)[0]:,.0f}..{rate:,.0f})" if len(runs) > 1 else ""
            print(line + spread)


if __name__ == "__main__":
    main()
