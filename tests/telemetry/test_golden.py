"""Golden testdata: access-log files of each format in, Prometheus samples out (compared without order).

Regenerate after an intended change with MESHSCOPE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from telemetry.ingest import ingest

ACCESSLOGS = Path(__file__).parents[1] / "testdata" / "accesslogs"
UPDATE = os.environ.get("MESHSCOPE_UPDATE_GOLDEN") == "1"

# case -> (format, [(log file, pod directory under /var/log/pods)])
CASES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "istio": (
        "auto",
        [
            ("istio.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b"),
            ("reviews.log", "default_reviews-v2-7bf8c9648f-xk2zq_3c4d"),
        ],
    ),
    "istio-upstream-cluster": (
        "istio-upstream-cluster",
        [("istio_upstream_cluster.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b")],
    ),
    "istio-mixer": ("auto", [("istio_mixer.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b")]),
    "envoy": ("auto", [("envoy.log", "edge_front-envoy-5d9c7b8f6d-abcde_5e6f")]),
    "json": ("auto", [("json.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b")]),
    "custom": (
        (ACCESSLOGS / "custom.format").read_text().rstrip("\n"),
        [("custom.log", "default_ratings-v1-5d8f9c7b6a-qwert_7a8b")],
    ),
    "cri": ("auto", [("cri.log", "default_productpage-v1-6b746f74dc-9stvs_1a2b")]),
}


def samples(exposition: bytes) -> list[str]:
    return sorted(line for line in exposition.decode().splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_access_log_files_produce_the_expected_metrics(case: str, tmp_path: Path) -> None:
    fmt, files = CASES[case]
    paths = []
    for name, pod_dir in files:
        target = tmp_path / "var" / "log" / "pods" / pod_dir / "istio-proxy" / "0.log"
        target.parent.mkdir(parents=True)
        shutil.copy(ACCESSLOGS / name, target)
        paths.append(str(target))
    result = ingest(paths, fmt)
    got = samples(result.exposition)
    expected_file = ACCESSLOGS / f"{case}.expected.prom"
    if UPDATE:
        expected_file.write_text("\n".join(got) + "\n")
    assert got == sorted(expected_file.read_text().splitlines())
