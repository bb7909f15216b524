"""``meshscope dashboards export DIR``: the Grafana dashboards' JSON and the Prometheus rules, into DIR."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

RULE_FILES = ("recording.yaml", "alerts.yaml")

DESCRIPTION = """\
Write meshscope's Grafana dashboards (one <uid>.json each, importable in Grafana's UI or provisioned
from a folder) and, unless --no-rules, its Prometheus rules into DIR/rules/ (recording.yaml, alerts.yaml:
load both)."""


class ExportError(Exception):
    """DIR cannot be written: exit status 2, the message names it."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboards", help="Grafana dashboards and Prometheus rules", description="Grafana dashboards and rules."
    )
    commands = parser.add_subparsers(dest="dashboards_command", metavar="COMMAND", required=True)
    export = commands.add_parser(
        "export",
        help="write the dashboards' JSON (and the Prometheus rules) into a folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("directory", metavar="DIR", help="where to write (created if missing)")
    export.add_argument("--no-rules", action="store_true", help="write the dashboards only")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        written = export_all(Path(args.directory), rules=not args.no_rules)
    except ExportError as error:
        print(f"meshscope dashboards export: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def export_all(directory: Path, rules: bool = True) -> list[Path]:
    from dashboards.generate import RULES_DIR, export  # on use: the other commands never load the SDK

    try:
        if directory.exists() and not directory.is_dir():
            raise ExportError(f"{directory}: exists and is not a directory")
        written = export(directory)
        if rules:
            (directory / "rules").mkdir(exist_ok=True)
            for name in RULE_FILES:
                written.append(Path(shutil.copyfile(RULES_DIR / name, directory / "rules" / name)))
    except OSError as error:
        raise ExportError(f"{directory}: cannot write: {error.strerror or error}") from error
    return written
