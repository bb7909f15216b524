"""A URL's user:password never reaches /api/status, the banner or an error message."""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from servicegraph.sources.prometheus import PrometheusSource, PrometheusSourceError
from telemetry.exporters.export_queue import ExportError, ExportQueue, ExportQueueConfig, RetryConfig
from telemetry.reasons import short_reason
from telemetry.security.redact import redact_url
from telemetry.selfmetrics import SelfStats

from realparts import free_port, wait_for


def test_redact_url_masks_user_and_password_and_keeps_the_host() -> None:
    assert redact_url("https://admin:s3cret@prom.example:9090/x?q=1") == "https://***@prom.example:9090/x?q=1"
    assert redact_url("http://token@h:1") == "http://***@h:1"
    assert redact_url("http://prom.example:9090") == "http://prom.example:9090"


def test_short_reason_drops_errno_numbers_joins_lines_and_cuts() -> None:
    assert short_reason("cannot connect: [Errno 111] Connection refused") == "cannot connect: Connection refused"
    assert short_reason("a\n  b\tc") == "a b c"
    cut = short_reason("x" * 500, 20)
    assert len(cut) == 20 and cut.endswith("…")


def test_a_prometheus_url_with_credentials_is_masked_in_status_and_errors() -> None:
    stats = SelfStats()
    source = PrometheusSource(f"http://admin:hunter2@127.0.0.1:{free_port()}", timeout=2, stats=stats)
    try:
        with pytest.raises(PrometheusSourceError) as raised:
            source.traffic(60)
    finally:
        source.close()
    ((detail, _since),) = stats.unreachable().values()
    assert "hunter2" not in detail and detail.startswith("http://***@127.0.0.1:")
    assert "hunter2" not in str(raised.value) and "hunter2" not in raised.value.why


def test_an_invalid_prometheus_url_is_reported_without_its_password() -> None:
    with pytest.raises(ValueError) as raised:
        PrometheusSource("ftp://admin:hunter2@h:1")
    assert "hunter2" not in str(raised.value)


class _Refusing:
    def send(self, batch: object) -> int:
        raise ExportError("unreachable", True, detail="[Errno 111] Connection refused")

    def close(self) -> None:
        pass


def test_an_export_queue_target_with_credentials_is_masked_in_status() -> None:
    stats = SelfStats()
    config = ExportQueueConfig(batch_timeout=0.01, retry=RetryConfig(0.01, 0.05, 0))
    queue = ExportQueue("zipkin", _Refusing(), config, stats, target="http://user:pw123@zipkin:9411/api/v2/spans")
    try:
        assert queue.target == "http://***@zipkin:9411/api/v2/spans"
        queue.consume([ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="a")])])])
        detail = wait_for(lambda: stats.unreachable().get("zipkin"), timeout=10)[0]
    finally:
        queue.shutdown()
    assert detail == "http://***@zipkin:9411/api/v2/spans: Connection refused"
