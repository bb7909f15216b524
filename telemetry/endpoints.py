"""host:port endpoints as configs write them."""

from __future__ import annotations


def split_endpoint(endpoint: str, key: str = "endpoint") -> tuple[str, int]:
    """``127.0.0.1:9464`` -> ("127.0.0.1", 9464); ``[::1]:9464`` -> ("::1", 9464); ``:9464`` -> all interfaces."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{key}: {endpoint!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)
