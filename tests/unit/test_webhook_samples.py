"""The seed samples the tests use are Juspay's, byte for byte."""

from __future__ import annotations

import json

import pytest

from tests.seed_samples import SAMPLES, SEEDS, seed_samples


def test_the_samples_are_the_seeds_verbatim() -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"{SEEDS} is not beside the project")
    assert {name: json.loads(body) for name, body in SAMPLES.items()} == seed_samples()
    page = next(SEEDS.glob("003_*.txt")).read_bytes()
    for body in SAMPLES.values():
        assert body in page  # byte for byte, not only equal as JSON
