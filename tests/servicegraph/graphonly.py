"""A real collector running only the graph (its API and UI): every receiver off, the metrics server when asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telemetry.collector import Collector
from telemetry.config import Config
from telemetry.confload import load_mapping

from realparts import free_port


def start_graph_collector(
    graph: dict[str, Any], environ: Mapping[str, str] | None = None, metrics: bool = False
) -> Collector:
    """Started on a free loopback port with ``graph`` merged into the graph config; the caller shuts it down.

    ``metrics``: serve the Prometheus exporter's /metrics too (on another free port).
    """
    prometheus = {"endpoint": f"127.0.0.1:{free_port()}"} if metrics else {"enabled": False}
    config = load_mapping(
        Config,
        {
            "receivers": {
                "filelog": {"enabled": False},
                "als": {"enabled": False},
                "otlp": {"grpc": {"enabled": False}, "http": {"enabled": False}},
                "zipkin": {"enabled": False},
            },
            "exporters": {"prometheus": prometheus},
            "graph": {"endpoint": f"127.0.0.1:{free_port()}", **graph},
        },
        environ if environ is not None else {},
    )
    collector = Collector(config)
    collector.start()
    assert collector.graph is not None
    return collector
