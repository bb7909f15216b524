"""UI settings: every bad key is named with its reason."""

from __future__ import annotations

from servicegraph.ui.settings import UiSettings


def test_the_defaults_are_valid() -> None:
    assert UiSettings().validate() == []


def test_each_bad_value_is_named_by_its_key() -> None:
    settings = UiSettings(
        jaeger_url="jaeger:16686",
        grafana_url="ftp://grafana",
        default_window="soon",
        windows=["1m", "later"],
        refresh_seconds=0,
    )
    keys = [message.split(":")[0] for message in settings.validate()]
    assert keys == ["jaeger_url", "grafana_url", "windows[1]", "default_window", "refresh_seconds"]


def test_empty_link_urls_are_allowed_and_hide_the_links() -> None:
    assert UiSettings(jaeger_url="", zipkin_url="", grafana_url="").validate() == []


def test_no_windows_is_an_error() -> None:
    assert UiSettings(windows=[]).validate() == ["windows: at least one window is needed"]


def test_window_choices_are_ordered_and_include_the_default() -> None:
    assert UiSettings(windows=["1h", "1m"], default_window="10m").window_choices() == ["1m", "10m", "1h"]
