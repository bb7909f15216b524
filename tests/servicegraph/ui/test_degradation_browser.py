"""A backend down at start: the page still loads and a plain banner names it, then goes when it is back.

In a real headless Chromium: ``meshscope ui`` (a real process) over a Prometheus that is not there yet,
and a collector whose OTLP trace exporter points at a closed port. Each banner names the backend and
says why in one line, never with a traceback; each disappears once a real server answers on that port.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from telemetry.collector import Collector
from telemetry.spans.from_zipkin import resource_spans_from_json
from tests.servicegraph.graphonly import start_graph_collector
from tests.servicegraph.test_ui_browser import browser, serves_the_page, wait_until  # noqa: F401 - browser: a fixture

import realparts
from conftest import require_program
from realparts import free_port, meshscope_process, wait_for

try:
    from selenium.webdriver.common.by import By
except ImportError:  # test_ui_browser has already failed or skipped the run loudly
    pytest.skip("selenium not installed", allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ZIPKIN_SPAN = (
    b'[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"00f067aa0ba902b7","kind":"CLIENT","name":"get",'
    b'"timestamp":1714564800000000,"duration":9000,"localEndpoint":{"serviceName":"productpage"}}]'
)


def banner_text(driver: Any) -> str:
    banner = driver.find_element(By.ID, "banner")
    return str(banner.text) if banner.is_displayed() else ""


def assert_no_traceback(driver: Any) -> None:
    page = driver.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in page and 'File "' not in page


def test_meshscope_ui_over_a_prometheus_not_yet_there_shows_a_banner_until_it_answers(
    browser: Any,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    binary = require_program("prometheus", "prometheus")
    prometheus_port, ui_port = free_port(), free_port()
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    args = ["ui", "--source", f"prometheus={prometheus_url}", "--listen", f"127.0.0.1:{ui_port}", "--refresh", "1"]
    with meshscope_process(args, tmp_path / "ui.log") as ui:
        url = f"http://127.0.0.1:{ui_port}"
        wait_for(lambda: serves_the_page(url), timeout=20, what=f"meshscope ui at {url}")
        browser.get(url + "/?window=1m")
        expected = f"Prometheus (graph source): {prometheus_url}: cannot connect: Connection refused"
        wait_until(browser, lambda d: expected in banner_text(d), "the banner naming Prometheus")
        assert "✖" in browser.find_element(By.ID, "summary").text  # the graph could not be read
        assert_no_traceback(browser)
        monkeypatch.setattr(realparts, "free_port", lambda: prometheus_port)  # a real Prometheus on that port
        with realparts.prometheus(binary, tmp_path, []):
            wait_until(browser, lambda d: banner_text(d) == "", "the banner to go", timeout=30)
            wait_until(browser, lambda d: "0 nodes" in d.find_element(By.ID, "summary").text, "the (empty) graph")
        assert ui.poll() is None, (tmp_path / "ui.log").read_text()
    log = (tmp_path / "ui.log").read_text()
    assert "warning: Prometheus does not answer" in log and "Traceback" not in log


class AcceptingTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(  # noqa: N802 - the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector_exporting_to_a_closed_port() -> Iterator[tuple[Collector, str]]:
    endpoint = f"127.0.0.1:{free_port()}"
    # The exporter from the environment, as a deployment would set it; quick retries so recovery shows soon.
    environ = {
        "MESHSCOPE_EXPORTERS__OTLP__ENABLED": "true",
        "MESHSCOPE_EXPORTERS__OTLP__ENDPOINT": endpoint,
        "MESHSCOPE_EXPORTERS__OTLP__PROTOCOL": "grpc",
        "MESHSCOPE_EXPORTERS__OTLP__RETRY__INITIAL_BACKOFF": "0.1",
        "MESHSCOPE_EXPORTERS__OTLP__RETRY__MAX_BACKOFF": "0.5",
        "MESHSCOPE_EXPORTERS__OTLP__RETRY__MAX_ELAPSED": "0",
    }
    collector = start_graph_collector({"resolution": 0.5}, environ)
    try:
        yield collector, endpoint
    finally:
        collector.shutdown(timeout=2)


def test_a_collector_whose_trace_backend_is_down_shows_a_banner_until_it_answers(
    browser: Any,  # noqa: F811 - the imported fixture
    collector_exporting_to_a_closed_port: tuple[Collector, str],
) -> None:
    collector, endpoint = collector_exporting_to_a_closed_port
    collector.traces.accept(resource_spans_from_json(ZIPKIN_SPAN), "zipkin")
    url = f"http://127.0.0.1:{collector.graph.port}"  # type: ignore[union-attr]
    browser.get(url + "/?refresh=1")
    expected = f"OTLP trace export (Jaeger): {endpoint}: gRPC UNAVAILABLE"
    wait_until(browser, lambda d: expected in banner_text(d), "the banner naming the OTLP exporter")
    heading, line = banner_text(browser).split("\n")  # one line for the one backend
    assert heading == "⚠ Unreachable" and "Connection refused" in line and line.endswith(" UTC)")
    assert_no_traceback(browser)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-banner.png"))
    assert "records/s" in browser.find_element(By.ID, "summary").text  # the collector keeps serving
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(AcceptingTraceService(), server)
    server.add_insecure_port(endpoint)
    server.start()
    try:
        wait_until(browser, lambda d: banner_text(d) == "", "the banner to go once the backend answers", timeout=30)
        assert collector.stats.exported == {"otlp": 1}
    finally:
        server.stop(None)
