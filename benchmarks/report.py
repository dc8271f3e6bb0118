"""Tables and plots built from every saved raw result of a scenario.

Sampler table (``sampler_<scenario>.md``): per method, the number of (task, seed) runs, the mean
normalised regret of the best value so far after N trials (``-`` when the method ran fewer
trials), and the median over all its trials of the milliseconds charged to the method per trial
(see :mod:`benchmarks.protocol`). Rank table: for every (task, seed, N) cell, the methods that
have a result there are ranked by regret (1 = best, ties share the average rank, via
``scipy.stats.rankdata``); a method's mean rank at N averages its ranks over its cells. Methods
with fewer seeds/trials (GP) are ranked only in the cells they have.

Pruner table (``pruner_<scenario>.md``): see :mod:`benchmarks.pruning` for the definitions.

``python -m benchmarks.report --scenario lcbench [--kind sampler|pruner] [--out DIR]`` rebuilds
them from every saved result; ``--peers-only`` keeps the peer methods and writes
``<kind>_<scenario>_peers.*`` instead; ``--update-readme`` also rewrites the marked blocks of
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from benchmarks.pruning import best_completed_at, epochs_to_reach
from benchmarks.reference import load_reference, normalised_regret, regret_of

RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
TRIAL_BUDGETS = (1, 2, 3, 5, 10, 20, 30, 50, 100)
EPOCH_BUDGETS = (520, 1040, 2600, 5200)


def load_results(out_dir: Path, kind: str, scenario: str) -> list[dict[str, Any]]:
    """Every ``raw/<kind>_<scenario>_*.json`` under ``out_dir``, sorted by method name."""
    results = []
    for path in sorted((Path(out_dir) / "raw").glob(f"{kind}_{scenario}_*.json")):
        with open(path) as f:
            r = json.load(f)
        if r.get("kind") == kind and r.get("scenario") == scenario:
            results.append(r)
    if kind == "pruner":  # peer labels come from the registry (older raw files)
        from benchmarks.peers import pruner_peers

        peers = pruner_peers()
        for r in results:
            if r["method"] in peers:
                r["label"] = peers[r["method"]].row
    return sorted(results, key=lambda r: r["label"])


def _fmt(x: float, digits: int = 4) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


# -- samplers ------------------------------------------------------------------------------------
def sampler_summary(
    results: Sequence[dict[str, Any]], scenario: str, budgets: Sequence[int] = TRIAL_BUDGETS
) -> dict[str, Any]:
    """Mean regret per budget, mean rank per budget, median ms/trial and mean regret curves."""
    ref = load_reference(scenario)
    per_method: dict[str, dict[tuple[str, int], np.ndarray]] = {}
    out: dict[str, Any] = {"scenario": scenario, "budgets": list(budgets), "methods": {}}
    for r in results:
        curves = {
            (run["task"], int(run["seed"])): normalised_regret(run["values"], ref[run["task"]])
            for run in r["runs"]
        }
        per_method[r["method"]] = curves
        n = int(r["n_trials"])
        mat = np.vstack(list(curves.values())) if curves else np.zeros((0, n))
        ms = np.concatenate([np.asarray(run["ms"]) for run in r["runs"]]) if curves else []
        out["methods"][r["method"]] = {
            "label": r["label"],
            "runs": len(curves),
            "n_trials": n,
            "seeds": r["seeds"],
            "n_folds": r.get("n_folds"),
            "wall_s": r.get("wall_s"),
            "regret": [float(mat[:, b - 1].mean()) if b <= n else None for b in budgets],
            "mean_curve": [round(float(x), 5) for x in mat.mean(axis=0)],
            "ms_per_trial": float(np.median(ms)) if len(ms) else None,
            "setup_s_total": float(sum(run.get("setup_s", 0.0) for run in r["runs"])),
        }
    # ranks
    cells: dict[tuple[str, int], list[str]] = {}
    for m, curves in per_method.items():
        for key in curves:
            cells.setdefault(key, []).append(m)
    rank_sum = {m: np.zeros(len(budgets)) for m in per_method}
    rank_cnt = {m: np.zeros(len(budgets)) for m in per_method}
    for key, methods in cells.items():
        for j, b in enumerate(budgets):
            present = [m for m in methods if len(per_method[m][key]) >= b]
            if len(present) < 2:
                continue
            ranks = rankdata([per_method[m][key][b - 1] for m in present])
            for m, rk in zip(present, ranks, strict=True):
                rank_sum[m][j] += rk
                rank_cnt[m][j] += 1
    for m in per_method:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_rank = rank_sum[m] / rank_cnt[m]
        out["methods"][m]["mean_rank"] = [float(x) if np.isfinite(x) else None for x in mean_rank]
    return out


def sampler_tables_md(summary: dict[str, Any]) -> str:
    budgets = summary["budgets"]
    head = "| method | runs | " + " | ".join(f"@{b}" for b in budgets) + " | ms/trial |"
    sep = "|" + "---|" * (len(budgets) + 3)
    lines = [head, sep]
    for s in summary["methods"].values():
        cells = [_fmt(x) if x is not None else "-" for x in s["regret"]]
        ms = _fmt(s["ms_per_trial"], 1) if s["ms_per_trial"] is not None else "-"
        lines.append(f"| {s['label']} | {s['runs']} | " + " | ".join(cells) + f" | {ms} |")
    lines += ["", "Mean rank (1 = best; per task, seed and budget among the methods present):", ""]
    lines += ["| method | " + " | ".join(f"@{b}" for b in budgets) + " |"]
    lines += ["|" + "---|" * (len(budgets) + 1)]
    for s in summary["methods"].values():
        cells = [_fmt(x, 2) if x is not None else "-" for x in s["mean_rank"]]
        lines.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_samplers(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in summary["methods"].values():
        y = np.asarray(s["mean_curve"])
        ax.plot(np.arange(1, len(y) + 1), y, label=f"{s['label']} ({s['runs']} runs)")
    ax.set_xscale("log")
    ax.set_xlabel("trials")
    ax.set_ylabel("mean normalised regret")
    ax.set_title(f"{summary['scenario']}: regret of the best so far")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- pruners -------------------------------------------------------------------------------------
def run_regrets(run: dict[str, Any], ref: dict[str, float], budgets: Sequence[int]) -> np.ndarray:
    """Regret of the best completed value after each epoch budget (1.0 before any)."""
    best = best_completed_at(run["trials"], budgets)
    return regret_of(np.nan_to_num(best, nan=-np.inf), float(ref["max"]), float(ref["min"]))


def pruner_summary(
    results: Sequence[dict[str, Any]], scenario: str, baseline: str | None = None
) -> dict[str, Any]:
    """Per-method regret at the epoch budgets, speed-up and reach against its no-pruning run.

    ``baseline`` replaces every method's own no-pruning counterpart (e.g. ``"tpe_nop"``: how
    much sooner than TPE without pruning each method reaches TPE's final value).
    """
    ref = load_reference(scenario)
    by_name = {r["method"]: r for r in results}
    budget_max = max((int(r["epoch_budget"]) for r in results), default=EPOCH_BUDGETS[-1])
    budgets = [b for b in EPOCH_BUDGETS if b <= budget_max]
    if not budgets or budgets[-1] != budget_max:
        budgets.append(budget_max)
    grid = np.unique(np.linspace(52, budget_max, 100).astype(int))
    out: dict[str, Any] = {"scenario": scenario, "budgets": budgets, "methods": {}}
    for r in results:
        eb = int(r["epoch_budget"])
        own = [b if b <= eb else None for b in budgets]
        regs, curves, speed, reached, nop_final = [], [], [], 0, []
        base = by_name.get(baseline or r.get("baseline") or "")
        base_runs = (
            {(x["task"], int(x["seed"])): x for x in base["runs"]}
            if base is not None and int(base["epoch_budget"]) == eb
            else {}
        )
        for run in r["runs"]:
            tref = ref[run["task"]]
            regs.append(run_regrets(run, tref, [b or eb for b in own]))
            curves.append(run_regrets(run, tref, [int(g) for g in grid if g <= eb]))
            b_run = base_runs.get((run["task"], int(run["seed"])))
            if b_run is None:
                continue
            nop_final.append(run_regrets(b_run, tref, [eb])[0])
            target = best_completed_at(b_run["trials"], [eb])[0]
            if not np.isfinite(target):
                continue
            e_nop = epochs_to_reach(b_run["trials"], target)
            e_run = epochs_to_reach(run["trials"], target)
            reached += int(np.isfinite(e_run))
            speed.append(e_nop / e_run if np.isfinite(e_run) else 0.0)
        mat = np.vstack(regs) if regs else np.zeros((0, len(budgets)))
        n_trials = [len(run["trials"]) for run in r["runs"]]
        ms = np.concatenate([np.asarray(run["ms"]) for run in r["runs"]]) if r["runs"] else []
        out["methods"][r["method"]] = {
            "label": r["label"],
            "runs": len(r["runs"]),
            "seeds": r["seeds"],
            "epoch_budget": eb,
            "wall_s": r.get("wall_s"),
            "regret": [float(mat[:, j].mean()) if own[j] else None for j in range(len(budgets))],
            "nop_final": float(np.mean(nop_final)) if nop_final else None,
            "nop_runs": len(nop_final),
            "median_speedup": float(np.median(speed)) if speed else None,
            "reached": reached,
            "compared": len(speed),
            "mean_trials": float(np.mean(n_trials)) if n_trials else None,
            "ms_per_trial": float(np.median(ms)) if len(ms) else None,
            "grid": [int(g) for g in grid if g <= eb],
            "mean_curve": [round(float(x), 5) for x in np.vstack(curves).mean(axis=0)]
            if curves
            else [],
        }
    return out


def pruner_table_md(summary: dict[str, Any]) -> str:
    budgets = summary["budgets"]
    head = (
        "| sampler + pruner | runs | "
        + " | ".join(f"regret@{b}ep" for b in budgets)
        + f" | no pruning, same runs @{budgets[-1]} | median speed-up"
        + " | runs reaching no-pruning final | trials/run | ms/trial |"
    )
    lines = [head, "|" + "---|" * (len(budgets) + 7)]
    for s in summary["methods"].values():
        seeds = s["seeds"]
        seed_txt = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
        cells = [_fmt(x) if x is not None else "-" for x in s["regret"]]
        sp = "-" if s["median_speedup"] is None else f"{s['median_speedup']:.2f}x"
        reach = f"{s['reached']}/{s['compared']}" if s["compared"] else "-"
        lines.append(
            f"| {s['label']}, {seed_txt} | {s['runs']} | "
            + " | ".join(cells)
            + f" | {_fmt(s['nop_final'])} | {sp} | {reach} | {_fmt(s['mean_trials'], 1)}"
            + f" | {_fmt(s['ms_per_trial'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def plot_pruners(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in summary["methods"].values():
        if s["mean_curve"]:
            ax.plot(s["grid"], s["mean_curve"], label=f"{s['label']} ({s['runs']} runs)")
    ax.set_xlabel("cumulative epochs")
    ax.set_ylabel("mean normalised regret (best completed)")
    ax.set_title(f"{summary['scenario']}: pruners")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- writing -------------------------------------------------------------------------------------
def update_readme(readme: Path, key: str, text: str) -> bool:
    """Replace the block between ``<!-- BEGIN key -->`` and ``<!-- END key -->``."""
    if not readme.is_file():
        return False
    src = readme.read_text()
    pat = re.compile(
        rf"(<!-- BEGIN {re.escape(key)} -->\n).*?(<!-- END {re.escape(key)} -->)", re.S
    )
    if not pat.search(src):
        return False
    readme.write_text(pat.sub(lambda m: m.group(1) + text + m.group(2), src))
    return True


def peer_names(kind: str) -> set[str]:
    """Names of the peer methods (``portfolio_loto`` etc.: a peer name plus a ``--tag``)."""
    from benchmarks.peers import pruner_peers, sampler_peers

    return set(sampler_peers(2000) if kind == "sampler" else pruner_peers())


def is_peer(kind: str, name: str) -> bool:
    peers = peer_names(kind)
    return name in peers or any(name.startswith(p + "_") for p in peers if kind == "sampler")


def peer_results_on(
    out_dir: Path, kind: str, scenario: str, tasks: Sequence[str], epoch_budget: int | None = None
) -> list[dict[str, Any]]:
    """The saved peer results restricted to the runs on ``tasks`` (e.g. the held-out ones).

    ``epoch_budget`` (pruners): keep only results of that budget.
    """
    wanted = set(tasks)
    out = []
    for r in load_results(out_dir, kind, scenario):
        if not is_peer(kind, r["method"]):
            continue
        if epoch_budget is not None and int(r["epoch_budget"]) != epoch_budget:
            continue
        runs = [run for run in r["runs"] if run["task"] in wanted]
        if runs:
            out.append({**r, "runs": runs})
    return out


def write_reports(
    out_dir: Path,
    scenario: str,
    kind: str,
    update_readme_file: Path | None = None,
    peers_only: bool = False,
    meta_only: bool = False,
    baseline: str | None = None,
) -> dict[str, Path]:
    """Build ``<kind>_<scenario>.md``, ``.png`` and ``_summary.json`` in ``out_dir``.

    ``peers_only``: only the peer methods, written as ``<kind>_<scenario>_peers.*`` (and
    the README block ``<kind>_<scenario>``, if asked, is filled from them). ``meta_only``: the
    optuna-meta methods and the no-pruning baselines they name, written as
    ``<kind>_<scenario>_meta.*`` (README block of the same name). Without either, every saved
    method goes into ``<kind>_<scenario>.*`` and the README block ``<kind>_<scenario>_all``.
    """
    if peers_only and meta_only:
        raise ValueError("peers_only and meta_only exclude each other")
    out_dir = Path(out_dir)
    results = load_results(out_dir, kind, scenario)
    if peers_only:
        results = [r for r in results if is_peer(kind, r["method"])]
    elif meta_only:
        ours = [r for r in results if not is_peer(kind, r["method"])]
        wanted = {r["method"] for r in ours} | {r.get("baseline") for r in ours} | {baseline}
        results = [r for r in results if r["method"] in wanted]
    if not results:
        return {}
    if kind == "sampler":
        summary = sampler_summary(results, scenario)
        md = sampler_tables_md(summary)
        plot = plot_samplers
    else:
        summary = pruner_summary(results, scenario, baseline)
        md = pruner_table_md(summary)
        plot = plot_pruners
    stem = f"{kind}_{scenario}"
    name = f"{stem}_peers" if peers_only else f"{stem}_meta" if meta_only else stem
    if baseline and kind == "pruner":
        name += f"_vs_{baseline}"
    paths = {
        "md": out_dir / f"{name}.md",
        "png": out_dir / f"{name}.png",
        "json": out_dir / f"{name}_summary.json",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths["md"].write_text(md)
    with open(paths["json"], "w") as f:
        json.dump(summary, f, indent=0)
    plot(summary, paths["png"])
    if update_readme_file is not None:
        # The peer blocks carry the plain key <kind>_<scenario>; the table of every saved
        # method (ours with the peers) has its own key, so it never lands in a peer block.
        key = stem if peers_only else name if meta_only else name.replace(stem, f"{stem}_all", 1)
        if not update_readme(update_readme_file, key, md):
            print(f"{update_readme_file} has no block {key!r}: not changed")
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild tables and plots from saved results.")
    parser.add_argument("--scenario", default="lcbench")
    parser.add_argument("--kind", choices=["sampler", "pruner", "both"], default="both")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--peers-only", action="store_true", help="only the peer methods")
    parser.add_argument(
        "--meta-only", action="store_true", help="only optuna-meta methods and their baselines"
    )
    parser.add_argument("--baseline", help="pruners: measure every speed-up against this method")
    args = parser.parse_args(argv)
    kinds = ["sampler", "pruner"] if args.kind == "both" else [args.kind]
    for kind in kinds:
        paths = write_reports(
            args.out,
            args.scenario,
            kind,
            README if args.update_readme else None,
            peers_only=args.peers_only,
            meta_only=args.meta_only,
            baseline=args.baseline,
        )
        if paths:
            print(paths["md"].read_text())
            print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
