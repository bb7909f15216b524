"""The find / hide language: names and small conditions on nodes and edges.

``reviews``           a node whose name or id contains "reviews" (any case)
``rt>500``            p95 latency above 500 ms (also ``p50``, ``p95``, ``p99``)
``%err>5``            error share above 5 % (``%4xx`` for client errors)
``rps>=10``           requests (or TCP connections) per second
``protocol=grpc``     an edge's protocol; ``kind=service``, ``ns=default``, ``app=``, ``version=``,
                      ``workload=``, ``service=``, ``name=`` compare a node's labels (``*`` wildcards)
``mtls``              all (≥ 99.5 %) of the traffic was mutual TLS; ``mtls<50`` compares the share
``healthy``, ``degraded``, ``failing``, ``idle``   the health state (also ``health=failing``)
``!term``             negation; terms side by side must all hold; ``or`` separates alternatives

A term applies to nodes, edges or both (``protocol`` only to edges, labels and names only to nodes); an
alternative matches only elements every one of its terms applies to, so ``protocol=http`` never finds
a node, negated or not.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MTLS_FULL_PCT = 99.5
HEALTH_WORDS = ("healthy", "degraded", "failing", "idle")

NODE, EDGE = "node", "edge"
BOTH = frozenset({NODE, EDGE})

# alias -> (attribute, the elements it applies to, numeric)
_FIELDS: dict[str, tuple[str, frozenset[str], bool]] = {
    "rt": ("p95_ms", BOTH, True),
    "p50": ("p50_ms", BOTH, True),
    "p95": ("p95_ms", BOTH, True),
    "p99": ("p99_ms", BOTH, True),
    "%err": ("error_pct", BOTH, True),
    "err": ("error_pct", BOTH, True),
    "%4xx": ("client_error_pct", BOTH, True),
    "rps": ("rps", BOTH, True),
    "mtls": ("mtls_pct", BOTH, True),
    "health": ("health", BOTH, False),
    "protocol": ("protocol", frozenset({EDGE}), False),
    "proto": ("protocol", frozenset({EDGE}), False),
    "kind": ("kind", frozenset({NODE}), False),
    "ns": ("namespace", frozenset({NODE}), False),
    "namespace": ("namespace", frozenset({NODE}), False),
    "app": ("app", frozenset({NODE}), False),
    "version": ("version", frozenset({NODE}), False),
    "workload": ("workload", frozenset({NODE}), False),
    "service": ("service", frozenset({NODE}), False),
    "name": ("name", frozenset({NODE}), False),
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^([%\w]+)(>=|<=|!=|=|>|<)(.*)$")
_AROUND_OPERATORS = re.compile(r"\s*(>=|<=|!=|=|>|<)\s*")


class FindError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    field: str  # an element attribute, or "" for a name search
    op: str  # one of _COMPARISONS, or "contains" for a name search
    value: str | float
    applies_to: frozenset[str]
    negated: bool = False

    def holds(self, data: Mapping[str, Any]) -> bool:
        return self._test(data) != self.negated

    def _test(self, data: Mapping[str, Any]) -> bool:
        if self.op == "contains":
            needle = str(self.value)
            return needle in str(data.get("name", "")).lower() or needle in str(data.get("id", "")).lower()
        actual = data.get(self.field)
        if isinstance(self.value, float):
            # A figure nothing was measured for (no timed request, say) satisfies no comparison.
            if not isinstance(actual, int | float) or isinstance(actual, bool):
                return False
            return _COMPARISONS[self.op](float(actual), self.value)
        matched = fnmatch.fnmatchcase(str(actual if actual is not None else "").lower(), str(self.value))
        return matched if self.op == "=" else not matched


@dataclass(frozen=True)
class Query:
    """Alternatives (OR) of terms that must all hold (AND). An empty query matches nothing."""

    alternatives: tuple[tuple[Term, ...], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def matches(self, data: Mapping[str, Any]) -> bool:
        kind = EDGE if "source" in data else NODE
        return any(
            all(kind in term.applies_to for term in terms) and all(term.holds(data) for term in terms)
            for terms in self.alternatives
        )

    def matching_ids(self, elements: Iterable[Mapping[str, Any]]) -> set[str]:
        """The ids of the Cytoscape elements (``{"data": {...}}``) the query matches."""
        return {str(element["data"]["id"]) for element in elements if self.matches(element["data"])}


def parse(text: str) -> Query:
    """The query in ``text``; FindError says which word is wrong and why."""
    words = _AROUND_OPERATORS.sub(r"\1", text.strip()).split()
    alternatives: list[tuple[Term, ...]] = []
    terms: list[Term] = []
    negate_next = False
    for word in words:
        lowered = word.lower()
        if lowered in ("or", "||"):
            if negate_next or not terms:
                raise FindError(f"'{word}' needs a term on each side")
            alternatives.append(tuple(terms))
            terms = []
        elif lowered in ("and", "&&"):
            continue
        elif lowered == "not":
            negate_next = not negate_next
        else:
            terms.append(_term(lowered, negate_next))
            negate_next = False
    if negate_next:
        raise FindError("'not' needs a term after it")
    if terms:
        alternatives.append(tuple(terms))
    elif alternatives:
        raise FindError("'or' needs a term on each side")
    return Query(tuple(alternatives))


def _term(word: str, negated: bool) -> Term:
    while word.startswith("!") and not word.startswith("!="):
        negated, word = not negated, word[1:]
    if not word:
        raise FindError("'!' needs a term after it")
    condition = _CONDITION.match(word)
    if condition is None:
        if word == "mtls":
            return Term("mtls_pct", ">=", MTLS_FULL_PCT, BOTH, negated)
        if word in HEALTH_WORDS:
            return Term("health", "=", word, BOTH, negated)
        if word in _FIELDS or word.startswith("%"):
            raise FindError(f"{word}: needs a comparison, like {word}>5")
        return Term("", "contains", word, frozenset({NODE}), negated)
    alias, op, raw = condition.groups()
    if alias not in _FIELDS:
        raise FindError(f"{alias}: unknown field; known: {', '.join(sorted(_FIELDS))}")
    attribute, applies_to, numeric = _FIELDS[alias]
    if not raw:
        raise FindError(f"{alias}{op}: needs a value")
    if numeric:
        try:
            number = float(raw.removesuffix("ms").removesuffix("%"))
        except ValueError:
            raise FindError(f"{alias}: expected a number, got {raw!r}") from None
        return Term(attribute, op, number, applies_to, negated)
    if op not in ("=", "!="):
        raise FindError(f"{alias}: compare with = or !=, not {op}")
    return Term(attribute, op, raw, applies_to, negated)
