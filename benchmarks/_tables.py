"""Markdown table pieces shared by the benchmark scripts that score MetaSampler in a setting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def paired_difference_lines(
    regrets: Mapping[str, np.ndarray], budgets: Sequence[int], base: str = "meta"
) -> list[str]:
    """Rows ``base - other``: mean paired regret difference (standard error) at each budget.

    ``regrets[m]`` is a (runs x trials) array, runs in the same (task, seed) order for every
    method; methods with another shape are left out. Empty when ``base`` did not run.
    """
    if base not in regrets:
        return []
    head = "| method | runs | " + " | ".join(f"@{b}" for b in budgets) + " |"
    lines = [
        "",
        f"Paired differences, {base} minus other (negative: {base} better), mean (se):",
        "",
        head,
        "|---" * (len(budgets) + 2) + "|",
    ]
    for m, R in regrets.items():
        if m == base or R.shape != regrets[base].shape:
            continue
        D = regrets[base] - R
        se = D.std(axis=0, ddof=1) / np.sqrt(len(D))
        cells = " | ".join(f"{D[:, b - 1].mean():+.4f} ({se[b - 1]:.4f})" for b in budgets)
        lines.append(f"| {base} - {m} | {len(D)} | {cells} |")
    return lines


Column = tuple[str, Callable[[Sequence[Mapping[str, Any]]], str]]
"""An extra column: its header and the cell made from one method's runs."""


def median_ms(runs: Sequence[Mapping[str, Any]]) -> str:
    """The median over runs of each run's median milliseconds a trial."""
    return f"{np.median([np.median(r['ms']) for r in runs]):.1f}"


def regret_table(
    title: str,
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    curve: Callable[[Mapping[str, Any]], np.ndarray],
    budgets: Sequence[int],
    command: str,
    columns: Sequence[Column] = (("ms/trial", median_ms),),
) -> str:
    """Mean regret per method and budget, extra columns, paired differences and the command.

    ``curve(run)`` is a run's regret after each trial; ``budgets`` beyond the longest run are
    left out.
    """
    regrets = {m: np.array([curve(r) for r in rs]) for m, rs in runs.items()}
    n = max(len(r["values"]) for rs in runs.values() for r in rs)
    budgets = [b for b in budgets if b <= n]
    head = "| method | runs | " + " | ".join(f"@{b}" for b in budgets)
    head += "".join(f" | {name}" for name, _ in columns) + " |"
    lines = [title, "", head, "|---" * (len(budgets) + 2 + len(columns)) + "|"]
    for m, R in regrets.items():
        cells = " | ".join(f"{R[:, b - 1].mean():.4f}" for b in budgets)
        extra = "".join(f" | {cell(runs[m])}" for _, cell in columns)
        lines.append(f"| {m} | {len(R)} | {cells}{extra} |")
    lines += paired_difference_lines(regrets, budgets)
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)
