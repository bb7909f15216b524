"""Write every dashboard's JSON (``<uid>.json``): ``python -m dashboards.generate [DIR]``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import mesh, meshscope, service, servicegraph, workload
from dashboards.common import render

JSON_DIR = Path(__file__).parent / "json"
RULES_DIR = Path(__file__).parent / "rules"
BUILDERS: tuple[Callable[[], Dashboard], ...] = (
    mesh.build,
    service.build,
    workload.build,
    servicegraph.build,
    meshscope.build,
)


def dashboards() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    rendered = {}
    for build in BUILDERS:
        board = build()
        rendered[f"{board.build().uid}.json"] = render(board)
    return rendered


def export(directory: Path) -> list[Path]:
    """Write every dashboard into ``directory`` (created if missing); the paths written, sorted."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(dashboards().items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = Path(args[0]) if args else JSON_DIR
    for path in export(directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
