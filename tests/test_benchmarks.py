"""Tests of the benchmark harness (``benchmarks/``) in quick mode on the YAHPO surrogates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from optuna_meta.curve import CurveModel
from optuna_meta.data import default_yahpo_dir

if default_yahpo_dir() is None:
    pytest.skip("YAHPO data folder not found", allow_module_level=True)

from benchmarks import objectives, peers, protocol, pruning, report, run_pruners, run_samplers
from benchmarks.reference import load_reference, normalised_regret


@pytest.fixture(scope="module")
def quick_samplers(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_samplers")
    paths = run_samplers.main(["--scenario", "lcbench", "--quick", "--out", str(out)])
    return out, paths


@pytest.fixture(scope="module")
def quick_pruners(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_pruners")
    paths = run_pruners.main(["--quick", "--out", str(out)])
    return out, paths


def test_task_folds_partition_and_exclude_scored_task():
    tasks = objectives.scored_tasks("lcbench")
    folds = protocol.task_folds(tasks, 5)
    assert len(folds) == 5
    flat = [t for f in folds for t in f]
    assert sorted(flat) == sorted(tasks)
    assert protocol.task_folds(tasks, 5) == folds  # fixed seed
    contexts = protocol.make_contexts("lcbench", tasks, [0, 1], n_folds=5)
    assert len(contexts) == 2 * len(tasks)
    for ctx in contexts:
        assert ctx.task not in ctx.train_tasks
        assert not set(folds[ctx.fold]) & set(ctx.train_tasks)
        assert len(ctx.train_tasks) == len(tasks) - len(folds[ctx.fold])
    loto = protocol.task_folds(tasks, 0)
    assert len(loto) == len(tasks)


def test_resume_reuses_runs_of_the_same_version_only(tmp_path):
    calls = []

    def factory(ctx: protocol.BenchContext) -> optuna.samplers.BaseSampler:
        calls.append(ctx.task)
        return optuna.samplers.RandomSampler(seed=ctx.seed)

    tasks = objectives.scored_tasks("lcbench")[:2]

    def run(version: str) -> None:
        method = protocol.Method("probe", factory, version=version)
        protocol.run_method(method, "lcbench", tasks, [0], n_trials=2, out_dir=tmp_path)

    run("recipe1")
    assert len(calls) == 2
    run("recipe1")  # everything saved: nothing reruns
    assert len(calls) == 2
    run("recipe2")  # the cached models changed: the saved runs must not be reused
    assert len(calls) == 4
    saved = json.loads((tmp_path / "raw" / "sampler_lcbench_probe.json").read_text())
    assert saved["version"] == "recipe2"


def test_rbv2_subset_is_fixed_and_contains_test_instances():
    subset = objectives.scored_tasks("rbv2_xgboost")
    assert len(subset) == 30
    assert {"12", "1501", "16", "40499"} <= set(subset)
    assert subset == objectives.scored_tasks("rbv2_xgboost")


def test_method_only_sees_train_tasks():
    seen = []

    def factory(ctx: protocol.BenchContext) -> optuna.samplers.BaseSampler:
        seen.append((ctx.task, ctx.fold, ctx.train_tasks))
        assert ctx.task not in ctx.train_tasks
        assert ctx.surrogate.scenario == "lcbench"
        assert set(ctx.search_space) == {
            "batch_size",
            "learning_rate",
            "momentum",
            "weight_decay",
            "num_layers",
            "max_units",
            "max_dropout",
        }
        return optuna.samplers.RandomSampler(seed=ctx.seed)

    tasks = objectives.scored_tasks("lcbench")[:6]
    result = protocol.run_method(
        protocol.Method("probe", factory), "lcbench", tasks, [0], n_trials=2, n_folds=5
    )
    assert len(seen) == 6 and len(result["runs"]) == 6
    assert {s[1] for s in seen} == set(range(5))
    for run in result["runs"]:
        assert len(run["values"]) == 2


def test_conditional_space_rbv2():
    surrogate = objectives.get_surrogate("rbv2_xgboost")
    study = optuna.create_study(direction="maximize")
    objective = objectives.FinalObjective("rbv2_xgboost", "12")
    study.optimize(objective, n_trials=12)
    for t in study.trials:
        booster = t.params["booster"]
        assert ("eta" in t.params) == (booster != "gblinear")
        assert ("rate_drop" in t.params) == (booster == "dart")
        assert 0.0 <= t.value <= 1.0
    assert surrogate.scenario == "rbv2_xgboost"


def test_multi_fidelity_objective_reports_every_epoch():
    objective = objectives.MultiFidelityObjective("3945")
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    study.optimize(objective, n_trials=8)
    steps = sum(len(t.intermediate_values) for t in study.trials)
    assert steps == objective.epochs_spent
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == list(range(1, 53))
            assert t.value == pytest.approx(t.intermediate_values[52])


def test_greedy_portfolio_toy():
    regret = np.array([[0.0, 1.0, 0.4], [1.0, 0.0, 0.4]])
    assert peers.greedy_portfolio(regret, 3) == [2, 0, 1]


def test_portfolio_sampler_proposes_list_then_falls_back():
    configs = [{"x": 0.25, "n": 3}, {"x": 0.75, "n": 5}]
    study = optuna.create_study(sampler=peers.PortfolioSampler(configs, seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 9), n_trials=4)
    assert study.trials[0].params == {"x": 0.25, "n": 3}
    assert study.trials[1].params == {"x": 0.75, "n": 5}
    assert len(study.trials) == 4


def test_regret_normalisation():
    ref = {"max": 90.0, "min": 10.0, "median": 50.0}
    r = normalised_regret([50.0, 10.0, 70.0], ref)
    np.testing.assert_allclose(r, [0.5, 0.5, 0.25])
    r = normalised_regret([50.0, 100.0], ref)  # ref max raised to the best observed
    np.testing.assert_allclose(r, [0.5, 0.0])


def test_quick_sampler_run(quick_samplers):
    out, paths = quick_samplers
    for key in ("md", "png", "json"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    ref = load_reference("lcbench")
    results = report.load_results(out, "sampler", "lcbench")
    assert {r["method"] for r in results} == set(peers.CHEAP_SAMPLERS)
    for r in results:
        assert len(r["runs"]) == 3 * 2
        for run in r["runs"]:
            best = np.maximum.accumulate(run["values"])
            assert np.all(np.diff(best) >= 0)
            reg = normalised_regret(run["values"], ref[run["task"]])
            assert np.all((reg >= 0) & (reg <= 1))
            assert np.all(np.diff(reg) <= 1e-12)
            assert all(ms >= 0 for ms in run["ms"])
    summary = json.loads(paths["json"].read_text())
    methods = summary["methods"]
    # The zero-shot portfolio's first configuration beats a random one on average.
    assert methods["portfolio"]["regret"][0] < methods["random"]["regret"][0]
    for m in methods.values():
        assert all(x is None or 0 <= x <= 1 for x in m["regret"])
        ranks = [x for x in m["mean_rank"] if x is not None]
        assert all(1 <= x <= len(methods) for x in ranks)
    assert "| method | runs | @1 |" in paths["md"].read_text()


def test_quick_pruner_run(quick_pruners):
    out, paths = quick_pruners
    for key in ("md", "png", "json"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    results = {r["method"]: r for r in report.load_results(out, "pruner", "lcbench")}
    assert set(results) == set(peers.CHEAP_PRUNERS)
    for r in results.values():
        for run in r["runs"]:
            used = sum(t[0] for t in run["trials"])
            assert used == 520
            assert all(1 <= t[0] <= 52 for t in run["trials"])
            for t in run["trials"]:
                assert (t[1] == pruning.STATE_COMPLETE) == (t[0] == 52 and np.isfinite(t[2]))
    summary = json.loads(paths["json"].read_text())
    nop = summary["methods"]["tpe_nop"]
    assert nop["median_speedup"] == pytest.approx(1.0)
    assert nop["nop_final"] == pytest.approx(nop["regret"][-1])
    for m in summary["methods"].values():
        assert all(0 <= x <= 1 for x in m["regret"] if x is not None)
        assert all(np.diff(m["mean_curve"]) <= 1e-12)


def test_report_selection_and_baseline_override(quick_pruners):
    out, _ = quick_pruners
    with pytest.raises(ValueError, match="exclude each other"):
        report.write_reports(out, "lcbench", "pruner", peers_only=True, meta_only=True)
    results = report.load_results(out, "pruner", "lcbench")
    for r in results:  # drop the methods' own baselines: only the override can supply one
        r["baseline"] = None
    summary = report.pruner_summary(results, "lcbench", baseline="tpe_nop")
    median = summary["methods"]["tpe_median"]
    assert median["nop_runs"] == len(results[0]["runs"])
    assert summary["methods"]["tpe_nop"]["median_speedup"] == pytest.approx(1.0)


def test_report_readme_blocks(quick_pruners, tmp_path):
    """The table of every method never overwrites the peer block; each flag fills its own."""
    out, _ = quick_pruners
    readme = tmp_path / "README.md"
    blocks = ("pruner_lcbench", "pruner_lcbench_all", "pruner_lcbench_meta")
    readme.write_text("".join(f"<!-- BEGIN {k} -->\nold {k}\n<!-- END {k} -->\n" for k in blocks))

    def block(key: str) -> str:
        text = readme.read_text()
        return text.split(f"<!-- BEGIN {key} -->\n")[1].split(f"<!-- END {key} -->")[0]

    report.write_reports(tmp_path / "all", "lcbench", "pruner", readme)  # no saved results
    assert block("pruner_lcbench_all") == "old pruner_lcbench_all\n"
    report.write_reports(out, "lcbench", "pruner", readme)
    assert block("pruner_lcbench") == "old pruner_lcbench\n"
    assert "| sampler + pruner |" in block("pruner_lcbench_all")
    report.write_reports(out, "lcbench", "pruner", readme, peers_only=True)
    assert "| sampler + pruner |" in block("pruner_lcbench")
    assert block("pruner_lcbench_meta") == "old pruner_lcbench_meta\n"


def test_curve_quality_refuses_the_shipped_model_on_its_training_tasks():
    from benchmarks import curve_quality

    with pytest.raises(ValueError, match="trained on"):
        curve_quality.evaluate(tasks=["3945"], shipped=True, verbose=False)


def test_a_curve_model_trained_on_a_test_instance_is_refused(tmp_path):
    """``--model`` / ``--curve-model`` score a user's model on the test instances only if it
    never saw them: its manifest's training tasks are checked (storage names included)."""
    from benchmarks import curve_quality, heldout_pruner
    from optuna_meta.curve import DEFAULT_CURVE_MODEL, CurveModel

    shipped = CurveModel.load(DEFAULT_CURVE_MODEL)
    tainted = CurveModel(
        weights=shipped.weights,
        manifest={**shipped.manifest, "training_tasks": ["lcbench/3945", "lcbench/167168"]},
    )
    path = tainted.save(tmp_path / "tainted.npz")
    with pytest.raises(ValueError, match="trained on"):
        curve_quality.evaluate(model_path=path, verbose=False)
    with pytest.raises(SystemExit, match="167168"):
        heldout_pruner.curve_model_method(path)
    clean = CurveModel(
        weights=shipped.weights,
        manifest={**shipped.manifest, "name": "past-curves", "training_tasks": ["lcbench/3945"]},
    )
    method = heldout_pruner.curve_model_method(clean.save(tmp_path / "clean.npz"))
    assert method.name == "tpe_meta_past_curves" and method.baseline == "tpe_nop"


def test_oracle_pruner_stops_exactly_the_trials_that_cannot_beat_the_best():
    from benchmarks.oracle_pruner import OraclePruner

    made = []

    def factory(ctx: protocol.BenchContext):
        made.append(OraclePruner(ctx, top_k=1, decide_at=1))
        return optuna.samplers.RandomSampler(seed=ctx.seed), made[-1]

    ctx = protocol.make_contexts("lcbench", objectives.scored_tasks("lcbench")[:1], [0])[0]
    run = pruning.run_one_pruned(ctx, factory, epoch_budget=400)
    finals = made[0]._finals
    best = -np.inf
    states, checked = set(), 0
    for number, (epochs, state, value) in enumerate(run["trials"]):
        states.add(state)
        if state == pruning.STATE_PRUNED:
            assert epochs == 1 and finals[number] < best
        elif state == pruning.STATE_COMPLETE:
            if number in finals:  # checked by the oracle: it must have been an improvement
                assert finals[number] == pytest.approx(value) and value >= best
                checked += 1
            best = max(best, value)
    assert {pruning.STATE_PRUNED, pruning.STATE_COMPLETE} <= states and checked > 0


def test_a_pruned_run_hands_each_told_trial_and_its_whole_curve_to_on_told():
    from benchmarks.oracle_pruner import OraclePruner

    def factory(ctx: protocol.BenchContext):
        return optuna.samplers.RandomSampler(seed=ctx.seed), OraclePruner(ctx, top_k=1)

    seen = []

    def on_told(study: optuna.Study, number: int, state: int, curve: np.ndarray) -> None:
        seen.append((number, state, study.trials[number].state, len(curve), float(curve[-1])))

    ctx = protocol.make_contexts("lcbench", objectives.scored_tasks("lcbench")[:1], [0])[0]
    run = pruning.run_one_pruned(ctx, factory, epoch_budget=300, on_told=on_told)
    assert [s[0] for s in seen] == list(range(len(run["trials"])))
    told = {
        pruning.STATE_COMPLETE: optuna.trial.TrialState.COMPLETE,
        pruning.STATE_PRUNED: optuna.trial.TrialState.PRUNED,
        pruning.STATE_CUT: optuna.trial.TrialState.FAIL,
    }
    for (_epochs, state, value), (_, hook_state, frozen_state, n, last) in zip(
        run["trials"], seen, strict=True
    ):
        assert hook_state == state and frozen_state == told[state] and n == 52
        if state == pruning.STATE_COMPLETE:
            assert last == pytest.approx(value)
    assert pruning.STATE_PRUNED in {s[1] for s in seen}


def test_oracle_speedup_is_exact_when_reached_and_bounded_when_cut():
    from benchmarks.oracle_pruner import analyse

    base = {"trials": [[52, 0, 80.0], [52, 0, 85.0], [52, 0, 90.0]]}  # final 90 after 156 epochs
    reached = {"trials": [[52, 0, 80.0], [1, 1, float("nan")], [52, 0, 90.0]]}
    cut = {"trials": [[52, 0, 80.0], [30, 2, float("nan")]]}
    assert analyse(reached, base, 1300) == {"speedup": 156 / 105, "exact": True}
    assert analyse(cut, base, 1300) == {"speedup": 156 / 1300, "exact": False}
    assert analyse(cut, base, 5200) == {"speedup": 0.0, "exact": False}


def test_curve_tails_table_counts_shares_per_range():
    from benchmarks.curve_tails import table

    seen = np.array([1, 2, 5, 10, 30, 40] * 50)
    z = np.where(seen < 3, 3.0, 0.0)  # every early final far above the mean, none later
    p = np.where(seen < 3, 0.01, 0.5)
    rows = table({"random": (z, seen, p)}).splitlines()[2:]
    assert len(rows) == 4
    early, later = rows[0].split("|"), rows[1].split("|")
    assert early[2].strip() == "1-2" and early[4].strip() == "100.00%"
    assert early[8].strip() == "100.00%" and later[8].strip() == "0.00%"
    assert later[4].strip() == "0.00%"


def test_pruned_values_table_groups_by_stop_epoch_and_scores_shifts():
    from benchmarks.pruned_values import report

    rows = [
        {"epoch": 2, "pred": 70.0, "sd": 40.0, "true": 30.0},  # optimistic by 40 (1 sd)
        {"epoch": 3, "pred": 60.0, "sd": 20.0, "true": 40.0},  # optimistic by 20 (1 sd)
        {"epoch": 30, "pred": 85.0, "sd": 2.0, "true": 86.0},  # pessimistic by 1 (-0.5 sd)
    ]
    lines = report(rows, [0.0, 1.0], "header").splitlines()
    table = [line.split("|") for line in lines if line.startswith("| ") and "-" in line[2:6]]
    assert [r[1].strip() for r in table] == ["1-3", "21-51"]  # empty groups are left out
    early, late = table
    assert early[2].strip() == "2" and early[4].strip() == "1.00"  # mean z
    assert early[5].strip() == "+30.00" and early[6].strip() == "+0.00"  # shift 0, shift 1 sd
    assert late[5].strip() == "-1.00" and late[6].strip() == "-3.00"


def test_prune_timing_times_first_and_steady_calls(monkeypatch):
    from benchmarks import prune_timing

    monkeypatch.setattr(prune_timing, "N_PROBES", 2)
    bench = objectives.get_surrogate("lcbench")
    task = objectives.scored_tasks("lcbench")[0]
    r = prune_timing.time_task(bench, task, n_completed=3, seed=0)
    # one first call (epoch 1, context rebuilt) and 9 steady ones per probe trial
    assert len(r["first"]) == 2 and len(r["steady"]) == 2 * (prune_timing.PROBE_EPOCHS - 1)
    assert all(ms > 0 for ms in r["first"] + r["steady"])


def test_benchmark_pruner_variants_override_the_rule_they_name():
    from benchmarks import meta_pruner_methods as mpm

    model = CurveModel.load("lcbench-curve")
    quarter = mpm._RankDivisorPruner(model, divisor=4.0, median_offset=0, n_ramp_trials=5)
    assert [quarter._target_rank(n, 0) for n in (1, 4, 5, 8, 9, 40, 80)] == [1, 1, 2, 2, 3, 10, 10]
    best4 = mpm._RankDivisorPruner(model, best_until=4, median_offset=0, n_ramp_trials=5)
    assert [best4._target_rank(n, 0) for n in (4, 5, 6)] == [1, 3, 3]
    frac = mpm._FractionThresholdPruner(model, slope=2.0, median_offset=0, n_ramp_trials=5)
    frac._fraction = 0.25
    assert frac.effective_threshold(5) == pytest.approx(2.0 * frac.threshold * 0.75)
    # in a study the subclass's rule is the one applied (a wrong override would fail silently:
    # prune() logs prediction errors and does not prune)
    study = optuna.create_study(direction="maximize", pruner=quarter)
    for v in (0.80, 0.85, 0.90):
        t = study.ask()
        for epoch in range(1, 11):
            t.report(v * epoch / 10, epoch)
        study.tell(t, v)
    t = study.ask()
    for epoch in range(1, 4):
        t.report(0.5 * epoch / 10, epoch)
    pred = quarter.predict(study, study._storage.get_trial(t._trial_id))
    assert pred is not None and 0.0 <= pred.prob_improvement <= 1.0


def test_constrained_benchmark_scores_the_best_feasible_trial():
    from benchmarks import constrained

    task = objectives.scored_tasks("lcbench")[0]
    budget, top, worst = constrained.task_setting(task)
    assert budget > 0 and worst < top
    run = {"task": task, "values": [top + 1.0, worst, top], "feasible": [False, True, True]}
    # an infeasible trial never counts, however good; then regret 1, 0 once the best feasible
    np.testing.assert_allclose(constrained.regret_curve(run), [1.0, 1.0, 0.0])
    ctx = protocol.make_contexts("lcbench", [task], [0], n_folds=0)[0]
    told = constrained.run_one(ctx, "random", 3)
    assert len(told["values"]) == 3 and len(told["feasible"]) == 3
    text = constrained.report({"random": [told]}, "cmd")
    assert "| random | 1 |" in text


def test_constrained_pruning_benchmark_records_feasibility_and_scores_feasible_trials():
    from benchmarks import constrained_pruning as cp

    task = objectives.scored_tasks("lcbench")[0]
    ctx = protocol.make_contexts("lcbench", [task], [0], n_folds=0, epoch_budget=300)[0]
    run = pruning.run_one_pruned(ctx, cp._factory("tpe_nop"), 300, lambda params: 1.0)
    assert len(run["feasible"]) == len(run["trials"]) and not any(run["feasible"])
    np.testing.assert_allclose(cp.regret_at(run, (104, 300)), [1.0, 1.0])  # none feasible
    run["feasible"] = [True] * len(run["trials"])
    assert cp.regret_at(run, (300,))[0] < 1.0
    plain = pruning.run_one_pruned(ctx, cp._factory("tpe_nop"), 300)
    assert "feasible" not in plain
    np.testing.assert_array_equal(plain["trials"], run["trials"])  # NaN-aware


def test_fixed_params_benchmark_fixes_the_subspace_and_tells_only_meta():
    from benchmarks import fixed_params as fp

    task = objectives.scored_tasks("lcbench")[0]
    fixed = fp.fixed_values("lcbench", task, 0)
    assert set(fixed) == {"batch_size", "num_layers", "max_units"}
    assert fp.fixed_values("lcbench", task, 0) == fixed != fp.fixed_values("lcbench", task, 1)
    assert fp.fixed_values("rbv2_xgboost", "3", 0) == {"booster": "gbtree"}
    top, worst = fp.reference("lcbench", task, 0)
    assert worst < top
    run = {"scenario": "lcbench", "task": task, "seed": 0, "values": [worst, top + 1.0]}
    np.testing.assert_allclose(fp.regret_curve(run), [1.0, 0.0])  # floored at 0
    ctx = protocol.make_contexts("lcbench", [task], [0], n_folds=0)[0]
    out = fp.run_one(ctx, "random", 3)
    assert out["fixed"] == fixed and len(out["values"]) == 3
    assert "| random | 1 |" in fp.report({"random": [out]}, "cmd", "lcbench")


def test_transfer_benchmark_mirrors_the_named_parameters_within_their_ranges():
    from optuna.distributions import FloatDistribution, IntDistribution

    from benchmarks import transfer

    log_float = FloatDistribution(1e-4, 1e-1, log=True)
    assert transfer.mirror(1e-4, log_float) == pytest.approx(1e-1)
    assert transfer.mirror(1e-2, log_float) == pytest.approx(1e-3)
    assert transfer.mirror(0.25, FloatDistribution(0.0, 1.0)) == pytest.approx(0.75)
    assert transfer.mirror(16, IntDistribution(16, 512, log=True)) == 512
    assert transfer.mirror(2, IntDistribution(1, 5)) == 4
    with pytest.raises(TypeError):
        transfer.mirror("a", optuna.distributions.CategoricalDistribution(["a", "b"]))

    space = {"learning_rate": log_float, "momentum": FloatDistribution(0.1, 0.99)}
    params = {"learning_rate": 1e-2, "momentum": 0.2}
    assert transfer.mirrored_config(params, space, ()) == params
    lr_only = transfer.mirrored_config(params, space, ("learning_rate",))
    assert lr_only["momentum"] == 0.2 and lr_only["learning_rate"] == pytest.approx(1e-3)

    task = objectives.scored_tasks("lcbench")[0]
    ctx = protocol.make_contexts("lcbench", [task], [0], n_folds=0)[0]
    plain = transfer.run_one(ctx, "random", "none", 3)
    mirrored = transfer.run_one(ctx, "random", "all", 3)
    assert len(plain["values"]) == len(mirrored["values"]) == 3
    assert plain["values"] != mirrored["values"]  # the same suggestions, another landscape
    text = transfer.report({"random": [mirrored]}, "all", "cmd")
    assert "| random | 1 |" in text and "all seven" in text


def test_toy_objectives_peak_at_their_stated_optimum():
    from benchmarks import toys

    at_optimum = {"lr": 10**-2.5, "momentum": 0.9}
    assert toys.bowl2(optuna.trial.FixedTrial(at_optimum)) == pytest.approx(0.0)
    at_optimum = {"lr": 10**-3.3, "momentum": 0.6, "weight_decay": 1e-3, "dropout": 0.3}
    assert toys.bowl4(optuna.trial.FixedTrial(at_optimum)) == pytest.approx(0.0)
    assert toys.bowl4(optuna.trial.FixedTrial({**at_optimum, "dropout": 0.0})) < 0.0
    curve = toys.best_curve("bowl2", "random", 0, 4)
    assert len(curve) == 4 and np.all(np.diff(curve) >= 0) and curve[-1] <= 0.0


def test_adaptive_replay_finds_the_first_trial_the_fallback_takes_beyond_its_turns():
    from benchmarks.adaptive_replay import first_lead

    # Ten design trials, then the surrogate's trials never improve and the fallback's (14, 19)
    # do: from trial 20 the fallback leads, and trial 21 is the first it takes for that.
    values = [float(i) for i in range(10)] + [0.0] * 10
    values[14], values[19] = 20.0, 21.0
    assert first_lead(values + [0.0] * 5, None) == 21
    # Infeasible improvements do not count; nor does a history where the surrogate improves.
    assert first_lead(values + [0.0] * 5, [k != 19 for k in range(25)]) is None
    rising = [float(i) for i in range(25)]
    assert first_lead(rising, None) is None


def test_real_mlp_objective_is_deterministic_and_learns():
    pytest.importorskip("torch")
    from benchmarks import real_mlp

    X, y = real_mlp.datasets()["wine"]
    objective = real_mlp.make_objective(X, y, seed=0)
    sensible = {
        "batch_size": 32,
        "learning_rate": 0.01,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "num_layers": 2,
        "max_units": 64,
        "max_dropout": 0.0,
    }
    first = objective(optuna.trial.FixedTrial(sensible))
    assert objective(optuna.trial.FixedTrial(sensible)) == first  # one value per configuration
    majority = 100.0 * np.bincount(y).max() / len(y)
    assert first > majority + 20.0  # wine is easy: a sensible MLP is far above the majority
    # A diverging configuration ends at the validation set's majority-class accuracy.
    wild = {**sensible, "learning_rate": 0.1, "momentum": 0.99, "num_layers": 5, "max_units": 1024}
    assert 0.0 <= objective(optuna.trial.FixedTrial(wild)) <= 100.0


def test_real_mlp_network_follows_lcbench_generator():
    torch = pytest.importorskip("torch")
    from benchmarks import real_mlp

    # Auto-PyTorch's funnel: num_layers counts the output layer, so 1 is a linear model; the
    # first hidden layer is at least as wide as the input; widths shrink by integer steps.
    assert real_mlp.funnel_widths(13, 3, 64, 1) == []
    assert real_mlp.funnel_widths(13, 3, 64, 2) == [64]
    assert real_mlp.funnel_widths(100, 3, 64, 3) == [100, 52]
    assert real_mlp.funnel_widths(64, 10, 1024, 5) == [1024, 771, 518, 265]
    # Dropout is largest after the first hidden layer; none at all up to DROPOUT_MIN.
    assert real_mlp.dropout_rates(0.8, 5) == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert real_mlp.dropout_rates(real_mlp.DROPOUT_MIN, 3) == [None, None]
    assert real_mlp.dropout_rates(0.5, 1) == []
    # The network has exactly those layers (13 features and 3 classes, as wine).
    model = real_mlp.build_network(13, 3, {"num_layers": 3, "max_units": 64, "max_dropout": 0.4})
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    drops = [m.p for m in model if isinstance(m, torch.nn.Dropout)]
    assert [(m.in_features, m.out_features) for m in linear] == [(13, 64), (64, 34), (34, 3)]
    assert drops == pytest.approx([0.4, 0.2])


def test_heldout_refuses_an_unknown_model(monkeypatch, capsys):
    from benchmarks import heldout

    monkeypatch.setattr("sys.argv", ["heldout", "--model", "no-such-model"])
    with pytest.raises(SystemExit):
        heldout.main()
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_real_mlp_report_counts_wins_and_gaps():
    from benchmarks import real_mlp

    def run(method, seed, values):
        return {"dataset": "wine", "method": method, "seed": seed, "values": values}

    runs = [
        run("meta", 0, [90.0, 95.0, 95.0]),
        run("tpe", 0, [80.0, 96.0, 96.0]),
        run("meta", 1, [70.0, 70.0, 99.0]),
        run("tpe", 1, [70.0, 75.0, 98.0]),
    ]
    text = real_mlp.report(runs, "cmd")
    assert "| MetaSampler vs TPE: wins/ties/losses | 1/1/0 | 1/0/1 |" in text
    # Gaps to the run's best final (96 for seed 0, 99 for seed 1): @1 (6 + 29) / 2, @3 (1 + 0) / 2.
    assert "| gap: MetaSampler() (shipped lcbench-mlp) | 17.50 | 0.50 |" in text
    assert "Command: `cmd`" in text


def test_real_mlp_pruning_run_charges_epochs_and_reports_against_no_pruning(monkeypatch):
    pytest.importorskip("torch")
    from benchmarks import real_mlp, real_mlp_pruning

    monkeypatch.setattr(real_mlp_pruning, "EPOCH_BUDGET", 90)
    monkeypatch.setattr(real_mlp_pruning, "BUDGETS", (40, 90))
    data = real_mlp.datasets()["wine"]
    runs = [real_mlp_pruning.run("wine", data, p, 0) for p in ("nop", "meta")]
    for r in runs:
        epochs = [t[0] for t in r["trials"]]
        assert sum(epochs) == 90  # the run stops exactly at the budget
        assert r["trials"][-1][1] == real_mlp_pruning.STATE_CUT  # 90 is not a whole trial
    nop, meta = runs
    assert [t[0] for t in nop["trials"]] == [20, 20, 20, 20, 10]
    assert all(t[1] == real_mlp_pruning.STATE_COMPLETE for t in nop["trials"][:-1])
    assert any(t[1] == real_mlp_pruning.STATE_PRUNED for t in meta["trials"])  # it prunes here
    text = real_mlp_pruning.report(runs, "cmd")
    assert "| TPE, no pruning | 1 |" in text and "| 1.00x | 1/1 |" in text


def test_real_mlp_design_table_scores_every_entry_on_the_named_datasets():
    pytest.importorskip("torch")
    from benchmarks import real_mlp
    from optuna_meta.surrogate import SurrogateModel

    n_entries = len(SurrogateModel.load("lcbench-mlp").initial_design)
    text = real_mlp.design_table(["wine"], n_epochs=1)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "|---" not in line]
    header, entries, majority = rows[0], rows[1:-1], rows[-1]
    assert header.endswith("| wine |") and len(entries) == n_entries
    for row in entries:
        cells = [c.strip() for c in row.strip("|").split("|")]
        above, total = map(int, cells[8].split("/"))
        assert 0 <= above <= total == 31  # the shipped model's training tasks
        assert 0.0 <= float(cells[9]) <= 100.0
    assert majority.startswith("| majority class |") and "--epochs 1 --datasets wine" in text


def test_config_curve_pruner_feeds_the_trials_encoded_hyperparameters_to_its_network():
    from benchmarks.config_curve import ConfigCurvePruner, lcbench_encoder
    from optuna_meta.curve import FEATURE_NAMES
    from optuna_meta.curve._network import init_weights

    encoder = lcbench_encoder()
    space = encoder.search_space
    n = len(FEATURE_NAMES) + encoder.n_features
    weights = init_weights(n, 8, 0, np.zeros(n), np.ones(n))
    blind = {k: v.copy() for k, v in weights.items()}
    blind["W1"][len(FEATURE_NAMES) :] = 0.0  # the same network, deaf to the configuration
    low = {k: d.low for k, d in space.items()}
    high = {k: d.high for k, d in space.items()}

    def predictions(w):
        study = optuna.create_study(direction="maximize", pruner=ConfigCurvePruner(w))
        for i, params in enumerate((low, high)):
            study.enqueue_trial(params)
            t = study.ask(space)
            for e in range(1, 11):
                t.report(50.0 + i * 10 + e, e)
            study.tell(t, 60.0 + i * 10)
        out = []
        for params in (low, high):  # the same partial curve, two configurations
            study.enqueue_trial(params)
            t = study.ask(space)
            for e in range(1, 4):
                t.report(40.0 + e, e)
            frozen = study._storage.get_trial(t._trial_id)
            out.append(study.pruner.predict(study, frozen).mean)
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        return out

    a, b = predictions(weights)
    assert np.isfinite([a, b]).all() and a != pytest.approx(b, abs=1e-9)
    a, b = predictions(blind)
    assert a == pytest.approx(b, abs=1e-12)


def test_config_curve_report_bins_errors_by_fraction_and_context_size():
    from benchmarks.config_curve import report

    def row(f, m, d_ae, c_ae):
        return {
            "f": f,
            "m": m,
            "default_ae": d_ae,
            "config_ae": c_ae,
            "default_nll": 1.0,
            "config_nll": 0.5,
        }

    rows = [row(0.02, 3, 1.0, 0.5), row(0.05, 40, 0.2, 0.4), row(0.9, 10, 0.1, 0.1)]
    lines = [line.split("|") for line in report(rows, "h").splitlines() if line[:3] == "| 0"]
    got = {(r[1].strip(), r[2].strip()): [c.strip() for c in r[3:8]] for r in lines}
    assert got[("0-0.08", "1-5")] == ["1", "1.0000", "0.5000", "1.0000", "0.5000"]
    assert got[("0-0.08", "all")][:3] == ["2", "0.6000", "0.4500"]
    assert got[("0.6-1", "6-29")][0] == "1" and ("0.08-0.25", "all") not in got


def test_real_mlp_pruning_report_pairs_rows_with_median_and_meta_run_by_run():
    from benchmarks import real_mlp_pruning as rmp

    def run(seed, pruner, finals):  # 30 completed trials of 20 epochs, best final last
        trials = [[20, 0, 50.0]] * 29 + [[20, 0, finals[seed]]]
        return {"dataset": "d", "pruner": pruner, "seed": seed, "trials": trials}

    finals = {"nop": (70.0, 80.0), "median": (71.0, 83.0), "meta": (72.0, 82.0)}
    finals["meta_noisy"] = (74.0, 83.0)
    runs = [run(s, p, f) for p, f in finals.items() for s in (0, 1)]
    text = rmp.report(runs, "cmd")
    median_part, meta_part = text.split("Paired against")[1:]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in median_part.splitlines()
        if line.startswith("| TPE")
    }
    # Every trial ends at 600 epochs, so only the last budget differs from a tie at 50.
    assert rows[rmp.LABELS["meta"]] == ["+0.00 (0.00)"] * 3 + ["+0.00 (1.00)"]
    assert rows[rmp.LABELS["meta_noisy"]][-1] == "+1.50 (1.50)"
    assert rows[rmp.LABELS["nop"]][-1] == "-2.00 (1.00)"
    meta_rows = [line for line in meta_part.splitlines() if line.startswith("| TPE")]
    assert len(meta_rows) == 2  # no pair with MedianPruner again
    assert meta_rows[1] == f"| {rmp.LABELS['meta_noisy']} | " + "+0.00 (0.00) | " * 3 + (
        "+1.50 (0.50) |"
    )


def test_noisy_curves_spikes_dip_unstable_trials_and_spare_annealed_finals():
    from benchmarks import noisy_curves

    t = np.arange(1, 41)
    V = np.stack([80 - 40 * np.exp(-t / 5) + i for i in range(40)]).astype(float)
    rng = np.random.default_rng(0)
    changed, finals_kept, dips = 0, 0, []
    for _ in range(200):
        W = noisy_curves.spikes(rng, V)
        if np.array_equal(W, V):
            continue
        changed += 1
        d = W - V
        finals_kept += bool(np.all(np.abs(d[:, -1]) < 1e-9))
        assert np.any(np.all(d == 0, axis=1))  # some trials stay stable
        dips.append(d[d != 0])
    assert 70 <= changed <= 130  # about half of the episodes
    assert 0.5 * changed <= finals_kept < changed  # mostly annealed, sometimes not
    d = np.concatenate(dips)
    assert np.mean(d < 0) > 0.6  # mostly downward


def test_real_calibration_table_groups_checks_by_epochs_and_probability():
    from benchmarks.real_calibration import calibration_table

    trials = [[20, 0, 50.0], [20, 0, 90.0], [20, 0, 10.0]]
    log = [
        {"n": 1, "step": 1, "target": 60.0, "meta": 0.005},  # ended above: a miss
        {"n": 2, "step": 1, "target": 60.0, "meta": 0.002},
        {"n": 2, "step": 5, "target": 60.0, "meta": 0.5},
        {"n": 1, "step": 5, "target": 60.0, "meta": None},  # no prediction: not counted
        {"n": 0, "step": 9, "target": 40.0, "meta": 1.0},
    ]
    text = calibration_table([{"trials": trials, "log": log}], ["meta"])
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()[2:]]
    assert rows == [
        ["meta", "1", "0-0.01", "2", "0.004", "0.500"],
        ["meta", "4-7", "0.3-1", "1", "0.500", "0.000"],
        ["meta", "8-19", "0.3-1", "1", "1.000", "1.000"],
    ]


def _late_jump_study(n: int, rng: np.random.Generator):
    """``n`` completed curves that jump by 60 at their last step, and a running trial."""
    study = optuna.create_study(direction="maximize")
    for _ in range(n):
        t = study.ask()
        base = 20 + 5 * rng.random()
        for e in range(1, 11):
            t.report(base + (60.0 if e == 10 else 0.0) + 0.1 * e, e)
        study.tell(t, base + 61.0)
    t = study.ask()
    t.report(22.0, 1)
    t.report(22.1, 2)
    return study, study._storage.get_trial(t._trial_id)


def test_recal_pruner_follows_the_studys_own_errors_once_enough_trials_completed():
    from benchmarks.recal_pruner import RecalPruner
    from optuna_meta import MetaPruner

    rng = np.random.default_rng(0)

    def study_with(n):
        return _late_jump_study(n, rng)

    study, trial = study_with(3)  # too few test cases: the shipped model's prediction
    assert RecalPruner().predict(study, trial) == MetaPruner().predict(study, trial)
    study, trial = study_with(12)
    recal, plain = RecalPruner().predict(study, trial), MetaPruner().predict(study, trial)
    assert recal.mean > plain.mean and recal.std < plain.std  # it learned the late jump
    assert 0.0 <= recal.prob_improvement <= 1.0


def test_cheap_recal_pruner_computes_each_curves_errors_once_and_rescue_only_keeps_trials():
    from benchmarks.recal_pruner import N_RECAL, CheapRecalPruner, RescueRecalPruner
    from optuna_meta import MetaPruner

    study, trial = _late_jump_study(14, np.random.default_rng(0))
    cheap, plain = CheapRecalPruner(), MetaPruner().predict(study, trial)
    first = cheap.predict(study, trial)
    assert len(cheap._z) == N_RECAL  # the latest completed curves, at this schedule
    assert cheap.predict(study, trial) == first and len(cheap._z) == N_RECAL  # kept
    assert first.mean > plain.mean  # it learned the late jump
    rescue = RescueRecalPruner().predict(study, trial)
    assert rescue.prob_improvement >= plain.prob_improvement


def test_isotonic_line_fit_equals_scikit_learns():
    sklearn_isotonic = pytest.importorskip("sklearn.isotonic")
    from benchmarks.isotonic_line import isotonic

    rng = np.random.default_rng(0)
    for _ in range(100):
        y = rng.normal(size=int(rng.integers(1, 30)))
        ref = sklearn_isotonic.IsotonicRegression().fit_transform(np.arange(len(y)), y)
        np.testing.assert_allclose(isotonic(y), ref)


def test_real_mlp_pruning_merge_keeps_the_pruners_it_is_given(tmp_path, monkeypatch):
    from benchmarks import real_mlp_pruning as rmp

    full = [[20, 0, 80.0]] * 30
    runs = [
        {"dataset": "d", "pruner": p, "seed": s, "trials": full}
        for s, pruners in ((0, ("nop", "meta", "metasampler_nop")), (5, ("nop", "meta")))
        for p in pruners
    ]
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"runs": runs}))
    argv = ["real_mlp_pruning", "--merge", str(raw), "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    rmp.main()  # every pruner: seed 5 lacks MetaSampler's row, so only seed 0 is scored
    assert "seeds [0]" in (tmp_path / "real_mlp_pruning.md").read_text()
    monkeypatch.setattr("sys.argv", [*argv, "--pruners", "nop,meta"])
    rmp.main()
    text = (tmp_path / "real_mlp_pruning.md").read_text()
    assert "seeds [0, 5]" in text and "MetaSampler" not in text
    assert "--pruners nop,meta" in text  # the table names the command that made it


def test_real_mlp_pruning_merge_lets_a_later_file_replace_a_rerun_row(tmp_path):
    from benchmarks import real_mlp_pruning as rmp

    def run(pruner, seed, final):
        return {"dataset": "d", "pruner": pruner, "seed": seed, "trials": [[20, 0, final]]}

    old = tmp_path / "old.json"
    old.write_text(json.dumps({"runs": [run("nop", 0, 80.0), run("meta", 0, 70.0)]}))
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"runs": [run("meta", 0, 90.0), run("meta", 1, 60.0)]}))
    runs = rmp.merged_runs([old, new])
    got = {(r["pruner"], r["seed"]): r["trials"][0][2] for r in runs}
    assert got == {("nop", 0): 80.0, ("meta", 0): 90.0, ("meta", 1): 60.0}
    assert len(runs) == 3
    assert {(r["pruner"], r["seed"]) for r in rmp.merged_runs([new, old])} == set(got)
    assert [r["trials"][0][2] for r in rmp.merged_runs([new, old])][-1] == 70.0


def test_confirm_pruner_waits_for_a_second_prune_decision_but_not_on_nan():
    from benchmarks.confirm_pruner import ConfirmPruner
    from optuna_meta import MetaPruner

    study = optuna.create_study(direction="maximize", pruner=ConfirmPruner())
    plain = MetaPruner()
    for i in range(6):
        t = study.ask()
        for e in range(1, 21):
            t.report(80.0 + i - 30.0 / e, e)
        study.tell(t, 80.0 + i - 1.5)
    t = study.ask()
    decisions, plain_decisions = [], []
    for e in range(1, 4):
        t.report(5.0, e)  # flat at chance: the plain rule prunes at once
        frozen = study._storage.get_trial(t._trial_id)
        plain_decisions.append(plain.prune(study, frozen))
        decisions.append(t.should_prune())
    assert plain_decisions[0] and decisions == [False, True, True]
    t = study.ask()
    t.report(float("nan"), 1)
    assert t.should_prune()


def test_confirm_pruner_mistakes_counts_lost_winners_per_rule():
    from benchmarks.confirm_pruner import mistakes

    trials = [[20, 0, 50.0], [20, 0, 90.0], [20, 0, 60.0], [20, 0, 40.0], [20, 0, 30.0]]
    log = [
        {"n": 1, "step": 2, "median": False, "meta": True},  # the run's best: lost by meta
        {"n": 1, "step": 3, "median": False, "meta": True},  # counted once
        {"n": 4, "step": 1, "median": True, "meta": False},  # the worst: a good stop
    ]
    m = mistakes([{"trials": trials, "log": log}])
    assert m["meta"] == {
        "stopped": 1,
        "at_epoch_1": 0,
        "epochs_saved": 18,
        "lost_top": 1,
        "lost_improvers": 1,
    }
    assert m["median"]["lost_top"] == 0 and m["median"]["at_epoch_1"] == 1
    assert m["median"]["epochs_saved"] == 19
    assert m["meta_gaussian"]["stopped"] == 0  # a rule the log does not hold stops nothing


def test_session_26_benchmark_clis_refuse_bad_input_clearly(capsys):
    from benchmarks import real_calibration

    with pytest.raises(SystemExit):
        real_calibration.main(["--datasets", "mnist"])
    assert "unknown or no datasets ['mnist']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        real_calibration.main(["--models", "meta,oracle"])
    assert "unknown methods ['oracle']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        real_calibration.main(["--models", ""])
    assert "--models names no model" in capsys.readouterr().err


def test_session_25_benchmark_clis_refuse_bad_input_clearly(capsys):
    from benchmarks import config_curve, confirm_pruner

    with pytest.raises(SystemExit):
        confirm_pruner.main(["--datasets", "mnist"])
    assert "unknown or no datasets ['mnist']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        config_curve.main(["--episodes", "0"])
    assert "--episodes must be >= 1" in capsys.readouterr().err


def test_heldout_pruner_joins_peer_runs_across_seed_folders(tmp_path):
    from benchmarks import heldout_pruner

    def write(folder: str, seeds: list[int]) -> Path:
        raw = tmp_path / folder / "raw"
        raw.mkdir(parents=True)
        runs = [
            {"task": task, "seed": seed, "trials": [[52, 0, 90.0]]}
            for task in ("167168", "3945")
            for seed in seeds
        ]
        result = {
            "kind": "pruner",
            "scenario": "lcbench",
            "method": "tpe_nop",
            "label": "TPE + NopPruner",
            "epoch_budget": 5200,
            "seeds": seeds,
            "runs": runs,
        }
        (raw / "pruner_lcbench_tpe_nop.json").write_text(json.dumps(result))
        return tmp_path / folder

    dirs = [write("a", [0, 1, 2]), write("b", [2, 3, 4])]
    (joined,) = heldout_pruner.merged_peers(dirs, ["167168"], {0, 1, 2, 3}, 5200)
    assert joined["seeds"] == [0, 1, 2, 3]  # seed 2 once, seed 4 not asked for
    assert sorted((r["task"], r["seed"]) for r in joined["runs"]) == [
        ("167168", s) for s in (0, 1, 2, 3)
    ]


def test_prune_storage_times_each_pruner_on_both_storages(tmp_path, monkeypatch):
    import sys

    from benchmarks import prune_storage

    monkeypatch.setattr(prune_storage, "N_TRIALS", 3)
    monkeypatch.setattr(prune_storage, "N_STEPS", 5)
    out = tmp_path / "t.md"
    monkeypatch.setattr(sys, "argv", ["prune_storage", "--out", str(out)])
    prune_storage.main()
    rows = [
        line for line in out.read_text().splitlines() if line.startswith("| ") and "ms" not in line
    ]
    assert [r.split(" | ")[0] for r in rows] == [
        "| NopPruner",
        "| MedianPruner()",
        "| MetaPruner()",
        "| MetaPruner(record_predictions=False)",
    ]
