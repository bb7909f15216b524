"""The dashboards as generated: committed JSON up to date, and every panel datasource-templated, unit-ed,
described, and rated over Grafana's own intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dashboards.generate import JSON_DIR, dashboards, export, main
from dashboards.queries import panel_queries, panels, substitute, variable_queries

UIDS = {"meshscope-mesh", "meshscope-service", "meshscope-workload", "meshscope-servicegraph", "meshscope-self"}
BOARDS: dict[str, dict[str, Any]] = {name: json.loads(text) for name, text in dashboards().items()}
RANGE_VECTOR = re.compile(r"(?<=[}\w])\[([^\]]+)\]")  # after a selector, not in a regex


def all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(board["uid"], panel) for board in BOARDS.values() for panel in panels(board)]


def test_regenerating_gives_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    written = export(tmp_path)
    assert sorted(path.name for path in written) == sorted(path.name for path in JSON_DIR.glob("*.json"))
    for path in written:
        assert path.read_bytes() == (JSON_DIR / path.name).read_bytes(), (
            f"{path.name} is stale: run `python -m dashboards.generate`"
        )


def test_main_writes_into_the_folder_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out")]) == 0
    assert {path.name for path in (tmp_path / "out").iterdir()} == {f"{uid}.json" for uid in UIDS}
    assert str(tmp_path / "out" / "meshscope-mesh.json") in capsys.readouterr().out


def test_dashboards_have_the_uids_the_ui_links_to() -> None:
    from servicegraph.ui.links import DASHBOARD_MESH, DASHBOARD_SERVICE, DASHBOARD_WORKLOAD

    assert {board["uid"] for board in BOARDS.values()} == UIDS
    assert {DASHBOARD_MESH, DASHBOARD_SERVICE, DASHBOARD_WORKLOAD} <= UIDS
    assert all(name == f"{board['uid']}.json" for name, board in BOARDS.items())


def test_linked_dashboards_have_the_variables_the_ui_sets() -> None:
    def names(uid: str) -> set[str]:
        return {variable["name"] for variable in BOARDS[f"{uid}.json"]["templating"]["list"]}

    assert {"namespace", "service"} <= names("meshscope-service")
    assert {"namespace", "workload", "app", "version"} <= names("meshscope-workload")


def test_workload_app_and_version_default_to_all_so_partial_links_work() -> None:
    variables = {v["name"]: v for v in BOARDS["meshscope-workload.json"]["templating"]["list"]}
    for name in ("workload", "app", "version"):
        assert variables[name]["includeAll"] is True and variables[name]["allValue"] == ".*"
        assert variables[name]["current"]["value"] == "$__all"


def test_the_datasource_is_a_prometheus_variable_every_panel_uses() -> None:
    for board in BOARDS.values():
        variables = board["templating"]["list"]
        assert variables[0] == {**variables[0], "name": "datasource", "type": "datasource", "query": "prometheus"}
        for variable in variables[1:]:
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for uid, panel in all_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (uid, panel["title"])


def test_every_panel_has_a_unit_and_a_description() -> None:
    for uid, panel in all_panels():
        assert panel.get("description", "").strip(), (uid, panel["title"])
        assert panel["fieldConfig"]["defaults"].get("unit"), (uid, panel["title"])


def test_panel_titles_are_unique_within_a_dashboard() -> None:
    for board in BOARDS.values():
        titles = [panel["title"] for panel in panels(board)]
        assert len(titles) == len(set(titles)), board["uid"]


def test_range_vectors_use_grafanas_intervals_never_a_fixed_window() -> None:
    for query in (query for board in BOARDS.values() for query in panel_queries(board)):
        windows = set(RANGE_VECTOR.findall(query.expr))
        # Time series follow the zoom ($__rate_interval); instant tables summarise the whole range. Gauges
        # (queue depth, graph size) have no range vector at all.
        assert windows == ({"$__range"} if query.instant else {"$__rate_interval"}) or (
            not windows and "rate(" not in query.expr
        ), query


def test_every_query_uses_only_variables_its_dashboard_defines() -> None:
    for board in BOARDS.values():
        defined = {variable["name"] for variable in board["templating"]["list"]}
        everything = {name: "" for name in (*defined, "__rate_interval", "__range")}
        for text in [query.expr for query in panel_queries(board)] + [v.selector for v in variable_queries(board)]:
            left = re.findall(r"\$\{?([A-Za-z_]\w*)", substitute(text, everything))
            assert left == [], (board["uid"], text)


def test_panel_ids_are_unique_and_stable() -> None:
    for board in BOARDS.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert ids == list(range(1, len(ids) + 1)), board["uid"]


def test_node_graph_panels_read_nodes_and_edges_frames() -> None:
    graphs = [panel for _, panel in all_panels() if panel["type"] == "nodeGraph"]
    assert graphs
    for panel in graphs:
        assert [(t["refId"], t["format"], t["instant"]) for t in panel["targets"]] == [
            ("nodes", "table", True),
            ("edges", "table", True),
        ]
        rename = next(t for t in panel["transformations"] if t["id"] == "renameByRegex")["options"]
        for name in ("Value", "Value #nodes", "Value #edges"):
            assert re.sub(rename["regex"], rename["renamePattern"], name) == "mainstat"
        assert (
            "label_join(" in panel["targets"][1]["expr"]
            and '"id", "->", "source", "target"' in panel["targets"][1]["expr"]
        )


def test_dashboards_have_the_shape_grafana_imports() -> None:
    for board in BOARDS.values():
        assert "id" not in board  # an import with an id would overwrite whichever dashboard has it
        assert isinstance(board["annotations"]["list"], list) and board["annotations"]["list"]
        assert isinstance(board["schemaVersion"], int)
        for panel in board["panels"]:
            position = panel["gridPos"]
            assert 0 <= position["x"] and position["x"] + position["w"] <= 24, (board["uid"], panel["title"])
