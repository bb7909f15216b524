from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemetry.spans import proxy_columns


@pytest.fixture(autouse=True, scope="module")
def _column_path_for_small_requests() -> Iterator[None]:
    """Requests in these tests are small: let every warm one take the column path (``plan`` declines
    requests of fewer than 8 spans a proxy in production, where span by span is cheaper)."""
    saved = proxy_columns._MIN_SPANS_PER_PROXY
    proxy_columns._MIN_SPANS_PER_PROXY = 1
    yield
    proxy_columns._MIN_SPANS_PER_PROXY = saved
