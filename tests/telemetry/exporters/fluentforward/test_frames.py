"""Frames of encoded events read straight into their buffer, from a real socketpair Pipe."""

from __future__ import annotations

import multiprocessing
import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from telemetry.exporters.fluentforward.frames import recv_frame, widen


def test_recv_frame_reads_what_send_bytes_wrote_whatever_its_size_between_recv_bytes_reads() -> None:
    reader, writer = multiprocessing.Pipe()
    # Larger than a socket's buffer: the writer blocks midway and the frame arrives in several reads.
    payloads = [b"", b"x", os.urandom(70_000), os.urandom(5 << 20), b"last"]

    def write() -> None:
        for payload in payloads:
            writer.send_bytes(payload)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        received = [recv_frame(reader) if index % 2 == 0 else reader.recv_bytes() for index in range(len(payloads))]
    finally:
        thread.join()
    assert received == payloads
    assert all(isinstance(frame, bytearray) for frame in received[::2])
    writer.close()
    with pytest.raises(EOFError):
        recv_frame(reader)  # the pipe ended between frames


def test_a_pipe_that_ends_in_the_middle_of_a_frame_is_an_eof_error() -> None:
    reader, writer = multiprocessing.Pipe()
    with socket.socket(fileno=os.dup(writer.fileno())) as end:
        end.sendall(struct.pack("!i", 100) + b"only ten b")
    writer.close()
    with pytest.raises(EOFError):
        recv_frame(reader)


def test_a_frame_size_beyond_32_bits_is_read_as_send_bytes_writes_it() -> None:
    reader, writer = multiprocessing.Pipe()
    payload = b"long form"
    with socket.socket(fileno=os.dup(writer.fileno())) as end:
        end.sendall(struct.pack("!i", -1) + struct.pack("!Q", len(payload)) + payload)
    assert recv_frame(reader) == payload


def test_widen_asks_for_larger_pipe_buffers_up_to_the_kernels_bound() -> None:
    limit = int(Path("/proc/sys/net/core/wmem_max").read_text())
    reader, writer = multiprocessing.Pipe()
    with socket.socket(fileno=os.dup(writer.fileno())) as end:
        before = end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if limit <= before:
            pytest.skip("this kernel allows no larger socket buffers")
        widen(writer, limit)
        # Linux reports twice what was granted (its bookkeeping overhead).
        assert end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * limit > before
