"""The UI behind a bearer token, in a real headless Chromium: opened once with ?token=, the page and its
callbacks work from the session cookie; without it the browser gets only the 401."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.servicegraph.graphonly import start_graph_collector
from tests.servicegraph.test_ui_browser import browser  # noqa: F401 - a fixture: Debian's headless Chromium

from realparts import wait_for

TOKEN = "b1e55ed0c0ffee0ddba11f00dcafe123"
SUMMARY_JS = "var s = document.getElementById('summary'); return s ? s.innerText : '';"
CALLBACK_STATUSES_JS = (
    "return performance.getEntriesByType('resource')"
    ".filter(function (e) { return e.name.indexOf('_dash-update-component') >= 0; })"
    ".map(function (e) { return e.responseStatus; });"
)


@pytest.fixture(scope="module")
def page() -> Iterator[str]:
    collector = start_graph_collector({"auth": {"bearer_token": "${env:UI_TOKEN}"}}, {"UI_TOKEN": TOKEN})
    assert collector.graph is not None
    yield f"http://127.0.0.1:{collector.graph.port}"
    collector.shutdown()


def test_without_the_token_the_browser_gets_the_401_and_no_page(browser: Any, page: str) -> None:  # noqa: F811 - the imported fixture
    browser.delete_all_cookies()
    browser.get(page + "/")
    assert "unauthenticated" in browser.page_source
    assert browser.execute_script("return document.getElementById('graph')") is None


def test_opened_once_with_the_token_the_page_runs_its_callbacks_on_the_session_cookie(
    browser: Any,  # noqa: F811 - the imported fixture
    page: str,
) -> None:
    browser.get(f"{page}/?token={TOKEN}")
    assert TOKEN not in browser.current_url
    # The layout and the callbacks are requests the page makes with the cookie alone.
    wait_for(lambda: browser.execute_script(SUMMARY_JS).strip(), timeout=30, what="the page's summary")
    statuses = wait_for(lambda: browser.execute_script(CALLBACK_STATUSES_JS), timeout=30, what="a Dash callback")
    assert set(statuses) == {200}
    (cookie,) = browser.get_cookies()
    assert cookie["name"] == "meshscope_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
