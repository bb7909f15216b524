"""A document checked against an Elasticsearch mapping the way Elasticsearch would index it.

Flat dotted keys (what log_event writes) are looked up as object paths, as Elasticsearch expands them;
each value must be one the field's type accepts without coercion.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

STRING_TYPES = {"keyword", "wildcard", "text", "match_only_text", "constant_keyword"}


def leaf_types(mapping: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted path -> type for every leaf field of a mapping (multi-fields left out: nothing is sent there)."""
    leaves: dict[str, str] = {}
    for name, field in mapping.get("properties", {}).items():
        path = f"{prefix}{name}"
        if "properties" in field:
            leaves.update(leaf_types(field, f"{path}."))
        else:
            leaves[path] = field["type"]
    return leaves


def value_problem(kind: str, value: Any) -> str | None:
    if kind in STRING_TYPES:
        return None if isinstance(value, str) else f"expected a string for {kind}"
    if kind == "long":
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected an integer for long"
        return None if -(2**63) <= value < 2**63 else "out of range for long"
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "not an IP address"
        return None
    if kind == "date":
        if isinstance(value, int) and not isinstance(value, bool):
            return None  # epoch milliseconds
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return "not an ISO 8601 date"
        return None
    return f"no check for type {kind}"


def document_problems(document: dict[str, Any], mapping: dict[str, Any]) -> list[str]:
    """Why Elasticsearch would refuse (or silently not index) each field of ``document``; [] when it fits."""
    leaves = leaf_types(mapping)
    problems = []
    for key, value in document.items():
        kind = leaves.get(key)
        if kind is None:
            problems.append(f"{key}: not in the mapping")
            continue
        problem = value_problem(kind, value)
        if problem:
            problems.append(f"{key}: {problem} ({value!r})")
    if "@timestamp" not in document:
        problems.append("@timestamp: a data stream needs it")
    return problems
