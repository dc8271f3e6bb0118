"""The ``optuna-meta`` command line: train, dataset, export, info, and its error messages."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_meta import MetaSampler
from optuna_meta.cli import main
from optuna_meta.data import MetaDataset, default_yahpo_dir
from optuna_meta.sampler import ATTR_SOURCE
from optuna_meta.surrogate import SurrogateModel
from optuna_meta.surrogate._build import DEFAULT_OBSERVED_DESIGN

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).resolve().parents[1]


def _past_studies(url: str, n_trials: int) -> None:
    """Three real studies of one family of quadratics with different optima, in SQLite.

    They are optimised in memory and then written with ``add_trials``: running them on SQLite
    directly costs ~50 ms of database round trips per trial.
    """
    memory = optuna.storages.InMemoryStorage()
    for i, (lr_opt, dropout_opt) in enumerate([(1e-3, 0.1), (1e-2, 0.3), (3e-2, 0.0)]):
        # The last study spells the learning rate differently: training must merge the names.
        lr_name = "learning_rate" if i == 2 else "lr"

        def objective(
            trial: optuna.Trial, lr_opt: float = lr_opt, d_opt: float = dropout_opt, name=lr_name
        ):
            lr = trial.suggest_float(name, 1e-4, 1e-1, log=True)
            bs = trial.suggest_int("batch_size", 16, 256, log=True)
            dropout = trial.suggest_float("dropout", 0.0, 0.5)
            return (math.log10(lr / lr_opt)) ** 2 + (dropout - d_opt) ** 2 + 0.01 * math.log2(bs)

        sampler = optuna.samplers.RandomSampler(seed=i)
        study = optuna.create_study(study_name=f"past-{i}", storage=memory, sampler=sampler)
        study.optimize(objective, n_trials=n_trials)
        stored = optuna.create_study(study_name=f"past-{i}", storage=url)
        stored.add_trials(study.trials)
    assert optuna.get_all_study_names(url) == ["past-0", "past-1", "past-2"]


def test_train_on_a_storage_then_sample_with_the_model(
    fast_dir: Path, rdb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = rdb_url
    if url.startswith("postgresql"):  # the test server trusts local users: any password works
        url = url.replace("postgres@", "postgres:pg-s3cret@", 1)
    _past_studies(url, n_trials=50)
    out = fast_dir / "model.npz"
    code = main(["train", "--storage", url, "--out", str(out), "--steps", "30", "--name", "mine"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "wrote" in captured.out and "3 training tasks" in captured.out
    model = SurrogateModel.load(out)
    assert model.manifest["name"] == "mine"
    assert model.manifest["training_tasks"] == ["past-0", "past-1", "past-2"]
    assert model.manifest["n_training_trials"] == 150
    assert model.manifest["train_config"]["steps"] == 30
    assert model.manifest["command"].startswith("optuna-meta train --storage")
    assert "--steps 30" in model.manifest["command"]
    assert "pg-s3cret" not in json.dumps(model.manifest)  # a shared file keeps no password
    if url.startswith("postgresql"):
        assert "postgres:***@" in model.manifest["command"]
    # Names are canonicalised: "lr" in the studies becomes the model's "learning_rate".
    assert set(model.search_space) == {"learning_rate", "batch_size", "dropout"}

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)  # alias of "lr"
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        return (math.log10(lr / 3e-3)) ** 2 + (dropout - 0.2) ** 2

    # By default up to five configurations the past studies ran open new studies (a model
    # trained from storages has no objective to query for a learned design); with three
    # studies the portfolio may end sooner, once each has its best configuration
    assert model.manifest["initial_design_source"] == "observed"
    n = len(model.initial_design)
    assert 1 <= n <= DEFAULT_OBSERVED_DESIGN == 5
    ran = [
        (t.params.get("lr", t.params.get("learning_rate")), t.params["dropout"])
        for name in optuna.get_all_study_names(url)
        for t in optuna.load_study(study_name=name, storage=url).trials
    ]
    assert all((e["learning_rate"], e["dropout"]) in ran for e in model.initial_design)
    assert model.initial_design[0]["learning_rate"] == model.defaults["learning_rate"]
    study = optuna.create_study(sampler=MetaSampler(model=out, seed=0, n_candidates=64))
    study.optimize(objective, n_trials=n)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * n
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * n
    assert study.trials[0].params["learning_rate"] == pytest.approx(
        model.initial_design[0]["learning_rate"]
    )
    # `--observed-design 0`: the meta-mean's best guess opens new studies, and with no design
    # every 5th trial is the fallback's from the start
    guess = fast_dir / "guess.npz"
    assert main(["train", "--storage", url, "--out", str(guess), "--steps", "30",
                 "--observed-design", "0"]) == 0  # fmt: skip
    model = SurrogateModel.load(guess)
    assert model.initial_design == [] and model.manifest["initial_design_source"] is None
    study = optuna.create_study(sampler=MetaSampler(model=guess, seed=0, n_candidates=64))
    study.optimize(objective, n_trials=5)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 4 + ["fallback"]
    assert study.trials[0].params["learning_rate"] == pytest.approx(
        model.defaults["learning_rate"]
    )


def test_train_on_small_studies(fast_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{fast_dir / 'small.db'}"
    _past_studies(url, n_trials=20)
    out = fast_dir / "small.npz"
    code = main(["train", "--storage", url, "--out", str(out), "--steps", "5"])
    assert code == 0, capsys.readouterr().err
    model = SurrogateModel.load(out)
    assert model.manifest["n_training_trials"] == 60
    assert 1 <= len(model.initial_design) <= DEFAULT_OBSERVED_DESIGN
    # up to three observed configurations open a study; none: the meta-mean's best guess
    for n, source in ((3, "observed"), (0, None)):
        out = fast_dir / f"small{n}.npz"
        args = ["train", "--storage", url, "--out", str(out), "--steps", "5", "--task-optima"]
        assert main([*args, "--observed-design", str(n)]) == 0  # no optima without YAHPO
        model = SurrogateModel.load(out)
        assert (1 <= len(model.initial_design) <= n) if n else not model.initial_design
        assert model.manifest["initial_design_source"] == source


@pytest.mark.skipif(
    default_yahpo_dir() is None or not (default_yahpo_dir() / "lcbench").is_dir(),
    reason="YAHPO data folder is absent",
)
def test_train_on_yahpo_learns_an_initial_design(
    fast_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fast_dir / "y.npz"
    common = ["train", "--yahpo", "lcbench", "--n-configs", "20", "--task", "3945"]
    design = ["--steps", "5", "--design-length", "2", "--out", str(out)]
    code = main([*common, "--task", "7593", *design])
    assert code == 0, capsys.readouterr().err
    model = SurrogateModel.load(out)
    assert len(model.initial_design) == 2
    assert model.defaults == model.initial_design[0]
    assert model.task_optima == []  # only with --task-optima
    optima = ["--steps", "5", "--design-length", "1", "--task-optima", "--overwrite"]
    assert main([*common, "--task", "7593", *optima, "--out", str(out)]) == 0
    model = SurrogateModel.load(out)
    assert 1 <= len(model.task_optima) <= 2  # one per training task, repeats left out
    assert model.initial_design[0] not in model.task_optima
    redo = [*common, "--steps", "5", "--design-length", "0", "--out", str(out)]
    assert main(redo) == 2  # the file exists
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*redo, "--overwrite"]) == 0
    assert SurrogateModel.load(out).initial_design == []
    budgets = ["--steps", "5", "--design-length", "2", "--design-budgets", "5,52", "--overwrite"]
    assert main([*common, *budgets, "--out", str(out)]) == 0
    model = SurrogateModel.load(out)
    assert len(model.initial_design) == 2
    assert "--design-budgets 5,52" in model.manifest["command"]
    first = [*budgets, "--design-first-budget", "52", "--out", str(out)]
    assert main([*common, *first]) == 0
    hedged = SurrogateModel.load(out)
    assert "--design-first-budget 52" in hedged.manifest["command"]
    assert hedged.manifest["design_fixed_trials"] == 2  # its second entry is tried second
    for bad in (["--design-first-budget", "13", *budgets], ["--design-first-budget", "52"]):
        assert main([*common, *bad, "--overwrite", "--out", str(out)]) == 2
        assert "must be one of --design-budgets" in capsys.readouterr().err
    assert main([*common, *first, "--design-hedging", "0"]) == 0  # every entry at epoch 52
    none_hedge = SurrogateModel.load(out)
    assert "--design-hedging 0" in none_hedge.manifest["command"]
    assert none_hedge.initial_design[0] == hedged.initial_design[0]
    assert none_hedge.initial_design[1] != hedged.initial_design[1]
    assert main([*common, *budgets, "--design-hedging", "1", "--out", str(out)]) == 2
    assert "--design-hedging needs --design-first-budget" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, *first, "--design-hedging", "-1"])
    assert "must be at least 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--design-budgets", "5,x", "--out", str(out)])
    assert "expected numbers like 5,52" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--design-budgets", "0,52", "--out", str(out)])
    assert "positive and finite" in capsys.readouterr().err


@pytest.mark.skipif(
    default_yahpo_dir() is None or not (default_yahpo_dir() / "lcbench").is_dir(),
    reason="YAHPO data folder is absent",
)
def test_dataset_then_export(fast_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fast_dir / "d.npz"
    argv = ["dataset", "--yahpo", "lcbench", "--n-configs", "20", "--task", "3945"]
    assert main([*argv, "--out", str(data)]) == 0
    assert "1 tasks, 20 trials" in capsys.readouterr().out
    url = f"sqlite:///{fast_dir / 'export.db'}"
    assert main(["export", str(data), "--storage", url]) == 0
    assert "exported 1 studies" in capsys.readouterr().out
    study = optuna.load_study(study_name="lcbench/3945", storage=url)
    assert len(study.trials) == 20
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert set(study.trials[0].params) == {
        "batch_size",
        "learning_rate",
        "momentum",
        "weight_decay",
        "num_layers",
        "max_units",
        "max_dropout",
    }
    # a second export clashes: a clear message, no traceback
    assert main(["export", str(data), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optuna-meta: error:") and "already exist" in err
    assert optuna.get_all_study_names(url) == ["lcbench/3945"]


def test_models_lists_every_shipped_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split(":")[0]: line for line in lines}
    assert set(by_name) == {"lcbench-curve", "lcbench-mlp", "lcbench-mlp-short", "rbv2-xgboost"}
    assert "curve model" in by_name["lcbench-curve"]
    assert "learning_rate" in by_name["lcbench-mlp"] and "booster" not in by_name["lcbench-mlp"]
    assert "booster" in by_name["rbv2-xgboost"] and "max_depth" in by_name["rbv2-xgboost"]


def test_info_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "lcbench-mlp"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "lcbench-mlp"
    assert info["format"] == "optuna-meta/surrogate"
    assert set(info["parameters"]) == {
        "batch_size",
        "learning_rate",
        "momentum",
        "weight_decay",
        "num_layers",
        "hidden_size",
        "dropout",
    }
    assert "lcbench/167168" not in info["training_tasks"]


def test_no_source_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path / "m.npz")]) == 2
    assert "error: give exactly one of --storage, --yahpo, --dataset" in capsys.readouterr().err
    out = str(tmp_path / "o.npz")
    assert main(["dataset", "--storage", "x.db", "--dataset", "d.npz", "--out", out]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert main(["train", "--yahpo", "lcbench", "--study", "s", "--out", out]) == 2
    assert "--study selects studies of --storage" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "{tmp}/missing.npz"], "No model file"),
        (["export", "{tmp}/missing.npz", "--storage", "{tmp}/x.db"], "missing.npz"),
        (["train", "--dataset", "{tmp}/missing.npz", "--out", "{tmp}/m.npz"], "missing.npz"),
        (["train", "--storage", "{tmp}/missing.db", "--out", "{tmp}/m.npz"], "No storage file"),
        (["info", "{tmp}/junk.npz"], "not a readable optuna-meta model file"),
        (["train", "--storage", "sqlite:///{tmp}/typo.db", "--out", "{tmp}/m.npz"], "No SQLite"),
        (["train", "--storage", "sqllite:///{tmp}/x.db", "--out", "{tmp}/m.npz"], "sqllite"),
        (["train", "--storage", "sqlite:///{tmp}/no/x.db", "--out", "{tmp}/m.npz"], "No SQLite"),
        (["train", "--storage", "sqlite:///{tmp}/notes.db", "--out", "{tmp}/m.npz"], "database"),
        (["train", "--dataset", "{tmp}/notes.db", "--out", "{tmp}/m.npz"], "notes.db"),
    ],
    ids=[
        "info",
        "export",
        "train-dataset",
        "train-storage",
        "junk-model",
        "sqlite-typo",
        "dialect-typo",
        "sqlite-missing-folder",
        "sqlite-not-a-database",
        "dataset-not-a-dataset",
    ],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "junk.npz").write_bytes(b"junk")
    (tmp_path / "notes.db").write_text("not a database\n")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("optuna-meta: error:")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()
    assert not (tmp_path / "typo.db").exists()  # reading a typo does not create a database


def test_out_never_destroys_a_file_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training must not write its model over the past studies it reads, or over any file."""
    db = tmp_path / "past.db"
    url = f"sqlite:///{db}"
    _past_studies(url, n_trials=10)
    before = db.read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    for argv, message in [
        (["--storage", url, "--out", str(db), "--overwrite"], "the file the command reads from"),
        (["--storage", str(db), "--out", str(db)], "the file the command reads from"),
        (["--storage", url, "--out", str(notes)], "exists; pass --overwrite"),
        (["--storage", url, "--out", str(tmp_path)], "is a folder"),
    ]:
        assert main(["train", *argv, "--steps", "2"]) == 2, argv
        assert message in capsys.readouterr().err
    assert db.read_bytes() == before and notes.read_text() == "keep me"
    assert optuna.get_all_study_names(url) == ["past-0", "past-1", "past-2"]
    # dataset and train-curve check --out the same way, before reading anything
    assert main(["dataset", "--storage", url, "--out", str(notes)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["train-curve", "--storage", url, "--out", str(db), "--overwrite"]) == 2
    assert "the file the command reads from" in capsys.readouterr().err
    link = tmp_path / "link.db"  # another name for the same file
    os.link(db, link)
    assert (
        main(["train", "--storage", url, "--out", str(link), "--overwrite", "--steps", "2"]) == 2
    )
    assert "the file the command reads from" in capsys.readouterr().err
    assert notes.read_text() == "keep me" and db.read_bytes() == before
    # a missing output folder is made when the file is written, not before a failed read
    deep = tmp_path / "new" / "folder" / "d.npz"
    typo = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["dataset", "--storage", typo, "--out", str(deep)]) == 2
    assert not (tmp_path / "new").exists()
    assert main(["dataset", "--storage", url, "--out", str(deep)]) == 0
    assert deep.is_file()
    # --steps must be positive: an untrained model is not a model
    with pytest.raises(SystemExit):
        main(["train", "--storage", url, "--out", str(tmp_path / "m.npz"), "--steps", "0"])


def test_train_says_which_studies_it_leaves_out_and_names_the_model_after_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'past.db'}"
    _past_studies(url, n_trials=10)
    tiny = optuna.create_study(study_name="tiny", storage=url)
    tiny.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=3)
    two = optuna.create_study(study_name="two", storage=url, directions=["minimize"] * 2)
    two.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1e-1, log=True), 1.0), n_trials=3)
    out = tmp_path / "my_model.npz"
    assert main(["train", "--storage", url, "--out", str(out), "--steps", "2"]) == 0
    captured = capsys.readouterr()
    assert "warning: Task 'tiny' is left out: 3 completed or pruned trials" in captured.err
    assert "optuna-meta: warning: Skipped multi-objective study 'two'" in captured.err
    assert "3 training tasks" in captured.out  # not 4: 'tiny' was left out
    model = SurrogateModel.load(out)
    assert model.manifest["training_tasks"] == ["past-0", "past-1", "past-2"]
    assert model.manifest["name"] == "my_model"
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name="nothing", storage=empty)
    for command in ("train", "train-curve"):
        assert main([command, "--storage", empty, "--out", str(tmp_path / "e.npz")]) == 2
        assert "no usable study" in capsys.readouterr().err


def test_recorded_command_masks_passwords_in_the_query_string_too() -> None:
    from optuna_meta.cli import _recorded_command

    recorded = _recorded_command(
        ["train", "--storage", "postgresql://u@host/db?sslmode=require&password=s3cret"]
    )
    assert "s3cret" not in recorded and "password=***" in recorded
    assert "sslmode=require" in recorded


def test_console_script_exit_code_without_traceback(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; from optuna_meta.cli import main; sys.exit(main())"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["train", "--out", str(tmp_path / "m.npz")]
    proc = subprocess.run(
        cmd + args, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 2
    assert "exactly one of --storage, --yahpo, --dataset" in proc.stderr
    assert "Traceback" not in proc.stderr


def _curve_studies(url: str, n_trials: int = 24, direction: str = "maximize") -> None:
    """Two studies of saturating curves reported every 100 global steps up to 1000.

    Every fourth trial is pruned at step 300 (no final value to learn from); a maximised study
    reports accuracies, a minimised one losses (1 - accuracy).
    """
    memory = optuna.storages.InMemoryStorage()
    for i in range(2):
        rng = np.random.default_rng(i)
        study = optuna.create_study(study_name=f"curves-{i}", storage=memory, direction=direction)
        for k in range(n_trials):
            t = study.ask()
            final, tau = rng.uniform(0.6, 0.95), rng.uniform(100, 400)
            pruned = k % 4 == 3
            for step in range(100, 1001, 100):
                acc = final - (final - 0.1) * math.exp(-step / tau)
                t.report(acc if direction == "maximize" else 1 - acc, step)
                if pruned and step == 300:
                    break
            if pruned:
                study.tell(t, state=TrialState.PRUNED)
            else:
                study.tell(t, acc if direction == "maximize" else 1 - acc)
        stored = optuna.create_study(study_name=f"curves-{i}", storage=url, direction=direction)
        stored.add_trials(study.trials)


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_train_curve_on_a_storage_then_prune_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], direction: str
) -> None:
    pytest.importorskip("torch")
    from optuna_meta import MetaPruner
    from optuna_meta.curve import CurveModel
    from optuna_meta.curve._curves import curves_from_dataset
    from optuna_meta.data import load_from_storage

    url = f"sqlite:///{tmp_path / 'curves.db'}"
    _curve_studies(url, direction=direction)
    curves, (lo, hi) = curves_from_dataset(load_from_storage(url), min_curves=10)
    # 18 completed trials a study reach step 1000; pruned ones are left out. Curves are on a
    # 10-point grid, oriented so that larger is better (losses are negated).
    assert {k: v.shape for k, v in curves.items()} == {"curves-0": (18, 10), "curves-1": (18, 10)}
    offset = 0.0 if direction == "maximize" else -1.0  # -(1 - acc) = acc - 1
    assert offset < lo < hi < offset + 1.0
    assert all(np.all(np.diff(c, axis=1) >= 0) for c in curves.values())  # still increasing
    out = tmp_path / "curve.npz"
    args = ["train-curve", "--storage", url, "--out", str(out), "--episodes", "300"]
    assert main(args) == 2  # 18 curves a task are too few for the default minimum
    err = capsys.readouterr().err
    assert "No task has 20 or more complete learning curves" in err
    # each study left out is named, with the reason
    assert "warning: Task 'curves-0' is left out: 18 complete learning curves" in err

    _curve_studies(url.replace("curves.db", "more.db"), n_trials=30, direction=direction)
    url = url.replace("curves.db", "more.db")
    code = main(["train-curve", "--storage", url, "--out", str(out), "--episodes", "300"])
    assert code == 0, capsys.readouterr().err
    assert "2 tasks, 46 curves" in capsys.readouterr().out
    model = CurveModel.load(out)
    assert model.manifest["command"].startswith("optuna-meta train-curve --storage")
    assert model.manifest["training_tasks"] == ["curves-0", "curves-1"]
    assert model.calibration() is not None  # 2 tasks: 2 calibration folds
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "curve-mlp"

    # The file drives MetaPruner in a new study of the same kind.
    study = optuna.create_study(direction=direction, pruner=MetaPruner(str(out)))
    _curve_studies_into(study, direction)
    assert any(t.state == TrialState.PRUNED for t in study.trials)
    assert all("optuna_meta:predicted_final" in t.user_attrs for t in study.trials[12:])


def _curve_studies_into(study: optuna.Study, direction: str) -> None:
    def objective(trial: optuna.Trial) -> float:
        final = trial.suggest_float("final", 0.3, 0.95)
        acc = 0.0
        for step in range(100, 1001, 100):
            acc = final - (final - 0.1) * math.exp(-step / 200)
            trial.report(acc if direction == "maximize" else 1 - acc, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc if direction == "maximize" else 1 - acc

    study.sampler = optuna.samplers.RandomSampler(seed=0)
    study.optimize(objective, n_trials=40)


def test_rename_merges_a_parameter_the_studies_name_differently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_meta.data import MetaDataset

    url = f"sqlite:///{tmp_path / 'past.db'}"
    for name, momentum in [("a", "mom"), ("b", "momentum")]:
        study = optuna.create_study(study_name=name, storage=url)
        study.optimize(
            lambda t, m=momentum: (
                t.suggest_float("lr", 1e-4, 0.1, log=True) + t.suggest_float(m, 0.0, 1.0)
            ),
            n_trials=3,
        )
    out = tmp_path / "d.npz"
    assert main(["dataset", "--storage", url, "--out", str(out)]) == 0
    assert set(MetaDataset.load(out)["a"].search_space) == {"lr", "mom"}
    argv = ["dataset", "--storage", url, "--out", str(out), "--overwrite", "--rename"]
    assert main([*argv, "mom=momentum"]) == 0
    renamed = MetaDataset.load(out)
    assert set(renamed["a"].search_space) == {"lr", "momentum"}
    assert all("momentum" in p for p in renamed["a"].params)
    assert main([*argv, "mom"]) == 2
    assert "--rename expects OLD=NEW" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="renaming 'lr' to 'momentum' would merge it"):
        clash = renamed.rename_params({"lr": "momentum"})
    assert set(clash["a"].search_space) == {"lr", "momentum"}
    # two old names onto one new name: neither is renamed, nothing is lost
    original = MetaDataset.load(out)
    both = original.rename_params({"lr": "x", "momentum": "x"})
    assert set(both["b"].search_space) == {"lr", "momentum"}
    # a swap is a rename like any other
    swapped = original.rename_params({"lr": "momentum", "momentum": "lr"})
    assert [p["lr"] for p in swapped["b"].params] == [p["momentum"] for p in original["b"].params]


def test_info_gives_a_curve_models_own_reason_for_refusing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It printed the surrogate loader's "not a surrogate model file ... pass it to MetaPruner",
    # which MetaPruner would refuse too.
    import io

    from optuna_meta._model_io import model_bytes
    from optuna_meta.curve import CurveModel

    data = CurveModel.load("lcbench-curve").to_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays.pop("manifest").tobytes())
    path = tmp_path / "newer.npz"
    path.write_bytes(model_bytes(arrays, {**manifest, "version": manifest["version"] + 1}))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "curve model format version" in err and "Upgrade optuna-meta" in err


def test_calibration_folds_of_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # One fold cannot hold tasks out of a network's training: the model came out uncalibrated
    # with the reason "fewer than two tasks".
    with pytest.raises(SystemExit) as exit_info:
        main(["train-curve", "--dataset", "d.npz", "--out", "m.npz", "--calibration-folds", "1"])
    assert exit_info.value.code == 2
    assert "must be 0 (no calibration) or at least 2" in capsys.readouterr().err


def test_a_reader_that_stops_early_is_no_error() -> None:
    # `optuna-meta models | head -1` printed "optuna-meta: error: [Errno 32] Broken pipe" and
    # exited 2. The reader here has gone before the command writes anything.
    cmd = [sys.executable, "-c", "import sys; from optuna_meta.cli import main; sys.exit(main())"]
    proc = subprocess.Popen(
        [*cmd, "info", "lcbench-mlp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Broken pipe" not in err and b"Error" not in err, err


def test_source_options_that_would_be_ignored_are_refused(
    fast_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second --storage was dropped without a word (argparse keeps the last), --task with
    --storage read every study, and a negative --observed-design meant no design; a name
    given twice to --study is one study."""
    a, b = f"sqlite:///{fast_dir / 'a.db'}", f"sqlite:///{fast_dir / 'b.db'}"
    _past_studies(a, n_trials=12)
    other = optuna.create_study(study_name="other", storage=b)
    other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=9)
    out = str(fast_dir / "d.npz")
    with pytest.raises(SystemExit):
        main(["dataset", "--storage", a, "--storage", b, "--out", out])
    assert "--storage given twice" in capsys.readouterr().err
    assert main(["dataset", "--storage", a, "--task", "past-0", "--out", out]) == 2
    assert "--task selects YAHPO tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--storage", a, "--out", out, "--observed-design", "-1"])
    assert "must be at least 0" in capsys.readouterr().err
    assert main(["dataset", "--storage", a, "--study", "past-0", "--study", "past-0",
                 "--out", out]) == 0  # fmt: skip
    assert MetaDataset.load(out).task_names == ["past-0"]
