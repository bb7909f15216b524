"""What the collector and its parsing workers say to each other: tuples of plain values, sent with marshal.

marshal is the fastest serialiser for plain tuples of str and int and keeps shared strings (a Record's
identity fields) as references; both ends are this program, so its lack of validation does not matter.

Worker -> collector:
    (BATCH, records_parsed, request_series, tcp_series, record_tuples, parse_errors, drops, dead_letters,
     learned_peers, marks, closed_keys, encoded_heads, fill_tuples)
      encoded_heads: (tag, entry count) of the forward sink's encoded segments, whose entries follow the
      message as raw frames (``send_bytes``), one per segment; fill_tuples: while the collector's request-id
      index is in use, every Record (none is encoded then), for every sink but the metrics ones, so the
      collector can give each the trace id its request id has
    (SYNCED, token, more)
Collector -> worker:
    (ACK,)  one per batch accepted: a worker has at most ``CREDITS`` batches unanswered
    (FILES, {(device, inode): path})  the files this worker follows now
    (PEERS, pinned, learned)  peer-table entries the worker has not seen
    (CORRELATING, bool)  whether access-log Records with a request id may be given a trace id
    (SYNC, token)  poll now, until nothing is left, then answer SYNCED (``poll()`` of the receiver)
    (STOP,)
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from typing import Any

from telemetry.model import Workload
from telemetry.receivers.filelog.checkpoint import FileMark

BATCH = 1
# A BATCH message's items, in order (the worker builds it, the collector unpacks it).
BATCH_ITEMS = (
    "kind", "records_parsed", "request_series", "tcp_series", "record_tuples", "parse_errors", "drops",
    "dead_letters", "learned_peers", "marks", "closed_keys", "encoded_heads", "fill_tuples",
)  # fmt: skip
ENCODED_AT = BATCH_ITEMS.index("encoded_heads")
SYNCED = 2
ACK = 10
FILES = 11
PEERS = 12
CORRELATING = 13
SYNC = 14
STOP = 15

CREDITS = 16  # batches a worker may send before the collector has accepted the first of them

WorkloadTuple = tuple[str, str, str, str, str, bool]
MarkTuple = tuple[str, int, int, str, int, int, bool]


def encode(message: tuple[Any, ...]) -> bytes:
    return marshal.dumps(message)


def decode(data: bytes) -> tuple[Any, ...]:
    message = marshal.loads(data)
    if not isinstance(message, tuple) or not message:
        raise ValueError("not a worker message")
    return message


def workload_tuple(workload: Workload) -> WorkloadTuple:
    return (workload.name, workload.namespace, workload.app, workload.version, workload.principal, workload.gateway)


def workload_of(values: WorkloadTuple) -> Workload:
    return Workload(*values)


def peer_entries(entries: dict[str, Workload]) -> list[tuple[str, WorkloadTuple]]:
    return [(ip, workload_tuple(workload)) for ip, workload in entries.items()]


def mark_tuple(mark: FileMark) -> MarkTuple:
    return (mark.path, mark.device, mark.inode, mark.fingerprint, mark.fingerprint_size, mark.offset, mark.gone)


def mark_of(values: Iterable[Any]) -> FileMark:
    return FileMark(*values)
