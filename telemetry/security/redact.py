"""Keeping secrets out of what is printed or logged: config dumps and error messages.

A value is secret when its key names one (token, password, secret, api_key, authorization, ...) or
when it sits in a ``headers`` mapping (exporters' headers carry API keys). In config error messages,
every value put in from an environment variable through ``${env:NAME}`` is masked as well, whatever its
key (telemetry/confload.py passes them to ``scrub``); a config dump (``redacted``) has no such record
and masks by key only. URLs keep their host but lose any ``user:password@``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"token|password|passwd|secret|api_?key|authorization|credential", re.IGNORECASE)
_HEADER_KEYS = frozenset({"headers"})
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")
# Shorter values are not hunted for inside messages: they would mask unrelated words.
_MIN_SCRUBBED = 3


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _names_secret(key: object) -> bool:
    """Whether the value under ``key`` is secret (all of it, when it is a mapping such as ``headers``)."""
    return is_secret_key(str(key)) or str(key) in _HEADER_KEYS


def redacted(value: Any) -> Any:
    """A plain copy of a config (dataclasses, mappings, lists) with every secret value masked."""
    return _redact(value, secret=False)


def _redact(value: Any, secret: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _redact(item, secret or _names_secret(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, secret) for item in value]
    if secret:
        return _mask(value)
    if isinstance(value, str):
        return redact_url(value)
    return value


def _mask(value: Any) -> Any:
    # An empty value stays visible: that nothing is set is not a secret, and it helps to see it.
    return MASK if value not in ("", None, {}, []) else value


def secret_values(data: Any) -> set[str]:
    """Every secret string in raw config data (as parsed from YAML), to be scrubbed from messages."""
    found: set[str] = set()
    _collect(data, False, found)
    return found


def _collect(value: Any, secret: bool, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, secret or _names_secret(key), found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, secret, found)
    elif secret and value not in (None, "") and not isinstance(value, bool):
        found.add(str(value))


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) with each ``user:password@`` masked; the host stays visible."""
    return _USERINFO.sub(rf"\g<1>{MASK}@", url)


def scrub(message: str, secrets: Iterable[str]) -> str:
    """``message`` with each secret (longest first) and any URL's user:password masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SCRUBBED:
            message = message.replace(secret, MASK)
    return redact_url(message)
