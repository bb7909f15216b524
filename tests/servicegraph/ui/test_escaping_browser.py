"""Hostile names render as text, in a real headless Chromium, through the real path.

Records whose workload, service, namespace, path, trace id and response flags are HTML and script go
into a running collector (in-process: its pipeline, live graph, recent-traces store, API and page);
the page is opened and every place that shows them is read back: the graph's labels, the side panel
of a node and of an edge (figures, neighbours, traces, failing requests, breakdowns), the "Details
of" and namespace choices, the find message, tooltips and the banner. Nothing may run: ``alert``
is replaced before the page's scripts load and must never be called, no native dialog may be open,
and no element may carry an inline event handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from telemetry.collector import Collector
from telemetry.model import Record
from tests.servicegraph.graphonly import start_graph_collector
from tests.servicegraph.test_ui_browser import CY, browser, nodes, wait_until  # noqa: F401 - browser: a fixture

from realparts import http_get, wait_for

try:
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # test_ui_browser has already failed or skipped the run loudly
    pytest.skip("selenium not installed", allow_module_level=True)

SOURCE = "<img src=x onerror=alert(1)>"  # a workload
SERVICE = '"><script>alert(2)</script>'  # a service (no dot: hosts are split on dots)
DESTINATION = "{{constructor.constructor('alert(3)')()}}"  # the workload behind it: template syntax
NAMESPACE = "ns'\"><svg onload=alert(4)>"
PATH = "/reviews/<img src=x onerror=alert(5)>?q='\"&amp;"
TRACE_ID = "\"><img src=x onerror=alert(6)>'"
FLAGS = "<b onmouseover=alert(7)>UF</b>"
PROTOCOL = "<i>h2</i>&amp;"  # Plotly reads some tags and entities in legend text
BANNER = "<img src=x onerror=alert(8)> answered '\"><script>alert(9)</script>"
HOSTILE_FIND = 'rt>"><img/src=x/onerror=alert(10)>'  # find splits terms at spaces

SOURCE_ID = f"workload:{NAMESPACE}:{SOURCE}"
SERVICE_ID = f"service:{NAMESPACE}:{SERVICE.replace('/', ':')}"

# Before any of the page's scripts: alert only records that it was called.
TRAP = "window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };"
# Any element with an on* attribute: what an HTML injection would leave behind.
HANDLERS = """return Array.from(document.querySelectorAll('*')).filter(function (e) {
  return Array.from(e.attributes).some(function (a) { return a.name.toLowerCase().indexOf('on') === 0; });
}).map(function (e) { return e.outerHTML.slice(0, 120); });"""


INJECTED = """return document.querySelectorAll('img[src=x]').length
  + Array.from(document.scripts).filter(function (s) { return s.text.indexOf('alert(') >= 0; }).length;"""


def hostile_records() -> list[Record]:
    host = f"{SERVICE}.{NAMESPACE}.svc.cluster.local"
    common = {
        "reporter": "source",
        "source_workload": SOURCE,
        "source_namespace": NAMESPACE,
        "destination_workload": DESTINATION,
        "destination_namespace": NAMESPACE,
        "destination_service": host,
        "destination_service_name": SERVICE,
        "destination_service_namespace": NAMESPACE,
        "method": "GET",
        "path": PATH,
        "authority": SERVICE,
        "duration_ms": 120,
        "start_time": "2026-11-24T23:59:00.000Z",
    }
    failed = Record(**common, response_code=503, response_flags=FLAGS, trace_id=TRACE_ID)  # type: ignore[arg-type]
    fine = Record(**common, response_code=200, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")  # type: ignore[arg-type]
    odd = Record(**{**common, "protocol": PROTOCOL}, response_code=200)  # type: ignore[arg-type]
    return [failed, fine, fine, odd]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    running = start_graph_collector({"resolution": 0.5}, {})
    try:
        running.pipeline.submit(hostile_records(), "filelog")
        assert running.pipeline.flush(10)
        running.stats.reachability("zipkin", False, BANNER)
        url = f"http://127.0.0.1:{running.graph.port}"  # type: ignore[union-attr]

        def in_graph() -> bool:
            document = orjson.loads(http_get(f"{url}/api/graph?format=cytoscape&window=1m"))
            return SOURCE_ID in {element["data"]["id"] for element in document["elements"]}

        wait_for(in_graph, timeout=20, what="the hostile workload in the collector's graph")
        yield running
    finally:
        running.shutdown()


@pytest.fixture(scope="module")
def page(browser: Any, collector: Collector) -> Any:  # noqa: F811 - the imported fixture
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    browser.get(f"http://127.0.0.1:{collector.graph.port}/?refresh=1&window=1m")  # type: ignore[union-attr]
    wait_until(browser, lambda d: SOURCE_ID in {n["id"] for n in nodes(d)}, "the hostile nodes on the page")
    yield browser
    assert_nothing_ran(browser)


def assert_nothing_ran(driver: Any) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        text = None
    assert text is None, f"a native dialog is open: {text!r}"
    assert driver.execute_script("return window.__alerts") == []
    assert driver.execute_script(HANDLERS) == []
    assert driver.execute_script(INJECTED) == 0


def tap(driver: Any, element_id: str) -> None:
    driver.execute_script(CY + "cy.getElementById(arguments[0]).emit('tap');", element_id)


def text_of(driver: Any, element_id: str) -> str:
    try:
        return str(driver.find_element(By.ID, element_id).text)
    except StaleElementReferenceException:  # redrawn by a refresh between finding and reading
        return ""


def test_graph_labels_carry_the_names_as_plain_text(page: Any) -> None:
    labels = page.execute_script(CY + "return cy.nodes().map(function (n) { return n.data('label'); });")
    assert any(label.startswith(SOURCE) for label in labels)
    assert any(label.startswith(SERVICE) for label in labels)
    assert any(label.startswith(DESTINATION) for label in labels)
    assert_nothing_ran(page)


def test_the_node_panel_shows_the_name_namespace_and_neighbours_literally(page: Any) -> None:
    tap(page, SOURCE_ID)
    wait_until(page, lambda d: text_of(d, "panel-title") == SOURCE, "the panel titled with the hostile name")
    assert NAMESPACE in text_of(page, "panel-head")
    buttons = page.find_elements(By.CSS_SELECTOR, "#panel .neighbours button")
    assert [(button.text, button.get_attribute("title")) for button in buttons] == [(SERVICE, SERVICE_ID)]
    assert_nothing_ran(page)


def test_the_edge_panel_shows_traces_failures_and_flags_literally(page: Any) -> None:
    edge_id = page.execute_script(
        CY
        + "var from = arguments[0]; return cy.edges().filter(function (e) { return e.data('source') === from; })[0].id();",
        SOURCE_ID,
    )
    tap(page, edge_id)
    wait_until(page, lambda d: text_of(d, "panel-title") == f"{SOURCE} → {SERVICE}", "the edge's panel")
    wait_until(page, lambda d: PATH in text_of(d, "panel-traces"), "the failing request's line")
    codes = page.find_elements(By.CSS_SELECTOR, "#panel .traces code")
    assert TRACE_ID in {code.get_attribute("title") for code in codes}
    assert TRACE_ID[:16] in {code.text for code in codes}
    links = [a.get_attribute("href") for a in page.find_elements(By.CSS_SELECTOR, "#panel .traces a")]
    assert links and all(link.startswith(("http://", "https://")) for link in links)
    wait_until(page, lambda d: FLAGS in text_of(d, "panel-breakdowns"), "the response flags in the breakdown")
    assert PROTOCOL.upper() in text_of(page, "panel-figures")
    legend = wait_until(
        page,
        lambda d: [t.get_attribute("textContent") for t in d.find_elements(By.CSS_SELECTOR, "#panel .legendtext")],
        "the chart's legend",
    )
    assert f"{PROTOCOL} rps" in legend
    assert_nothing_ran(page)


def options_once_showing(text: str) -> Any:
    """The texts of the open dropdown's options, once one of them reads ``text`` (other widgets have
    options too, and a dropdown's menu renders a moment after the click)."""

    def read(driver: Any) -> list[str] | None:
        texts = [option.text for option in driver.find_elements(By.CSS_SELECTOR, "[role=option]")]
        return texts if text in texts else None

    return read


def test_the_choices_of_details_and_namespaces_show_the_names_literally(page: Any) -> None:
    page.find_element(By.ID, "inspect").click()
    source_choice = f"{SOURCE} (workload, {NAMESPACE})"
    choices = wait_until(page, options_once_showing(source_choice), "the node choices, literally")
    assert f"{SERVICE} (service, {NAMESPACE})" in choices
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    page.find_element(By.ID, "namespaces").click()
    wait_until(page, options_once_showing(NAMESPACE), "the namespace choices, literally")
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert_nothing_ran(page)


def test_find_matches_a_hostile_name_and_echoes_a_hostile_term_as_text(page: Any) -> None:
    find = page.find_element(By.ID, "find")

    def search(text: str) -> None:
        # Selected and typed over: clear() would not reach React's state of the input.
        find.send_keys(Keys.CONTROL, "a", Keys.NULL, Keys.BACKSPACE, text, Keys.ENTER)

    search("name=<img*")
    wait_until(page, lambda d: "found: 1 node" in text_of(d, "find-message"), "the hostile workload found")
    search(HOSTILE_FIND)
    expected = "Find: rt: expected a number, got '\"><img/src=x/onerror=alert(10)>'"
    wait_until(page, lambda d: text_of(d, "find-message") == expected, "find's complaint, quoting the term")
    search("")
    assert_nothing_ran(page)


def test_the_banner_shows_a_hostile_reason_as_text(page: Any) -> None:
    wait_until(page, lambda d: BANNER in text_of(d, "banner"), "the banner with the hostile reason")
    assert "Zipkin trace export" in text_of(page, "banner")
    assert_nothing_ran(page)
