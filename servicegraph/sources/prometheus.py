"""A Prometheus as a graph source: Kiali-style queries over Istio's and the servicegraph connector's metrics.

Every column of every ``Traffic`` table is one PromQL query, ``sum by (<row labels>) (increase(<series>
{<selector>}[<window>]))``; histograms are queried ``by (<row labels>, le)`` and de-cumulated into the
bucket columns. The queries run concurrently, so a graph costs about one query's latency. Whatever
scrapes the mesh can answer them: one Prometheus behind several meshscope collectors, or a real Istio
mesh's Prometheus.

What the answers are, and are not:

- ``increase()`` is Prometheus's: it extrapolates from the first and last samples in the range towards
  the range's edges, so a total over a window is only as exact as the scrape interval allows (about
  ``scrape interval / window`` relative), and a series born inside the window loses its first sample.
- A label that Prometheus does not store (it drops empty values, and a backend may not set one) is
  read back as ``"unknown"``, Istio's own value for "not known", except ``grpc_response_status``, which
  Istio (and meshscope) leave empty on non-gRPC requests. Span-pair labels missing are read as ``""``.
- Histogram buckets are mapped onto ``DURATION_BUCKETS_MS`` (milliseconds; the connector's seconds are
  converted). A backend with other bounds is approximated: each of its buckets' counts goes to the
  first of our buckets whose bound is at least its own, so a latency may be reported one bucket high,
  never low.
- Rows whose increase is 0 are kept: they are label sets that exist but were idle in the window.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from servicegraph.traffic import (
    BUCKETS,
    CONNECTIONS,
    DURATION_MS_SUM,
    HTTP_LABELS,
    HTTP_WIDTH,
    N_BUCKETS,
    REQUEST_BYTES_SUM,
    REQUESTS,
    RESPONSE_BYTES_SUM,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_FAILED,
    SPAN_LABELS,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    SPAN_SERVER_MS_SUM,
    SPAN_WIDTH,
    TCP_RECEIVED_BYTES,
    TCP_ROW_LABELS,
    TCP_SENT_BYTES,
    TCP_WIDTH,
    Table,
    Traffic,
)
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS
from telemetry.reasons import short_reason
from telemetry.security.redact import redact_url
from telemetry.selfmetrics import SelfStats

# Istio's standard metrics.
REQUESTS_TOTAL = "istio_requests_total"
REQUEST_DURATION_MS = "istio_request_duration_milliseconds"  # histogram
REQUEST_BYTES = "istio_request_bytes"  # histogram; only its _sum is read
RESPONSE_BYTES = "istio_response_bytes"  # histogram; only its _sum is read
TCP_CONNECTIONS_OPENED_TOTAL = "istio_tcp_connections_opened_total"
TCP_RECEIVED_BYTES_TOTAL = "istio_tcp_received_bytes_total"
TCP_SENT_BYTES_TOTAL = "istio_tcp_sent_bytes_total"
# The OpenTelemetry servicegraph connector's metrics.
SPAN_REQUESTS_TOTAL = "traces_service_graph_request_total"
SPAN_FAILED_TOTAL = "traces_service_graph_request_failed_total"
SPAN_CLIENT_SECONDS = "traces_service_graph_request_client_seconds"  # histogram
SPAN_SERVER_SECONDS = "traces_service_graph_request_server_seconds"  # histogram

UNKNOWN = "unknown"
# Istio leaves these empty rather than "unknown"; Prometheus drops empty labels, so absent means empty.
EMPTY_WHEN_ABSENT = frozenset({"grpc_response_status"})

# Each query holds one HTTP connection and one thread; a traffic() call runs this many at once.
MAX_CONCURRENT_QUERIES = 16
# The dependency name it reports to SelfStats.reachability (meshscope_dependency_up, the UI's banner).
DEPENDENCY = "prometheus"
# Prometheus refuses a query it cannot run with these: it answered, so it is not "unreachable".
_QUERY_REFUSED = frozenset({400, 422})

_MATCHER = r"""\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*"""
_MATCHER_LIST = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*,?)?\s*", re.DOTALL)


class PrometheusSourceError(RuntimeError):
    """A query could not be answered: Prometheus unreachable, slow, failing, or answering nonsense.

    Not a ``ValueError``: the caller's request was fine, the upstream failed (an API answers 502).
    ``why``: one short line for the UI's banner when ``unreachable`` (no answer, a timeout, an HTTP
    error other than a refused query, something that is not the Prometheus API at that URL).
    """

    def __init__(self, message: str, unreachable: bool = False, why: str = "") -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.why = why


@dataclass(frozen=True)
class ColumnQuery:
    """One query and where its answer goes: ``table``'s column ``column`` (the first bucket, for histograms)."""

    table: str  # "http" | "tcp" | "spans"
    column: int
    series: str  # the full series name, e.g. istio_request_duration_milliseconds_bucket
    labels: tuple[str, ...]
    histogram: bool = False
    scale: float = 1.0  # values (and le bounds) are multiplied by it: seconds -> milliseconds

    def promql(self, selector: str, range_: str) -> str:
        labels = (*self.labels, "le") if self.histogram else self.labels
        return increase_query(self.series, labels, selector, range_)


COLUMN_QUERIES: tuple[ColumnQuery, ...] = (
    ColumnQuery("http", REQUESTS, REQUESTS_TOTAL, HTTP_LABELS),
    ColumnQuery("http", DURATION_MS_SUM, f"{REQUEST_DURATION_MS}_sum", HTTP_LABELS),
    ColumnQuery("http", REQUEST_BYTES_SUM, f"{REQUEST_BYTES}_sum", HTTP_LABELS),
    ColumnQuery("http", RESPONSE_BYTES_SUM, f"{RESPONSE_BYTES}_sum", HTTP_LABELS),
    ColumnQuery("http", BUCKETS, f"{REQUEST_DURATION_MS}_bucket", HTTP_LABELS, histogram=True),
    ColumnQuery("tcp", CONNECTIONS, TCP_CONNECTIONS_OPENED_TOTAL, TCP_ROW_LABELS),
    ColumnQuery("tcp", TCP_RECEIVED_BYTES, TCP_RECEIVED_BYTES_TOTAL, TCP_ROW_LABELS),
    ColumnQuery("tcp", TCP_SENT_BYTES, TCP_SENT_BYTES_TOTAL, TCP_ROW_LABELS),
    ColumnQuery("spans", SPAN_REQUESTS, SPAN_REQUESTS_TOTAL, SPAN_LABELS),
    ColumnQuery("spans", SPAN_FAILED, SPAN_FAILED_TOTAL, SPAN_LABELS),
    ColumnQuery("spans", SPAN_CLIENT_MS_SUM, f"{SPAN_CLIENT_SECONDS}_sum", SPAN_LABELS, scale=1000.0),
    ColumnQuery("spans", SPAN_SERVER_MS_SUM, f"{SPAN_SERVER_SECONDS}_sum", SPAN_LABELS, scale=1000.0),
    ColumnQuery("spans", SPAN_CLIENT_BUCKETS, f"{SPAN_CLIENT_SECONDS}_bucket", SPAN_LABELS, True, 1000.0),
    ColumnQuery("spans", SPAN_SERVER_BUCKETS, f"{SPAN_SERVER_SECONDS}_bucket", SPAN_LABELS, True, 1000.0),
)
TABLE_WIDTHS = {"http": HTTP_WIDTH, "tcp": TCP_WIDTH, "spans": SPAN_WIDTH}


# -- PromQL ---------------------------------------------------------------------------------------------


def validate_selector(selector: str) -> str:
    """The selector, stripped (and without one pair of enclosing braces); a ValueError naming ``selector``."""
    text = selector.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if _MATCHER_LIST.fullmatch(text):
        return text.rstrip(",").strip()
    quotes = _unclosed_quote(text)
    if quotes:
        reason = f"unbalanced quotes: {quotes} opened and not closed"
    elif "{" in _unquoted(text) or "}" in _unquoted(text):
        reason = "unbalanced braces: give the matchers only, the source adds the braces"
    else:
        reason = "not a list of label matchers"
    raise ValueError(f'selector: {selector!r}: {reason} (expected e.g. job="mesh-a",cluster="east")')


def _unclosed_quote(text: str) -> str:
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quote and char == "\\" and quote != "`":
            escaped = True
        elif quote and char == quote:
            quote = ""
        elif not quote and char in "\"'`":
            quote = char
    return quote


def _unquoted(text: str) -> str:
    return re.sub(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""", "", text)


def promql_duration(seconds: float) -> str:
    """A PromQL duration: whole seconds as ``30s``, anything finer in milliseconds (PromQL has no ``2.5s``)."""
    millis = round(seconds * 1000)
    if millis < 1:
        raise ValueError(f"window: must be at least 1 ms, got {seconds!r} s")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def increase_query(series: str, labels: Sequence[str], selector: str, range_: str) -> str:
    """``sum by (labels) (increase(series{selector}[range_]))``; ``selector`` must already be validated."""
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum by ({', '.join(labels)}) (increase({series}{matchers}[{range_}]))"


# -- decoding answers -------------------------------------------------------------------------------------


def label_key(metric: Mapping[str, str], labels: Sequence[str], table: str) -> tuple[str, ...]:
    """A row key in ``labels`` order, with what Prometheus left out filled in as the source Istio would."""
    if table == "spans":
        return tuple(metric.get(label, "") for label in labels)
    return tuple(metric.get(label, "" if label in EMPTY_WHEN_ABSENT else UNKNOWN) for label in labels)


def bucket_column(le_ms: float) -> int:
    """The index of the first of our buckets whose bound is at least ``le_ms`` (+Inf: the last one)."""
    # A relative margin so that 0.005 s * 1000 lands on the 5 ms bound despite float rounding.
    return bisect_left(DURATION_BUCKETS_MS, le_ms * (1 - 1e-9))


def decumulate(cumulative: Mapping[float, float]) -> np.ndarray:
    """Per-bucket counts over our ``N_BUCKETS`` buckets from ``{le in ms: cumulative count}``."""
    counts = np.zeros(N_BUCKETS)
    previous = 0.0
    for le_ms, total in sorted(cumulative.items()):
        # increase() extrapolates each bucket on its own; a bucket below its predecessor is noise, not minus.
        counts[bucket_column(le_ms)] += max(total - previous, 0.0)
        previous = max(previous, total)
    return counts


Series = list[tuple[dict[str, str], list[tuple[int, float]]]]  # (labels, [(time in ms, value), ...])


def parse_data(data: Any) -> Series:
    """The series of an API answer's ``data`` (a vector or a matrix); a ValueError if it is neither."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a data object, got {type(data).__name__}")
    kind = data.get("resultType")
    result = data.get("result")
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise ValueError(f"expected a vector or matrix result, got resultType {kind!r}")
    series: Series = []
    try:
        for item in result:
            samples = [item["value"]] if kind == "vector" else item["values"]
            labels = {str(name): str(value) for name, value in item["metric"].items()}
            series.append((labels, [(round(float(t) * 1000), _number(str(v))) for t, v in samples]))
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise ValueError(f"malformed {kind} result: {error!r}") from None
    return series


def _number(text: str) -> float:
    value = float(text)
    # An exporter may expose NaN; as a count it would poison every sum it joins, so it counts nothing.
    return 0.0 if math.isnan(value) else value


def decode_column(
    query: ColumnQuery, series: Series, times_ms: Sequence[int], step: float
) -> list[dict[tuple[str, ...], np.ndarray]]:
    """One query's series as, per evaluation time in ``times_ms`` (``step`` s apart), what it adds to each row.

    Each row's array spans the column's width: one value, or ``N_BUCKETS`` for a histogram. A sample
    belongs to the nearest evaluation time: backends round evaluation times differently (Prometheus
    truncates to the millisecond), never by anything near half a step.
    """
    half_step_ms = step * 500
    # Per evaluation time, per row: {le: value}; counters use one le (inf). Summing per le merges label
    # sets that only differed in labels the row key fills in.
    raw: list[dict[tuple[str, ...], dict[float, float]]] = [{} for _ in times_ms]
    for metric, samples in series:
        key = label_key(metric, query.labels, query.table)
        if query.histogram:
            if "le" not in metric:
                raise ValueError(f"{query.series}: a bucket series without an le label: {metric}")
            le = float(metric["le"]) * query.scale
        else:
            le = math.inf
        for t, value in samples:
            after = bisect_left(times_ms, t)
            index = min((i for i in (after - 1, after) if 0 <= i < len(times_ms)), key=lambda i: abs(times_ms[i] - t))
            if abs(times_ms[index] - t) >= half_step_ms:
                raise ValueError(f"{query.series}: a sample at {t / 1000:.3f}, not near an evaluation time")
            by_le = raw[index].setdefault(key, {})
            by_le[le] = by_le.get(le, 0.0) + value
    if query.histogram:
        return [{key: decumulate(by_le) for key, by_le in rows.items()} for rows in raw]
    return [{key: np.array([by_le[math.inf] * query.scale]) for key, by_le in rows.items()} for rows in raw]


def assemble(answers: Sequence[tuple[ColumnQuery, Series]], times_ms: Sequence[int], step: float) -> list[Traffic]:
    """One Traffic per evaluation time ``t`` covering ``(t - step, t]``, from the answers to ``COLUMN_QUERIES``."""
    rows: list[dict[str, dict[tuple[str, ...], np.ndarray]]] = [{name: {} for name in TABLE_WIDTHS} for _ in times_ms]
    for query, series in answers:
        for index, values in enumerate(decode_column(query, series, times_ms, step)):
            table = rows[index][query.table]
            for key, added in values.items():
                row = table.get(key)
                if row is None:
                    row = table[key] = np.zeros(TABLE_WIDTHS[query.table])
                row[query.column : query.column + len(added)] += added
    traffic = []
    for t_ms, tables in zip(times_ms, rows, strict=True):
        built: dict[str, Table] = {}
        for name, by_key in tables.items():
            keys = sorted(by_key)
            built[name] = Table(keys, np.array([by_key[key] for key in keys]).reshape(len(keys), TABLE_WIDTHS[name]))
        end = t_ms / 1000
        traffic.append(Traffic(built["http"], built["tcp"], built["spans"], end - step, end))
    return traffic


# -- the source -------------------------------------------------------------------------------------------


class PrometheusSource:
    """``GraphSource`` answered by the Prometheus HTTP API at ``url`` (e.g. ``http://prometheus:9090``).

    ``selector``: label matchers added to every query, e.g. ``job="mesh-a",cluster="east"``, to pick
    one mesh or one set of collectors out of everything that Prometheus scrapes.
    ``timeout``: seconds each HTTP request may take; the queries run at once, so about the whole call's.
    ``stats``: told after every read whether Prometheus answered (dependency ``prometheus``).
    Times are rounded to milliseconds, the API's resolution.
    """

    def __init__(self, url: str, selector: str = "", timeout: float = 10.0, stats: SelfStats | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url: expected http(s)://host:port[/prefix], got {redact_url(url)!r}")
        if not timeout > 0:
            raise ValueError(f"timeout: must be positive, got {timeout!r}")
        self.url = url.rstrip("/")
        self.shown_url = redact_url(self.url)  # for messages, /api/status and the banner: no user:password
        self.selector = validate_selector(selector)
        self.timeout = timeout
        self._stats = stats
        # One pool for the source's life: a graph build asks every column at once, every tick.
        self._pool = ThreadPoolExecutor(min(len(COLUMN_QUERIES), MAX_CONCURRENT_QUERIES), "prometheus-source")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def traffic(self, window: float, end: float | None = None) -> Traffic:
        range_ = promql_duration(window)
        end_ms = round((time.time() if end is None else end) * 1000)
        answers = self._ask("query", {"time": _time_param(end_ms)}, range_)
        return self._assemble(answers, [end_ms], _seconds(range_))[0]

    def traffic_series(self, window: float, points: int, end: float | None = None) -> list[Traffic]:
        """``points`` consecutive intervals of ``window / points`` seconds, oldest first, the last ending at ``end``.

        An interval holds the rows that had samples in it, as ``traffic(window / points, its end)`` would.
        """
        if points < 1:
            raise ValueError(f"points: must be at least 1, got {points!r}")
        range_ = promql_duration(window / points)
        step_ms = round(_seconds(range_) * 1000)
        end_ms = round((time.time() if end is None else end) * 1000)
        times_ms = [end_ms - (points - 1 - index) * step_ms for index in range(points)]
        # The step as a duration: Prometheus reads "3.687" as 3.686999999 s and lets evaluation times drift.
        params = {"start": _time_param(times_ms[0]), "end": _time_param(end_ms), "step": range_}
        answers = self._ask("query_range", params, range_)
        return self._assemble(answers, times_ms, step_ms / 1000)

    def _ask(self, endpoint: str, params: dict[str, str], range_: str) -> list[tuple[ColumnQuery, Series]]:
        queries = [(column, column.promql(self.selector, range_)) for column in COLUMN_QUERIES]
        futures = [self._pool.submit(self._query, endpoint, {"query": promql, **params}) for _, promql in queries]
        # Each request has its own timeout, so waiting for all of them is bounded.
        try:
            answers = [(column, future.result()) for (column, _), future in zip(queries, futures, strict=True)]
        except PrometheusSourceError as error:
            if self._stats is not None:
                self._stats.reachability(DEPENDENCY, not error.unreachable, error.why if error.unreachable else "")
            raise
        if self._stats is not None:
            self._stats.reachability(DEPENDENCY, True)
        return answers

    def _assemble(self, answers: list[tuple[ColumnQuery, Series]], times_ms: list[int], step: float) -> list[Traffic]:
        try:
            return assemble(answers, times_ms, step)
        except ValueError as error:
            raise PrometheusSourceError(f"Prometheus at {self.shown_url} gave an unexpected answer: {error}") from error

    def _query(self, endpoint: str, params: dict[str, str]) -> Series:
        url = f"{self.url}/api/v1/{endpoint}"

        def failed(why: str, unreachable: bool = False) -> PrometheusSourceError:
            shown = f"{self.shown_url}/api/v1/{endpoint}"
            message = f"Prometheus query to {shown} failed: {why}; query: {params['query']}"
            return PrometheusSourceError(
                message, unreachable, f"{self.shown_url}: {short_reason(why)}" if unreachable else ""
            )

        try:
            body = self._post(url, urllib.parse.urlencode(params))
        except urllib.error.HTTPError as error:
            # Prometheus explains a refused query in the body of its 4xx/5xx answer.
            detail = _error_text(error.read()) or str(error.reason)
            raise failed(f"HTTP {error.code}: {detail}", error.code not in _QUERY_REFUSED) from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise failed(f"no answer within {self.timeout:g} s", True) from error
            raise failed(f"cannot connect: {short_reason(str(error.reason), 500)}", True) from error
        except TimeoutError as error:  # socket.timeout is TimeoutError; raised while reading the answer
            raise failed(f"no answer within {self.timeout:g} s", True) from error
        except OSError as error:
            raise failed(f"connection error: {short_reason(str(error), 500)}", True) from error
        try:
            answer = json.loads(body)
        except ValueError as error:
            # Something answers at that URL, but not Prometheus's API: for the banner as good as nothing.
            raise failed(f"the answer is not JSON: {body[:200]!r}", True) from error
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise failed(_error_text(body) or f"unexpected answer {body[:200]!r}")
        try:
            return parse_data(answer.get("data"))
        except ValueError as error:
            raise failed(f"malformed answer: {error}") from error

    def _post(self, url: str, form: str) -> bytes:
        request = urllib.request.Request(
            url,
            data=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code not in (405, 501):
                raise
        # As Prometheus's own client does: a proxy in front of it that refuses POST gets the query as GET.
        with urllib.request.urlopen(f"{url}?{form}", timeout=self.timeout) as response:
            return response.read()


def _time_param(millis: int) -> str:
    return f"{millis // 1000}.{millis % 1000:03d}"


def _seconds(duration: str) -> float:
    return int(duration[:-2]) / 1000 if duration.endswith("ms") else float(duration[:-1])


def _error_text(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(answer, dict) and answer.get("status") == "error":
        return f"{answer.get('errorType', 'error')}: {answer.get('error', '')}"
    return ""
