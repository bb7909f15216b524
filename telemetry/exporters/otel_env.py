"""Reading the OpenTelemetry SDK's standard environment variables, as the specification defines them."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote


def first_set(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """(name, value) of the first variable that is set and not blank."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def parse_headers(value: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` with URL-encoded values (W3C baggage form), keys lowercased."""
    headers = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError(f"{item.strip()!r} is not key=value")
        headers[key] = unquote(raw.strip())
    return headers


def parse_timeout_ms(value: str) -> float:
    """A timeout in milliseconds (as the specification says; some SDKs read seconds), as seconds."""
    try:
        milliseconds = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of milliseconds") from None
    if milliseconds <= 0:
        raise ValueError("must be positive")
    return milliseconds / 1000
