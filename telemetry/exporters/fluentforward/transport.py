"""One TCP connection to Fluentd's in_forward: PackedForward messages out, acknowledgements in.

fluent-logger's ``FluentSender`` sends one Message-mode event per ``emit`` (and has no acknowledgement
support), which cannot carry a mesh's access logs; this transport sends whole chunks as
``[tag, entries (bin), {"size": n, "chunk": id}]`` (PackedForward, or CompressedPackedForward with
``"compressed": "gzip"``) and, when asked, reads back ``{"ack": id}`` (require_ack_response). The
entries carry fluent-logger's ``EventTime`` (see encoder.py).
"""

from __future__ import annotations

import gzip
import socket

import msgpack

from telemetry.exporters.fluentforward.spool import Chunk, bin_header


class ForwardError(Exception):
    """A connection, send or acknowledgement failure; ``sent`` when the chunk may have reached Fluentd."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


def packed_forward(chunk: Chunk, require_ack: bool, compress: bool) -> list[bytes]:
    """The message's pieces, ready for ``sendall`` in order (the entries are not copied)."""
    entries = chunk.entries
    option: dict[str, object] = {"size": chunk.events}
    if require_ack:
        option["chunk"] = chunk.chunk_id
    if compress:
        entries = gzip.compress(entries, compresslevel=1)
        option["compressed"] = "gzip"
    return [b"\x93", msgpack.packb(chunk.tag), bin_header(len(entries)), entries, msgpack.packb(option)]


class ForwardConnection:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._timeout = timeout
        try:
            self._socket = socket.create_connection((host, port), timeout=timeout)
        except OSError as error:
            # The sink names the address beside the message (the UI's banner shows both).
            raise ForwardError(f"cannot connect: {error.strerror or error}") from None
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 20)

    def send(self, chunk: Chunk, require_ack: bool, compress: bool) -> None:
        """Send one chunk and, with ``require_ack``, wait for Fluentd to acknowledge it."""
        self.write(chunk, require_ack, compress)
        if require_ack:
            self.wait_ack(chunk.chunk_id)

    def write(self, chunk: Chunk, require_ack: bool, compress: bool) -> None:
        """Send one chunk without waiting for anything (then ``wait_ack``, when ``require_ack``)."""
        pieces = packed_forward(chunk, require_ack, compress)
        try:
            for piece in pieces:
                self._socket.sendall(piece)
        except OSError as error:
            raise ForwardError(f"sending failed: {error.strerror or error}", sent=True) from None

    def wait_ack(self, chunk_id: str) -> None:
        while True:
            try:
                for reply in self._unpacker:
                    if isinstance(reply, dict) and reply.get("ack") == chunk_id:
                        return
                    # An answer for another chunk can only be stale: this connection has one chunk in flight.
            except (ValueError, msgpack.UnpackException) as error:  # FormatError, StackError, bad UTF-8, too big
                # The stream cannot be resynchronised: the sink drops this connection and resends.
                raise ForwardError(f"the answer is not a msgpack acknowledgement: {error}", sent=True) from None
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                raise ForwardError(f"no acknowledgement within {self._timeout:g}s", sent=True) from None
            except OSError as error:
                raise ForwardError(
                    f"waiting for the acknowledgement failed: {error.strerror or error}", sent=True
                ) from None
            if not data:
                raise ForwardError("Fluentd closed the connection before acknowledging", sent=True)
            self._unpacker.feed(data)

    def abort(self) -> None:
        """From another thread: end a send or an acknowledgement wait now (it raises ForwardError)."""
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._socket.close()
        except OSError:
            pass
