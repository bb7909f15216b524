"""POST a body to an export endpoint over one kept-alive connection, failures as ``ExportError``.

Shared by the OTLP/HTTP and Zipkin exporters. Each exporter has one worker thread, so one
``http.client`` connection per exporter is all that is needed (and no third-party HTTP client).
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from urllib.parse import urlsplit

from telemetry.exporters.export_queue import ExportError

# Overload and gateway errors are worth retrying (as the OTLP specification lists them); any other
# status means the request itself is wrong and would fail again.
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


class HttpPoster:
    def __init__(self, url: str, headers: Mapping[str, str], timeout: float, compress: bool, content_type: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._compress = compress
        self._headers = {"Content-Type": content_type, **headers}
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self._connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> bytes:
        """The response body of a 2xx answer; ExportError otherwise."""
        if self._compress:
            body = gzip.compress(body, compresslevel=5)
        reused = self._connection is not None
        try:
            status, reason, retry_after, data = self._exchange(body)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            if not reused or isinstance(error, TimeoutError):
                raise _connection_error(error) from error
            # The server may have closed the idle kept-alive connection: one fresh try at once.
            try:
                status, reason, retry_after, data = self._exchange(body)
            except (OSError, http.client.HTTPException) as again:
                self.close()
                raise _connection_error(again) from again
        if 200 <= status < 300:
            return data
        retryable = status in RETRYABLE_STATUS
        raise ExportError(
            f"http_{status}",
            retryable,
            parse_retry_after(retry_after) if retryable else None,
            f"{reason} {data[:200]!r}",
        )

    def _exchange(self, body: bytes) -> tuple[int, str, str | None, bytes]:
        connection = self._connection
        if connection is None:
            factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = self._connection = factory(self._host, self._port, timeout=self._timeout)
        connection.request("POST", self._path, body, self._headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, response.reason, response.getheader("Retry-After"), data

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _connection_error(error: BaseException) -> ExportError:
    reason = "timeout" if isinstance(error, TimeoutError) else "connection_error"
    return ExportError(reason, retryable=True, detail=str(error) or type(error).__name__)
