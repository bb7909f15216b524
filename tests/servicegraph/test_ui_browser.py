"""The service graph page in a real headless Chromium, over a real ``meshscope demo`` process.

Chromium and chromedriver are Debian's (packages chromium, chromium-driver), driven by Selenium;
nothing is downloaded. The graph's elements are read from the page's Cytoscape instance, which
Cytoscape keeps on its container element as ``_cyreg.cy``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from servicegraph.ui.app import attach_ui
from servicegraph.ui.settings import UiSettings
from tests.servicegraph.ui.fakes import FakeBackend, bookinfo_api, serve

from conftest import IN_CI, require_program
from realparts import free_port, http_get, meshscope_process, wait_for

try:
    from selenium import webdriver
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    # As require_program does for programs: a failure in CI, elsewhere a skip that says what to install.
    message = "selenium not installed: pip install -e '.[test]'"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REVIEWS = "service:default:reviews"
CY = "var box = document.getElementById('graph'); var cy = box && box._cyreg && box._cyreg.cy;"
NODES_JS = (
    CY
    + """
return cy ? cy.nodes().map(function (n) {
  return {id: n.id(), name: n.data('name'), kind: n.data('kind'), classes: n.classes(), x: n.position('x'), y: n.position('y')};
}) : [];"""
)
EDGES_JS = (
    CY
    + "return cy ? cy.edges().map(function (e) { return {id: e.id(), source: e.data('source'), target: e.data('target'), classes: e.classes()}; }) : [];"
)
UPDATES_JS = "return performance.getEntriesByType('resource').filter(function (e) { return e.name.indexOf('_dash-update-component') >= 0; }).length;"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_program("chromium", "chromium")
    chromedriver = require_program("chromedriver", "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def demo_config(tmp_path: Path, graph_port: int) -> Path:
    """Every endpoint of the demo on a free port, so the test never meets another meshscope."""
    config = {
        "receivers": {
            "als": {"endpoint": "127.0.0.1:0"},
            "otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
            "zipkin": {"endpoint": "127.0.0.1:0"},
        },
        "exporters": {"prometheus": {"endpoint": f"127.0.0.1:{free_port()}"}},
        "graph": {"endpoint": f"127.0.0.1:{graph_port}"},
    }
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def serves_the_page(url: str) -> bool:
    try:
        return b"dash_renderer" in http_get(url + "/", timeout=2)
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``meshscope demo``, its graph showing reviews; yields the graph endpoint's URL, where
    the collector serves both the API and the page."""
    tmp_path = tmp_path_factory.mktemp("ui-demo")
    graph_port = free_port()
    api = f"http://127.0.0.1:{graph_port}"
    args = ["demo", "--no-browser", "--rate", "30", "-c", str(demo_config(tmp_path, graph_port))]
    with meshscope_process(args, tmp_path / "demo.log") as demo:

        def reviews_in_graph() -> bool:
            document = orjson.loads(http_get(f"{api}/api/graph?format=cytoscape&window=1m"))
            return any(element["data"]["id"] == REVIEWS for element in document["elements"])

        wait_for(reviews_in_graph, timeout=30, interval=0.3, what=f"the demo's graph at {api} to show reviews")
        yield api
        assert demo.poll() is None, (tmp_path / "demo.log").read_text()


@pytest.fixture(scope="module")
def page_url(demo_api: str) -> str:
    assert serves_the_page(demo_api), f"the demo serves no page at {demo_api}/ (graph.ui_enabled?)"
    return demo_api


def nodes(driver: Any) -> list[dict[str, Any]]:
    return driver.execute_script(NODES_JS)  # type: ignore[no-any-return]


def edges(driver: Any) -> list[dict[str, Any]]:
    return driver.execute_script(EDGES_JS)  # type: ignore[no-any-return]


def wait_until(driver: Any, condition: Any, what: str, timeout: float = 15) -> Any:
    return wait_for(lambda: condition(driver), timeout=timeout, interval=0.1, what=what)


@pytest.fixture(scope="module")
def loaded(browser: Any, page_url: str) -> Any:
    started = time.monotonic()
    browser.get(page_url + "/?refresh=1&window=1m")
    wait_until(browser, lambda d: any(n["id"] == REVIEWS for n in nodes(d)), "the Bookinfo graph on the page")
    print(f"time to first graph: {time.monotonic() - started:.2f} s")
    return browser


def test_the_page_draws_the_bookinfo_nodes_and_edges(loaded: Any) -> None:
    names = {node["name"] for node in nodes(loaded)}
    assert {
        "productpage",
        "productpage-v1",
        "reviews",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
        "ratings",
        "details",
        "istio-ingressgateway",
    } <= names
    pairs = {(edge["source"], edge["target"]) for edge in edges(loaded)}
    assert ("workload:default:productpage-v1", REVIEWS) in pairs
    assert ("workload:default:reviews-v3", "service:default:ratings") in pairs
    summary = loaded.find_element(By.ID, "summary").text
    assert "rps" in summary and "SUCCESS" in summary.upper()


def test_every_node_has_a_place_of_its_own(loaded: Any) -> None:
    spots = [(round(node["x"]), round(node["y"])) for node in nodes(loaded)]
    assert len(set(spots)) == len(spots)


def test_controls_are_reachable_by_tab_and_named_by_their_labels(loaded: Any) -> None:
    loaded.execute_script("document.activeElement && document.activeElement.blur();")
    reached = []
    for _ in range(30):
        ActionChains(loaded).send_keys(Keys.TAB).perform()
        reached.append(loaded.switch_to.active_element.get_attribute("id"))
    controls = [
        "graph-type",
        "namespaces",
        "window",
        "refresh",
        "edge-labels",
        "layout",
        "relayout",
        "find",
        "hide",
        "inspect",
    ]
    assert [control for control in reached if control in controls][: len(controls)] == controls
    loaded.execute_script("document.getElementById('graph-type').focus();")
    wait_until(
        loaded,
        lambda d: "graph-type-label" in (d.switch_to.active_element.get_attribute("aria-labelledby") or ""),
        "the graph type control to be named by its label",
    )
    assert loaded.execute_script("return getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_tapping_reviews_opens_the_side_panel_with_a_chart(loaded: Any) -> None:
    loaded.execute_script(CY + f"cy.$id('{REVIEWS}').emit('tap');")
    wait_until(loaded, lambda d: d.find_element(By.ID, "panel").is_displayed(), "the side panel")
    wait_until(loaded, lambda d: d.find_element(By.ID, "panel-title").text == "reviews", "the panel for reviews")
    traces = wait_until(
        loaded,
        lambda d: d.execute_script(
            "var p = document.querySelector('#panel .js-plotly-plot'); return p && p.data && p.data.length;"
        ),
        "the panel's chart",
    )
    assert traces == 5  # rate, error %, p50, p95, p99
    panel = loaded.find_element(By.ID, "panel").text
    assert "Request rate" in panel and "Inbound" in panel and "productpage-v1" in panel
    assert loaded.execute_script(CY + f"return cy.$id('{REVIEWS}').selected();")


def test_a_neighbour_button_moves_the_panel_to_that_node(loaded: Any) -> None:
    def click_productpage(driver: Any) -> bool:
        # A refresh may redraw the panel between finding the button and clicking it.
        try:
            buttons = driver.find_elements(By.CSS_SELECTOR, "#panel .neighbours button")
            next(button for button in buttons if button.text == "productpage-v1").click()
            return True
        except (StaleElementReferenceException, ElementClickInterceptedException, StopIteration):
            return False

    wait_until(loaded, click_productpage, "a click on the productpage-v1 button")
    wait_until(loaded, lambda d: d.find_element(By.ID, "panel-title").text == "productpage-v1", "its panel")
    assert loaded.execute_script(CY + "return cy.$id('workload:default:productpage-v1').selected();")
    loaded.execute_script(CY + f"cy.$id('{REVIEWS}').emit('tap');")
    wait_until(loaded, lambda d: d.find_element(By.ID, "panel-title").text == "reviews", "the panel back on reviews")


def test_find_highlights_the_matches_and_goes_into_the_url(loaded: Any) -> None:
    find = loaded.find_element(By.ID, "find")
    find.send_keys("rt>500" + Keys.ENTER)
    wait_until(
        loaded,
        lambda d: "found" in next(n["classes"] for n in nodes(d) if n["id"] == REVIEWS),
        "reviews (p95 over 2 s from the delayed v3) to be highlighted",
    )
    classes = {node["id"]: node["classes"] for node in nodes(loaded)}
    assert "faded" in classes["workload:default:reviews-v1"]  # a fast one
    assert "found:" in loaded.find_element(By.ID, "find-message").text
    wait_until(loaded, lambda d: "find=rt%3E500" in d.current_url, "the find expression in the URL")


def test_refreshes_leave_every_node_where_it_was(loaded: Any) -> None:
    before = {node["id"]: (node["x"], node["y"]) for node in nodes(loaded)}
    updates = loaded.execute_script(UPDATES_JS)
    wait_until(loaded, lambda d: d.execute_script(UPDATES_JS) >= updates + 4, "two more refreshes", timeout=10)
    after = {node["id"]: (node["x"], node["y"]) for node in nodes(loaded)}
    assert {node: after[node] for node in before if node in after} == before


def test_switching_the_graph_type_redraws_other_nodes(loaded: Any) -> None:
    loaded.find_element(By.ID, "graph-type").click()
    option = wait_until(
        loaded,
        lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == "Apps"],
        "the graph type options",
    )
    option[0].click()
    wait_until(
        loaded,
        lambda d: {n["kind"] for n in nodes(d)} >= {"app"} and "workload" not in {n["kind"] for n in nodes(d)},
        "app nodes instead of workloads",
    )
    assert "app:default:reviews" in {node["id"] for node in nodes(loaded)}
    assert "type=app" in loaded.current_url


def test_a_screenshot_of_the_page_is_kept(loaded: Any) -> None:
    loaded.execute_script(CY + "cy.$id('app:default:reviews').emit('tap');")
    chart_points = (
        "var p = document.querySelector('#panel .js-plotly-plot'); return p && p.data ? p.data[0].x.length : 0;"
    )
    # The demo's series grow a point every few seconds; a few make a chart worth looking at.
    wait_for(
        lambda: loaded.execute_script(chart_points) >= 3, timeout=20, interval=0.5, what="three points on the chart"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "ui.png"
    loaded.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000


def test_meshscope_ui_serves_the_page_over_another_collectors_api(browser: Any, demo_api: str, tmp_path: Path) -> None:
    port = free_port()
    with meshscope_process(["ui", "--source", demo_api, "--listen", f"127.0.0.1:{port}"], tmp_path / "ui.log") as ui:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: serves_the_page(url), timeout=20, what=f"meshscope ui at {url}")
        browser.get(url + "/?type=service")
        wait_until(browser, lambda d: "service:default:reviews" in {n["id"] for n in nodes(d)}, "the demo's services")
        assert {node["kind"] for node in nodes(browser)} <= {"service", "gateway", "external", "database", "unknown"}
        assert ui.poll() is None, (tmp_path / "ui.log").read_text()


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[str, FakeBackend]]:
    """The page over a backend the test changes, mounted as the collector mounts it: on the API's own
    Flask app, reading that API in-process (the Bookinfo test graph)."""
    app = bookinfo_api()
    backend = FakeBackend(app)
    attach_ui(app, backend, UiSettings())
    for url in serve(app):
        yield url, backend


def test_a_new_node_is_placed_beside_its_caller_and_nothing_else_moves(
    browser: Any, scripted: tuple[str, FakeBackend]
) -> None:
    url, backend = scripted
    newcomer = "workload:default:reviews-v2"
    backend.hidden = {newcomer}
    browser.get(url + "/?refresh=1")
    wait_until(browser, lambda d: len(nodes(d)) == 17, "the graph without reviews-v2")
    time.sleep(0.5)  # the first layout has run
    before = {node["id"]: (node["x"], node["y"]) for node in nodes(browser)}
    backend.hidden = set()
    wait_until(browser, lambda d: newcomer in {n["id"] for n in nodes(d)}, "reviews-v2 to appear")
    time.sleep(0.3)
    after = {node["id"]: (node["x"], node["y"]) for node in nodes(browser)}
    assert {node: after[node] for node in before} == before
    x, y = after[newcomer]
    caller_x, _ = after["service:default:reviews"]
    assert x > caller_x  # right of its caller, as the left-to-right layout has it
    assert all(abs(x - ox) + abs(y - oy) > 30 for node, (ox, oy) in after.items() if node != newcomer)


def test_a_failing_source_is_reported_in_the_summary_bar(browser: Any, scripted: tuple[str, FakeBackend]) -> None:
    url, backend = scripted
    backend.failure = "cannot reach http://collector:8050: connection refused"
    try:
        wait_until(
            browser,
            lambda d: "cannot reach http://collector:8050" in d.find_element(By.ID, "summary").text,
            "the source's failure in the summary bar",
        )
        assert len(nodes(browser)) == 18  # the last graph stays
    finally:
        backend.failure = None
