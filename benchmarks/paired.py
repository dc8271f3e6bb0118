"""Paired differences of two pruner methods' regret, run by run (same task and seed).

Why: a method's mean regret varies more between seeds and tasks than between two methods on
the same runs, so comparisons pair the runs: the mean of ``A - B`` over the (task, seed) pairs
both methods ran, with its standard error. Several result folders (``results/raw``,
``results/seeds3-5/raw``, ...) are pooled.

Run::

    python -m benchmarks.paired tpe_meta_default tpe_wilcoxon \\
        --dirs benchmarks/results/raw benchmarks/results/seeds3-5/raw \\
        benchmarks/results/seeds6-8/raw
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.reference import load_reference
from benchmarks.report import RESULTS_DIR, run_regrets

BUDGETS = (520, 1040, 2600, 5200)
SCENARIO = "lcbench"


def load_runs(method: str, dirs: Sequence[Path]) -> dict[tuple[str, int], dict]:
    """``{(task, seed): run}`` of ``method`` over ``dirs`` (a later folder wins a duplicate)."""
    runs: dict[tuple[str, int], dict] = {}
    for d in dirs:
        path = Path(d) / f"pruner_{SCENARIO}_{method}.json"
        if path.is_file():
            for run in json.loads(path.read_text())["runs"]:
                runs[(str(run["task"]), int(run["seed"]))] = run
    return runs


def paired(
    a: str, b: str, dirs: Sequence[Path], budgets: Sequence[int] = BUDGETS
) -> dict[str, object]:
    """Mean regret of ``a`` and ``b`` on their common runs, and of ``a - b`` with its se."""
    reference = load_reference(SCENARIO)
    ra, rb = load_runs(a, dirs), load_runs(b, dirs)
    keys = sorted(set(ra) & set(rb))
    if len(keys) < 2:
        raise SystemExit(f"error: {a} and {b} share {len(keys)} runs in {list(map(str, dirs))}")
    A = np.array([run_regrets(ra[k], reference[k[0]], budgets) for k in keys])
    B = np.array([run_regrets(rb[k], reference[k[0]], budgets) for k in keys])
    D = A - B
    return {
        "n": len(keys),
        "seeds": sorted({k[1] for k in keys}),
        "budgets": list(budgets),
        "a": A.mean(0).tolist(),
        "b": B.mean(0).tolist(),
        "diff": D.mean(0).tolist(),
        "se": (D.std(0, ddof=1) / np.sqrt(len(keys))).tolist(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="method name (raw file pruner_lcbench_<a>.json)")
    p.add_argument("b")
    p.add_argument("--dirs", nargs="+", type=Path, default=[RESULTS_DIR / "raw"])
    args = p.parse_args(argv)
    s = paired(args.a, args.b, args.dirs)
    fmt = " / ".join
    print(f"{s['n']} runs, seeds {s['seeds']}, budgets {s['budgets']} epochs")
    print(f"{args.a}: " + fmt(f"{x:.4f}" for x in s["a"]))  # type: ignore[union-attr]
    print(f"{args.b}: " + fmt(f"{x:.4f}" for x in s["b"]))  # type: ignore[union-attr]
    diffs = zip(s["diff"], s["se"], strict=True)  # type: ignore[call-overload]
    print("a - b (se): " + fmt(f"{d:+.4f} ({e:.4f})" for d, e in diffs))
    return s


if __name__ == "__main__":
    main()
