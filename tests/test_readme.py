"""The README's config examples are configs meshscope accepts: a key it documents exists, with that type."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping

README = Path(__file__).resolve().parents[1] / "README.md"
TOP_KEYS = {field.name for field in dataclasses.fields(Config)}


def config_examples() -> list[tuple[int, str]]:
    """(line number, text) of each ```yaml block whose top-level keys are all sections of the config."""
    text = README.read_text()
    examples = []
    for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
        block = match.group(1)
        data = yaml.safe_load(block)
        if isinstance(data, dict) and data and set(data) <= TOP_KEYS:
            examples.append((text.count("\n", 0, match.start()) + 1, block))
    return examples


def test_the_readme_documents_the_config_with_examples() -> None:
    assert len(config_examples()) >= 5


@pytest.mark.parametrize(("line", "block"), config_examples(), ids=lambda value: str(value)[:12])
def test_each_config_example_in_the_readme_loads(line: int, block: str) -> None:
    # ${env:...} references name variables the reader sets; give each a value that fits a token or password.
    names = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)", block))
    environ = {name: "0123456789abcdef0123456789abcdef" for name in names}
    data = yaml.safe_load(block)
    try:
        load_mapping(Config, data, environ)
    except ConfigError as error:
        # Files the example points at (certificates, CA bundles) are not on this machine: only those may fail.
        unrelated = [e for e in error.errors if "cannot read" not in e and "does not exist" not in e]
        assert not unrelated, f"README.md line {line}: {unrelated}"
