"""One bulk attempt through elasticsearch-py's ``streaming_bulk``, each document's outcome sorted.

The helper's own retry is left off (``max_retries=0``): it sleeps in ``time.sleep``, which shutdown
could not interrupt, and it does not retry a request that never reached Elasticsearch. The sink retries
instead, with the collector's backoff, and only what is worth retrying: a document refused with 429
(a full write queue) or a 5xx (a shard not ready, a node leaving) goes again; any other refusal (a
mapping error above all) would fail the same way again, so it is counted by Elasticsearch's error type
and dropped. A request too large for Elasticsearch or a proxy (413) is split in halves at once, and
documents sent to a name that is not a data stream are set apart (``no_stream``) for the sink to decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import ConnectionTimeout, TlsError, TransportError
from elasticsearch import Elasticsearch, UnsupportedProductError
from elasticsearch.helpers import streaming_bulk

from telemetry.exporters.log_event import Event
from telemetry.reasons import errno_words, short_reason

# Elasticsearch's own limit is 100 MB (http.max_content_length); proxies in front of it are often
# stricter, and a smaller body costs nothing at 2,000 events per request.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
_ERROR_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
NOT_ELASTICSEARCH = "the server at this address is not Elasticsearch"


@dataclass
class BulkOutcome:
    delivered: int = 0
    retry: list[Event] = field(default_factory=list)  # refused for now (429, 5xx): send again
    rejected: dict[str, int] = field(default_factory=dict)  # refused for good, by reason
    # Refused because no data stream (and no index template making one) exists for the name: with
    # ``require_data_stream`` Elasticsearch says so instead of creating a plain index.
    no_stream: list[Event] = field(default_factory=list)
    # Why the request as a whole failed, in words for the UI (None when Elasticsearch answered it).
    unreachable: str | None = None
    failure: str = ""  # the reason an attempt that needs retrying failed, for export_failures_total
    max_bytes: int = MAX_REQUEST_BYTES  # the request size that was accepted (smaller after a 413)

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + count


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def send(
    client: Elasticsearch, data_stream: str, events: Sequence[Event], max_bytes: int = MAX_REQUEST_BYTES
) -> BulkOutcome:
    """Send ``events`` to ``data_stream`` (op ``create``: data streams are append-only); never raises.

    A request refused as too large (413, from Elasticsearch's http.max_content_length or a proxy) is
    split: its documents go again in requests of half the bytes, down to one document per request; a
    single document still refused is dropped as ``too_large``.
    """
    outcome = BulkOutcome(max_bytes=max_bytes)
    pending: Sequence[Event] = events
    chunk_size = len(events)
    while pending:
        too_large = _attempt(client, data_stream, pending, outcome, chunk_size)
        if not too_large:
            break
        pending = [event for chunk in too_large for event in chunk if len(chunk) > 1]
        if alone := sum(1 for chunk in too_large if len(chunk) == 1):
            outcome.reject("too_large", alone)
        chunk_size = max(1, max(len(chunk) for chunk in too_large) // 2)
        outcome.max_bytes = max(1, outcome.max_bytes // 2)
    return outcome


def _attempt(
    client: Elasticsearch, data_stream: str, events: Sequence[Event], outcome: BulkOutcome, chunk_size: int
) -> list[list[Event]]:
    """One pass of bulk requests over ``events``, sorted into ``outcome``; the chunks refused with 413."""
    header: dict[str, Any] = {"create": {"_index": data_stream}}

    def expand(event: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return header, event

    too_large: list[list[Event]] = []
    last_error: object = None  # the helper gives every document of a failed request the same exception
    done = 0
    try:
        results = streaming_bulk(
            client,
            events,
            chunk_size=chunk_size,
            max_chunk_bytes=outcome.max_bytes,
            raise_on_error=False,
            raise_on_exception=False,
            max_retries=0,
            expand_action_callback=expand,
            # Without a matching data stream template Elasticsearch would create a plain index with
            # guessed mappings; this makes it refuse the documents instead (Elasticsearch >= 7.13).
            require_data_stream=True,
        )
        for event, (ok, item) in zip(events, results, strict=True):
            done += 1
            if ok:
                outcome.delivered += 1
                continue
            info = next(iter(item.values()))
            exception = info.get("exception")
            if exception is not None and int(info.get("status") or 0) == 413:
                if exception is not last_error:
                    too_large.append([])
                    last_error = exception
                too_large[-1].append(event)
            else:
                _sort_failure(outcome, event, info)
    except TransportError as error:
        # Nothing (or not all) reached Elasticsearch: the undelivered rest goes again as a whole.
        outcome.retry.extend([*(event for chunk in too_large for event in chunk), *events[done:]])
        too_large.clear()
        outcome.unreachable = connection_problem(error)
        outcome.failure = "timeout" if isinstance(error, ConnectionTimeout) else "unreachable"
    return too_large


def _sort_failure(outcome: BulkOutcome, event: Event, info: dict[str, Any]) -> None:
    status = int(info.get("status") or 500)
    exception = info.get("exception")
    if exception is not None:
        # The whole request was answered with an error (the helper spreads it over every document).
        if isinstance(exception, UnsupportedProductError):
            outcome.unreachable = NOT_ELASTICSEARCH
            outcome.failure = "not_elasticsearch"
            outcome.retry.append(event)
            return
        if retryable(status) or status in (401, 403):
            # 401/403 for the whole request: credentials or a proxy; keep the events while it is fixed.
            outcome.unreachable = f"HTTP {status}" + (" (check the credentials)" if status in (401, 403) else "")
            outcome.failure = f"http_{status}"
            outcome.retry.append(event)
            return
        reason = f"http_{status}"
    elif retryable(status):
        outcome.failure = f"http_{status}"
        outcome.retry.append(event)
        return
    else:
        error = info.get("error")
        kind = error.get("type", "") if isinstance(error, dict) else ""
        if status == 404 and kind == "index_not_found_exception":
            outcome.no_stream.append(event)
            return
        reason = kind if _ERROR_TYPE.fullmatch(kind) else f"http_{status}"
    outcome.reject(reason)


def connection_problem(error: TransportError) -> str:
    """A transport error in a few words (urllib3's messages nest three exceptions deep)."""
    if isinstance(error, ConnectionTimeout):
        return "timed out"
    if isinstance(error, TlsError):
        return "TLS handshake failed (check verify_certs / ca_certs)"
    return short_reason(errno_words(error.message).lower()) or "cannot connect"
