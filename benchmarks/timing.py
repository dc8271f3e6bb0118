"""Suggestion time of MetaSampler vs TPE around trial 50, measured interleaved.

The harness's ``ms/trial`` column is measured in separate processes, at different times, on a
shared 2-core machine, so its ratios between methods drift with the load. This script times the
two samplers alternately (same tasks, same seeds, one study each, interleaved trial by trial) so
both see the same load, and reports the median time of ask + suggestions + tell for trials
``--window`` (default 45..55), plus the ratio.

Run::

    python -m benchmarks.timing [--tasks 5] [--seeds 2]

Writes ``benchmarks/results/timing_lcbench.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import optuna

from benchmarks.objectives import scored_tasks
from optuna_meta import MetaSampler
from optuna_meta.data import YahpoSurrogate

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=55)
    parser.add_argument("--window", type=int, nargs=2, default=(45, 55))
    parser.add_argument("--out", type=Path, default=RESULTS / "timing_lcbench.md")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bench = YahpoSurrogate("lcbench")
    space = bench.search_space()
    makers = {
        "MetaSampler (lcbench-mlp)": lambda s: MetaSampler(seed=s),
        "TPESampler (defaults)": lambda s: optuna.samplers.TPESampler(seed=s),
    }
    times: dict[str, list[float]] = {k: [] for k in makers}
    lo, hi = args.window
    for task in scored_tasks("lcbench")[: args.tasks]:
        for seed in range(args.seeds):
            studies = {
                k: optuna.create_study(direction="maximize", sampler=m(seed))
                for k, m in makers.items()
            }
            for i in range(args.trials):
                for name, study in studies.items():
                    start = time.perf_counter()
                    trial = study.ask()
                    params = {k: trial._suggest(k, d) for k, d in space.items()}
                    elapsed = time.perf_counter() - start
                    value = float(
                        bench.evaluate(task, [params], outputs=["val_accuracy"])["val_accuracy"][0]
                    )
                    start = time.perf_counter()
                    study.tell(trial, value)
                    elapsed += time.perf_counter() - start
                    if lo <= i + 1 <= hi:
                        times[name].append(elapsed * 1000)
    med = {k: float(np.median(v)) for k, v in times.items()}
    meta, tpe = med["MetaSampler (lcbench-mlp)"], med["TPESampler (defaults)"]
    lines = [
        f"Median ms per trial (ask + suggestions + tell) for trials {lo}..{hi}, "
        f"{args.tasks} LCBench tasks x {args.seeds} seeds, the two samplers interleaved "
        f"trial by trial; {platform.machine()}, {optuna.__version__=}.",
        "",
        "| sampler | median ms/trial | samples |",
        "|---|---|---|",
        *(f"| {k} | {med[k]:.2f} | {len(times[k])} |" for k in makers),
        "",
        f"Ratio MetaSampler / TPE: **{meta / tpe:.2f}**",
        "",
        "Command: `python -m benchmarks.timing "
        f"--tasks {args.tasks} --seeds {args.seeds} --trials {args.trials} --window {lo} {hi}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
