"""`meshscope dashboards export DIR`, through the parser the CLI mounts it with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from dashboards import command
from dashboards.generate import JSON_DIR, RULES_DIR


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="meshscope")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    return command.run(parser.parse_args(["dashboards", *argv]))


def test_export_writes_the_dashboards_and_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / "grafana"
    assert run("export", str(target)) == 0
    for committed in JSON_DIR.glob("*.json"):
        assert (target / committed.name).read_bytes() == committed.read_bytes()
        assert json.loads((target / committed.name).read_text())["uid"] == committed.stem
    for name in ("recording.yaml", "alerts.yaml"):
        assert yaml.safe_load((target / "rules" / name).read_text()) == yaml.safe_load((RULES_DIR / name).read_text())
    printed = capsys.readouterr().out.split()
    assert str(target / "meshscope-mesh.json") in printed and str(target / "rules" / "alerts.yaml") in printed


def test_export_without_rules_writes_the_dashboards_only(tmp_path: Path) -> None:
    assert run("export", str(tmp_path), "--no-rules") == 0
    assert not (tmp_path / "rules").exists()
    assert len(list(tmp_path.glob("*.json"))) == len(list(JSON_DIR.glob("*.json")))


def test_export_into_a_file_is_a_usage_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    assert run("export", str(blocker)) == 2
    assert f"{blocker}: exists and is not a directory" in capsys.readouterr().err


def test_export_where_the_folder_cannot_be_made_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "dashboards"  # a folder under a regular file: not writable, even as root
    assert run("export", str(target)) == 2
    error = capsys.readouterr().err
    assert error.startswith("meshscope dashboards export: ") and f"{target}: cannot write" in error
