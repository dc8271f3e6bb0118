"""The README's main job (examples/quickstart.py) runs end to end on the YAHPO data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optuna_meta.data import default_yahpo_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(default_yahpo_dir() is None, reason="YAHPO data folder not found")
def test_quickstart_runs_and_prints_both_samplers() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--trials",
            "3",
            "--seeds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| sampler | @1 | @3 |")
    names = [r.split("|")[1].strip() for r in rows[1:]]
    assert names == ["MetaSampler", "TPESampler"]
    for row in rows[1:]:
        regrets = [float(c) for c in row.split("|")[2:4]]
        assert all(0.0 <= r <= 1.0 for r in regrets)
