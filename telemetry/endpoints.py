"""host:port endpoints as configs write them."""

from __future__ import annotations

import dataclasses
import ipaddress


def _host_port(endpoint: str) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` -> (host, port), host maybe empty; None when it is not that shape."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def split_endpoint(endpoint: str, key: str = "endpoint") -> tuple[str, int]:
    """``127.0.0.1:9464`` -> ("127.0.0.1", 9464); ``[::1]:9464`` -> ("::1", 9464); ``:9464`` -> all interfaces."""
    parsed = _host_port(endpoint)
    if parsed is None:
        raise ValueError(f"{key}: {endpoint!r} is not host:port")
    return parsed[0] or "0.0.0.0", parsed[1]


def split_target(endpoint: str, key: str = "endpoint") -> tuple[str, int]:
    """An address to connect to: as ``split_endpoint``, but the host is required and port 0 is refused."""
    parsed = _host_port(endpoint)
    if parsed is None or not parsed[0]:
        raise ValueError(f"{key}: expected host:port, got {endpoint!r}")
    if not parsed[1]:
        raise ValueError(f"{key}: port 0 cannot be connected to")
    return parsed


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listeners(config: object) -> list[tuple[str, str]]:
    """Every address the config listens on, as (key path, host:port), skipping what is disabled.

    A server's config says it is one with ``LISTENER: ClassVar[bool] = True`` beside its ``endpoint``.
    """
    return [(path, value) for path, value, owner in _endpoints(config, "", True) if getattr(owner, "LISTENER", False)]


def endpoints(config: object) -> list[tuple[str, str]]:
    """Every ``endpoint`` in the config, servers' and targets', enabled or not, as (key path, value)."""
    return [(path, value) for path, value, _ in _endpoints(config, "", False)]


def _endpoints(config: object, path: str, enabled_only: bool) -> list[tuple[str, str, object]]:
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return []
    if enabled_only and getattr(config, "enabled", True) is False:
        return []
    found: list[tuple[str, str, object]] = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{path}.{field.name}" if path else field.name
        if field.name == "endpoint" and isinstance(value, str):
            found.append((key, value, config))
        else:
            found.extend(_endpoints(value, key, enabled_only))
    return found
