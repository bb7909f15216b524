"""Hypothesis profiles for the fuzz suite: "ci" (the default) is derandomized and bounded.

``ci`` runs a fixed set of examples (derandomize: the same examples on every run and machine), a few
hundred per test, so the whole fuzz suite takes well under a minute. ``deep`` is for a person hunting
crashers: random and ten times longer. Choose with MESHSCOPE_FUZZ_PROFILE=deep.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # timing belongs to benchmarks/fuzz.py, never to an assertion
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,  # nothing written under the tree; crashers are kept in tests/testdata/fuzz
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, max_examples=150, **_COMMON)
settings.register_profile("deep", derandomize=False, max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("MESHSCOPE_FUZZ_PROFILE", "ci"))
