"""Run sampler methods on a YAHPO scenario and rebuild the tables.

Examples::

    python -m benchmarks.run_samplers --scenario lcbench --quick
    python -m benchmarks.run_samplers --scenario lcbench --full               # every peer but GP
    python -m benchmarks.run_samplers --scenario lcbench --full --methods gp  # GP on its own
    python -m benchmarks.run_samplers --scenario lcbench --full --extra mypkg.bench:METHOD

Each method's result is saved to ``<out>/raw/sampler_<scenario>_<method>.json`` (a rerun of a
method replaces it); the tables are then rebuilt from every saved result of the scenario.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._cli import load_extra, parse_ints, parse_list
from benchmarks.objectives import SCENARIO_CONFIGS, scored_tasks
from benchmarks.peers import CHEAP_SAMPLERS, portfolio_method, sampler_peers
from benchmarks.protocol import DEFAULT_FOLDS, Method, run_method
from benchmarks.report import README, RESULTS_DIR, write_reports

QUICK_OUT = RESULTS_DIR / "raw" / "quick"
QUICK_POOL = 2000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="lcbench", choices=sorted(SCENARIO_CONFIGS))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 tasks, 2 seeds, 10 trials")
    mode.add_argument("--full", action="store_true", help="scored tasks, seeds 0-4, 100 trials")
    p.add_argument("--methods", help="comma-separated peer names (see --list)")
    p.add_argument("--extra", action="append", default=[], help="MODULE:ATTR method(s)")
    p.add_argument("--tasks", help="comma-separated task ids (default: by mode)")
    p.add_argument("--seeds", help='e.g. "0-4" or "0,1" (default: by mode)')
    p.add_argument("--n-trials", type=int)
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="0 = leave-one-task-out")
    p.add_argument("--pool", type=int, help="portfolio candidate pool size")
    p.add_argument("--tag", default="", help="suffix for method names (separate raw files)")
    p.add_argument("--out", type=Path, help="results folder (default: by mode)")
    p.add_argument("--fresh", action="store_true", help="ignore a saved partial result")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--list", action="store_true", help="list peer methods and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    args = build_parser().parse_args(argv)
    quick = not args.full
    pool = args.pool or (QUICK_POOL if quick else None)
    peers = sampler_peers(pool) if pool else sampler_peers()
    if args.list:
        for m in peers.values():
            print(f"{m.name}: {m.row}")
        return {}
    tasks = parse_list(args.tasks) or (
        scored_tasks(args.scenario)[:3] if quick else scored_tasks(args.scenario)
    )
    seeds = parse_ints(args.seeds) if args.seeds else ([0, 1] if quick else list(range(5)))
    n_trials = args.n_trials or (10 if quick else 100)
    out = args.out or (QUICK_OUT if quick else RESULTS_DIR)
    names = parse_list(args.methods)
    if names is None:
        names = (
            []
            if args.extra
            else (list(CHEAP_SAMPLERS) if quick else [n for n in peers if n != "gp"])
        )
    methods: list[Method] = []
    for n in names:
        if n not in peers:
            raise SystemExit(f"unknown method {n!r}; known: {sorted(peers)}")
        m = peers[n]
        if n == "portfolio":
            size = pool or 30_000
            cv = "LOTO" if args.folds <= 0 or args.folds >= len(tasks) else f"{args.folds}-fold"
            k = f"{size // 1000}k" if size >= 1000 else str(size)
            m = portfolio_method(size, name="portfolio")
            m.label = f"zero-shot portfolio, {k} candidates ({cv} task CV)"
        methods.append(m)
    for spec in args.extra:
        methods += load_extra(spec, Method, lambda name, f: Method(name, f))
    for m in methods:
        if args.tag:
            m.name = f"{m.name}_{args.tag}"
        t0 = time.perf_counter()
        eff_seeds = [s for s in seeds if m.seeds is None or s in m.seeds]
        eff_trials = min(n_trials, m.n_trials) if m.n_trials else n_trials
        print(
            f"== {m.name}: {args.scenario}, {len(tasks)} tasks, seeds {eff_seeds}, "
            f"{eff_trials} trials, folds {args.folds}",
            flush=True,
        )
        run_method(
            m,
            args.scenario,
            tasks,
            seeds,
            n_trials,
            out_dir=out,
            n_folds=args.folds,
            verbose=args.verbose,
            resume=not args.fresh,
        )
        print(f"== {m.name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    paths: dict[str, Path] = {}
    if not args.no_report:
        paths = write_reports(
            out, args.scenario, "sampler", README if args.update_readme else None
        )
        if paths:
            print(paths["md"].read_text())
    return paths


if __name__ == "__main__":
    main()
