"""Certificates for the TLS tests, made once per session with the real openssl CLI."""

from __future__ import annotations

import pytest
from certs import KeyPair, make_key_pair


@pytest.fixture(scope="session")
def server_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("tls"), "server")


@pytest.fixture(scope="session")
def client_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("tls-client"), "client", "meshscope-test-client")


@pytest.fixture(scope="session")
def other_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A second, unrelated certificate: one no server trusts."""
    return make_key_pair(tmp_path_factory.mktemp("tls-other"), "other")
