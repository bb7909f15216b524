"""``meshscope ui``: clear errors for bad flags and unreachable sources; a page over any API."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from servicegraph.ui.command import add_parser, build, run
from tests.servicegraph.ui.fakes import bookinfo_api, serve

from conftest import require_program
from realparts import free_port, prometheus


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="meshscope")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ui", *argv])


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    yield from serve(bookinfo_api())


def test_a_bad_listen_address_exits_2_naming_the_flag(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(arguments("--source", api_url, "--listen", "localhost")) == 2
    assert "--listen: 'localhost' is not host:port" in capsys.readouterr().err


def test_an_unreachable_api_still_serves_the_page_and_warns_naming_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _, _, app, _ = build(arguments("--source", url))
    assert f"warning: the graph API at {url} does not answer (cannot reach {url}" in capsys.readouterr().err
    assert app.test_client().get("/").status_code == 200


def test_an_unreachable_prometheus_still_serves_the_page_and_its_status_names_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _, _, app, _ = build(arguments("--source", f"prometheus={url}"))
    assert f"warning: Prometheus does not answer ({url}: cannot connect: Connection refused)" in capsys.readouterr().err
    status = app.test_client().get("/api/status").json
    assert status is not None and [entry["name"] for entry in status["unreachable"]] == ["prometheus"]
    assert status["unreachable"][0]["detail"] == f"{url}: cannot connect: Connection refused"


def refusing_prometheus() -> Flask:
    """Answers every query as Prometheus answers one it cannot parse."""
    app = Flask("refusing")
    refusal = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    app.add_url_rule("/api/v1/query", "query", lambda: (refusal, 400), methods=["GET", "POST"])
    return app


def test_a_source_that_answers_but_refuses_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    for url in serve(refusing_prometheus()):
        assert run(arguments("--source", url)) == 1
        assert f"the graph API at {url} cannot be read: {url}/api/graph: HTTP 404" in capsys.readouterr().err
        assert run(arguments("--source", f"prometheus={url}")) == 1
        assert f"{url}/api/v1/query failed: HTTP 400: bad_data: parse error" in capsys.readouterr().err


def test_a_source_of_another_form_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(arguments("--source", "collector:8050")) == 2
    assert "--source: expected http://host:port of a meshscope API or prometheus=URL" in capsys.readouterr().err


def test_bad_link_urls_are_named_by_their_flags(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(arguments("--source", api_url, "--jaeger-url", "jaeger:16686", "--refresh", "0")) == 2
    err = capsys.readouterr().err
    assert "--jaeger-url: expected an http:// or https:// URL" in err and "--refresh: must be between" in err


def test_over_an_api_the_ui_serves_the_page_and_reads_the_api(api_url: str) -> None:
    host, port, app, source = build(arguments("--source", api_url, "--listen", "127.0.0.1:0"))
    assert (host, port, source) == ("127.0.0.1", 0, api_url)
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200 and b"meshscope" in page.data
    assert b'"id":"graph"' in client.get("/_dash-layout").data


def test_over_a_real_prometheus_the_ui_serves_its_own_api_and_page(tmp_path: Path) -> None:
    binary = require_program("prometheus", "prometheus")
    with prometheus(binary, tmp_path, []) as url:
        _, _, app, source = build(arguments("--source", f"prometheus={url}", "--window", "1m"))
        client = app.test_client()
        graph = client.get("/api/graph?format=cytoscape")
        assert source == f"Prometheus {url}"
        assert graph.status_code == 200 and graph.json is not None and graph.json["source"] == f"prometheus {url}"
        assert b"meshscope" in client.get("/").data
