"""The find / hide language: names, comparisons, keywords, negation, AND and OR, and its errors."""

from __future__ import annotations

import pytest

from servicegraph.ui.find import FindError, parse

REVIEWS = {
    "id": "service:default:reviews",
    "name": "reviews",
    "kind": "service",
    "namespace": "default",
    "health": "healthy",
    "rps": 12.0,
    "error_pct": 0.0,
    "p95_ms": 620.0,
    "mtls_pct": 100.0,
}
RATINGS = {
    "id": "workload:default:ratings-v1",
    "name": "ratings-v1",
    "kind": "workload",
    "namespace": "default",
    "health": "failing",
    "rps": 4.0,
    "error_pct": 12.5,
    "p95_ms": 8.0,
    "mtls_pct": 50.0,
}
GRPC_EDGE = {
    "id": "a->b:grpc",
    "source": "a",
    "target": "b",
    "protocol": "grpc",
    "health": "degraded",
    "rps": 3.0,
    "error_pct": 2.0,
    "p95_ms": 150.0,
    "mtls_pct": 100.0,
}
TCP_EDGE = {
    "id": "a->db:tcp",
    "source": "a",
    "target": "db",
    "protocol": "tcp",
    "health": "healthy",
    "rps": 0.5,
    "error_pct": 0.0,
    "p95_ms": None,
    "mtls_pct": 0.0,
}


def matching(text: str) -> set[str]:
    query = parse(text)
    return {data["id"] for data in (REVIEWS, RATINGS, GRPC_EDGE, TCP_EDGE) if query.matches(data)}


def test_a_bare_word_finds_nodes_by_name_or_id_in_any_case() -> None:
    assert matching("REVIEW") == {REVIEWS["id"]}
    assert matching("workload:default") == {RATINGS["id"]}


def test_rt_compares_the_p95_latency_in_milliseconds() -> None:
    assert matching("rt>500") == {REVIEWS["id"]}
    assert matching("rt > 100") == {REVIEWS["id"], GRPC_EDGE["id"]}  # spaces around the operator are fine
    assert matching("rt<=8ms") == {RATINGS["id"]}


def test_a_figure_nothing_measured_satisfies_no_comparison() -> None:
    assert TCP_EDGE["id"] not in matching("rt<1000")
    assert TCP_EDGE["id"] in matching("!rt<1000")


def test_error_share_and_rate_conditions() -> None:
    assert matching("%err>5") == {RATINGS["id"]}
    assert matching("%err>=2") == {RATINGS["id"], GRPC_EDGE["id"]}
    assert matching("rps<1") == {TCP_EDGE["id"]}


def test_terms_side_by_side_must_all_hold() -> None:
    assert matching("rt>100 %err>1") == {GRPC_EDGE["id"]}
    assert matching("rt>100 and %err>1") == {GRPC_EDGE["id"]}


def test_or_separates_alternatives() -> None:
    assert matching("ratings or protocol=tcp") == {RATINGS["id"], TCP_EDGE["id"]}


def test_protocol_applies_to_edges_only_even_negated() -> None:
    assert matching("protocol=grpc") == {GRPC_EDGE["id"]}
    assert matching("!protocol=grpc") == {TCP_EDGE["id"]}
    assert matching("protocol!=tcp") == {GRPC_EDGE["id"]}


def test_mtls_alone_means_all_traffic_mutual_tls() -> None:
    assert matching("mtls") == {REVIEWS["id"], GRPC_EDGE["id"]}
    assert matching("mtls<60") == {RATINGS["id"], TCP_EDGE["id"]}


def test_health_words_and_their_negation() -> None:
    assert matching("failing") == {RATINGS["id"]}
    assert matching("!healthy") == {RATINGS["id"], GRPC_EDGE["id"]}
    assert matching("not healthy") == {RATINGS["id"], GRPC_EDGE["id"]}
    assert matching("health=degraded") == {GRPC_EDGE["id"]}


def test_labels_compare_with_wildcards_on_nodes() -> None:
    assert matching("kind=service") == {REVIEWS["id"]}
    assert matching("name=ratings*") == {RATINGS["id"]}
    assert matching("ns=default !kind=service") == {RATINGS["id"]}


def test_an_empty_query_matches_nothing_and_is_false() -> None:
    query = parse("   ")
    assert not query and not query.matches(REVIEWS)


def test_matching_ids_reads_cytoscape_elements() -> None:
    elements = [{"data": REVIEWS}, {"data": TCP_EDGE}]
    assert parse("rps<1").matching_ids(elements) == {TCP_EDGE["id"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency>5", "latency: unknown field"),
        ("rt>fast", "rt: expected a number"),
        ("rt>", "rt>: needs a value"),
        ("%err", "%err: needs a comparison"),
        ("protocol>grpc", "protocol: compare with = or !="),
        ("or reviews", "'or' needs a term on each side"),
        ("reviews or", "'or' needs a term on each side"),
        ("reviews not", "'not' needs a term after it"),
        ("!", "'!' needs a term after it"),
    ],
)
def test_a_malformed_query_says_which_word_and_why(text: str, message: str) -> None:
    with pytest.raises(FindError, match=message.replace("(", r"\(")):
        parse(text)
