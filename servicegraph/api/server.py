"""The HTTP server of the API and UI: a threaded WSGI server in a background thread, stopped on shutdown.

The standard library's WSGI server with a thread per request: it raises a plain OSError when the port
is taken (werkzeug's development server exits the process instead) and logs nothing per request.
In front of the app sits ``_Guard``: request bodies are bounded (413), and with a bearer token
configured every request needs it (401), given as ``Authorization: Bearer <token>`` or, for a browser,
as a session cookie set by opening any page once with ``?token=<token>``. With ``tls`` the port speaks
HTTPS only. The request line (URL and query string) is held to 64 KiB by the standard library (414).
As the receivers' servers do, it serves at most ``MAX_CONNECTIONS`` connections at once and closes
one that sends nothing for ``IDLE_TIMEOUT`` seconds (telemetry/security/connections.py).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from http.cookies import CookieError, SimpleCookie
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import orjson
from flask import Flask

from telemetry.endpoints import split_endpoint
from telemetry.security.auth import SESSION_SECONDS, BearerAuth, challenge, refusal
from telemetry.security.config import AuthConfig, TlsConfig
from telemetry.security.connections import IDLE_TIMEOUT, ConnectionSlotsMixin
from telemetry.security.tls import TlsServerMixin, server_context

log = logging.getLogger(__name__)

# The API takes no bodies; the UI's callbacks post small JSON documents (the view's state).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
SESSION_COOKIE = "meshscope_session"
TOKEN_PARAMETER = "token"
# Probes (Kubernetes, compose) need no token: unauthenticated they are told only that the server is up.
HEALTH_PATH = "/api/health"
# Connections served at once (wsgiref answers one request per connection, so a slot is held briefly);
# more wait in the listen backlog. A browser opens about six per server.
MAX_CONNECTIONS = 64

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingServer(ConnectionSlotsMixin, TlsServerMixin, ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], max_connections: int, idle_timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.idle_timeout = idle_timeout
        self.init_slots(max_connections)
        super().__init__(address, _QuietHandler)


class _QuietHandler(WSGIRequestHandler):
    server: _ThreadingServer

    def setup(self) -> None:
        # The read timeout of every connection, TLS or not: a client that sends nothing frees its slot.
        self.timeout = self.server.idle_timeout  # type: ignore[misc]
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _answer(
    start_response: StartResponse, status: str, document: dict[str, str], headers: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    body = orjson.dumps(document)
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
    return [body]


class _Guard:
    """WSGI middleware: the body bound, then the bearer token when one is configured."""

    def __init__(self, app: WsgiApp, auth: BearerAuth, secure: bool) -> None:
        self._app = app
        self._auth = auth
        self._secure = secure

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _answer(start_response, "400 Bad Request", {"error": "Content-Length is not a number"})
        if length > MAX_REQUEST_BYTES:
            return _answer(
                start_response,
                "413 Content Too Large",
                # The body stays unread: wsgiref answers one request per connection and then closes it.
                {"error": f"too_large: the request body exceeds the limit of {MAX_REQUEST_BYTES} bytes"},
            )
        if not self._auth.enabled:
            return self._app(environ, start_response)
        authorization = environ.get("HTTP_AUTHORIZATION")
        if self._auth.allows(authorization) or self._has_session(environ):
            return self._app(environ, start_response)
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        tokens = [value for name, value in query if name == TOKEN_PARAMETER]
        if tokens and self._auth.matches(tokens[-1]):
            return self._open_session(environ, start_response, query)
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _answer(start_response, "200 OK", {"status": "ok"})
        sent = authorization or (tokens[-1] if tokens else None)
        return _answer(
            start_response,
            "401 Unauthorized",
            {"error": f"{refusal(sent)} (in a browser: open /?{TOKEN_PARAMETER}=<token> once)"},
            [("WWW-Authenticate", challenge(sent))],
        )

    def _has_session(self, environ: dict[str, Any]) -> bool:
        try:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return False
        morsel = cookie.get(SESSION_COOKIE)
        return morsel is not None and self._auth.matches_session(morsel.value)

    def _open_session(
        self, environ: dict[str, Any], start_response: StartResponse, query: list[tuple[str, str]]
    ) -> list[bytes]:
        """Set the session cookie and send the browser to the same page without the token in its address."""
        rest = urlencode([(name, value) for name, value in query if name != TOKEN_PARAMETER])
        location = _same_site_path(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        cookie = (
            f"{SESSION_COOKIE}={self._auth.session_value()}; Max-Age={SESSION_SECONDS}; Path=/; HttpOnly; "
            "SameSite=Strict"
        )
        if self._secure:
            cookie += "; Secure"
        headers = [("Location", f"{location}?{rest}" if rest else location), ("Set-Cookie", cookie)]
        headers.append(("Cache-Control", "no-store"))
        return _answer(start_response, "303 See Other", {"status": "signed in"}, headers)


def _same_site_path(path: str) -> str:
    """``path`` as a Location that stays on this server: percent-encoded (no CR/LF can split the header)
    and with one leading slash (``//evil.example`` would be another host)."""
    try:
        raw = path.encode("latin-1")  # WSGI's PATH_INFO: the request's bytes, decoded as Latin-1
    except UnicodeEncodeError:
        raw = path.encode()
    return "/" + quote(raw, safe="/:@!$&'()*+,;=-._~").lstrip("/")


class GraphServer:
    def __init__(
        self,
        app: Flask,
        endpoint: str,
        auth: AuthConfig | None = None,
        tls: TlsConfig | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._app = app
        self._endpoint = endpoint
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._auth = BearerAuth(auth or AuthConfig())
        self._tls = tls if tls is not None and tls.enabled else None
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    def start(self) -> None:
        host, port = split_endpoint(self._endpoint, "graph.endpoint")
        context = server_context(self._tls, "graph API and UI") if self._tls is not None else None
        guarded = _Guard(self._app, self._auth, context is not None)
        try:
            server = _ThreadingServer((host, port), self._max_connections, self._idle_timeout)
        except OSError as error:
            raise OSError(f"graph.endpoint: cannot listen on {self._endpoint}: {error.strerror}") from error
        server.set_app(guarded)
        if context is not None:
            server.ssl_context = context
            server.base_environ["HTTPS"] = "on"  # wsgi.url_scheme: https
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(target=server.serve_forever, name="graph-http", daemon=True)
        self._thread.start()
        log.info("serving the graph API and UI on %s://%s:%d/", self.scheme, host, self.port)

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.closing = True
            server.shutdown()
            server.close_idle_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
