"""Percentiles from merged histogram buckets, read the way Prometheus's histogram_quantile reads them.

Within the bucket holding the rank, the value is interpolated linearly between the bucket's bounds (the
first bucket starts at 0); a rank in the +Inf bucket reads as the highest finite bound. So the live
graph and a graph built from Prometheus with ``histogram_quantile`` agree on the same buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

_UPPER = np.asarray((*DURATION_BUCKETS_MS, DURATION_BUCKETS_MS[-1]), dtype=np.float64)
_LOWER = np.asarray((0.0, *DURATION_BUCKETS_MS), dtype=np.float64)


def quantiles(buckets: np.ndarray, qs: Sequence[float]) -> list[list[float | None]]:
    """For each q, one value per row of ``buckets`` (counts, not cumulative); None for rows with no count."""
    rows = buckets.shape[0]
    if rows == 0:
        return [[] for _ in qs]
    cumulative = np.cumsum(buckets, axis=1)
    total = cumulative[:, -1]
    empty = total <= 0
    answers: list[list[float | None]] = []
    for q in qs:
        rank = q * total
        index = np.argmax(cumulative >= rank[:, None], axis=1)
        below = np.where(index > 0, cumulative[np.arange(rows), index - 1], 0.0)
        count = buckets[np.arange(rows), index]
        lower, upper = _LOWER[index], _UPPER[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(count > 0, (rank - below) / count, 0.0)
        values = lower + (upper - lower) * np.clip(fraction, 0.0, 1.0)
        values = np.where(index == len(DURATION_BUCKETS_MS), DURATION_BUCKETS_MS[-1], values)
        answers.append([None if blank else round(float(value), 3) for value, blank in zip(values, empty, strict=True)])
    return answers
