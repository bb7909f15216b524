"""TLS for the servers, from a TlsConfig: an SSLContext for the HTTP servers, credentials for grpc.

HTTP servers accept plain sockets and run the TLS handshake in the connection's own thread
(``TlsServerMixin``), so a client that stalls mid-handshake holds one connection slot for at most
the handshake timeout and never the accept loop.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
from typing import Any

import grpc

from telemetry.security.config import TlsConfig

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0


class TlsFilesError(OSError):
    """The certificate, key or CA files cannot be loaded when a server starts (validate() read them earlier)."""


def server_context(config: TlsConfig, server: str) -> ssl.SSLContext:
    """``server`` names the server in the error when a file cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
        if config.client_ca_file:
            context.load_verify_locations(cafile=config.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except OSError as error:  # ssl.SSLError is one
        raise TlsFilesError(f"{server}: cannot load its TLS files: {_files(config)}: {error}") from error
    return context


def grpc_credentials(config: TlsConfig, server: str) -> grpc.ServerCredentials:
    # grpc takes PEM bytes and would only fail at bind with no reason given: the ssl module checks them first.
    server_context(config, server)

    def read(path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise TlsFilesError(f"{server}: cannot load its TLS files: {_files(config)}: {error}") from error

    client_ca = read(config.client_ca_file) if config.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(read(config.key_file), read(config.cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _files(config: TlsConfig) -> str:
    named = (("cert_file", config.cert_file), ("key_file", config.key_file), ("client_ca_file", config.client_ca_file))
    return ", ".join(f"{key}={path!r}" for key, path in named if path)


class TlsServerMixin:
    """For a socketserver.ThreadingMixIn server: TLS on every connection when ``ssl_context`` is set."""

    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()  # type: ignore[misc]
        if self.ssl_context is None:
            return connection, address
        return self.ssl_context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(HANDSHAKE_TIMEOUT)
                request.do_handshake()
            except (OSError, ValueError) as error:
                # A plain-HTTP client, a wrong certificate, a scanner: the connection ends, the server goes on.
                log.debug("TLS handshake with %s failed: %s", client_address, error)
                self.shutdown_request(request)  # type: ignore[attr-defined]
                return
        super().process_request_thread(request, client_address)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for any error in a handler; a connection dropped
        # or broken mid-request (TLS or not) is not worth one.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("request from %s failed", client_address)


def shutdown_read(connection: socket.socket) -> None:
    """End a connection's reading side, TLS or not, so a thread blocked reading it wakes up.

    SSLSocket.shutdown drops its TLS state, which would leave a reader in the middle of TLS records:
    the plain socket's shutdown is called instead.
    """
    socket.socket.shutdown(connection, socket.SHUT_RD)
