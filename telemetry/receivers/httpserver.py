"""The HTTP side shared by the OTLP/HTTP and Zipkin receivers: one POST path per route, bodies bounded.

A route sees only a decoded body and its media type and answers with a ``Response``; this module owns
what every route would otherwise repeat: 404 and 405, 415 for a media type the route does not read,
the body limit (413) and decompression, bearer-token authentication (401) and TLS when configured,
counting rejected requests as parse errors, and the server's lifecycle. The standard library's
ThreadingHTTPServer serves it, with the number of connections bounded: a connection beyond the bound
waits in the listen backlog until one closes.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from telemetry.endpoints import split_endpoint
from telemetry.receivers.httpbody import BodyError, decode_content, read_raw
from telemetry.security.auth import UNAUTHENTICATED, BearerAuth, challenge, refusal
from telemetry.security.config import AuthConfig, TlsConfig
from telemetry.security.connections import IDLE_TIMEOUT, ConnectionSlotsMixin
from telemetry.security.tls import TlsServerMixin, server_context
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


class Route(Protocol):
    path: str
    media_types: frozenset[str]

    def handle(self, body: bytes, media_type: str) -> Response:
        """Answer a decoded body; raise BodyError when it is malformed."""
        ...

    def error(self, error: BodyError, media_type: str) -> Response:
        """The answer to a rejected request, in the route's own error format."""
        ...


def config_errors(endpoint: str, max_body_bytes: int, max_connections: int) -> list[str]:
    """What is wrong with an HTTP receiver's common config keys, as ``validate()`` reports it."""
    errors = []
    try:
        split_endpoint(endpoint)
    except ValueError:
        errors.append(f"endpoint: expected host:port, got {endpoint!r}")
    if max_body_bytes < 1:
        errors.append("max_body_bytes: must be at least 1")
    if max_connections < 1:
        errors.append("max_connections: must be at least 1")
    return errors


def text(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, message.encode() + b"\n", TEXT, headers)


_PROTOCOL_ERRORS = {
    400: "bad_request",
    414: "request_line_too_long",
    431: "headers_too_large",
    501: "unsupported_method",
    505: "unsupported_http_version",
}


@dataclass(frozen=True, slots=True)
class _Site:
    receiver: str
    routes: dict[str, Route]
    stats: SelfStats
    max_body_bytes: int
    auth: BearerAuth


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    def do_POST(self) -> None:
        site = self.server.site
        route = site.routes.get(self.path.split("?", 1)[0])
        if not self._authenticated(site, route):
            return
        if route is None:
            self._send(text(404, f"not found: {self.path}"), body_unread=True)
            return
        media_type = self._media_type()
        if media_type not in route.media_types:
            known = ", ".join(sorted(route.media_types))
            error = BodyError(
                415, "unsupported_content_type", f"unsupported_content_type: {media_type!r} (use {known})"
            )
            self._reject(site, error, text(415, str(error)), body_unread=True)
            return
        try:
            raw = read_raw(
                self.rfile,
                self.headers.get("Content-Length"),
                "chunked" in (self.headers.get("Transfer-Encoding") or "").lower(),
                site.max_body_bytes,
            )
        except BodyError as error:
            self._reject(site, error, route.error(error, media_type), body_unread=True)
            return
        try:
            response = route.handle(
                decode_content(raw, self.headers.get("Content-Encoding"), site.max_body_bytes), media_type
            )
        except BodyError as error:
            self._reject(site, error, route.error(error, media_type))
            return
        except Exception:
            log.exception("%s failed on a request to %s", site.receiver, self.path)
            response = text(500, "internal error")
        self._send(response)

    def _media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _authenticated(self, site: _Site, route: Route | None) -> bool:
        """Whether the request may go on; when not, it has been answered 401 and counted."""
        authorization = self.headers.get("Authorization")
        if site.auth.allows(authorization):
            return True
        site.stats.parse_error(site.receiver, UNAUTHENTICATED)
        headers = (("WWW-Authenticate", challenge(authorization)),)
        media_type = self._media_type()
        if route is not None and media_type in route.media_types and self.command == "POST":
            answer = route.error(BodyError(401, UNAUTHENTICATED, refusal(authorization)), media_type)
            self._send(replace(answer, headers=answer.headers + headers), body_unread=True)
        else:
            self._send(text(401, refusal(authorization), headers), body_unread=True)
        return False

    def _not_post(self) -> None:
        route = self.server.site.routes.get(self.path.split("?", 1)[0])
        if not self._authenticated(self.server.site, route):
            return
        if route is not None:
            self._send(
                text(405, f"method {self.command} not allowed: use POST", (("Allow", "POST"),)), body_unread=True
            )
        else:
            self._send(text(404, f"not found: {self.path}"), body_unread=True)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post

    def do_HEAD(self) -> None:
        self._not_post()

    def _reject(self, site: _Site, error: BodyError, response: Response, body_unread: bool = False) -> None:
        site.stats.parse_error(site.receiver, error.reason)
        self._send(response, body_unread)

    def _send(self, response: Response, body_unread: bool = False) -> None:
        # A body left unread would be taken for the next request: such a connection is closed.
        has_body = self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers
        if body_unread and has_body:
            self.close_connection = True
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The standard library answers what it cannot parse (a request line over 64 KiB, over 100
        # headers or a header line over 64 KiB, a malformed request line) itself: counted here.
        self.server.site.stats.parse_error(self.server.site.receiver, _PROTOCOL_ERRORS.get(code, f"http_{code}"))
        super().send_error(code, message, explain)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ConnectionSlotsMixin, TlsServerMixin, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], site: _Site, max_connections: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.site = site
        self.ssl_context = ssl_context
        self.init_slots(max_connections)
        super().__init__(address, _Handler)


class HttpReceiverServer:
    """Serves ``routes`` on ``endpoint`` from a background thread; ``start()`` once, ``shutdown()`` any time."""

    def __init__(
        self,
        endpoint: str,
        routes: Sequence[Route],
        receiver: str,
        stats: SelfStats,
        max_body_bytes: int,
        max_connections: int,
        auth: AuthConfig | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._site = _Site(
            receiver, {route.path: route for route in routes}, stats, max_body_bytes, BearerAuth(auth or AuthConfig())
        )
        self._max_connections = max_connections
        self._tls = tls if tls is not None and tls.enabled else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def port(self) -> int:
        """The bound port (known after start(); 0 before)."""
        return self._server.server_address[1] if self._server is not None else 0

    def start(self) -> None:
        with self._lock:
            if self._server is not None or self._stopped:
                raise RuntimeError(f"{self._site.receiver} receiver: start() may be called once, before shutdown()")
            host, port = split_endpoint(self._endpoint)
            context = server_context(self._tls, f"{self._site.receiver} receiver") if self._tls is not None else None
            try:
                server = _Server((host, port), self._site, self._max_connections, context)
            except OSError as error:
                raise OSError(f"{self._site.receiver} receiver cannot listen on {self._endpoint}: {error}") from error
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"meshscope-{self._site.receiver}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def shutdown(self) -> None:
        """Stop accepting, let requests being answered finish, close idle connections. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.closing = True
        server.shutdown()
        server.close_idle_connections()
        server.server_close()
        thread.join()
