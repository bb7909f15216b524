"""Bounded connections for the threaded HTTP servers (the receivers', the graph API's and UI's).

A thread per connection is cheap until a client opens thousands or opens one and sends nothing: each
server holds at most ``max_connections`` at once (a connection beyond the bound waits in the listen
backlog until one closes) and a connection that sends nothing for ``IDLE_TIMEOUT`` seconds is closed,
so a slow or idle client holds a slot for a bounded time. Handlers apply the timeout themselves
(``StreamRequestHandler.timeout``).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from telemetry.security.tls import shutdown_read

# An idle keep-alive connection holds one of the bounded connection slots for at most this long.
IDLE_TIMEOUT = 15.0
_SLOT_POLL = 0.25


class ConnectionSlotsMixin:
    """For a socketserver.ThreadingMixIn server (listed before it): call ``init_slots`` in ``__init__``."""

    closing = False  # set before shutdown(): a connection waiting for a slot is then closed

    def init_slots(self, max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=_SLOT_POLL):
            if self.closing:
                self.shutdown_request(request)  # type: ignore[attr-defined]
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request(request, client_address)  # type: ignore[misc]
        except Exception:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self._release(request)

    def _release(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        self._slots.release()

    def close_idle_connections(self) -> None:
        """End every open connection's reading side: idle keep-alive connections close at once, a request
        being answered still gets its response."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                shutdown_read(connection)
            except OSError:
                pass
