"""Helpers shared by the benchmarks' command-line scripts."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any


def parse_ints(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2"`` -> [0, 2]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def parse_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_methods(parser: argparse.ArgumentParser, text: str, known: Collection[str]) -> list[str]:
    """``"a,b"`` -> ["a", "b"], every name one of ``known``; otherwise a clear CLI error."""
    methods = parse_list(text) or []
    unknown = sorted(set(methods) - set(known))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {sorted(known)}")
    return methods


def import_attr(spec: str, flag: str) -> Any:
    """The object ``module:attr`` names (``flag``: the option, for the error message)."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"{flag} expects MODULE:ATTR, got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def load_extra(spec: str, method_cls: type, wrap: Any) -> list[Any]:
    """Load ``module:attr``: a method object, an iterable/dict of them, or a bare factory.

    A bare callable that is not a method object is wrapped as ``wrap(attr, callable)``.
    """
    obj = import_attr(spec, "--extra")
    attr = spec.partition(":")[2]
    if isinstance(obj, method_cls):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, Iterable) and not callable(obj):
        items = list(obj)
        if all(isinstance(m, method_cls) for m in items):
            return items
    if callable(obj):
        return [wrap(attr, obj)]
    raise TypeError(f"{spec} is neither a {method_cls.__name__}, a list of them, nor a factory")


def add_setting_arguments(
    parser: argparse.ArgumentParser, scenarios: Collection[str], methods: Collection[str]
) -> None:
    """``--scenario``, ``--seeds``, ``--n-trials`` and ``--methods`` of a setting benchmark."""
    parser.add_argument("--scenario", default="lcbench", choices=sorted(scenarios))
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--n-trials", type=int, default=50)
    parser.add_argument("--methods", default=",".join(methods))


def run_methods(
    methods: Iterable[str], contexts: Sequence[Any], run: Callable[[Any, str], Any]
) -> dict[str, list[Any]]:
    """``run(context, method)`` for every method and context, timing each method."""
    runs: dict[str, list[Any]] = {}
    for m in methods:
        t0 = time.perf_counter()
        runs[m] = [run(ctx, m) for ctx in contexts]
        print(f"== {m} done in {time.perf_counter() - t0:.1f}s", flush=True)
    return runs


def write_report(
    intro: str, table: str, module: str, argv: Sequence[str] | None, out: Path | None
) -> str:
    """``intro``, the markdown ``table`` and the command that made it (``python -m module
    argv...``); written to ``out`` when given, printed, returned."""
    rest = sys.argv[1:] if argv is None else list(argv)
    text = f"{intro}\n\n{table}\nCommand: `python -m {module} {' '.join(rest)}`\n"
    if out is not None:
        out.write_text(text)
    print(text)
    return text


def setting_command(
    module: str, option: str, value: str, args: argparse.Namespace, methods: Collection[str]
) -> str:
    """The command that reruns one ``--option value`` of a setting benchmark (``--methods``
    only when a subset ran)."""
    command = (
        f"python -m benchmarks.{module} --{option} {value} --seeds {args.seeds}"
        f" --n-trials {args.n_trials}"
    )
    if parse_list(args.methods) != list(methods):
        command += f" --methods {args.methods}"
    return command


def run_setting(
    module: str,
    description: str,
    option: str,
    choices: Collection[str],
    methods: Collection[str],
    run_one: Callable[..., Any],
    report: Callable[[dict[str, list[Any]], str, str], str],
    out: Path,
    scenario: str = "lcbench",
    n_trials: int = 50,
) -> None:
    """The command line of a setting benchmark run under several ``--<option>`` values (its
    ``modes``): for each, ``run_one(ctx, method, <option singular>=value, n_trials=...)`` on
    ``scenario``'s scored tasks, then ``report(runs, value, command)`` written as
    ``<module>_<scenario>_<value>``."""
    from benchmarks.objectives import scored_tasks
    from benchmarks.protocol import make_contexts, quiet_optuna

    parser = argparse.ArgumentParser(description=description)
    add_setting_arguments(parser, [scenario], methods)
    parser.add_argument(f"--{option}", default=",".join(choices), help="comma-separated")
    parser.add_argument("--out", type=Path, default=out)
    parser.set_defaults(n_trials=n_trials)
    args = parser.parse_args()
    quiet_optuna()
    chosen = parse_methods(parser, args.methods, methods)
    values = parse_methods(parser, getattr(args, option), choices)
    contexts = make_contexts(scenario, scored_tasks(scenario), parse_ints(args.seeds))
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    keyword = option.removesuffix("s")
    for value in values:
        print(f"== {value}", flush=True)
        runs = run_methods(
            chosen,
            contexts,
            lambda ctx, m, v=value: run_one(ctx, m, **{keyword: v}, n_trials=args.n_trials),
        )
        command = setting_command(module, option, value, args, methods)
        text = report(runs, value, command)
        write_setting_results(args.out, f"{module}_{scenario}_{value}", runs, text)


def write_setting_results(out: Path, stem: str, runs: dict[str, list[Any]], text: str) -> None:
    """``raw/<stem>.json`` (every method's runs) and ``<stem>.md`` (``text``), printed too."""
    (out / "raw" / f"{stem}.json").write_text(json.dumps({"runs": runs}, separators=(",", ":")))
    (out / f"{stem}.md").write_text(text)
    print(text, flush=True)
