"""Offline ingest: whole access-log files in; a summary, the metrics exposition and the graph out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import BinaryIO

import networkx as nx

from servicegraph.builder import GraphOptions, build_graph
from servicegraph.model import GraphType
from servicegraph.sources.live import cumulative_traffic
from servicegraph.traffic import Traffic
from telemetry.config import PipelineConfig
from telemetry.envoy.parser import make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.prometheus.config import PrometheusConfig
from telemetry.exporters.prometheus.sink import PrometheusSink
from telemetry.model import Record, Workload
from telemetry.pipeline import Pipeline, tune_gc
from telemetry.receivers.filelog.identity import identity_from_path
from telemetry.receivers.filelog.lines import decode_lines, none_over, within_limit
from telemetry.receivers.filelog.tailer import SAMPLE_BYTES
from telemetry.receivers.filelog.unwrap import LineUnwrapper
from telemetry.selfmetrics import SelfStats

RECEIVER = "ingest"
CHUNK_BYTES = 1 << 17  # as the tailer reads: a chunk parsed and aggregated while in the CPU cache


@dataclass
class IngestResult:
    records: int
    parse_errors: dict[str, int]
    exposition: bytes
    traffic: Traffic  # everything read, as one window from the first Record's start to the last's
    lines: int = 0
    bytes_read: int = 0
    format_names: list[str] = field(default_factory=list)

    def graph(self, graph_type: GraphType = "workload") -> nx.MultiDiGraph:
        return build_graph(self.traffic, GraphOptions(graph_type=graph_type), source="ingest")


def read_blocks(
    stream: BinaryIO, max_line_bytes: int, on_bytes: Callable[[int], None]
) -> Iterator[tuple[bytes | None, list[tuple[str, str | bytes]]]]:
    """Complete lines a chunk at a time: (the lines as they were read, newline-separated without the last
    newline, or None when the chunk completed no line; [(reason, line) that could not be used])."""
    rest = b""
    skipping = False  # inside a line already reported as too long
    while True:
        chunk = stream.read(CHUNK_BYTES)
        on_bytes(len(chunk))
        if not chunk:
            if rest and not skipping:
                yield rest, []
            return
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue
            chunk = chunk[newline + 1 :]
            skipping = False
        data = rest + chunk if rest else chunk
        last = data.rfind(b"\n")
        rest = data[last + 1 :]
        bad: list[tuple[str, str | bytes]] = []
        if len(rest) > max_line_bytes:
            bad.append(("too_long", rest[:SAMPLE_BYTES]))  # reported once; its remainder is skipped
            skipping = True
            rest = b""
        if last >= 0:
            yield data[:last], bad
        elif bad:
            yield None, bad


def split_block(body: bytes, max_line_bytes: int, bad: list[tuple[str, str | bytes]]) -> list[str]:
    """A block's usable lines; each line that is not (not UTF-8, too long) is added to ``bad``."""

    def on_bad(reason: str, line: str | bytes) -> None:
        bad.append((reason, line))

    lines, clean = decode_lines(body, on_bad)
    usable = lines if clean else [line for line in lines if line is not None]
    return within_limit(usable, max_line_bytes, on_bad, SAMPLE_BYTES)  # type: ignore[arg-type]


def ingest(
    paths: Iterable[str],
    fmt: str = "auto",
    reporter: Workload | None = None,
    max_line_bytes: int = 65536,
    progress: bool = False,
    max_series_per_metric: int = 10_000,
) -> IngestResult:
    paths = list(paths)
    stats = SelfStats()
    peers = PeerTable()
    metrics = PrometheusSink(PrometheusConfig(max_series_per_metric=max_series_per_metric), stats, serve=False)
    defaults = PipelineConfig()
    span = StartTimes()
    pipeline = Pipeline(
        [("prometheus", metrics), ("start_times", span)],
        stats,
        defaults.queue_size,
        defaults.batch_size,
        threaded=False,
    )
    pipeline.start()
    tune_gc()
    total_size = sum(os.path.getsize(path) for path in paths if path != "-" and os.path.isfile(path))
    bar = _progress_bar(total_size) if progress else None
    lines = 0
    bytes_read = 0
    format_names = []

    def advance(count: int) -> None:
        nonlocal bytes_read
        bytes_read += count
        if bar is not None:
            bar.update(count)

    try:
        for path in paths:
            identity = reporter or identity_from_path(path) or Workload()
            parser = make_parser(fmt, identity, peers)
            unwrapper = LineUnwrapper()
            errors: list[tuple[str, str]] = []
            with _open(path) as stream:
                for body, bad in read_blocks(stream, max_line_bytes, advance):
                    # A block of plain lines may be read whole; when not, it is split into lines.
                    block = None
                    if body is not None and unwrapper.kind == "plain" and none_over(body, max_line_bytes):
                        block = parser.parse_block(body)
                    if body is None:
                        records = []
                    elif block is not None:
                        records = block
                        lines += len(block)
                    else:
                        decoded = split_block(body, max_line_bytes, bad)
                        lines += len(decoded)
                        if unwrapper.kind != "plain":
                            decoded = [line for line in map(unwrapper.feed, decoded) if line is not None]
                        records = parser.parse_lines(decoded, errors)
                    lines += len(bad)
                    for reason, _ in bad:
                        stats.parse_error(RECEIVER, reason)
                    for reason, _ in errors:
                        stats.parse_error(RECEIVER, reason)
                    errors.clear()
                    pipeline.submit(records, RECEIVER, wait=None)
            # A partial line the file ended in the middle of is still a line; an overlong join is not.
            tail = unwrapper.flush()
            records = parser.parse_lines(tail, errors)
            lines += len(tail)
            for reason, _ in errors:
                stats.parse_error(RECEIVER, reason)
            errors.clear()
            if unwrapper.overflows:
                stats.parse_error(RECEIVER, "too_long", unwrapper.overflows)
            pipeline.submit(records, RECEIVER, wait=None)
            format_names.append(parser.format_name)
    finally:
        pipeline.shutdown(timeout=600)
        if bar is not None:
            bar.close()
    start, end = span.bounds()
    return IngestResult(
        records=stats.records_received.get(RECEIVER, 0),
        parse_errors={reason: count for (_, reason), count in stats.parse_errors.items()},
        exposition=metrics.exposition(),
        traffic=cumulative_traffic(metrics.metrics, None, start, end),
        lines=lines,
        bytes_read=bytes_read,
        format_names=format_names,
    )


_START_TIME = attrgetter("start_time")


class StartTimes:
    """A sink noting the first and last Record start times, so offline rates are per second of the logs."""

    def __init__(self) -> None:
        self.first = ""
        self.last = ""

    def consume(self, batch: Sequence[Record]) -> None:
        times = list(filter(None, map(_START_TIME, batch)))
        if times:
            low, high = min(times), max(times)  # RFC 3339 in one zone sorts as text
            self.first = min(self.first, low) if self.first else low
            self.last = max(self.last, high)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass

    def bounds(self) -> tuple[float, float]:
        """Unix seconds; a log without times (or of one instant) counts as one second long."""
        start, end = _epoch(self.first), _epoch(self.last)
        if start is None or end is None:
            return 0.0, 1.0
        return start, max(end, start + 1.0)


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _open(path: str) -> BinaryIO:
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path, "rb")


def _progress_bar(total: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, desc="ingest", file=sys.stderr, leave=False)


def format_summary(result: IngestResult, top: int = 10) -> str:
    out = [f"records: {result.records} from {result.lines} lines"]
    if result.parse_errors:
        out.append("parse errors:")
        for reason, count in sorted(result.parse_errors.items(), key=lambda item: -item[1]):
            out.append(f"  {reason}: {count}")
    else:
        out.append("parse errors: none")

    # The service graph's edges are each call's first hop: caller -> service, each call once.
    graph = result.graph("service")
    edges = [(attrs, source, target, protocol) for source, target, protocol, attrs in graph.edges(keys=True, data=True)]

    def edge_name(source: str, target: str, protocol: str) -> str:
        def name(node: str) -> str:
            attrs = graph.nodes[node]
            return f"{attrs['name']}.{attrs['namespace']}" if attrs["namespace"] else str(attrs["name"])

        return f"{name(source)} -> {name(target)} ({protocol})"

    by_requests = sorted(edges, key=lambda e: (-e[0]["requests"], e[1:]))[:top]
    out.append("top edges by requests:")
    for attrs, *key in by_requests:
        out.append(f"  {attrs['requests']:>10.0f}  {edge_name(*key)}")
    failing = [edge for edge in edges if edge[0]["errors"]]
    by_errors = sorted(failing, key=lambda e: (-e[0]["errors"], e[1:]))[:top]
    out.append("top edges by errors:" if by_errors else "top edges by errors: none")
    for attrs, *key in by_errors:
        out.append(f"  {attrs['errors']:>10.0f}  {attrs['error_pct']:5.1f}%  {edge_name(*key)}")
    return "\n".join(out)
