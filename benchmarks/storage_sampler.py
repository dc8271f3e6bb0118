"""MetaSampler with a surrogate meta-trained from past studies in an Optuna storage.

Why: the shipped surrogate learned from 2,000 YAHPO-sampled configurations per LCBench task,
and from a design learned by querying those tasks. A user meta-trains from what they have:
their past studies (``optuna-meta train --storage ...``), usually a hundred trials a task,
which cannot be re-run, so the model has no learned design: new studies open with
configurations the past studies ran (``--observed-design 5``, the default since session 33),
or with the best configuration under its meta-mean (``--observed-design 0``, the default
before). The README recommends that path for tasks unlike the
shipped model's; this benchmark measures it end to end on the sampler protocol, with the same
5-fold task CV as the other sampler rows:

1. Past studies: the journal file of ``benchmarks.storage_curve`` (one study per LCBench task,
   YAHPO's test instances excluded, ``N_PAST_TRIALS`` random configurations each, seed
   ``PAST_SEED``: not the shipped model's draws).
2. Per fold: ``optuna-meta train --storage <journal> --study lcbench/<task> ...`` with the
   fold's training tasks, the command a user runs (``optuna_meta.cli.main``).
3. ``MetaSampler(model=<that file>)`` on the fold's held-out tasks, seeds 0-4, 100 trials.

Run (writes ``benchmarks/results/raw/sampler_lcbench_meta_storage.json``)::

    python -m benchmarks.run_samplers --scenario lcbench --full \\
        --extra benchmarks.storage_sampler:STORAGE_METHODS

The fold models are cached under ``benchmarks/results/cache/`` (git-ignored).
"""

from __future__ import annotations

from optuna.samplers import BaseSampler

from benchmarks.meta_methods import (
    MODEL_RECIPE,
    SAMPLER_BEHAVIOUR,
    disk_cached,
    fold_training_tasks,
)
from benchmarks.protocol import BenchContext, Method
from benchmarks.storage_curve import (
    N_PAST_TRIALS,
    PAST_SEED,
    STORAGE_VERSION,
    train_on_past_studies,
)
from optuna_meta import MetaSampler
from optuna_meta.surrogate import SurrogateModel


def storage_fold_surrogate(
    train_tasks: tuple[str, ...], observed: int = 0, train_seed: int = 0
) -> SurrogateModel:
    """The surrogate ``optuna-meta train --observed-design <observed> --seed <train_seed>``
    writes from the fold's past studies (cached). ``observed=0`` is session 31's model (the
    meta-mean's best guess opens a study). Other training seeds show how much a row owes to
    one network and one draw of candidates (session 33)."""
    tasks = fold_training_tasks("lcbench", train_tasks)
    extra = ["--observed-design", str(observed), "--seed", str(train_seed)]

    def build(digest: str) -> SurrogateModel:
        return train_on_past_studies(
            "train", tasks, f"storage-mlp-cv-{digest}", SurrogateModel.load, extra
        )

    key = [tasks, N_PAST_TRIALS, PAST_SEED, STORAGE_VERSION, MODEL_RECIPE]
    if observed:
        key.append(f"observed{observed}")
    if train_seed:
        key.append(f"seed{train_seed}")
    return disk_cached("storage_surrogate_lcbench", key, SurrogateModel.load, build)


def _storage_method(observed: int, train_seed: int = 0) -> Method:
    def factory(ctx: BenchContext) -> BaseSampler:
        key = ("storage-surrogate", observed, train_seed, ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = storage_fold_surrogate(ctx.train_tasks, observed, train_seed)
        return MetaSampler(model=ctx.cache[key], seed=ctx.seed)

    version = f"storage{STORAGE_VERSION}+recipe{MODEL_RECIPE}+sampler{SAMPLER_BEHAVIOUR}"
    name = "meta_storage" + (f"_obs{observed}" if observed else "")
    seed_label = ""
    if train_seed:
        name += f"_seed{train_seed}"
        seed_label = f" --seed {train_seed}"
    return Method(
        name,
        factory,
        label=f"MetaSampler(model=optuna-meta train on {N_PAST_TRIALS}-trial past studies, "
        f"--observed-design {observed}{seed_label}) [5-fold task CV]",
        version=version
        + (f"+observed{observed}" if observed else "")
        + (f"+seed{train_seed}" if train_seed else ""),
    )


STORAGE_METHODS = [_storage_method(0)]
"""MetaSampler with a fold model trained by ``optuna-meta train --storage`` (session 31; the
meta-mean's best guess opens each study, ``--observed-design 0``)."""

OBSERVED_1 = _storage_method(1)
OBSERVED_5 = _storage_method(5)
OBSERVED_METHODS = [OBSERVED_1, OBSERVED_5]
"""The same with the past studies' best run configuration (``--observed-design 1``) or five
of them opening each study (session 32). ``OBSERVED_5`` is the default since session 33: over
three training seeds (:data:`SEED_METHODS`) it is level at 1 trial and ahead from 10."""

TRAIN_SEEDS = (1, 2)
"""Training seeds of the seed check (session 33)."""

SEED_METHODS = [_storage_method(n, s) for s in TRAIN_SEEDS for n in (0, 5)]
"""``--observed-design`` 0 and 5 with other training seeds (``--seed 1``, ``--seed 2``):
session 32's ``meta_storage`` row opened studies at 0.0760 regret, a lucky draw of its 20,000
candidates (other draws under the same fold models: 0.103-0.121; other seeds: 0.1096 and
0.1493).

Run (writes ``benchmarks/results/raw/sampler_lcbench_meta_storage*_seed*.json``)::

    python -m benchmarks.run_samplers --scenario lcbench --full \
        --extra benchmarks.storage_sampler:SEED_METHODS
"""
