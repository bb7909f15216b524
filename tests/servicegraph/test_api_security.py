"""The graph API and UI server with a bearer token and TLS, in a real collector, read with real HTTP(S) clients."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from certs import KeyPair, make_key_pair
from flask import Flask

from servicegraph.api.server import GraphServer
from telemetry.collector import Collector
from tests.servicegraph.graphonly import start_graph_collector

from realparts import free_port

TOKEN = "c0ffee5eed0ddba11deadbeef0123456"
Get = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture(scope="module")
def server_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("graph-tls"), "server")


def start_collector(graph: dict[str, Any]) -> Collector:
    return start_graph_collector({"resolution": 3600, **graph}, {"GRAPH_TOKEN": TOKEN})


def client(port: int, context: ssl.SSLContext | None = None) -> Get:
    def get(path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
        if context is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        else:
            connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    return get


@pytest.fixture(scope="module")
def guarded() -> Iterator[Get]:
    collector = start_collector({"auth": {"bearer_token": "${env:GRAPH_TOKEN}"}})
    assert collector.graph is not None
    yield client(collector.graph.port)
    collector.shutdown()


def test_the_api_refuses_a_request_without_the_token_with_a_bearer_challenge(guarded: Get) -> None:
    status, headers, body = guarded("/api/graph")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="meshscope"'
    assert "authorization: Bearer <token>" in json.loads(body)["error"]
    status, headers, _ = guarded("/api/graph", Authorization="Bearer not-it")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="meshscope", error="invalid_token"')
    assert guarded("/", Authorization=f"Basic {TOKEN}")[0] == 401  # the UI too


def test_the_api_answers_a_request_carrying_the_token(guarded: Get) -> None:
    status, _, body = guarded("/api/graph", Authorization=f"Bearer {TOKEN}")
    assert status == 200
    assert "summary" in json.loads(body)


def test_health_answers_probes_without_the_token_but_says_no_more_than_ok(guarded: Get) -> None:
    status, _, body = guarded("/api/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = guarded("/api/health", Authorization=f"Bearer {TOKEN}")
    assert json.loads(body) == {"status": "ok", "source": "live"}


def test_a_browser_opening_the_page_with_the_token_gets_a_session_cookie_and_an_address_without_it(
    guarded: Get,
) -> None:
    status, headers, _ = guarded(f"/?token={TOKEN}&window=5m")
    assert status == 303
    assert headers["Location"] == "/?window=5m"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert f"Max-Age={12 * 3600}" in cookie  # the session ends; the cookie's value carries when it began
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert TOKEN not in cookie
    session = cookie.split(";", 1)[0]

    status, _, page = guarded("/", Cookie=session)
    assert status == 200 and b"<html" in page.lower()
    assert guarded("/api/graph", Cookie=session)[0] == 200
    assert guarded("/api/graph", Cookie="meshscope_session=forged")[0] == 401
    assert guarded("/?token=wrong")[0] == 401


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(guarded: Get) -> None:
    status, _, body = guarded(
        "/_dash-update-component",
        "POST",
        **{"Content-Length": str(64 * 1024 * 1024), "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 413
    assert "too_large" in json.loads(body)["error"]


def test_with_tls_the_api_and_ui_answer_https_and_the_session_cookie_is_secure(server_pair: KeyPair) -> None:
    collector = start_collector(
        {
            "auth": {"bearer_token": TOKEN},
            "tls": {"cert_file": str(server_pair.cert), "key_file": str(server_pair.key)},
        }
    )
    try:
        assert collector.graph is not None
        port = collector.graph.port
        get = client(port, ssl.create_default_context(cafile=str(server_pair.cert)))
        status, _, body = get("/api/graph", Authorization=f"Bearer {TOKEN}")
        assert status == 200 and "summary" in json.loads(body)
        status, headers, _ = get(f"/?token={TOKEN}")
        assert status == 303 and "Secure" in headers["Set-Cookie"]
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client(port)("/api/health")  # plain HTTP to the TLS port
        assert get("/api/health")[0] == 200  # and it still serves
    finally:
        collector.shutdown()


def test_signing_in_never_redirects_to_another_host_or_splits_the_header(guarded: Get) -> None:
    status, headers, _ = guarded(f"//evil.example/x?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/evil.example/x"
    status, headers, _ = guarded(f"/%2F%2Fevil.example?token={TOKEN}&a=1")
    assert headers["Location"] == "/evil.example?a=1"
    status, headers, _ = guarded(f"/x%0D%0ASet-Cookie:%20stolen=1?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/x%0D%0ASet-Cookie:%20stolen=1"
    assert "stolen" not in headers["Set-Cookie"]


def test_an_idle_connection_is_closed_and_connections_beyond_the_bound_wait(free_port_app: GraphServer) -> None:
    port = free_port_app.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        finished = threading.Event()
        answers: list[int] = []

        def second() -> None:
            answers.append(client(port)("/ping")[0])
            finished.set()

        threading.Thread(target=second, daemon=True).start()
        # The only slot is held by a client that sends nothing: the second waits in the backlog...
        assert not finished.wait(0.5)
        # ... until the idle connection is closed by the server, and then it is answered.
        assert idle.recv(1) == b""
        assert finished.wait(20) and answers == [200]
    finally:
        idle.close()


@pytest.fixture
def free_port_app() -> Iterator[GraphServer]:
    app = Flask("bounded")
    app.add_url_rule("/ping", "ping", lambda: "pong")
    server = GraphServer(app, f"127.0.0.1:{free_port()}", max_connections=1, idle_timeout=1.5)
    server.start()
    yield server
    server.shutdown()
