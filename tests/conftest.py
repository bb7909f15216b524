"""Shared fixtures: paths to golden testdata, and real external programs (skipped loudly when absent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TESTDATA = Path(__file__).parent / "testdata"
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture
def testdata() -> Path:
    return TESTDATA


def require_program(name: str, package: str) -> str:
    """The program's path; in CI a missing program fails the test, elsewhere it skips saying what to install."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install the Debian package '{package}' (make test does this as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
