"""Every crasher fuzzing found, replayed: tests/testdata/fuzz/<target>/<outcome>-<what>.bin.

The file name's first word is the outcome the fixed parser must give ("rejected": refused with its
documented error; "ok": taken). Before its fix each of these raised something its receiver did not handle.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fuzz.fuzz_targets import REGRESSIONS, TARGETS
from telemetry.envoy.operators import FIELD_NAMES, Operator, field_of, tokenize
from telemetry.envoy.parser import _text_regex
from telemetry.envoy.presets import PRESETS

CASES = sorted(path for path in REGRESSIONS.glob("*/*.bin"))


def test_every_regression_folder_names_a_target() -> None:
    assert CASES, f"no regression inputs under {REGRESSIONS}"
    assert {path.parent.name for path in CASES} <= set(TARGETS)


@pytest.mark.parametrize("path", CASES, ids=[f"{path.parent.name}/{path.stem}" for path in CASES])
def test_crasher_is_handled_as_its_receiver_documents(path: Path) -> None:
    expected = path.stem.split("-", 1)[0]
    assert TARGETS[path.parent.name](path.read_bytes()) == expected


@pytest.mark.parametrize("preset", ["istio", "istio-mixer", "envoy"])
@pytest.mark.parametrize("lenient", [False, True])
def test_text_format_regex_matches_each_field_one_way_only(preset: str, lenient: bool) -> None:
    # Found by fuzzing: "-" matched both as the absent mark and as a value, so a line one field short
    # (accesslog_istio/rejected-dash-fields-one-short-64k.bin) retried 2^(dash fields) splits, each
    # rescanning the line: 96 s to refuse 64 KB. Every captured field now starts with one atomic group
    # (the absent mark, or nothing) and its value is possessive or atomic: nothing to retry.
    tokens = tokenize(PRESETS[preset])
    pattern = _text_regex(tokens, lenient, frozenset(FIELD_NAMES)).pattern
    captured = sum(isinstance(token, Operator) and field_of(token) is not None for token in tokens)
    assert pattern.count("(?>-(?=") == captured
    assert "(?:-|" not in pattern
    assert re.compile(pattern).groups == captured  # one capture group per field
    # Each value's body is possessive or atomic (it never gives back what it took), or the line's rest.
    assert "*)" not in pattern.replace('[^"]*)*)', "").removesuffix(
        "(.*)\\Z"
    )  # the lenient body's inner star is atomic
