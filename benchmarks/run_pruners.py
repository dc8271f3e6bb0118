"""Run pruner methods on LCBench (multi-fidelity) and rebuild the pruner table.

Examples::

    python -m benchmarks.run_pruners --quick
    python -m benchmarks.run_pruners --full --methods tpe_nop,tpe_median --seeds 0-2
    python -m benchmarks.run_pruners --full --extra mypkg.bench:PRUNER_METHOD

Each method's result is saved to ``<out>/raw/pruner_lcbench_<method>.json``; the table is rebuilt
from every saved result. A method's speed-up needs its ``baseline`` (``tpe_nop`` for the TPE
rows) saved for the same tasks, seeds and epoch budget.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._cli import load_extra, parse_ints, parse_list
from benchmarks.objectives import scored_tasks
from benchmarks.peers import CHEAP_PRUNERS, pruner_peers
from benchmarks.protocol import DEFAULT_FOLDS
from benchmarks.pruning import DEFAULT_EPOCH_BUDGET, PrunerMethod, run_pruner_method
from benchmarks.report import README, RESULTS_DIR, write_reports

QUICK_OUT = RESULTS_DIR / "raw" / "quick"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="lcbench", choices=["lcbench"])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 tasks, seed 0, 520 epochs")
    mode.add_argument("--full", action="store_true", help="34 tasks, seeds 0-2, 5200 epochs")
    p.add_argument("--methods", help="comma-separated peer names (see --list)")
    p.add_argument("--extra", action="append", default=[], help="MODULE:ATTR method(s)")
    p.add_argument("--tasks", help="comma-separated task ids")
    p.add_argument("--seeds", help='e.g. "0-2"')
    p.add_argument("--epochs", type=int, help="epoch budget per run")
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="0 = leave-one-task-out")
    p.add_argument("--out", type=Path)
    p.add_argument("--fresh", action="store_true", help="ignore a saved partial result")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    args = build_parser().parse_args(argv)
    quick = not args.full
    peers = pruner_peers()
    if args.list:
        for m in peers.values():
            print(f"{m.name}: {m.row} (baseline {m.baseline})")
        return {}
    tasks = parse_list(args.tasks) or (
        scored_tasks(args.scenario)[:2] if quick else scored_tasks(args.scenario)
    )
    seeds = parse_ints(args.seeds) if args.seeds else ([0] if quick else [0, 1, 2])
    epochs = args.epochs or (520 if quick else DEFAULT_EPOCH_BUDGET)
    out = args.out or (QUICK_OUT if quick else RESULTS_DIR)
    names = parse_list(args.methods)
    if names is None:
        names = [] if args.extra else (list(CHEAP_PRUNERS) if quick else list(peers))
    methods: list[PrunerMethod] = []
    for n in names:
        if n not in peers:
            raise SystemExit(f"unknown method {n!r}; known: {sorted(peers)}")
        methods.append(peers[n])
    for spec in args.extra:
        methods += load_extra(spec, PrunerMethod, lambda name, f: PrunerMethod(name, f))
    for m in methods:
        t0 = time.perf_counter()
        print(f"== {m.name}: {len(tasks)} tasks, seeds {seeds}, {epochs} epochs", flush=True)
        run_pruner_method(
            m,
            tasks,
            seeds,
            epochs,
            out_dir=out,
            scenario=args.scenario,
            n_folds=args.folds,
            verbose=args.verbose,
            resume=not args.fresh,
        )
        print(f"== {m.name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    paths: dict[str, Path] = {}
    if not args.no_report:
        paths = write_reports(out, args.scenario, "pruner", README if args.update_readme else None)
        if paths:
            print(paths["md"].read_text())
    return paths


if __name__ == "__main__":
    main()
