"""The HTTP server of the API and UI: a threaded WSGI server in a background thread, stopped on shutdown."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from telemetry.endpoints import split_endpoint

log = logging.getLogger(__name__)
# Werkzeug logs every request at INFO; a UI polling each second would drown the collector's own log.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class GraphServer:
    def __init__(self, app: Flask, endpoint: str) -> None:
        self._app = app
        self._endpoint = endpoint
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        host, port = split_endpoint(self._endpoint, "graph.endpoint")
        try:
            self._server = make_server(host, port, self._app, threaded=True)
        except OSError as error:
            raise OSError(f"graph.endpoint: cannot listen on {self._endpoint}: {error.strerror}") from error
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-http", daemon=True)
        self._thread.start()
        log.info("serving the graph API on http://%s:%d/api/graph", host, self.port)

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
