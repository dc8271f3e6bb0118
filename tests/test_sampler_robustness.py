"""MetaSampler under real-world conditions: failures, parallelism, pickling, storages, pruners."""

from __future__ import annotations

import logging
import math
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import optuna_meta.sampler._constraints as _constraints
import optuna_meta.sampler._sampler as sampler_module
from optuna_meta import MetaSampler
from optuna_meta.sampler import ATTR_PRED_MEAN, ATTR_PRED_STD, ATTR_PREDICTED_FINAL, ATTR_SOURCE
from optuna_meta.sampler._model_state import _ModelState
from optuna_meta.sampler._trials import _pinned_distribution
from optuna_meta.sampler._values import _standardise
from optuna_meta.surrogate import DeepKernelGP, SurrogateModel, resolve_model_path

optuna.logging.set_verbosity(optuna.logging.WARNING)

FAST = {"n_candidates": 64}
GP_PATH = {**FAST, "n_design_trials": 0, "fallback_every": 0}
"""For tests of the surrogate's proposals: the shipped model's initial design would otherwise
serve the first trials without calling `propose` (the design has its own tests)."""
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def spy_propose(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, np.ndarray]]:
    """Record what the sampler hands to the acquisition optimiser."""
    calls: list[dict[str, np.ndarray]] = []
    real = sampler_module.propose

    def spy(gp: Any, box: Any, X: Any, y: Any, P: Any, rng: Any, **kwargs: Any) -> Any:
        calls.append({"X": X.copy(), "y": y.copy(), "pending": P.copy()})
        return real(gp, box, X, y, P, rng, **kwargs)

    monkeypatch.setattr(sampler_module, "propose", spy)
    return calls


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    bs = trial.suggest_int("batch_size", 16, 512, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    return (math.log10(lr) + 2.5) ** 2 + (dropout - 0.2) ** 2 + (math.log2(bs) - 6) ** 2 / 10


def params_of(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


# -- 3. failed, pruned and infinite trials -------------------------------------------------------
def test_failed_nan_inf_and_pruned_trials_in_the_history(
    spy_propose: list[dict[str, np.ndarray]],
) -> None:
    def special(trial: optuna.Trial) -> float:
        value = objective(trial)
        n = trial.number
        if n == 1:
            raise RuntimeError("objective crashed")
        if n == 2:
            return float("nan")  # Optuna marks it FAIL
        if n == 3:
            return math.inf
        if n == 4:
            return -math.inf
        if n == 5:
            trial.set_user_attr(ATTR_PREDICTED_FINAL, 0.25)
            raise optuna.TrialPruned()
        if n == 6:
            raise optuna.TrialPruned()
        return value

    study = optuna.create_study(sampler=MetaSampler(seed=0, **GP_PATH))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(special, n_trials=10, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states[1] == states[2] == TrialState.FAIL
    assert states[5] == states[6] == TrialState.PRUNED
    assert states.count(TrialState.COMPLETE) == 6
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}
    assert len(spy_propose) == 10
    for call in spy_propose:
        assert np.all(np.isfinite(call["y"])) and np.all(np.isfinite(call["X"]))
    # trial 9 sees: observations 0, 3, 4, 5 (pruned with a prediction), 7, 8;
    # pending: the failed 1, 2 and the pruned 6 without a prediction
    last = spy_propose[-1]
    assert len(last["X"]) == 6
    assert len(last["pending"]) == 3
    # the pruned trial's predicted final value is an observation (raw values are standardised)
    before, after = spy_propose[5], spy_propose[6]
    assert len(after["X"]) == len(before["X"]) + 1
    assert len(after["pending"]) == len(before["pending"])


def test_all_values_infinite_still_samples() -> None:
    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    study.optimize(lambda t: math.inf if objective(t) >= 0 else 0.0, n_trials=4)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_values_near_the_float_limit_are_standardised_like_any_other(spy_propose) -> None:
    # Values of 1e300 overflowed the standard deviation: a RuntimeWarning on every trial and
    # z-scores of 0, so the surrogate learned nothing from them. Scaled, they read as the
    # same study at an ordinary scale does.
    def run(scale: float) -> list[np.ndarray]:
        spy_propose.clear()
        study = optuna.create_study(sampler=MetaSampler(seed=0, **GP_PATH))
        study.optimize(lambda t: scale * objective(t), n_trials=5)
        return [call["y"] for call in spy_propose]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning
        huge = run(1e300)
    ordinary = run(1.0)
    assert np.ptp(huge[-1]) > 1.0
    for a, b in zip(huge, ordinary, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)


# -- 4. parallelism, pickling, storages, pruners, multi-objective, seeds, hand-over -------------
def test_workers_that_saw_different_parts_of_the_space_do_not_share_a_design_entry() -> None:
    # Two workers start trials 2 and 3 together. Worker A decides trial 2 when only `lr` has
    # been suggested anywhere, so design entries alike in `lr` count once in its list; worker
    # B decides trial 3 once trial 0 has shown all three parameters. The lists then put one
    # entry at A's position 2 and B's position 3, and both trials ran it (1 run in 25 of the
    # four-process test below). Each racing trial now claims its entry and B moves on.
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="race", storage=storage)
    a, b = (
        optuna.load_study(study_name="race", storage=storage, sampler=MetaSampler(seed=0, **FAST))
        for _ in range(2)
    )
    space = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": optuna.distributions.IntDistribution(16, 512, log=True),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    }

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        return {k: trial._suggest(k, d) for k, d in space.items()}

    first, _ = a.ask(), b.ask()
    trial_a = a.ask()  # trial 2: A decides at its first parameter, before writing it
    frozen = storage.get_trial(trial_a._trial_id)
    a.sampler.sample_independent(a, frozen, "lr", space["lr"])
    suggest(first)  # trial 0 shows the study's three parameters
    trial_b = b.ask()  # trial 3, decided with all three known
    assert suggest(trial_b) != suggest(trial_a)


def test_two_threads_on_one_study() -> None:
    def slow(trial: optuna.Trial) -> float:
        value = objective(trial)
        time.sleep(0.01)
        return value

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    study.optimize(slow, n_trials=12, n_jobs=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}
    assert len(set(params_of(study))) == 12


def test_running_trials_are_pending_in_one_process(
    spy_propose: list[dict[str, np.ndarray]],
) -> None:
    study = optuna.create_study(sampler=MetaSampler(seed=0, **GP_PATH))
    study.optimize(objective, n_trials=3)
    a = study.ask()
    objective(a)  # a stays RUNNING
    b = study.ask()
    objective(b)
    assert len(spy_propose[-1]["pending"]) == 1
    assert len(spy_propose[-1]["X"]) == 3
    assert a.params != b.params
    study.tell(a, 1.0)
    study.tell(b, 2.0)


def test_running_trial_not_duplicated_at_a_corner_optimum() -> None:
    def corner(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("batch_size", 16, 512, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        return (lr - 0.01) ** 2 + dropout

    duplicates = 0
    for seed in (0, 4):
        study = optuna.create_study(sampler=MetaSampler(seed=seed, **FAST))
        for _ in range(8):
            a = study.ask()
            value_a = corner(a)  # a is RUNNING with its params while b is sampled
            b = study.ask()
            value_b = corner(b)
            duplicates += a.params == b.params
            study.tell(a, value_a)
            study.tell(b, value_b)
    assert duplicates == 0


@pytest.mark.parametrize("by_name", [True, False], ids=["name", "object"])
def test_pickle_before_and_after_use(by_name: bool) -> None:
    model: str | SurrogateModel = "lcbench-mlp" if by_name else SurrogateModel.load("lcbench-mlp")
    original = MetaSampler(model=model, seed=5, **FAST)
    fresh = pickle.loads(pickle.dumps(original))
    assert isinstance(fresh.model, type(model))

    reference = optuna.create_study(sampler=MetaSampler(model=model, seed=5, **FAST))
    reference.optimize(objective, n_trials=6)

    study = optuna.create_study(sampler=fresh)
    study.optimize(objective, n_trials=3)
    used = pickle.loads(pickle.dumps(study.sampler))  # after use: loaded model, caches
    study.sampler = used
    study.optimize(objective, n_trials=3)
    assert params_of(study) == params_of(reference)  # same seed, same history, same proposals
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_sampler_reused_for_a_second_in_memory_study() -> None:
    """Trial ids restart at 0 in a new in-memory storage: no stale cached encodings."""

    def other(trial: optuna.Trial) -> float:
        return -objective(trial)

    reference = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    reference.optimize(other, n_trials=6)
    sampler = MetaSampler(seed=0, **FAST)
    optuna.create_study(sampler=sampler).optimize(objective, n_trials=6)
    second = optuna.create_study(sampler=sampler)
    second.optimize(other, n_trials=6)
    assert params_of(second) == params_of(reference)


WORKER = textwrap.dedent(
    """
    import math, sys, time
    import optuna
    from optuna_meta import MetaSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, seed, n_trials, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        time.sleep(0.1)
        return (math.log10(lr) + 2.5) ** 2 + (dropout - 0.2) ** 2 + (math.log2(bs) - 6) ** 2 / 10

    sampler = MetaSampler(seed=seed, n_candidates=64)
    study = optuna.load_study(study_name="shared", storage=url, sampler=sampler)
    def wait_until(condition):
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    if mode == "leave-running":
        objective(study.ask())  # exits with the trial RUNNING
    elif mode == "first":  # the zero-shot first trial, then side by side with "second"
        study.optimize(objective, n_trials=1)
        wait_until(lambda: len(study.get_trials(deepcopy=False)) > 1)
        study.optimize(objective, n_trials=n_trials - 1)
    else:
        wait_until(lambda: study.get_trials(deepcopy=False))
        wait_until(lambda: study.get_trials(deepcopy=False)[0].state.is_finished())
        study.optimize(objective, n_trials=n_trials)
    """
)


def _spawn(tmp: Path, name: str, source: str, *args: object) -> subprocess.Popen:
    """Run ``source`` (written to ``tmp/name``) in a new Python process with ``args``."""
    script = tmp / name
    script.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _worker(tmp: Path, url: str, seed: int, n_trials: int, mode: str) -> subprocess.Popen:
    return _spawn(tmp, "worker.py", WORKER, url, seed, n_trials, mode)


def test_two_processes_on_one_rdb_study(fast_dir: Path, rdb_url: str) -> None:
    url = rdb_url
    optuna.create_study(study_name="shared", storage=url)
    procs = [_worker(fast_dir, url, 0, 4, "first"), _worker(fast_dir, url, 1, 4, "second")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Traceback" not in err
    study = optuna.load_study(study_name="shared", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}
    assert len(set(params_of(study))) == 8
    overlapping = [
        (a.number, b.number)
        for a in study.trials
        for b in study.trials
        if a.number < b.number and b.datetime_start < a.datetime_complete
    ]
    assert overlapping  # the two workers really ran side by side


def test_running_trial_of_another_process_is_pending(
    fast_dir: Path, rdb_url: str, spy_propose: list[dict[str, np.ndarray]]
) -> None:
    url = rdb_url
    study = optuna.create_study(
        study_name="shared", storage=url, sampler=MetaSampler(seed=0, **GP_PATH)
    )
    study.optimize(objective, n_trials=2)
    proc = _worker(fast_dir, url, 1, 0, "leave-running")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert len(running) == 1 and len(running[0].params) == 3
    trial = study.ask()
    objective(trial)
    assert len(spy_propose[-1]["X"]) == 2
    assert len(spy_propose[-1]["pending"]) == 1
    assert trial.params != running[0].params


def test_hyperband_bracket_study(caplog: pytest.LogCaptureFixture) -> None:
    def multi_fidelity(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        layers = trial.suggest_int("n_layers", 1, 5)
        value = 0.0
        for step in range(9):
            value = (math.log10(lr) + 2.5) ** 2 + layers / (step + 1)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(
        sampler=MetaSampler(seed=0, **FAST),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9),
    )
    with caplog.at_level(logging.WARNING):
        study.optimize(multi_fidelity, n_trials=16)
    states = {t.state for t in study.trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert TrialState.PRUNED in states
    fallback = {t.number for t in study.trials if t.user_attrs[ATTR_SOURCE] == "fallback"}
    assert fallback == {14}  # the interleaved trial; every other one is the surrogate's
    assert not [r for r in caplog.records if "fell back" in r.getMessage()]


def test_multi_objective_warns_and_falls_back() -> None:
    def two(trial: optuna.Trial) -> tuple[float, float]:
        return objective(trial), trial.params["lr"]

    study = optuna.create_study(
        directions=["minimize", "maximize"], sampler=MetaSampler(seed=0, **FAST)
    )
    with pytest.warns(UserWarning, match="multi-objective"):
        study.optimize(two, n_trials=4)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"fallback"}


def test_reseed_rng() -> None:
    reseeded = MetaSampler(seed=0, **GP_PATH)
    before = reseeded._base_seed
    reseeded.reseed_rng()
    assert reseeded._base_seed != before
    a = optuna.create_study(sampler=reseeded)
    a.optimize(objective, n_trials=4)
    b = optuna.create_study(sampler=MetaSampler(seed=0, **GP_PATH))
    b.optimize(objective, n_trials=4)
    assert [t.state for t in a.trials] == [TrialState.COMPLETE] * 4
    assert params_of(a)[0] == params_of(b)[0]  # the zero-shot guess does not depend on seeds
    assert params_of(a)[1:] != params_of(b)[1:]


def _with_unknowns(trial: optuna.Trial) -> float:
    """The module's objective plus two parameters the model does not know."""
    act = trial.suggest_categorical("activation", ["relu", "tanh", "gelu", "silu"])
    drop = trial.suggest_float("input_dropout", 0.0, 0.5)
    return objective(trial) + (act == "tanh") + (drop - 0.1) ** 2


def test_workers_and_restarts_sharing_a_seed_do_not_repeat_the_fallbacks_draws() -> None:
    # Two workers with MetaSampler(seed=0) take turns on one study. Each default fallback was
    # a TPESampler(seed=0) drawing the same sequence: trials 0/1, 2/3, ... got the same
    # unknown parameters. Seeded per trial, they differ; a restarted process likewise.
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="s", storage=storage)
    workers = [
        optuna.load_study(study_name="s", storage=storage, sampler=MetaSampler(seed=0, **FAST))
        for _ in range(2)
    ]
    for i in range(10):
        study = workers[i % 2]
        trial = study.ask()
        study.tell(trial, _with_unknowns(trial))
    restarted = optuna.load_study(
        study_name="s", storage=storage, sampler=MetaSampler(seed=0, **FAST)
    )
    restarted.optimize(_with_unknowns, n_trials=5)
    drawn = [(t.params["activation"], t.params["input_dropout"]) for t in restarted.trials]
    assert len(set(drawn)) == 15
    # Still reproducible: the same seed and history give the same trials.
    again = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    again.optimize(_with_unknowns, n_trials=15)
    once_more = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    once_more.optimize(_with_unknowns, n_trials=15)
    assert params_of(again) == params_of(once_more)


class _RelativeRecorder(optuna.samplers.RandomSampler):
    """A fallback with relative sampling (as GPSampler and CmaEsSampler have) that records it."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.relative: list[set[str]] = []
        self.independent: list[str] = []
        self.inferred = 0
        self._space = optuna.search_space.IntersectionSearchSpace()

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        self.inferred += 1
        return self._space.calculate(study)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict:
        if not search_space:
            return {}
        self.relative.append(set(search_space))
        draw = optuna.samplers.RandomSampler.sample_independent
        return {k: draw(self, study, trial, k, d) for k, d in search_space.items()}

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.independent.append(name)
        return super().sample_independent(study, trial, name, dist)


def test_a_fallback_with_relative_sampling_gets_the_unknown_parameters_jointly() -> None:
    # GPSampler and CmaEsSampler answer `sample_independent` with random values and a warning
    # per parameter and trial; the meta phase now hands them the parameters the model does
    # not serve as one relative space, and the surrogate keeps the rest.
    fallback = _RelativeRecorder()
    sampler = MetaSampler(fallback=fallback, seed=0, fallback_every=0, **FAST)
    study = optuna.create_study(sampler=sampler)

    def conditional(trial: optuna.Trial) -> float:
        if trial.number == 6:  # a trial of unknown parameters only: labelled the fallback's
            return (trial.suggest_float("input_dropout", 0.0, 0.5) - 0.1) ** 2
        return _with_unknowns(trial)

    study.optimize(conditional, n_trials=8)
    assert fallback.relative[:5] == [{"activation", "input_dropout"}] * 5  # trials 1-5
    assert fallback.independent[:2] == ["activation", "input_dropout"]  # trial 0: no space yet
    assert not {"lr", "batch_size", "dropout"} & set(fallback.independent)
    sources = [t.user_attrs.get(ATTR_SOURCE) for t in study.trials]
    assert sources == ["meta"] * 6 + ["fallback", "meta"]
    # A study whose parameters the model serves whole does not ask the fallback for a space
    # once a trial has completed (it costs time on every trial).
    fallback = _RelativeRecorder()
    sampler = MetaSampler(fallback=fallback, seed=0, fallback_every=0, **FAST)
    optuna.create_study(sampler=sampler).optimize(objective, n_trials=5)
    assert fallback.inferred == 1 and fallback.relative == []


def test_n_meta_trials_hand_over() -> None:
    def sometimes_pruned(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number == 1:
            raise optuna.TrialPruned()  # a pruned trial does not count towards the meta phase
        return value

    study = optuna.create_study(sampler=MetaSampler(seed=0, n_meta_trials=3, **FAST))
    study.optimize(sometimes_pruned, n_trials=6)
    sources = [t.user_attrs[ATTR_SOURCE] for t in study.trials]
    assert sources == ["meta"] * 4 + ["fallback"] * 2

    off = optuna.create_study(sampler=MetaSampler(seed=0, n_meta_trials=0, **FAST))
    off.optimize(objective, n_trials=2)
    assert [t.user_attrs[ATTR_SOURCE] for t in off.trials] == ["fallback"] * 2


def test_enqueued_params_are_kept() -> None:
    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    study.enqueue_trial({"lr": 0.05, "batch_size": 100})
    study.optimize(objective, n_trials=3)
    assert study.trials[0].params["lr"] == 0.05
    assert study.trials[0].params["batch_size"] == 100
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


# -- 5. never crash ------------------------------------------------------------------------------
def test_broken_gp_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: DeepKernelGP, *args: Any, **kwargs: Any) -> Any:
        raise np.linalg.LinAlgError("Matrix is not positive definite")

    monkeypatch.setattr(DeepKernelGP, "condition", broken)
    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    with caplog.at_level(logging.WARNING):
        study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"fallback"}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fell back to TPESampler" in m and "LinAlgError" in m for m in messages)


def test_missing_model_file_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match="No model file"):  # a typo fails at once
        MetaSampler(model=tmp_path / "nope.npz", seed=0, **FAST)
    # A file that goes missing after the sampler was made (a worker without the file, or one
    # deleted): the study still runs, on the fallback.
    path = tmp_path / "nope.npz"
    path.write_bytes(SurrogateModel.load("lcbench-mlp").to_bytes())
    sampler = MetaSampler(model=path, seed=0, **FAST)
    path.unlink()
    study = optuna.create_study(sampler=sampler)
    with caplog.at_level(logging.WARNING):
        study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ModelFileError" in m and "nope.npz" in m for m in messages)


SWARM_WORKER = textwrap.dedent(
    """
    import math, sys
    import optuna
    from optuna_meta import MetaPruner, MetaSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, seed, n_trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def objective(trial):
        trial.set_user_attr("worker", seed)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        final = 0.95 - 0.2 * abs(math.log10(lr) + 2.5) - 0.1 * abs(dropout - 0.2)
        final -= 0.01 * abs(math.log2(bs) - 6)
        for step in range(1, 13):
            trial.report(final - (final - 0.3) * math.exp(-step / 3.0), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return final

    study = optuna.load_study(
        study_name="swarm", storage=url,
        # the fixed schedule: adaptive turns hang on which trials finished first (a race)
        sampler=MetaSampler(seed=0, n_candidates=64, adaptive_fallback=False),
        pruner=MetaPruner(),
    )
    study.optimize(objective, n_trials=n_trials)
    """
)


def test_four_workers_start_together_on_one_rdb_study(fast_dir: Path, rdb_url: str) -> None:
    """Four processes start at once on one study, MetaSampler and MetaPruner in each.

    One script copied to every worker, seed included. Design entries, surrogate proposals and
    pruning decisions interleave across processes: every trial must finish cleanly, carry its
    attrs, and no two trials get the same configuration (proposals are seeded by trial
    number; each worker sees the others' RUNNING trials as pending).
    """
    optuna.create_study(study_name="swarm", storage=rdb_url, direction="maximize")
    procs = [_spawn(fast_dir, "swarm.py", SWARM_WORKER, rdb_url, seed, 6) for seed in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "Traceback" not in err
    study = optuna.load_study(study_name="swarm", storage=rdb_url)
    trials = study.trials
    assert len(trials) == 24
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert {t.user_attrs["worker"] for t in trials} == {0, 1, 2, 3}
    # the interleaved fallback trials follow trial numbers, whichever worker runs them (with
    # adaptive_fallback, extra turns depend on which trials the other workers had finished)
    fallback = {t.number for t in trials if t.user_attrs[ATTR_SOURCE] == "fallback"}
    assert fallback == {14, 19}
    assert len(set(params_of(study))) == 24
    checked = [t for t in trials if "optuna_meta:prob_improvement" in t.user_attrs]
    assert checked  # the pruner ran once trials had completed


def _wide_is_better(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    units = trial.suggest_int("max_units", 64, 1024, log=True)
    trial.suggest_int("num_layers", 1, 5)
    return -((math.log10(lr) + 2.5) ** 2) + math.log2(units) / 5


def _feasible_share_study(tell: bool) -> optuna.Study:
    def objective(trial: optuna.Trial) -> float:
        value = _wide_is_better(trial)
        if tell:
            trial.set_constraint("units", trial.params["max_units"] - 128)
        return value

    sampler = MetaSampler(seed=0, fallback_every=0, **FAST)  # every trial the surrogate's
    study = optuna.create_study(direction="maximize", sampler=sampler)
    # 20 trials: the first ten take the design's ten entries, told or not (only their order
    # and an early exit from the design differ), so the share shows in the trials after them.
    study.optimize(objective, n_trials=20)
    return study


def test_constraints_steer_proposals_to_the_feasible_region():
    # Optuna 5 constraints (trial.set_constraint): the best trial is the best feasible one. Wide
    # networks score best here but break the constraint, so the sampler must propose more
    # feasible trials when the study tells it the constraint than when it does not.
    told, blind = _feasible_share_study(True), _feasible_share_study(False)
    for study in (told, blind):
        assert all(t.user_attrs[ATTR_SOURCE] == "meta" for t in study.trials)
    n_told, n_blind = (sum(t.params["max_units"] <= 128 for t in s.trials) for s in (told, blind))
    assert n_told >= n_blind + 5, (n_told, n_blind)
    assert told.best_trial.params["max_units"] <= 128  # best_trial: the best feasible one


def test_infeasible_everywhere_and_infinite_constraints_do_not_break_sampling():
    def objective(trial: optuna.Trial) -> float:
        value = _wide_is_better(trial)
        if trial.number % 3 != 2:  # some trials set no constraint at all
            trial.set_constraint("a", math.inf if trial.number % 2 else 5.0)
            trial.set_constraint("b", -1.0)
        return value

    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0, **FAST))
    study.optimize(objective, n_trials=4)  # trial 2 (no constraint) is the only feasible one
    assert study.best_trial.number == 2
    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=1, **GP_PATH))
    for _ in range(6):
        trial = study.ask()
        value = _wide_is_better(trial)
        trial.set_constraint("a", math.inf if trial.number % 2 else 5.0)  # never feasible
        study.tell(trial, value)
    assert all(t.user_attrs[ATTR_SOURCE] == "meta" for t in study.trials)
    assert len({t.params["max_units"] for t in study.trials}) > 1


def test_a_constraint_borrows_the_kernel_but_not_the_objectives_meta_mean():
    gp = SurrogateModel.load(resolve_model_path("lcbench-mlp")).network()
    rng = np.random.default_rng(0)
    X = rng.random((6, gp.weights["W1"].shape[0]))
    Q = rng.random((4, X.shape[1]))
    b0 = float(gp.weights["b0"])
    prior = gp.condition(X[:0], np.zeros(0), meta_mean=False).predict(Q)
    np.testing.assert_allclose(prior.mean, 0.0)
    with_mean = gp.condition(X[:0], np.zeros(0)).predict(Q)
    np.testing.assert_allclose(with_mean.mean, b0 * gp.meta_mean(Q))
    y = rng.standard_normal(6)
    post = gp.condition(X, y, meta_mean=False).predict(X)
    assert np.corrcoef(post.mean, y)[0, 1] > 0.9  # it still fits the observations


def test_propose_weight_steers_the_proposal_where_it_is_high():
    from optuna_meta.sampler._proposal import propose
    from optuna_meta.space import Box, SpaceEncoder

    model = SurrogateModel.load(resolve_model_path("lcbench-mlp"))
    gp = model.network()
    box = Box.unit(SpaceEncoder(model.search_space))
    rng = np.random.default_rng(0)
    X = box.sample(5, rng)
    y = rng.standard_normal(5)

    empty = np.empty((0, X.shape[1]))
    free = propose(gp, box, X, y, empty, np.random.default_rng(1), n_candidates=256)

    def far_from_free(C: np.ndarray) -> np.ndarray:  # ~0 near the unweighted proposal
        return np.where(np.abs(C[:, 0] - free.x[0]) > 0.4, 1.0, 1e-6)

    steered = propose(
        gp, box, X, y, empty, np.random.default_rng(1), n_candidates=256, weight=far_from_free
    )
    assert abs(steered.x[0] - free.x[0]) > 0.4


def test_one_huge_violation_does_not_make_the_other_infeasible_trials_look_feasible(
    monkeypatch: pytest.MonkeyPatch,
):
    # Constraint values such as a training time are heavy-tailed: 1688 s against a budget
    # that three other trials miss by 12-20 s. Those are clearly infeasible, and the
    # feasibility model must say so at their own configurations; without the robust
    # compression (MAD_TO_SD = 0 turns it off) the huge one dwarfs them and they look like
    # coin flips.
    state = _ModelState(SurrogateModel.load(resolve_model_path("lcbench-mlp")))
    rng = np.random.default_rng(0)
    X = rng.random((5, state.n_features))
    g = np.array([1688.0, 0.3, 20.0, 12.0, 14.0])
    feasibility = _constraints._feasibility(state, X, g)
    assert not feasibility.any_feasible
    assert np.all(feasibility.prob(X[2:]) < 0.1)
    monkeypatch.setattr(_constraints, "MAD_TO_SD", 0.0)
    uncompressed = _constraints._feasibility(state, X, g)
    assert np.all(uncompressed.prob(X[2:]) > 0.3)


def test_a_trial_without_served_parameters_repeats_nothing(spy_propose):
    # Trial 0 suggests only a parameter the model does not know. It must not count as a
    # configuration that every proposal repeats: the later trials still take design entries
    # (the surrogate's optimiser is never called) instead of being pushed to random points.
    # (Trial 1 goes to the fallback: by the coverage rule, judged on trial 0's names.)
    def objective(trial: optuna.Trial) -> float:
        if trial.number == 0:
            return trial.suggest_float("mystery", 0.0, 1.0)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return math.log10(lr) + trial.suggest_int("num_layers", 1, 5)

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=5)
    assert [t.user_attrs.get(ATTR_SOURCE) for t in study.trials[2:]] == ["meta"] * 3
    assert spy_propose == []


def test_logs_follow_optunas_verbosity() -> None:
    # optuna-meta's loggers sit under Optuna's root logger, so set_verbosity applies to them.
    from optuna_meta.pruner import _pruner
    from optuna_meta.sampler import _sampler

    old = optuna.logging.get_verbosity()
    try:
        for logger in (_sampler._logger, _pruner._logger):
            assert logger.name.startswith("optuna.optuna_meta.")
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            assert not logger.isEnabledFor(logging.WARNING)
            optuna.logging.set_verbosity(optuna.logging.INFO)
            assert logger.isEnabledFor(logging.INFO)
    finally:
        optuna.logging.set_verbosity(old)


def test_a_trial_another_thread_samples_is_pending_before_it_writes_its_params() -> None:
    # Threads share the sampler: B's proposal is computed while A has written nothing yet
    # (as with a slow storage). A's cached proposal counts as pending, so they differ.
    from optuna.distributions import CategoricalDistribution, IntDistribution

    space = {
        "batch_size": CategoricalDistribution([16, 24, 32, 48, 64, 128, 256, 512]),
        "num_layers": IntDistribution(1, 5),
        "hidden_size": CategoricalDistribution([64, 128, 256, 512, 1024]),
        "momentum": CategoricalDistribution([0.5, 0.9]),
    }

    def f(p: dict) -> float:
        return (p["num_layers"] - 3) ** 2 + abs(p["hidden_size"] - 256) / 100 + p["momentum"]

    sampler = MetaSampler(seed=0, n_candidates=64)
    study = optuna.create_study(sampler=sampler)
    for _ in range(12):
        t = study.ask(space)
        study.tell(t, f(t.params))
    a, b = study.ask(), study.ask()
    got: dict[int, dict] = {a.number: {}, b.number: {}}
    for name, dist in space.items():  # A proposes for all; B asks before A writes anything
        for t in (a, b):
            frozen = study._storage.get_trial(t._trial_id)
            got[t.number][name] = sampler.sample_independent(study, frozen, name, dist)
    assert got[a.number] != got[b.number]


def test_a_relative_model_path_survives_a_change_of_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path checked at construction is the one loaded: a ``chdir`` between the two (a
    script that moves into its run folder) must not send the study to the fallback."""
    from optuna_meta import MetaPruner
    from optuna_meta.curve import CurveModel

    (tmp_path / "m.npz").write_bytes(SurrogateModel.load("lcbench-mlp").to_bytes())
    (tmp_path / "c.npz").write_bytes(CurveModel.load("lcbench-curve").to_bytes())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    sampler = MetaSampler(model="m.npz", seed=0, **FAST)
    pruner = MetaPruner(model="c.npz")
    monkeypatch.chdir(tmp_path / "elsewhere")
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta", "meta"]
    assert pruner._network() is not None
    assert pickle.loads(pickle.dumps(sampler))._model_file == str(tmp_path / "m.npz")


def test_failed_and_value_less_pruned_trials_are_capped_as_fantasies(spy_propose) -> None:
    # Under WilcoxonPruner or HyperbandPruner (no predicted finals) pruned trials pile up by
    # the thousand, and each was a pending row of the GP: 1.2 s a trial with 2000 of them.
    # The most recent MAX_DEAD_FANTASIES count; running trials always do.
    dists = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": IntDistribution(16, 512, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
    }
    rng = np.random.default_rng(0)

    def random_params() -> dict[str, Any]:
        return {
            "lr": float(10 ** rng.uniform(-4, -1)),
            "batch_size": int(rng.integers(16, 513)),
            "dropout": float(rng.uniform(0, 0.5)),
        }

    study = optuna.create_study(sampler=MetaSampler(seed=0, n_design_trials=0, **FAST))
    trials = [
        optuna.trial.create_trial(value=float(i), params=random_params(), distributions=dists)
        for i in range(5)
    ]
    trials += [
        optuna.trial.create_trial(
            state=TrialState.PRUNED if i % 2 else TrialState.FAIL,
            params=random_params(),
            distributions=dists,
            intermediate_values={1: 1.0} if i % 2 else None,
        )
        for i in range(3 * sampler_module.MAX_DEAD_FANTASIES)
    ]
    study.add_trials(trials)
    running = study.ask(dict(dists))  # another worker's trial: always a fantasy
    study.optimize(objective, n_trials=1)
    assert len(spy_propose) == 2  # the running trial's proposal, then the new trial's
    assert len(spy_propose[0]["pending"]) == sampler_module.MAX_DEAD_FANTASIES
    assert len(spy_propose[1]["pending"]) == sampler_module.MAX_DEAD_FANTASIES + 1
    assert running.number == 5 + 3 * sampler_module.MAX_DEAD_FANTASIES


def test_a_storage_that_outlives_its_studies_does_not_keep_their_samplers() -> None:
    # A sweep of studies on one InMemoryStorage (or JournalStorage): a finalizer holding a
    # bound method kept every sampler, with its model and caches, alive with the storage.
    import gc
    import weakref

    storage = optuna.storages.InMemoryStorage()
    refs = []
    for i in range(5):
        sampler = MetaSampler(seed=i, **FAST)
        study = optuna.create_study(storage=storage, study_name=f"s{i}", sampler=sampler)
        study.optimize(objective, n_trials=2)
        refs.append(weakref.ref(sampler))
        del sampler, study
    gc.collect()
    assert [r() for r in refs] == [None] * 5


def test_the_coverage_warning_is_given_once_per_study() -> None:
    # One sampler, two studies it barely knows: each is told (the flag was the sampler's).
    sampler = MetaSampler(seed=0, **FAST)

    def xgboost(trial: optuna.Trial) -> float:
        depth = trial.suggest_int("max_depth", 1, 15)
        return (
            depth
            + trial.suggest_float("subsample", 0.1, 1.0)
            + trial.suggest_float("eta", 1e-3, 0.3, log=True)
        )

    said = []
    for name in ("a", "b"):
        study = optuna.create_study(study_name=name, sampler=sampler)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            study.optimize(xgboost, n_trials=3)
        said.append(sum("too few to help" in str(w.message) for w in record))
    assert said == [1, 1]


def test_predictions_that_overflow_are_not_stored() -> None:
    # Values near the float limit: the predicted mean came out -inf and was stored as
    # `-Infinity`, which is not JSON (the dashboard reads these attrs).
    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0, **FAST))

    def huge(trial: optuna.Trial) -> float:
        value = objective(trial)
        return -1.7e308 if trial.number % 2 else 1e307 * value

    study.optimize(huge, n_trials=12)
    for t in study.trials:
        for key in (ATTR_PRED_MEAN, ATTR_PRED_STD):
            if key in t.user_attrs:
                assert math.isfinite(t.user_attrs[key]), (t.number, key, t.user_attrs[key])


def test_an_objective_in_tiny_units_gets_the_same_proposals() -> None:
    # A plateau whose values differ by 1e-7: in units of 1e-6 the spread fell under an
    # absolute 1e-12 floor on the standard deviation and trial 2 went elsewhere.
    def plateau(scale: float):
        def f(trial: optuna.Trial) -> float:
            return scale * (0.9 + 1e-7 * objective(trial))

        return f

    runs = []
    for scale in (1.0, 1e-6):
        study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
        study.optimize(plateau(scale), n_trials=6)
        runs.append(study)
    assert params_of(runs[0]) == params_of(runs[1])
    std = [
        t.user_attrs.get(ATTR_PRED_STD) for t in runs[1].trials if ATTR_PRED_STD in t.user_attrs
    ]
    ref = [t.user_attrs[ATTR_PRED_STD] for t in runs[0].trials if ATTR_PRED_STD in t.user_attrs]
    assert std == pytest.approx([1e-6 * s for s in ref], rel=1e-6)


def test_warnings_point_at_the_users_line() -> None:
    # A fixed stacklevel landed in Optuna's frames (`optuna/trial/_trial.py:170`), which says
    # nothing of where the study asked and defeats filters on the user's module.
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-7, 1e-3, log=True)  # mostly outside the model's
        return lr + trial.suggest_float("max_depth", 1, 10) + trial.suggest_float("eta", 0, 1)

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=3)
    said = [w for w in record if issubclass(w.category, UserWarning)]
    assert {"lies where the model knows", "too few to help"} <= {
        key
        for w in said
        for key in ("lies where the model knows", "too few to help")
        if key in str(w.message)
    }
    assert {w.filename for w in said} == {__file__}


def test_a_broken_model_object_unpickles_into_a_sampler_of_the_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pickled sampler whose model object does not load again must not raise on unpickling
    (Ray Tune would lose the searcher): the copy samples with the fallback and says why once."""
    import dataclasses

    good = SurrogateModel.load("lcbench-mlp")
    weights = dict(list(good.weights.items())[1:])  # one array less
    data = pickle.dumps(MetaSampler(model=dataclasses.replace(good, weights=weights), seed=0))
    with caplog.at_level("WARNING", logger="optuna.optuna_meta"):
        clone = pickle.loads(data)
        study = optuna.create_study(sampler=clone)
        study.optimize(objective, n_trials=3)
    assert caplog.text.count("could not load its model") == 1
    assert "could not load its model (a pickled model object)" in caplog.text
    assert len(caplog.text) < 2000  # not the model's bytes (a 72 KB line)
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"fallback"}
    assert pickle.loads(pickle.dumps(clone))._model_failed  # still unusable, still no raise


# -- partial enqueue_trial -----------------------------------------------------------------------
def _lcbench_like(trial: optuna.Trial, lr_high: float = 1e-1) -> float:
    """Seven names the shipped model knows (its ranges, but for ``lr_high``)."""
    lr = trial.suggest_float("learning_rate", 1e-4, lr_high, log=True)
    bs = trial.suggest_int("batch_size", 16, 512, log=True)
    momentum = trial.suggest_float("momentum", 0.1, 0.99)
    wd = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("num_layers", 1, 5)
    units = trial.suggest_int("max_units", 64, 1024, log=True)
    dropout = trial.suggest_float("max_dropout", 0.0, 1.0)
    return -(
        (math.log10(lr) + 2.5) ** 2
        + (math.log2(bs) - 6) ** 2 / 4
        + (momentum - 0.9) ** 2
        + (math.log10(wd) + 4) ** 2 / 4
        + (layers - 2) ** 2 / 4
        + (math.log2(units) - 8) ** 2 / 4
        + dropout**2
    )


def _enqueue_each(
    study: optuna.Study, values: dict[str, Any], n_trials: int, objective: Any = _lcbench_like
) -> None:
    for _ in range(n_trials):
        study.enqueue_trial(values)
        study.optimize(objective, n_trials=1)


@pytest.mark.parametrize(("name", "value"), [("learning_rate", 0.003), ("num_layers", 3)])
def test_a_partial_enqueue_before_each_trial_repeats_no_configuration(
    name: str, value: Any
) -> None:
    # Optuna answers an enqueued name itself; proposals built as if the surrogate chose it
    # too compared the design entry's own value with trials that ran the enqueued one, and
    # expected improvement took one entry again and again (8 identical trials of 15).
    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0, **FAST))
    _enqueue_each(study, {name: value}, 15)
    assert [t.params[name] for t in study.trials] == [value] * 15
    assert len(set(params_of(study))) == 15


def _assert_predicted_where_it_ran(sampler: MetaSampler, study: optuna.Study, number: int) -> None:
    """Trial ``number``'s recorded prediction is the surrogate's at the parameters it ran,
    conditioned on the trials completed before it (a maximised study)."""
    state = sampler._model_state()
    t = study.trials[number]
    done = [u for u in study.trials[:number] if u.state == TrialState.COMPLETE]
    X = np.array([sampler._encoded(state, u) for u in done])
    ys, shift, scale = _standardise(np.array([u.value for u in done]))
    pred = state.gp.condition(X, ys).predict(sampler._encoded(state, t)[None, :])
    mean, std = shift + scale * float(pred.mean[0]), scale * float(pred.std[0])
    assert t.user_attrs[ATTR_PRED_MEAN] == pytest.approx(mean, rel=1e-6), number
    assert t.user_attrs[ATTR_PRED_STD] == pytest.approx(std, rel=1e-6), number


def test_the_prediction_of_a_partially_enqueued_trial_is_of_the_configuration_it_runs() -> None:
    sampler = MetaSampler(seed=0, **FAST)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _enqueue_each(study, {"learning_rate": 0.003}, 6)
    for number in range(2, 6):  # trials 0 and 1 have no prediction in the user's units
        assert study.trials[number].params["learning_rate"] == 0.003
        _assert_predicted_where_it_ran(sampler, study, number)


def test_a_retried_trial_is_predicted_at_the_parameters_it_took_over() -> None:
    # RetryFailedTrialCallback creates the retry with the failed trial's parameters (not in
    # `fixed_params`), here one that died after suggesting its learning rate.
    sampler = MetaSampler(seed=0, **FAST)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_lcbench_like, n_trials=3)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params={"learning_rate": 0.003},
            distributions={"learning_rate": FloatDistribution(1e-4, 1e-1, log=True)},
            system_attrs={"failed_trial": 2, "retry_history": [2]},
        )
    )
    study.optimize(_lcbench_like, n_trials=1)
    assert study.trials[3].params["learning_rate"] == 0.003
    _assert_predicted_where_it_ran(sampler, study, 3)


@pytest.mark.parametrize(
    ("dist", "value", "pinned"),
    [
        (FloatDistribution(1e-4, 1e-1, log=True), 0.5, FloatDistribution(0.5, 0.5, log=True)),
        (FloatDistribution(0.0, 1.0, step=0.1), 0.25, FloatDistribution(0.25, 0.25, step=0.1)),
        (IntDistribution(16, 512, log=True), 64.0, IntDistribution(64, 64, log=True)),
        (CategoricalDistribution([32, 64]), 64, CategoricalDistribution([64])),
        (FloatDistribution(1e-4, 1e-1, log=True), 0.0, None),  # no log scale holds it
        (IntDistribution(1, 5), 0, IntDistribution(0, 0)),  # Optuna runs it, with a warning
        (IntDistribution(1, 5, log=True), 0, None),
        (FloatDistribution(0.0, 1.0), "high", None),
        (FloatDistribution(0.0, 1.0), math.inf, None),
        (CategoricalDistribution(["adam", "sgd"]), "rmsprop", None),
    ],
)
def test_an_enqueued_value_is_pinned_as_optuna_records_it(
    dist: Any, value: Any, pinned: Any
) -> None:
    assert _pinned_distribution(dist, value) == pinned


def test_a_partial_enqueue_of_an_unknown_name_and_of_a_value_outside_the_models_range() -> None:
    # `label_smoothing` is no name of the model's; 0.15 lies inside the study's learning rates
    # (90% of them inside the model's, so no warning) but above the model's 0.1: pinned at
    # the model's edge, as the trials that ran it are encoded, it is still told apart.
    def objective(trial: optuna.Trial) -> float:
        return _lcbench_like(trial, lr_high=0.2) - trial.suggest_float("label_smoothing", 0, 0.3)

    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0, **FAST))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _enqueue_each(study, {"label_smoothing": 0.1, "learning_rate": 0.15}, 12, objective)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    assert {t.params["learning_rate"] for t in study.trials} == {0.15}
    assert {t.params["label_smoothing"] for t in study.trials} == {0.1}
    assert len(set(params_of(study))) == 12
    assert [str(w.message) for w in record] == []  # no range or coverage warning


class _AskedRecorder(optuna.samplers.RandomSampler):
    """A fallback that records the names it samples independently."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.asked: list[str] = []

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.asked.append(name)
        return super().sample_independent(study, trial, name, dist)


def test_a_known_name_whose_choices_the_model_cannot_take_is_the_fallbacks() -> None:
    """scikit-learn's ``learning_rate`` is a schedule ("constant", ...): it must not take the
    model's learning rate (no value of it can be one), and ``learning_rate_init``, the step
    size, must (it went to the fallback, the name already taken). One warning says so."""

    def sklearn_mlp(trial: optuna.Trial) -> float:
        schedule = trial.suggest_categorical("learning_rate", ["constant", "adaptive"])
        lr = trial.suggest_float("learning_rate_init", 1e-4, 1e-1, log=True)
        alpha = trial.suggest_float("alpha", 1e-5, 1e-1, log=True)
        momentum = trial.suggest_float("momentum", 0.1, 0.99)
        return (math.log10(lr) + 3) ** 2 + math.log10(alpha) ** 2 / 9 + momentum + len(schedule)

    fallback = _AskedRecorder()
    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(sklearn_mlp, n_trials=4)
    said = [str(w.message) for w in caught if "cannot take" in str(w.message)]
    assert len(said) == 1 and "'learning_rate' takes choices ['constant', 'adaptive']" in said[0]
    assert "learning_rate_init" not in fallback.asked
    assert fallback.asked.count("learning_rate") == 4  # trial 0 included
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_boolean_choices_of_a_known_name_never_make_the_surrogate_repeat_a_trial() -> None:
    """``momentum`` in ``[True, False]`` is a switch, not the model's momentum: the fallback
    samples it and the duplicate checks leave it out (11-12 repeated trials in 20 before)."""
    space = {
        "batch_size": [16, 64, 256],
        "learning_rate": [1e-3, 1e-2, 1e-1],
        "max_dropout": [0.0, 0.25, 0.5],
        "momentum": [True, False],
    }

    def categorical(trial: optuna.Trial) -> float:
        return sum(
            (choices.index(trial.suggest_categorical(k, choices)) * 0.37 + len(k)) % 1.0
            for k, choices in space.items()
        )

    for seed in (0, 1):
        sampler = MetaSampler(seed=seed, fallback_every=0, **FAST)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(categorical, n_trials=20)
        keys = [tuple(sorted(t.params.items())) for t in study.trials]
        assert len(set(keys)) == len(keys)


class _IndependentRecorder(optuna.samplers.TPESampler):
    """A TPE fallback that records (trial number, name) of its independent samples."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.asked: list[tuple[int, str]] = []

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.asked.append((trial.number, name))
        return super().sample_independent(study, trial, name, dist)


def test_an_enqueued_value_the_model_cannot_take_does_not_unmap_the_name() -> None:
    """XGBoost takes ``max_depth=None``: enqueued once in a study whose ``max_depth`` is
    ``[None, 3, 6, 10]``, its pinned single choice must not decide what the name maps to (it
    sent ``max_depth`` to the fallback for the rest of the study, without a word)."""

    def xgboost(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-3, 1.0, log=True)
        rounds = trial.suggest_int("n_estimators", 10, 2000, log=True)
        depth = trial.suggest_categorical("max_depth", [None, 3, 6, 10])
        return (math.log10(lr) + 1) ** 2 + (depth or 0) / 10 + math.log(rounds) / 10

    fallback = _IndependentRecorder()
    sampler = MetaSampler(
        model="rbv2-xgboost", fallback=fallback, seed=0, fallback_every=0, **FAST
    )
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(xgboost, n_trials=3)
        study.enqueue_trial({"max_depth": None})
        study.optimize(xgboost, n_trials=3)
    assert study.trials[3].params["max_depth"] is None
    assert [n for n, name in fallback.asked if name == "max_depth"] == []


def test_a_value_sampled_before_the_proposal_is_where_the_trial_is_predicted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trials 0-1 take an SVM branch the model does not know (with ``weight_decay``, which it
    does); trial 2 takes the MLP branch: its ``weight_decay`` comes from the fallback before
    the surrogate proposes the rest (``_new_branch``), so the proposal and its recorded
    prediction must hold that value, not the surrogate's own."""

    def families(trial: optuna.Trial) -> float:
        wd = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
        if trial.suggest_categorical("classifier", ["svm", "mlp"]) == "svm":
            c = trial.suggest_float("svm_c", 1e-3, 1e3, log=True)
            return abs(math.log10(c)) + trial.suggest_float("svm_gamma", 1e-4, 1e1, log=True)
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        return -((math.log10(lr) + 2.5) ** 2) - (math.log10(wd) + 4) ** 2

    proposals: list[dict[str, Any]] = []
    compute = MetaSampler._compute_proposal

    def spy(self: MetaSampler, *args: Any, **kwargs: Any) -> Any:
        proposal, pred = compute(self, *args, **kwargs)
        proposals.append(dict(proposal or {}))
        return proposal, pred

    monkeypatch.setattr(MetaSampler, "_compute_proposal", spy)
    study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0, **FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for branch in ("svm", "svm", "mlp"):
            study.enqueue_trial({"classifier": branch})
            study.optimize(families, n_trials=1)
    mlp = study.trials[2]
    # trial 0 asks weight_decay before the study is judged (a proposal); trial 1 is the
    # fallback's; trial 2 gets the last proposal
    assert mlp.user_attrs[ATTR_SOURCE] == "meta" and len(proposals) == 2
    assert proposals[-1]["weight_decay"] == pytest.approx(mlp.params["weight_decay"], rel=1e-9)
    assert proposals[-1]["learning_rate"] == pytest.approx(mlp.params["learning_rate"], rel=1e-9)


def test_a_trial_none_of_whose_values_came_from_the_surrogate_is_not_labelled_its(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When no value of a proposal can be used (a reviewer's own model: its default kernel
    not among the study's choices, its C inactive there), every parameter is the fallback's:
    the trial must say ``fallback`` and carry no prediction (it said ``meta``, with the
    prediction of a configuration it did not run)."""
    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    study.optimize(objective, n_trials=3)  # served as usual
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}

    compute = MetaSampler._compute_proposal

    def inactive_everywhere(self: MetaSampler, *args: Any, **kwargs: Any) -> Any:
        proposal, pred = compute(self, *args, **kwargs)  # decoded without the study's names
        return {k: v for k, v in (proposal or {}).items() if k.startswith("__")}, pred

    monkeypatch.setattr(MetaSampler, "_compute_proposal", inactive_everywhere)
    study.optimize(objective, n_trials=2)
    for t in study.trials[3:]:
        assert t.user_attrs[ATTR_SOURCE] == "fallback"
        assert ATTR_PRED_MEAN not in t.user_attrs and ATTR_PRED_STD not in t.user_attrs


def test_a_sampler_reused_across_a_sweep_gives_each_study_its_own_history() -> None:
    """One MetaSampler reused over `PartialFixedSampler({"batch_size": bs}, sampler)`: in-memory
    studies number their trials 0, 1, ... again, and the second study reused the first's
    cached encodings (taken at its batch size), so its proposals differed from a fresh
    sampler's from trial 2 on."""
    space = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "dropout": FloatDistribution(0, 0.5)}

    def study_for(sampler: MetaSampler, batch_size: int) -> list[float]:
        wrapped = optuna.samplers.PartialFixedSampler({"batch_size": batch_size}, sampler)
        study = optuna.create_study(direction="maximize", sampler=wrapped)
        for _ in range(8):
            trial = study.ask(space)
            p = trial.params
            study.tell(trial, -((math.log10(p["lr"]) + 1.5) ** 2) + p["dropout"])
        return [t.params["lr"] for t in study.trials]

    reused = MetaSampler(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study_for(reused, 64)
        assert study_for(reused, 256) == study_for(MetaSampler(seed=0), 256)


def test_a_waiting_trial_added_with_its_params_is_no_samplers() -> None:
    """A WAITING trial added with all its parameters (another worker's queue, a hand-made
    one) ran values no sampler chose, like an enqueued one; it was labelled the fallback's,
    which the adaptive schedule counts."""
    study = optuna.create_study(sampler=MetaSampler(seed=0))
    space = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "batch_size": IntDistribution(16, 512)}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING, params={"lr": 0.002, "batch_size": 64}, distributions=space
        )
    )
    study.enqueue_trial({"lr": 0.003, "batch_size": 32})

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return math.log10(lr) ** 2 + trial.suggest_int("batch_size", 16, 512) / 512

    study.optimize(objective, n_trials=3)
    sources = [t.user_attrs.get(ATTR_SOURCE) for t in study.trials]
    assert sources[:2] == [None, None]
    assert sources[2] == "meta"


def test_a_shared_sampler_warns_once_per_study() -> None:
    """Once-only warnings were kept per sampler and name: a second study with a wider `lr`
    range, whose `lr` then went to the fallback, was not told."""
    sampler = MetaSampler(seed=0)

    def run(low: float, high: float) -> list[str]:
        study = optuna.create_study(sampler=sampler)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study.optimize(lambda t: t.suggest_float("lr", low, high, log=True), n_trials=3)
        return [str(w.message) for w in caught if "of the range of 'lr'" in str(w.message)]

    first = run(1e-5, 1e-1)
    assert len(first) == 1 and "proposed inside" in first[0]
    second = run(1e-9, 10.0)
    assert len(second) == 1 and "samples 'lr'" in second[0]
    assert run(1e-9, 10.0) == second  # a new study: said again, once


def test_an_infinite_value_in_the_better_direction_counts_as_the_best() -> None:
    """A minimised study's best trial returned -inf: it was learned as tied for worst (both
    infinities became the worst finite value), where TPE and GPSampler keep its order."""
    from optuna_meta.sampler._values import _finite_oriented

    y = np.array([np.inf, -5.0, -4.0, -np.inf, np.nan, -2.0])  # oriented: larger is better
    assert _finite_oriented(y).tolist() == [-2.0, -5.0, -4.0, -5.0, -5.0, -2.0]
    assert _finite_oriented(np.array([np.inf, -np.inf])) is None


def test_one_huge_finite_loss_does_not_flatten_the_others() -> None:
    """One diverged run returning 1e6 among losses of 1-5 took the others' z-scores to within
    1e-5 of each other: the surrogate could not tell them apart. Far worse values are raised
    to `OUTLIER_MADS` median absolute deviations below the median first."""
    from optuna_meta.sampler._values import OUTLIER_MADS, _clip_outliers

    oriented = -np.array([1.2, 2.5, 1.9, 3.1, 1e6])  # a minimised loss, larger is better
    assert np.ptp(_standardise(oriented)[0][:4]) < 1e-4  # what the surrogate saw
    assert np.ptp(_standardise(_clip_outliers(oriented))[0][:4]) > 0.1
    med = np.median(oriented)
    mad = np.median(np.abs(oriented - med))
    assert _clip_outliers(oriented)[4] == pytest.approx(med - OUTLIER_MADS * 1.4826 * mad)
    assert _clip_outliers(oriented)[:4].tolist() == oriented[:4].tolist()  # the rest untouched
    better = -np.array([1e-6, 2.5, 1.9, 3.1])  # a far *better* value is never touched
    assert _clip_outliers(better).tolist() == better.tolist()
