"""attach_ui: the page at / of the API's own Flask app, the API untouched beside it."""

from __future__ import annotations

import orjson
import pytest
from flask import Flask

from servicegraph.ui.app import attach_ui
from servicegraph.ui.backend import LocalBackend
from servicegraph.ui.settings import UiSettings
from tests.servicegraph.ui.fakes import bookinfo_api


@pytest.fixture(scope="module")
def app() -> Flask:
    api = bookinfo_api()
    attach_ui(api, LocalBackend(api), UiSettings())
    return api


def test_the_page_is_served_at_the_root(app: Flask) -> None:
    page = app.test_client().get("/")
    assert page.status_code == 200 and b"<title>meshscope \xc2\xb7 service graph</title>" in page.data


def test_the_page_brings_its_own_assets_and_the_dagre_layout(app: Flask) -> None:
    page = app.test_client().get("/").data.decode()
    assert "/assets/positions.js" in page and "/assets/meshscope.css" in page
    assert "dash_cytoscape_extra" in page  # the bundle with dagre and klay


def test_the_api_still_answers_beside_the_page(app: Flask) -> None:
    answer = app.test_client().get("/api/graph?format=cytoscape")
    assert answer.status_code == 200 and orjson.loads(answer.data)["summary"]["nodes"] == 18


def test_an_unknown_path_is_a_404_not_the_page(app: Flask) -> None:
    answer = app.test_client().get("/api/status-of-nothing")
    assert answer.status_code == 404 and orjson.loads(answer.data)["error"]


def test_the_layout_has_every_control_the_url_carries(app: Flask) -> None:
    layout = app.test_client().get("/_dash-layout").data.decode()
    for control in (
        "graph-type",
        "namespaces",
        "window",
        "refresh",
        "paused",
        "hide-idle",
        "find",
        "hide",
        "edge-labels",
        "layout",
    ):
        assert f'"id":"{control}"' in layout


def test_invalid_settings_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="graph.ui: jaeger_url: expected an http"):
        attach_ui(Flask("x"), LocalBackend(Flask("y")), UiSettings(jaeger_url="nowhere"))
