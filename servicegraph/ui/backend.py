"""Where the UI gets its graphs: the meshscope HTTP API, over the network or in-process.

Every backend answers with the API's own JSON documents (``/api/graph?format=cytoscape``,
``/api/node``, ``/api/edge``, ``/api/status``), so the UI reads a remote collector, a local one and
a Prometheus-backed GraphService the same way.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from flask import Flask


class BackendError(RuntimeError):
    """The API could not be reached or refused a request; the message names the URL and the reason."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GraphBackend(Protocol):
    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]: ...

    def node(self, node_id: str, window: str, graph_type: str) -> dict[str, Any]: ...

    def edge(self, source: str, target: str, window: str, graph_type: str) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any] | None:
        """The collector's self-health, or None where the API has no /api/status."""
        ...


def graph_path(window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> str:
    query = {"format": "cytoscape", "window": window, "graph_type": graph_type, "hide_idle": "1" if hide_idle else "0"}
    if namespaces:
        query["namespace"] = ",".join(namespaces)
    return "/api/graph?" + urllib.parse.urlencode(query)


def node_path(node_id: str, window: str, graph_type: str) -> str:
    query = urllib.parse.urlencode({"window": window, "graph_type": graph_type})
    return f"/api/node/{_segment(node_id)}?{query}"


def edge_path(source: str, target: str, window: str, graph_type: str) -> str:
    query = urllib.parse.urlencode({"window": window, "graph_type": graph_type})
    return f"/api/edge/{_segment(source)}/{_segment(target)}?{query}"


def _segment(node_id: str) -> str:
    # Node ids keep their colons readable; anything else unusual in a path segment is escaped.
    return urllib.parse.quote(node_id, safe=":@")


class _ApiBackend:
    """The four documents over any ``fetch(path) -> (status, body)``."""

    where = "the graph API"

    def _fetch(self, path: str) -> tuple[int, bytes]:
        raise NotImplementedError

    def _get(self, path: str, missing_ok: bool = False) -> dict[str, Any] | None:
        status, body = self._fetch(path)
        if status == 404 and missing_ok:
            return None
        if status != 200:
            raise BackendError(f"{self.where}{path.split('?')[0]}: HTTP {status}: {_error_text(body)}", status)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise BackendError(f"{self.where}{path.split('?')[0]}: not JSON: {error}") from None
        if not isinstance(document, dict):
            raise BackendError(f"{self.where}{path.split('?')[0]}: expected a JSON object")
        return document

    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]:
        document = self._get(graph_path(window, graph_type, namespaces, hide_idle))
        assert document is not None
        return document

    def node(self, node_id: str, window: str, graph_type: str) -> dict[str, Any]:
        document = self._get(node_path(node_id, window, graph_type))
        assert document is not None
        return document

    def edge(self, source: str, target: str, window: str, graph_type: str) -> dict[str, Any]:
        document = self._get(edge_path(source, target, window, graph_type))
        assert document is not None
        return document

    def status(self) -> dict[str, Any] | None:
        return self._get("/api/status", missing_ok=True)


def _error_text(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "no message"
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document["error"])
    return "no message"


class HttpBackend(_ApiBackend):
    """A meshscope API at ``base_url`` (``http://host:8050``), read with urllib."""

    def __init__(self, base_url: str, timeout: float = 10.0, token: str = "") -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.where = self.base_url
        self._timeout = timeout
        self._headers = {"Accept": "application/json"}
        if token:  # the API's bearer token (graph.auth.bearer_token there)
            self._headers["Authorization"] = f"Bearer {token}"

    def _fetch(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BackendError(f"cannot reach {self.base_url}: {reason}") from None


class LocalBackend(_ApiBackend):
    """The API of a Flask app in this process, called through its test client: no socket, no port."""

    where = "local API "

    def __init__(self, app: Flask) -> None:
        self._app = app

    def _fetch(self, path: str) -> tuple[int, bytes]:
        # A client per call: Flask's test client is cheap to make and not shared between threads.
        response = self._app.test_client().get(path)
        return response.status_code, response.get_data()


class CachedBackend:
    """Graphs answered from a short cache: the graph, the side panel and the namespace list of one
    refresh ask for the same document, and should cost one request."""

    def __init__(
        self, backend: GraphBackend, ttl: float = 1.0, size: int = 16, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._graphs: OrderedDict[tuple[object, ...], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]:
        key = (window, graph_type, tuple(sorted(namespaces)), hide_idle)
        now = self._clock()
        with self._lock:
            cached = self._graphs.get(key)
            if cached is not None and now - cached[0] <= self._ttl:
                return cached[1]
        document = self._backend.graph(window, graph_type, namespaces, hide_idle)
        with self._lock:
            self._graphs[key] = (now, document)
            self._graphs.move_to_end(key)
            while len(self._graphs) > self._size:
                self._graphs.popitem(last=False)
        return document

    def last_graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any] | None:
        """The last graph read for this view, however old: what the page shows while its source fails."""
        key = (window, graph_type, tuple(sorted(namespaces)), hide_idle)
        with self._lock:
            cached = self._graphs.get(key)
        return cached[1] if cached is not None else None

    def node(self, node_id: str, window: str, graph_type: str) -> dict[str, Any]:
        return self._backend.node(node_id, window, graph_type)

    def edge(self, source: str, target: str, window: str, graph_type: str) -> dict[str, Any]:
        return self._backend.edge(source, target, window, graph_type)

    def status(self) -> dict[str, Any] | None:
        return self._backend.status()
