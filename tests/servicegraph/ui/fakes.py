"""The UI's test inputs: the real graph API in-process over the Bookinfo-shaped test traffic, and a
backend around it whose graphs a test can change (hide a node, fail, report collector health)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

from flask import Flask
from graphdata import case_traffic
from werkzeug.serving import make_server

from servicegraph.api.routes import create_app
from servicegraph.health import HealthConfig
from servicegraph.service import GraphService
from servicegraph.traffic import Traffic
from servicegraph.ui.backend import BackendError, LocalBackend

NOW = 1_800_000_000.0


@cache
def _traffic() -> Traffic:
    return case_traffic("bookinfo")


class BookinfoSource:
    """The test Bookinfo traffic as a 100 s window ending now, and as a series of three such windows."""

    def traffic(self, window: float, end: float | None = None) -> Traffic:
        return dataclasses.replace(_traffic(), start=NOW - 100, end=NOW)

    def traffic_series(self, window: float, points: int, end: float | None = None) -> list[Traffic]:
        return [dataclasses.replace(_traffic(), start=NOW - 100 * (3 - i), end=NOW - 100 * (2 - i)) for i in range(3)]


def bookinfo_api() -> Flask:
    return create_app(GraphService(BookinfoSource(), "test"), HealthConfig(), 300.0)  # type: ignore[arg-type]


class FakeBackend(LocalBackend):
    """The Bookinfo API; ``hidden`` node ids (and their edges) left out of graphs, ``failure`` raised."""

    def __init__(self, app: Flask | None = None) -> None:
        super().__init__(app or bookinfo_api())
        self.hidden: set[str] = set()
        self.failure: str | None = None
        self.collector: dict[str, Any] | None = None
        self.graph_calls = 0

    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]:
        self.graph_calls += 1
        if self.failure:
            raise BackendError(self.failure)
        document = super().graph(window, graph_type, namespaces, hide_idle)
        kept = [
            element
            for element in document["elements"]
            if not {element["data"]["id"], element["data"].get("source"), element["data"].get("target")} & self.hidden
        ]
        return {**document, "elements": kept}

    def status(self) -> dict[str, Any] | None:
        return self.collector


def serve(app: Flask) -> Iterator[str]:
    """``app`` on a free loopback port, in a thread, for as long as the generator runs; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def bookinfo_document(graph_type: str = "workload") -> dict[str, Any]:
    return LocalBackend(bookinfo_api()).graph("5m", graph_type, [], False)


def element(document: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(item for item in document["elements"] if item["data"]["id"] == element_id)
