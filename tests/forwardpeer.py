"""A Fluentd Forward Protocol v1 server for tests: decodes what a client sends, acknowledges chunks.

It accepts the four carrier modes of the specification (the second element of the array tells them
apart): Message ``[tag, time, record, option?]``, Forward ``[tag, [[time, record], ...], option?]``,
PackedForward ``[tag, bin|str of concatenated msgpack [time, record] entries, option?]`` and
CompressedPackedForward (PackedForward with ``option["compressed"] == "gzip"``, the stream gzipped). Time is
an integer or an EventTime (msgpack ext type 0: seconds and nanoseconds, big-endian uint32 each). An
``option["chunk"]`` is answered with ``{"ack": chunk}`` unless acknowledgements are turned off. ``nil``
(a heartbeat) is ignored. Anything else is a protocol error, recorded for the test to assert on.

The peer can be stopped and started again on the same port, can refuse connections (accept and close
at once), and can close a connection in the middle of the stream after a number of messages.

Run as a program (``python tests/forwardpeer.py --port N``) it counts events without decoding entries
(the ``size`` option) and acknowledges, for benchmarks that need the peer on the other core.
"""

from __future__ import annotations

import argparse
import gzip
import io
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass(frozen=True)
class EventTime:
    seconds: int
    nanoseconds: int

    @property
    def unix_ns(self) -> int:
        return self.seconds * 1_000_000_000 + self.nanoseconds


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        seconds, nanoseconds = struct.unpack(">II", data)
        return EventTime(seconds, nanoseconds)
    return msgpack.ExtType(code, data)


def _unpacker() -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=False, ext_hook=_ext_hook, strict_map_key=True, max_buffer_size=256 << 20)


@dataclass(frozen=True)
class Event:
    tag: str
    time: EventTime | int
    record: dict[str, Any]
    chunk: str | None  # the chunk option of the message it came in


@dataclass
class PeerLog:
    events: list[Event] = field(default_factory=list)
    modes: Counter[str] = field(default_factory=Counter)
    chunks: Counter[str] = field(default_factory=Counter)  # chunk id -> times received
    errors: list[str] = field(default_factory=list)
    messages: int = 0
    resets: int = 0
    rejected: int = 0  # messages refused by reject_tags


class ForwardPeer:
    def __init__(self, port: int = 0, ack: bool = True, decode: bool = True) -> None:
        self.ack = ack
        self.decode = decode
        self.refuse = False  # accept, then close at once
        self.close_after: int | None = None  # close each connection after this many messages, unacknowledged
        self.ack_delay = 0.0
        self.lose_acks = 0  # the next N acknowledged messages are recorded, then the connection closes unanswered
        self.garbage_acks = 0  # the next N acknowledgements are replaced by a byte that is not msgpack (0xc1)
        self.reject_tags: set[str] = set()  # messages with these tags close the connection, unrecorded
        self.counted = 0  # events counted from the size option (or decoded)
        self.log = PeerLog()
        self._lock = threading.Lock()
        self._port = port
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._running = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._port}"

    def start(self) -> ForwardPeer:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self._port))
        server.listen(16)
        self._port = server.getsockname()[1]
        self._server = server
        self._running = True
        thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (as a Fluentd that went away)."""
        self._running = False
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()
        for thread in self._threads:
            thread.join(5)
        self._threads = []

    def __enter__(self) -> ForwardPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading -------------------------------------------------------------------------------------

    def events(self) -> list[Event]:
        with self._lock:
            return list(self.log.events)

    def count(self) -> int:
        with self._lock:
            return self.counted

    def duplicate_chunks(self) -> int:
        with self._lock:
            return sum(times - 1 for times in self.log.chunks.values())

    def wait_for_events(self, count: int, timeout: float = 30.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= count:
                return self.events()
            time.sleep(0.05)
        raise AssertionError(f"the peer received {self.count()} events, not {count}, within {timeout}s")

    # -- serving -------------------------------------------------------------------------------------

    def _accept(self, server: socket.socket) -> None:
        while self._running:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            if self.refuse:
                connection.close()
                continue
            with self._lock:
                self._connections.add(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        unpacker = _unpacker() if self.decode else msgpack.Unpacker(raw=True, max_buffer_size=256 << 20)
        messages = 0
        try:
            while True:
                data = connection.recv(1 << 20)
                if not data:
                    return
                unpacker.feed(data)
                for message in unpacker:
                    if self.close_after is not None and messages >= self.close_after:
                        return
                    messages += 1
                    if self._rejected(message):
                        return
                    chunk = self._handle(message)
                    if chunk is not None and self.lose_acks:
                        with self._lock:
                            self.lose_acks -= 1
                        return
                    if chunk is not None and self.ack:
                        if self.ack_delay:
                            time.sleep(self.ack_delay)
                        if self.garbage_acks:
                            with self._lock:
                                self.garbage_acks -= 1
                            connection.sendall(b"\xc1")
                            continue
                        connection.sendall(msgpack.packb({"ack": chunk}))
        except ConnectionResetError:
            with self._lock:
                self.log.resets += 1  # the client went away mid-connection (killed): not a protocol error
        except (OSError, ValueError) as error:
            if self._running:
                with self._lock:
                    self.log.errors.append(f"connection: {error!r}")
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _rejected(self, message: Any) -> bool:
        if not self.reject_tags or not isinstance(message, list) or not message:
            return False
        tag = message[0].decode() if isinstance(message[0], bytes) else message[0]
        if tag in self.reject_tags:
            with self._lock:
                self.log.rejected += 1
            return True
        return False

    def _handle(self, message: Any) -> str | None:
        if message is None:
            return None  # heartbeat
        if not self.decode:
            # Benchmark mode: [tag, entries, option] with the event count in the option.
            option = message[2] if isinstance(message, list) and len(message) == 3 else {}
            with self._lock:
                self.counted += option.get(b"size", 0)
                self.log.messages += 1
            chunk = option.get(b"chunk")
            return chunk.decode() if isinstance(chunk, bytes) else None
        try:
            mode, events, option = self._decode(message)
        except ProtocolError as error:
            with self._lock:
                self.log.errors.append(str(error))
            return None
        chunk = option.get("chunk")
        if "size" in option and option["size"] != len(events):
            with self._lock:
                self.log.errors.append(f"size option {option['size']} but {len(events)} events")
        with self._lock:
            self.log.messages += 1
            self.log.modes[mode] += 1
            if chunk is not None:
                self.log.chunks[chunk] += 1
            self.log.events.extend(Event(tag, when, record, chunk) for tag, when, record in events)
            self.counted += len(events)
        return chunk

    def _decode(self, message: Any) -> tuple[str, list[tuple[str, Any, dict[str, Any]]], dict[str, Any]]:
        if not isinstance(message, list) or len(message) < 2 or not isinstance(message[0], str):
            raise ProtocolError(f"not a forward message: {message!r:.200}")
        tag, second = message[0], message[1]
        if isinstance(second, (int, EventTime)):  # Message: [tag, time, record, option?]
            if len(message) not in (3, 4) or not isinstance(message[2], dict):
                raise ProtocolError("Message mode needs [tag, time, record, option?]")
            return "Message", [(tag, second, message[2])], self._option(message, 3)
        if isinstance(second, list):  # Forward: [tag, [[time, record], ...], option?]
            option = self._option(message, 2)
            return "Forward", [(tag, *self._entry(entry)) for entry in second], option
        if isinstance(second, (bytes, str)):  # (Compressed)PackedForward: [tag, stream, option?]
            option = self._option(message, 2)
            stream = second.encode("latin-1") if isinstance(second, str) else second
            mode = "PackedForward"
            if option.get("compressed") == "gzip":
                mode = "CompressedPackedForward"
                stream = gzip.GzipFile(fileobj=io.BytesIO(stream)).read()  # reads concatenated members too
            elif "compressed" in option:
                raise ProtocolError(f"unknown compression {option['compressed']!r}")
            unpacker = _unpacker()
            unpacker.feed(stream)
            return mode, [(tag, *self._entry(entry)) for entry in unpacker], option
        raise ProtocolError(f"cannot tell the carrier mode from a {type(second).__name__}")

    @staticmethod
    def _option(message: list[Any], index: int) -> dict[str, Any]:
        if len(message) > index + 1:
            raise ProtocolError(f"{len(message)} elements in a message")
        if len(message) == index:
            return {}
        option = message[index]
        if option is None:
            return {}
        if not isinstance(option, dict):
            raise ProtocolError(f"option is a {type(option).__name__}, not a map")
        return option

    @staticmethod
    def _entry(entry: Any) -> tuple[Any, dict[str, Any]]:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], (int, EventTime))
            or not isinstance(entry[1], dict)
        ):
            raise ProtocolError(f"not an entry [time, record]: {entry!r:.200}")
        return entry[0], entry[1]


class ProtocolError(ValueError):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description="A counting Fluentd forward peer (acknowledges chunks).")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    peer = ForwardPeer(args.port, decode=False).start()
    print(peer.port, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        peer.stop()


if __name__ == "__main__":
    main()
