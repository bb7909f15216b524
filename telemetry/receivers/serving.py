"""What every network receiver is on the outside: a server it starts, stops and reports the port of."""

from __future__ import annotations

from typing import Protocol


class Server(Protocol):
    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class ServingReceiver:
    """A receiver that is one server: subclasses build ``self._server`` in their constructor."""

    _server: Server

    @property
    def port(self) -> int:
        """The bound port (known after start(); 0 before)."""
        return self._server.port

    def start(self) -> None:
        self._server.start()

    def shutdown(self) -> None:
        """Idempotent: stops accepting and lets calls in flight finish within the server's grace period."""
        self._server.shutdown()
