"""Fuzzing: property tests, bounded fuzz runs and crasher replays (shared with benchmarks/fuzz.py)."""
