"""The HTTP server of the API and UI: a threaded WSGI server in a background thread, stopped on shutdown.

The standard library's WSGI server with a thread per request: it raises a plain OSError when the port
is taken (werkzeug's development server exits the process instead) and logs nothing per request.
"""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask

from telemetry.endpoints import split_endpoint

log = logging.getLogger(__name__)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class GraphServer:
    def __init__(self, app: Flask, endpoint: str) -> None:
        self._app = app
        self._endpoint = endpoint
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        host, port = split_endpoint(self._endpoint, "graph.endpoint")
        try:
            self._server = make_server(host, port, self._app, _ThreadingServer, _QuietHandler)
        except OSError as error:
            raise OSError(f"graph.endpoint: cannot listen on {self._endpoint}: {error.strerror}") from error
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-http", daemon=True)
        self._thread.start()
        log.info("serving the graph API and UI on http://%s:%d/", host, self.port)

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
