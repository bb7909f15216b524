"""The banner: one plain line per backend that does not answer, none when all do."""

from __future__ import annotations

import calendar

from dash import html

from servicegraph.ui.banner import banner, banner_lines

SINCE = calendar.timegm((2026, 11, 24, 23, 58, 7))


def test_every_unreachable_backend_gets_a_line_with_its_name_reason_and_since() -> None:
    status = {
        "records_per_s": 3.0,
        "unreachable": [
            {"name": "otlp", "detail": "127.0.0.1:4317: gRPC UNAVAILABLE: Connection refused", "since": SINCE},
            {"name": "fluentd", "detail": "127.0.0.1:24224: Connection refused", "since": SINCE},
            {"name": "my-backend", "detail": "", "since": None},
        ],
    }
    assert banner_lines(status) == [
        "OTLP trace export (Jaeger): 127.0.0.1:4317: gRPC UNAVAILABLE: Connection refused (since 23:58:07 UTC)",
        "Fluentd (log forwarding): 127.0.0.1:24224: Connection refused (since 23:58:07 UTC)",
        "my-backend: no answer",
    ]


def test_a_graph_api_that_does_not_answer_leads_the_banner() -> None:
    lines = banner_lines(None, "cannot reach http://collector:8050: [Errno 111] Connection refused")
    assert lines == ["The graph API: cannot reach http://collector:8050: Connection refused"]


def test_a_long_or_multi_line_reason_is_cut_to_one_line() -> None:
    (line,) = banner_lines({"unreachable": [{"name": "zipkin", "detail": "line\n" * 100}]})
    assert "\n" not in line and line.endswith("…") and len(line) < 240


def test_no_banner_when_everything_answers_or_the_api_has_no_list() -> None:
    assert banner({"unreachable": []}) == ([], True)
    assert banner({"records_per_s": 1.0}) == ([], True)
    assert banner(None) == ([], True)
    children, hidden = banner({"unreachable": [{"name": "prometheus", "detail": "x"}]})
    assert not hidden and isinstance(children[1], html.Ul)


def test_a_since_that_is_not_a_usable_time_shows_no_time_and_keeps_the_line() -> None:
    # A remote API's /api/status is not trusted: none of these may break the refresh that builds the banner.
    for since in (1e20, float("inf"), float("nan"), True, "yesterday", -5, 2**70):
        assert banner_lines({"unreachable": [{"name": "zipkin", "detail": "down", "since": since}]}) == [
            "Zipkin trace export: down"
        ], since
