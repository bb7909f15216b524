"""Every crasher fuzzing found, replayed: tests/testdata/fuzz/<target>/<outcome>-<what>.bin.

The file name's first word is the outcome the fixed parser must give ("rejected": refused with its
documented error; "ok": taken). Before its fix each of these raised something its receiver did not handle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.fuzz_targets import REGRESSIONS, TARGETS
from telemetry.envoy.operators import FIELD_NAMES, Operator, tokenize
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
    # rescanning the line: 96 s to refuse 64 KB. Every field before a literal is now one atomic group;
    # only the last field (nothing after it to retry) keeps the plain alternation.
    tokens = tokenize(PRESETS[preset])
    pattern = _text_regex(tokens, lenient, frozenset(FIELD_NAMES)).pattern
    ends_with_operator = isinstance(tokens[-1], Operator)
    assert pattern.count("(?:-|") == int(ends_with_operator)
    assert pattern.count("(?>-(?=") == sum(isinstance(token, Operator) for token in tokens) - int(ends_with_operator)
