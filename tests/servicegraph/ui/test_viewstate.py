"""A view in the URL: written compactly, read back the same, and read forgivingly."""

from __future__ import annotations

from servicegraph.ui.viewstate import (
    ViewState,
    controls_of_view,
    from_query,
    refresh_choices,
    to_query,
    view_of_controls,
)

DEFAULTS = ViewState(window="5m", refresh=5.0)
WINDOWS = ["1m", "5m", "15m", "1h"]


def test_the_default_view_has_an_empty_query() -> None:
    assert to_query(DEFAULTS, DEFAULTS) == ""


def test_a_view_survives_the_round_trip_through_its_url() -> None:
    view = ViewState(
        graph_type="app",
        namespaces=("default", "shop"),
        window="1h",
        refresh=30.0,
        paused=True,
        hide_idle=True,
        find="rt>500 %err>1",
        hide="protocol=tcp",
        edge_label="p95",
        layout="cose",
    )
    assert from_query(to_query(view, DEFAULTS), DEFAULTS, WINDOWS) == view


def test_only_what_differs_from_the_defaults_is_written() -> None:
    assert to_query(ViewState(window="5m", refresh=5.0, graph_type="service"), DEFAULTS) == "?type=service"


def test_find_expressions_are_escaped_in_the_url() -> None:
    query = to_query(ViewState(window="5m", refresh=5.0, find="rt>500 & x"), DEFAULTS)
    assert query == "?find=rt%3E500+%26+x"


def test_unknown_or_malformed_values_fall_back_to_the_defaults() -> None:
    view = from_query(
        "?type=galaxy&window=7m&refresh=soon&paused=maybe&labels=colour&layout=spiral&zzz=1", DEFAULTS, WINDOWS
    )
    assert view == DEFAULTS


def test_namespaces_are_read_trimmed_deduplicated_and_sorted() -> None:
    assert from_query("?ns=shop,+default,,shop", DEFAULTS, WINDOWS).namespaces == ("default", "shop")


def test_a_refresh_interval_from_the_url_is_offered_among_the_choices() -> None:
    assert from_query("?refresh=1", DEFAULTS, WINDOWS).refresh == 1.0
    assert 1.0 in refresh_choices(1.0) and 5.0 in refresh_choices(1.0)


def test_the_controls_hold_the_view_and_give_it_back() -> None:
    view = ViewState(
        graph_type="service",
        namespaces=("shop",),
        window="15m",
        refresh=10.0,
        paused=True,
        hide_idle=False,
        find="failing",
        hide="",
        edge_label="errors",
        layout="cose",
    )
    assert view_of_controls(controls_of_view(view), DEFAULTS) == view


def test_cleared_controls_fall_back_to_the_defaults() -> None:
    assert view_of_controls((None, None, None, None, None, None, None, None, None, None), DEFAULTS) == DEFAULTS
