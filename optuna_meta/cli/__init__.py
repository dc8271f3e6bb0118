"""The ``optuna-meta`` command: build meta-datasets, meta-train models, inspect them.

Examples:
    .. code-block:: bash

        # Meta-train on every study of a storage (SQLite, PostgreSQL, journal file):
        optuna-meta train --storage sqlite:///past.db --out my_model.npz
        # Re-create the shipped default model (YAHPO test instances are always excluded). With
        # --yahpo the training tasks can be queried, so the model also learns an initial design
        # (--design-length configurations a new study tries first; here its second entry at
        # epochs 5 and 52, the others at epoch 52 alone), and with --task-optima each
        # training task's own optimum, which the design trials may pick too:
        optuna-meta train --yahpo lcbench --n-configs 2000 --name lcbench-mlp --task-optima \\
            --design-budgets 5,52 --design-first-budget 52 --design-hedging 1 \\
            --out optuna_meta/models/lcbench-mlp.npz --overwrite
        # Save a meta-dataset, or export one into a storage to browse it in optuna-dashboard:
        optuna-meta dataset --yahpo lcbench --n-configs 200 --out lcbench.npz
        optuna-meta export lcbench.npz --storage sqlite:///lcbench.db
        optuna-meta info lcbench-mlp
        optuna-meta models        # the shipped models and the parameters each one knows
        # Meta-train MetaPruner's curve model on the learning curves of past studies
        # (trials that reported intermediate values up to the last step):
        optuna-meta train-curve --storage sqlite:///past.db --out my_curves.npz
        optuna-meta info my_curves.npz
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optuna.exceptions import OptunaError

from optuna_meta.data import MetaDataset
from optuna_meta.surrogate._build import DEFAULT_OBSERVED_DESIGN
from optuna_meta.surrogate._design import DEFAULT_DESIGN_LENGTH

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
"""``scheme://user:password@host``: the password part, which a recorded command must not keep."""
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&\s]*", re.IGNORECASE)
"""``...?password=secret``: the same in a URL's query string (psycopg and others accept it)."""


def _recorded_command(argv: Sequence[str]) -> str:
    """The command line as model manifests record it, with URL passwords replaced by ``***``.

    Why: the manifest travels with the model file, which is meant to be shared, and
    ``--storage postgresql://user:secret@host/db`` would otherwise put the password in it.
    """
    masked = (_QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", a)) for a in argv)
    return "optuna-meta " + " ".join(masked)


def _source_files(args: argparse.Namespace) -> list[Path]:
    """The files the command reads: a SQLite database, a journal file or a meta-dataset."""
    out = []
    if args.dataset is not None:
        out.append(Path(args.dataset))
    if args.storage is not None:
        text = str(args.storage)
        if "://" not in text:
            out.append(Path(text))
        else:
            from optuna_meta.data._storage import sqlite_file

            database = sqlite_file(text)
            if database is not None:
                out.append(database)
    return out


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` that would destroy something, before any time is spent training.

    Why: training takes minutes, and writing the model over the storage it was trained from
    (``--storage past.db --out past.db``) would lose every past study. An existing file is
    replaced only with ``--overwrite``; a source file never.
    """
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out / 'model.npz'}.")
    for source in _source_files(args):
        if out.exists() and source.exists() and os.path.samefile(out, source):  # links too
            raise ValueError(f"--out {out} is the file the command reads from; choose another.")
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out} exists; pass --overwrite to replace it.")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # missing folders are made when the file is written
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"--out {out}: cannot write in {parent}.")


def _load_dataset(args: argparse.Namespace) -> MetaDataset:
    sources = [args.storage, args.yahpo, args.dataset]
    if sum(s is not None for s in sources) != 1:
        raise ValueError("give exactly one of --storage, --yahpo, --dataset")
    if args.study and args.storage is None:
        raise ValueError("--study selects studies of --storage; give --storage too")
    if args.task and args.yahpo is None:
        raise ValueError("--task selects YAHPO tasks; studies of a storage are chosen by --study")
    if args.study:  # a name given twice is one study (the dataset refuses duplicate tasks)
        args.study = list(dict.fromkeys(args.study))
    renames = {}
    for item in args.rename or ():
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--rename expects OLD=NEW, got {item!r}")
        renames[old.strip()] = new.strip()
    data = _read_source(args)
    return data.rename_params(renames) if renames else data


def _read_source(args: argparse.Namespace) -> MetaDataset:
    from optuna_meta.data import load_from_storage, load_yahpo

    if args.storage is not None:
        return load_from_storage(args.storage, args.study or None)
    if args.yahpo is not None:
        return load_yahpo(
            args.yahpo,
            n_configs=args.n_configs,
            tasks=args.task or None,
            seed=args.seed,
            data_dir=args.yahpo_data,
        )
    return MetaDataset.load(args.dataset)


class _Once(argparse.Action):
    """``store`` that refuses a second value: argparse keeps the last one, and the studies of
    a first ``--storage`` were left out without a word."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice: give one source")
        setattr(namespace, self.dest, values)


def _add_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("source (exactly one)")
    g.add_argument(
        "--storage", action=_Once, help="Optuna storage URL or journal file: every study a task"
    )
    g.add_argument(
        "--yahpo", action=_Once, choices=["lcbench", "rbv2_xgboost"], help="YAHPO scenario"
    )
    g.add_argument(
        "--dataset", action=_Once, help="a meta-dataset .npz written by `optuna-meta dataset`"
    )
    p.add_argument("--study", action="append", help="--storage: only this study (repeatable)")
    p.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help="rename a parameter in every study, e.g. mom=momentum (repeatable)",
    )
    p.add_argument("--n-configs", type=int, default=2000, help="YAHPO: configurations per task")
    p.add_argument("--task", action="append", help="YAHPO: only this task (repeatable)")
    p.add_argument("--yahpo-data", help="YAHPO data folder (default: $OPTUNA_META_YAHPO_DATA)")
    p.add_argument("--seed", type=int, default=0)


def _first_budget_index(args: argparse.Namespace) -> int | None:
    """The index in ``--design-budgets`` of ``--design-first-budget`` (None when not given)."""
    if args.design_first_budget is None:
        return None
    budgets = list(args.design_budgets or [])
    if args.design_first_budget not in budgets:
        raise ValueError(
            f"--design-first-budget {args.design_first_budget:g} must be one of "
            f"--design-budgets ({', '.join(f'{b:g}' for b in budgets) or 'not given'})."
        )
    return budgets.index(args.design_first_budget)


def _cmd_train(args: argparse.Namespace) -> int:
    from optuna_meta.surrogate import build_model
    from optuna_meta.surrogate._train import TrainConfig

    _check_out(args)
    first_budget = _first_budget_index(args)
    if args.design_hedging is not None and first_budget is None:
        raise ValueError("--design-hedging needs --design-first-budget.")
    data = _load_dataset(args)
    cfg = TrainConfig(steps=args.steps, seed=args.seed)
    command = _recorded_command(args.argv)
    design_objective = None
    if args.yahpo is not None and args.design_length > 0:
        from optuna_meta.data import yahpo_objective

        design_objective = yahpo_objective(
            args.yahpo, data_dir=args.yahpo_data, budgets=args.design_budgets
        )
    model = build_model(
        data,
        name=args.name,
        config=cfg,
        log=lambda m: print(m, file=sys.stderr),
        extra_manifest={"command": command},
        design_objective=design_objective,
        design_length=args.design_length,
        design_first_budget=first_budget,
        design_hedging=args.design_hedging,
        task_optima=args.task_optima,
        observed_design=args.observed_design if args.yahpo is None else 0,
    )
    path = model.save(args.out)
    n_tasks = len(model.manifest.get("training_tasks", []))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {n_tasks} training tasks)")
    return 0


def _cmd_train_curve(args: argparse.Namespace) -> int:
    from optuna_meta.curve._curves import curves_from_dataset
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model

    _check_out(args)
    curves, bounds = curves_from_dataset(_load_dataset(args))
    cfg = CurveTrainConfig(
        n_episodes=args.episodes, seed=args.seed, calibration_folds=args.calibration_folds
    )
    model = build_curve_model(
        curves,
        cfg,
        name=args.name,
        bounds=bounds,
        log=lambda m: print(m, file=sys.stderr),
        extra_manifest={"command": _recorded_command(args.argv)},
    )
    path = model.save(args.out)
    n = sum(len(c) for c in curves.values())
    print(f"wrote {path} ({len(curves)} tasks, {n} curves)")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    _check_out(args)
    data = _load_dataset(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    path = data.save(args.out)
    print(f"wrote {path}: {len(data)} tasks, {data.n_trials} trials")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from optuna_meta.data import export_to_storage

    names = export_to_storage(
        MetaDataset.load(args.dataset), args.storage, prefix=args.prefix, overwrite=args.overwrite
    )
    print(f"exported {len(names)} studies to {args.storage}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from optuna_meta.curve import CurveModel
    from optuna_meta.surrogate import ModelFileError, SurrogateModel

    try:
        model = SurrogateModel.load(args.model)
    except ModelFileError as surrogate_error:
        try:  # a MetaPruner curve model?
            curve = CurveModel.load(args.model)
        except ModelFileError as curve_error:
            # The reason that matters is the one of the kind the file says it is.
            raise (curve_error if _is_curve_file(args.model) else surrogate_error) from None
        print(json.dumps(curve.manifest, indent=2, default=str))
        return 0
    info = {k: v for k, v in model.manifest.items() if k not in ("search_space",)}
    info["parameters"] = {k: repr(v) for k, v in model.search_space.items()}
    info["initial_design"] = model.initial_design
    print(json.dumps(info, indent=2, default=str))
    return 0


def _is_curve_file(model: str) -> bool:
    """Whether ``model`` (a name or path) is a file whose manifest names the curve format."""
    from optuna_meta._model_io import ModelFileError, _manifest_format, resolve_model_path
    from optuna_meta.curve._model_file import FORMAT_NAME as CURVE_FORMAT

    try:
        return _manifest_format(resolve_model_path(model)) == CURVE_FORMAT
    except ModelFileError:
        return False


def _cmd_models(args: argparse.Namespace) -> int:
    from optuna_meta.curve import CurveModel
    from optuna_meta.surrogate import ModelFileError, SurrogateModel, shipped_models

    for name in shipped_models():
        try:
            model = SurrogateModel.load(name)
        except ModelFileError:
            curve = CurveModel.load(name)
            tasks = len(curve.manifest.get("training_tasks", []))
            print(f"{name}: MetaPruner curve model, {tasks} training tasks")
            continue
        tasks = len(model.manifest.get("training_tasks", []))
        print(
            f"{name}: MetaSampler surrogate, {tasks} training tasks; knows "
            + ", ".join(model.search_space)
        )
    return 0


def _budget_list(text: str) -> list[float]:
    try:
        budgets = [float(b) for b in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 5,52, got {text!r}") from None
    if not all(b > 0 and math.isfinite(b) for b in budgets):
        raise argparse.ArgumentTypeError(f"budgets must be positive and finite, got {text!r}")
    return budgets


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _calibration_folds(text: str) -> int:
    value = _non_negative_int(text)
    if value == 1:
        raise argparse.ArgumentTypeError("must be 0 (no calibration) or at least 2, got 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    from optuna_meta.curve._train import CurveTrainConfig  # numpy only; torch when training

    parser = argparse.ArgumentParser(prog="optuna-meta", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="meta-train a surrogate model file")
    _add_source(p)
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--name", help="model name recorded in the manifest (default: --out's stem)")
    p.add_argument("--steps", type=_positive_int, default=3000, help="meta-training steps")
    p.add_argument(
        "--design-length",
        type=_non_negative_int,
        default=DEFAULT_DESIGN_LENGTH,
        help="YAHPO: configurations of the learned initial design (0: none)",
    )
    p.add_argument(
        "--observed-design",
        type=_non_negative_int,
        default=DEFAULT_OBSERVED_DESIGN,
        help="--storage/--dataset: open new studies with this many configurations the past "
        f"studies ran, a greedy portfolio across them (default {DEFAULT_OBSERVED_DESIGN}; "
        "0: the best guess of the meta-mean opens them)",
    )
    p.add_argument(
        "--task-optima",
        action="store_true",
        help="YAHPO: also learn each training task's own optimum (design trials may pick them)",
    )
    p.add_argument(
        "--design-budgets",
        type=_budget_list,
        help="YAHPO: learn the design at these fidelities, e.g. 5,52 (LCBench epochs), so it "
        "serves short runs too (default: the final fidelity only)",
    )
    p.add_argument(
        "--design-first-budget",
        type=float,
        help="YAHPO: learn the design's first entry (and the --task-optima) at this one of "
        "--design-budgets alone, e.g. 52 (the later entries serve every budget)",
    )
    p.add_argument(
        "--design-hedging",
        type=_non_negative_int,
        help="YAHPO, with --design-first-budget: only this many entries after the first serve "
        "every budget, the later ones --design-first-budget alone (default: all of them)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("train-curve", help="meta-train a learning-curve model (MetaPruner)")
    _add_source(p)
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--name", help="model name recorded in the manifest (default: --out's stem)")
    p.add_argument(
        "--episodes",
        type=int,
        default=CurveTrainConfig.n_episodes,
        help="emulated studies (16 prune checks each)",
    )
    p.add_argument(
        "--calibration-folds",
        type=_calibration_folds,
        default=CurveTrainConfig.calibration_folds,
        help="inner task folds of the tail calibration (0: none; needs 2+ tasks)",
    )
    p.set_defaults(func=_cmd_train_curve)

    p = sub.add_parser("dataset", help="build a meta-dataset file")
    _add_source(p)
    p.add_argument("--out", required=True, help="meta-dataset file to write (.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_cmd_dataset)

    p = sub.add_parser("export", help="write a meta-dataset into an Optuna storage")
    p.add_argument("dataset", help="meta-dataset .npz")
    p.add_argument("--storage", action=_Once, required=True, help="storage URL or journal file")
    p.add_argument("--prefix", default="", help="prefix of the study names")
    p.add_argument("--overwrite", action="store_true", help="replace studies of the same name")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("models", help="list the shipped models and what they know")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("info", help="show a model file's manifest")
    p.add_argument("model", help="shipped model name or path")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optuna-meta`` console script."""
    from sqlalchemy.exc import SQLAlchemyError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the manifest records the command that was run, also from Python
    for key in ("out", "dataset", "model"):  # `--out=~/m.npz`: the shell leaves `~` alone
        value = getattr(args, key, None)
        if isinstance(value, str) and value.startswith("~"):
            setattr(args, key, os.path.expanduser(value))
    if getattr(args, "out", None) is not None and hasattr(args, "name") and args.name is None:
        args.name = Path(args.out).stem
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return int(args.func(args))
        except BrokenPipeError:
            # `optuna-meta models | head -1`: the reader has gone, which is no error. Point
            # stdout at devnull so that the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except (ValueError, KeyError, OSError, ImportError, OptunaError, SQLAlchemyError) as e:
            # OSError: a missing file or folder, no permission; ImportError: a database driver
            # or torch not installed; SQLAlchemyError: a bad URL or an unreachable server.
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"optuna-meta: error: {message}", file=sys.stderr)
            return 2


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings as one line each: a command-line user has no use for our source lines."""
    print(f"optuna-meta: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
