"""``meshscope ui --source URL`` over a graph API that needs a bearer token."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicegraph.ui.backend import HttpBackend
from servicegraph.ui.command import SourceError, UsageError, add_parser, build
from tests.servicegraph.graphonly import start_graph_collector

TOKEN = "0ddba11c0ffee5eed1234567890abcde"


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="meshscope")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ui", "--listen", "127.0.0.1:0", *argv])


@pytest.fixture(scope="module")
def secured_url() -> Iterator[str]:
    collector = start_graph_collector(
        {"resolution": 3600, "auth": {"bearer_token": "${env:T}"}, "ui_enabled": False}, {"T": TOKEN}
    )
    assert collector.graph is not None
    yield f"http://127.0.0.1:{collector.graph.port}"
    collector.shutdown()


def test_the_http_backend_sends_the_token_as_a_bearer_header(secured_url: str) -> None:
    graph = HttpBackend(secured_url, token=TOKEN).graph("5m", "workload", [], False)
    assert "summary" in graph


def test_without_a_token_the_ui_exits_saying_which_flag_gives_one(secured_url: str) -> None:
    with pytest.raises(SourceError, match="--token-env or --token-file"):
        build(arguments("--source", secured_url))


def test_token_env_reads_the_token_from_the_environment(
    secured_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESH_API_TOKEN", TOKEN)
    _, _, app, _ = build(arguments("--source", secured_url, "--token-env", "MESH_API_TOKEN"))
    assert "warning" not in capsys.readouterr().err
    assert app.test_client().get("/").status_code == 200
    monkeypatch.setenv("MESH_API_TOKEN", "wrong-token-0123456789")
    with pytest.raises(SourceError, match="the token is refused"):
        build(arguments("--source", secured_url, "--token-env", "MESH_API_TOKEN"))


def test_token_file_reads_a_mounted_secret(secured_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    build(arguments("--source", secured_url, "--token-file", str(secret)))


def test_a_missing_token_source_is_a_usage_error(secured_url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--token-env: the environment variable NOT_SET_ANYWHERE_1"):
        build(arguments("--source", secured_url, "--token-env", "NOT_SET_ANYWHERE_1"))
    with pytest.raises(UsageError, match="--token-file: cannot read"):
        build(arguments("--source", secured_url, "--token-file", str(tmp_path / "absent")))
    with pytest.raises(UsageError, match="only for an http"):
        build(arguments("--source", "prometheus=http://127.0.0.1:9", "--token-env", "X"))
