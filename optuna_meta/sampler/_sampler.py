"""MetaSampler: a meta-learned deep-kernel GP proposes trials; TPE covers what it cannot."""

from __future__ import annotations

import math
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, GridSampler, TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_meta._attrs import (
    ATTR_PRED_MEAN,
    ATTR_PRED_STD,
    ATTR_PREFIX,
    ATTR_SOURCE,
    set_user_attr,
)
from optuna_meta._blas import single_threaded_blas
from optuna_meta._logging import get_logger
from optuna_meta._model_io import check_model_source, model_source
from optuna_meta._warnings import user_stacklevel
from optuna_meta.sampler._constraints import Feasibility, _feasibility, _margin
from optuna_meta.sampler._model_state import (
    _best_shipped_model,
    _is_shipped,
    _model_label,
    _ModelState,
    range_coverage,
)
from optuna_meta.sampler._proposal import Proposal, expected_improvement, propose
from optuna_meta.sampler._schedule import (
    DEFAULT_FALLBACK_EVERY,
    _fallback_leads,
    _scheduled_turn,
    _seed_fallback,
)
from optuna_meta.sampler._trials import (
    _ACTIVE,
    _all_enqueued,
    _finished_names,
    _param_key,
    _pinned_space,
    _trial_key,
    _wrapper_fixed_params,
)
from optuna_meta.sampler._values import (
    _cap,
    _clip_outliers,
    _finite_oriented,
    _observed_value,
    _standardise,
)
from optuna_meta.space import ProjectionError, can_represent, project_value
from optuna_meta.surrogate import DEFAULT_MODEL, SurrogateModel
from optuna_meta.surrogate._model_file import FORMAT_NAME, FORMAT_VERSION, MIN_FORMAT_VERSION

if TYPE_CHECKING:
    from optuna.study import Study

_logger = get_logger(__name__)

ATTR_DESIGN_ENTRY = ATTR_PREFIX + "design_entry"
"""System attr: the design entry a trial takes out of order, so parallel workers leave it."""


DEFAULT_N_META_TRIALS = 100
"""Completed trials served by the surrogate before the fallback takes over (chosen by benchmark).

Pruned trials do not count: under a pruner most trials stop after a few steps, and handing the
study to the fallback after 100 *started* trials would end the meta phase after a few full
trials' worth of compute (MetaPruner's pruned trials still inform the surrogate through their
predicted final value)."""

MIN_KNOWN_PARAMS = 2
"""The surrogate serves a study only while it knows at least this many of the study's
parameters, or at least half of them (a study of ``lr`` and ``optimizer`` is served).

Why: a model that shares a single name with a larger study was trained on another kind of
model -- an XGBoost study's ``eta``, or scikit-learn's ``learning_rate`` beside ``max_depth``
and ``n_estimators``, is the only name the MLP model ``lcbench-mlp`` knows there -- and what it
knows of that one parameter (an SGD learning rate) does not carry over. Measured on the
rbv2_xgboost benchmark (30 tasks, seeds 0-4, ``benchmarks/README.md``, session 12), the shipped
MLP model serving ``eta`` alone against TPE: ahead for the first 3 trials (its design's
learning rates happen to be moderate ``eta`` values), then behind from 5 to 50 trials (regret
0.1878 vs 0.1531 at 5, 0.0988 vs 0.0847 at 20). Such a study goes to the fallback, with a
warning that names a shipped model that knows it better, once a finished trial tells its names.
Before that (trial 0) names still to come may be known ones, so a study asking two unknown
names before four known ones takes the design's first entry; but a known name goes to the
fallback when a shipped model of another kind knows more of the names asked so far
(``MetaSampler._another_kind``): the XGBoost study (``booster``, ``nrounds``, then ``eta``)
is the fallback's from its first trial (session 31; session 30 gave it the MLP design's
learning rate as ``eta``, +0.098 regret at 1 trial; see ``benchmarks/README.md``)."""

TASK_OPTIMA_TRIALS = 5
"""Design trials numbered below this may pick a training task's optimum (``task_optima``);
later ones pick from the design's own entries. Why: an optimum suits a task unlike the
training tasks quickly, but a design of optima alone leaves the surrogate less varied trials to
learn from. On LCBench (5-fold task CV, against ``task_optima=False``) letting all ten design
trials pick optima cost +0.0005 at 50 trials, and on the held-out tasks 0.0082 against 0.0004
at 30; with the first five, -0.0002 at 50 and 0.0063 at 30 (``benchmarks/README.md``,
session 19)."""
DESIGN_MIN_FEASIBILITY = 0.3
"""In a study with constraints, the design is left for the surrogate's proposals once its
best remaining entry is feasible with a probability below this: the design was learned
without the study's constraints (chosen on ``benchmarks/constrained.py``, seed 0, among 0, 0.1,
0.3 and 0.5; ``benchmarks/README.md``)."""


MAX_DEAD_FANTASIES = 64
"""Cap on the failed trials (and pruned ones without a predicted final) the GP takes as
pending fantasies: the most recent ones. Running trials always count (one a worker)."""

MIN_RANGE_COVERAGE = 0.5
"""A parameter goes to the fallback when less than this share of its range (in the model's
scale: log for log parameters) lies inside the range the model was trained on. The
surrogate can only propose where it knows the objective; confining such a parameter to a
small part of the user's range for the whole meta phase would leave most of it unexplored
(a round number, not tuned: every benchmark range is inside the model's)."""

WARN_RANGE_COVERAGE = 0.9
"""Below this share (and above :data:`MIN_RANGE_COVERAGE`) the parameter is served inside
the model's range, with one warning that the rest waits for the fallback."""

MIN_SEPARATION = 1e-3
"""A proposal closer than this to a tried or running configuration (largest difference over
the model's unit-scaled features) counts as a repeat, and the next best is taken.

Why: the surrogate's noise term leaves a little expected improvement right next to the best
trial, so on a smooth, noise-free objective in a small box it could propose the same point
up to rounding for dozens of trials (a 2-parameter study: 9 distinct configurations in 40).
A round number, not tuned: on the LCBench and rbv2_xgboost CV benchmarks it changes 2 of 320
runs, after trial 50, and no regret (``benchmarks/README.md``, session 14)."""


_PROPOSAL_CACHE_SIZE = 256


_PREDICTION = "__prediction__"
"""Proposal key of ``(sign, scale, shift, n_obs)``: how its predicted mean and std map to the
user's units (:meth:`MetaSampler._label_meta`)."""

_LABELLED = "__labelled__"
"""Proposal key set once the trial is labelled as the surrogate's."""

_UNDECIDED: dict[str, Any] = {}
"""``_compute_proposal``'s answer while no finished trial tells the study's names and those
asked so far look like another kind of study (:meth:`MetaSampler._another_kind`): the name
being asked goes to the fallback, and the trial's next known name is judged again (nothing is
cached)."""


class MetaSampler(BaseSampler):
    """A sampler whose first trials come from a surrogate meta-trained on many past studies.

    The surrogate (a deep-kernel Gaussian process, see :mod:`optuna_meta.surrogate`) was trained
    on many tasks' HPO runs. The first trials take the model's learned initial design (a few
    configurations that were good, and complementary, on the training tasks, tried in the
    order of their expected improvement given the study's results so far; models without one
    start from the best configuration under their meta-mean); then the surrogate conditions on
    the trials observed so far (few-shot) and maximises expected improvement. User
    parameter names are matched to the model's through aliases (``lr`` -> ``learning_rate``);
    parameters the model does not know, studies it knows too few parameters of
    (:data:`MIN_KNOWN_PARAMS`), multi-objective studies, and trials after the meta phase go to
    ``fallback``, which sees every trial of the study. Optuna 5 constraints
    (``trial.set_constraint``) are respected as TPE respects them: an infeasible trial ranks
    below every feasible one, design entries are ranked by expected improvement times the
    probability of being feasible (see :func:`_feasibility`, :data:`DESIGN_MIN_FEASIBILITY`),
    and until a trial is feasible the surrogate's proposals are weighted by that probability.

    Args:
        model: A shipped model name (default ``"lcbench-mlp"``, MLPs trained with SGD;
            ``"rbv2-xgboost"`` for XGBoost; ``optuna-meta models`` lists them), a path to a
            model file, or a loaded :class:`~optuna_meta.surrogate.SurrogateModel`. A name or
            path that is not a surrogate model file raises ``ModelFileError`` here; the weights
            are loaded at the first trial.
        fallback: The sampler for everything the surrogate does not serve. Defaults to
            ``TPESampler(seed=seed)``, whose random streams MetaSampler then seeds per trial
            (from ``seed`` and the trial number, as the surrogate's proposals are), so workers
            and restarts that share a seed do not repeat each other's draws. A sampler given
            here keeps its own streams: give one without a fixed seed to workers that share a
            study. Parameters the model does not serve go to its relative sampling when it has
            one (multivariate TPE, GPSampler, CmaEsSampler) and to its independent sampling
            otherwise. Not a ``GridSampler`` (a ``ValueError``): it hands every trial a grid
            point, and counts those the surrogate served instead as run.
        task: Optional task meta-features (e.g. ``{"n_samples": 50000}``), kept for models
            trained with meta-features. No model reads them yet: the shipped models and those
            ``optuna-meta train`` builds are trained without (an info log says so).
        param_mapping: Explicit ``{user_name: model_name}`` (``None`` value: never map); wins
            over the alias vocabulary.
        fixed_params: Values your objective uses for hyperparameters it does *not* suggest, in your
            names (matched like suggested ones), e.g. ``{"batch_size": 128}`` or ``{"booster":
            "gbtree"}``. Without them the surrogate assumes the model's own default for an untuned
            parameter (``optuna-meta info`` shows them), which may be far from what your code
            trains with; with them it predicts the configurations you actually run, and design
            entries for another branch of a conditional space (an XGBoost ``gblinear`` entry when
            you run trees) are skipped. A parameter the study suggests ignores its entry here, with
            one warning (in a define-by-run study its first trial may still take the fixed value,
            proposed before it was suggested). Names the model does not know and values it cannot
            represent are ignored with a warning; numbers outside the model's range are clipped to
            it.
        n_meta_trials: How many *completed* trials the surrogate serves before handing over
            to ``fallback`` (``None``: :data:`DEFAULT_N_META_TRIALS`); pruned trials do not
            count. ``0`` disables it.
        n_design_trials: How many of the model's learned initial design configurations (see
            :mod:`optuna_meta.surrogate._design`) trials ``0, 1, ...`` take before the
            surrogate proposes (``None``: the whole design; ``0``: none), counted among the
            entries on the study's branch of a conditional space. A design entry is
            clipped into the study's ranges; one that repeats an existing trial is skipped.
            Models trained without a queryable objective have no design.
        fallback_every: From trial number ``n_design_trials`` on (the design's length by
            default: 10 with the shipped models, 0 for a model without a design), every trial
            number ``k`` with ``k % fallback_every == fallback_every - 1`` goes to
            ``fallback``, a hedge against a model whose prior does not fit the study
            (``None``: :data:`DEFAULT_FALLBACK_EVERY`; ``0``: never). Such trials are labelled
            ``fallback``. The count starts there even when fewer entries apply to the study
            (a branch of a conditional space, a constrained study that leaves the design).
        adaptive_fallback: Give the fallback every other trial
            (:data:`LEADING_FALLBACK_EVERY`) while its interleaved trials improve on the
            study's best more often than the surrogate's own (at least
            :data:`MIN_FALLBACK_IMPROVEMENTS` times; see :func:`_fallback_leads`). The
            surrogate gets its turns back as soon as the fallback's rate falls behind. Why:
            where the model's prior is wrong for the study (an objective unlike its training
            tasks), the fallback's trials are the ones moving the study; where it is right, the
            surrogate's trials keep the lead and nothing changes. ``False``: the fixed
            ``fallback_every`` schedule only.
        task_optima: Let the design trials after the first (up to trial
            :data:`TASK_OPTIMA_TRIALS` - 1) also pick, by expected improvement, one of the
            training tasks' own optima that the model carries
            (``lcbench-mlp`` does: :func:`~optuna_meta.surrogate._build.learn_task_optima`).
            Why: the design serves the training tasks on average, and a task unlike most of
            them may find none of its entries good, while one training task's optimum may suit
            it. Not in a study with constraints: there the design keeps its own entries (a
            larger set, ranked by a feasibility read from a few trials, was much worse).
            ``False``: the design's entries only.
        n_candidates: Random candidates per proposal before local refinement.
        seed: Seed; the same seed gives the same proposals for the same history.

    Example:
        .. code-block:: python

            import optuna
            from optuna_meta import MetaSampler

            def objective(trial):
                lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
                layers = trial.suggest_int("n_layers", 1, 5)
                return train(lr, layers)

            study = optuna.create_study(direction="maximize", sampler=MetaSampler(seed=0))
            study.optimize(objective, n_trials=30)
            print(study.trials[0].user_attrs["optuna_meta:source"])  # "meta"
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | SurrogateModel = DEFAULT_MODEL,
        *,
        fallback: BaseSampler | None = None,
        task: Mapping[str, float | str] | None = None,
        param_mapping: Mapping[str, str | None] | None = None,
        fixed_params: Mapping[str, Any] | None = None,
        n_meta_trials: int | None = None,
        n_design_trials: int | None = None,
        fallback_every: int | None = None,
        adaptive_fallback: bool = True,
        task_optima: bool = True,
        n_candidates: int = 512,
        seed: int | None = None,
    ) -> None:
        if not isinstance(model, (str, os.PathLike, SurrogateModel)):
            raise TypeError(
                "model must be a shipped model name, a path to a model file or a "
                f"SurrogateModel; got {type(model).__name__}."
            )
        self._model_file: str | None = None  # the checked file's absolute path
        if not isinstance(model, SurrogateModel):  # a typo fails here, not silently in the study
            self._model_file = check_model_source(
                model, FORMAT_NAME, FORMAT_VERSION, "surrogate", min_version=MIN_FORMAT_VERSION
            )
        for name, value, example in (
            ("task", task, '{"n_samples": 50000}'),
            ("param_mapping", param_mapping, '{"my_lr": "learning_rate"}'),
            ("fixed_params", fixed_params, '{"batch_size": 128}'),
        ):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(
                    f"{name} must be a mapping, e.g. {example}; got {type(value).__name__}."
                )
        if fallback is not None and not isinstance(fallback, BaseSampler):
            raise TypeError(
                "fallback must be an Optuna sampler instance, e.g. TPESampler(); got "
                f"{fallback!r}."
            )
        if isinstance(fallback, GridSampler):
            raise ValueError(
                "GridSampler cannot be MetaSampler's fallback: it assigns a grid point to every "
                "trial, so the trials the surrogate serves off the grid count as grid points "
                "run (some points never run, others run twice, and it stops the study early). "
                "Run the grid with GridSampler alone, or pass another fallback."
            )
        _check_count("n_meta_trials", n_meta_trials, minimum=0)
        _check_count("n_design_trials", n_design_trials, minimum=0)
        _check_count("fallback_every", fallback_every, minimum=0)
        _check_count("n_candidates", n_candidates, minimum=1, optional=False)
        flags = {"adaptive_fallback": adaptive_fallback, "task_optima": task_optima}
        for flag, value in flags.items():
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False; got {type(value).__name__}.")
        self.model = model
        self.fallback = fallback
        self.task = task
        self.param_mapping = param_mapping
        self.fixed_params = fixed_params
        self.n_meta_trials = n_meta_trials
        self.n_design_trials = n_design_trials
        self.fallback_every = fallback_every
        self.adaptive_fallback = adaptive_fallback
        self.task_optima = task_optima
        self.n_candidates = n_candidates
        self.seed = seed
        self._base_seed = (
            seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        )
        self._fallback = fallback if fallback is not None else TPESampler(seed=seed)
        self._own_fallback = fallback is None  # seeded per trial (`_seed_fallback`)
        self._lock = threading.RLock()
        self._state: _ModelState | None = None
        self._proposals: OrderedDict[tuple[int, int], dict[str, Any] | None] = OrderedDict()
        self._leads: OrderedDict[tuple[int, int], bool] = OrderedDict()  # per trial, see below
        self._histories: OrderedDict[tuple[int, int], _History] = OrderedDict()  # per trial
        self._preset: OrderedDict[tuple[int, int], frozenset[str]] = OrderedDict()  # per trial
        self._name_maps: dict[tuple[int, str], dict[str, str | None]] = {}
        self._local = threading.local()  # this thread's study: its name map
        self._encodings: dict[
            int, tuple[dict[str, Any], frozenset[str], tuple[int, bytes], np.ndarray | None]
        ] = {}
        # Warnings are said once per study (keys of `_use_study`; None: not known yet).
        self._warned_multi: set[tuple[int, str] | None] = set()
        self._warned_coverage: set[tuple[int, str] | None] = set()  # studies told (per study)
        self._warned_fixed: set[tuple[int, str] | None] = set()
        self._model_failed = False  # the model could not be loaded (warned once)
        self._warned_ranges: set[tuple[tuple[int, str] | None, str]] = set()  # (study, name)

    # -- pickling (Ray Tune pickles searchers) -----------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_state"] = None
        state["_proposals"] = OrderedDict()
        state["_leads"] = OrderedDict()
        state["_histories"] = OrderedDict()
        state["_preset"] = OrderedDict()
        state["_encodings"] = {}
        state["_name_maps"] = {}
        for key in ("_warned_coverage", "_warned_multi", "_warned_fixed", "_warned_ranges"):
            state[key] = set()  # keyed by storage ids of this process
        state["_model_failed"] = False  # another process may read the file
        state.pop("_name_map", None)
        state["_local"] = None
        if isinstance(self.model, SurrogateModel):
            state["model"] = ("__bytes__", self.model.to_bytes())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state.get("model")
        error = None
        if isinstance(model, tuple) and len(model) == 2 and model[0] == "__bytes__":
            try:
                state["model"] = SurrogateModel.from_bytes(model[1])
            except Exception as e:  # raising here would lose a Ray trial: this copy
                error = e  # samples with the fallback and says why (the bytes pass on unchanged)
        for key in ("_warned_coverage", "_warned_multi", "_warned_fixed", "_warned_ranges"):
            if not isinstance(state.get(key), set):  # bools (or absent) in older pickles
                state[key] = set()
        state.setdefault("fixed_params", None)  # pickled before fixed_params
        state.setdefault("_name_maps", {})
        state.setdefault("_model_failed", False)
        state.setdefault("_model_file", None)  # pickled before the construction-time check
        state.setdefault("fallback_every", 0)  # pickled before the interleaving: none
        state.setdefault("adaptive_fallback", False)  # pickled before it: the fixed schedule
        state.setdefault("_leads", OrderedDict())
        state.setdefault("_histories", OrderedDict())
        state.setdefault("_preset", OrderedDict())
        state.setdefault("_own_fallback", False)  # pickled before per-trial seeding
        state.pop("_name_map", None)  # one map for every study, before session 14
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._local = threading.local()
        if error is not None:
            self._model_unusable(error)

    def reseed_rng(self) -> None:
        self._base_seed = _fresh_seed()
        self._fallback.reseed_rng()

    # -- BaseSampler API ----------------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._use_study(study)
        if self._use_fallback(study, trial):
            return self._fallback.infer_relative_search_space(study, trial)
        return self._fallback_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._use_study(study)
        if self._use_fallback(study, trial):
            params = self._fallback.sample_relative(study, trial, search_space)
            if params:
                set_user_attr(study, trial, ATTR_SOURCE, "fallback")
            return params
        if not search_space:
            return {}
        # The meta phase's relative space holds only parameters the model does not serve
        # (`_fallback_space`): the fallback models them jointly, the surrogate the rest.
        return self._fallback.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._use_study(study)
        if not self._use_fallback(study, trial, {param_name: param_distribution}):
            try:
                value = self._sample_meta(study, trial, param_name, param_distribution)
            except Exception as e:  # never crash a user's study: fall back and say why
                _logger.warning(
                    f"MetaSampler fell back to {type(self._fallback).__name__} for "
                    f"'{param_name}' of trial {trial.number}: {type(e).__name__}: {e}"
                )
                value = None
            if value is not None:
                return value[0]
        with self._lock:  # `trial.user_attrs` is a stale snapshot: ask the proposal cache
            proposal = self._proposals.get(_trial_key(study, trial))
            served_by_meta = proposal is not None and bool(proposal.get(_LABELLED))
        if not served_by_meta and ATTR_SOURCE not in trial.user_attrs:
            set_user_attr(study, trial, ATTR_SOURCE, "fallback")
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        with self._lock:  # a reused sampler: another storage's trial may have had this id
            self._proposals.pop(_trial_key(study, trial), None)
            self._leads.pop(_trial_key(study, trial), None)
            self._histories.pop(_trial_key(study, trial), None)
            if self._own_fallback:
                _seed_fallback(self._fallback, self._base_seed, trial.number)
            # Parameters a trial starts with (a WAITING trial added with them, a retried
            # one) are no sampler's: `after_trial` does not label them the fallback's.
            _remember(self._preset, _trial_key(study, trial), frozenset(trial.params))
        self._fallback.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._proposals.pop(_trial_key(study, trial), None)
            self._leads.pop(_trial_key(study, trial), None)
            self._histories.pop(_trial_key(study, trial), None)
            preset = self._preset.pop(_trial_key(study, trial), frozenset())
        if (
            trial.params
            and ATTR_SOURCE not in trial.user_attrs
            and not _all_enqueued(trial)
            and not preset.issuperset(trial.params)
        ):
            # Every parameter came from the fallback's relative sampling (the model serves
            # none of them), which does not label the trial while the surrogate may still.
            set_user_attr(study, trial, ATTR_SOURCE, "fallback")
        self._fallback.after_trial(study, trial, state, values)

    # -- internals ----------------------------------------------------------------------------
    def _use_fallback(
        self,
        study: Study,
        trial: FrozenTrial,
        asked: Mapping[str, BaseDistribution] | None = None,
    ) -> bool:
        """Whether the fallback samples ``trial`` (or, with ``asked``, that parameter of it)."""
        if study._is_multi_objective():
            if self._first_for_study(self._warned_multi):
                warnings.warn(
                    "MetaSampler's surrogate is single-objective; this multi-objective study "
                    "is sampled by the fallback sampler.",
                    stacklevel=user_stacklevel(),
                )
            return True
        limit = DEFAULT_N_META_TRIALS if self.n_meta_trials is None else self.n_meta_trials
        if limit <= 0 or self._model_failed:
            return True
        try:
            state = self._model_state()
        except Exception as e:  # a missing, foreign or unreadable file: the fallback, once said
            self._model_unusable(e)
            return True
        trials = study._get_trials(deepcopy=False, use_cache=True)
        if self._fallback_turn(study, trial, state, trials):
            return True
        history = self._history(study, trial, trials)
        return history.n_complete >= limit or self._barely_known(history.names, trial, asked)

    def _history(
        self, study: Study, trial: FrozenTrial, trials: Sequence[FrozenTrial]
    ) -> _History:
        """The study's completed-trial count and finished trials' names, once per trial.

        Why: :meth:`_use_fallback` asks for them at every parameter, and each pass reads every
        trial and its distributions. A study whose trials mostly fail stays in the meta phase
        (only completed trials count towards ``n_meta_trials``): at 2000 trials those passes
        made a trial cost 4.8 times TPE's (session 32 review). ``trials`` is Optuna's view of
        the study for the trial being sampled, fixed from ``ask`` on, as in
        :meth:`_fallback_turn`.
        """
        key = _trial_key(study, trial)
        with self._lock:
            history = self._histories.get(key)
        if history is None:
            history = _History(
                n_complete=sum(t.state == TrialState.COMPLETE for t in trials),
                names=_finished_names(trials, trial),
            )
            with self._lock:
                _remember(self._histories, key, history)
        return history

    def _fallback_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The fallback's relative search space less the parameters the model serves.

        Why: parameters the model does not serve would otherwise reach the fallback one at a
        time through ``sample_independent``, which samplers such as ``GPSampler`` and
        ``CmaEsSampler`` answer with random values (and a warning per parameter and trial);
        multivariate TPE models them jointly too. Empty for a fallback without relative
        sampling, and in a study whose parameters the model all serves.
        """
        try:
            state = self._model_state()
            trials = study._get_trials(deepcopy=False, use_cache=True)
            last = next(
                (t for t in reversed(trials) if t.state == TrialState.COMPLETE and t.params), None
            )
            if last is not None and all(
                self._served_range(state, k, d, claim=False) for k, d in last.distributions.items()
            ):
                # The fallback's space intersects the spaces of the completed trials (and of
                # the pruned ones, for TPE): it lies within this one's, which the model serves
                # whole (about 0.2 ms a trial saved at trial 50 on LCBench).
                return {}
            space = self._fallback.infer_relative_search_space(study, trial)
            return {
                k: d for k, d in space.items() if not self._served_range(state, k, d, claim=False)
            }
        except Exception as e:  # never crash a user's study: independent sampling then
            _logger.debug(f"No relative space for the fallback in trial {trial.number}: {e}")
            return {}

    def _fallback_turn(
        self, study: Study, trial: FrozenTrial, state: _ModelState, trials: Sequence[FrozenTrial]
    ) -> bool:
        """Whether ``trial`` is the fallback's: an interleaved trial (``fallback_every``), or
        one of every :data:`LEADING_FALLBACK_EVERY` while the fallback leads
        (``adaptive_fallback``).

        ``trials`` is the study's history as Optuna caches it for the trial being sampled (per
        thread, from ``ask`` on), so a trial another worker finishes meanwhile cannot split
        this one between the two samplers. The lead is computed once per trial and kept: this
        is asked once per parameter, and reading every trial's attrs each time would cost more
        than the rest of a proposal (0.1 ms a call at 50 trials).
        """
        every = DEFAULT_FALLBACK_EVERY if self.fallback_every is None else self.fallback_every
        if every <= 0:
            return False
        design = state.design
        n_design = len(design) if self.n_design_trials is None else self.n_design_trials
        start = min(n_design, len(design))
        turn = _scheduled_turn(trial.number, start, every, self.adaptive_fallback)
        if turn is not None:
            return turn
        key = _trial_key(study, trial)
        with self._lock:
            leads = self._leads.get(key)
        if leads is None:
            leads = _fallback_leads(trials, start, study.direction)
            with self._lock:
                _remember(self._leads, key, leads)
        return leads

    def _model_unusable(self, error: Exception) -> None:
        """Send every trial to the fallback in this process; warn once (as MetaPruner does)."""
        with self._lock:
            if self._model_failed:
                return
            self._model_failed = True
        _logger.warning(
            f"MetaSampler could not load its model {_model_label(self.model)} "
            f"({type(error).__name__}: {error}); {type(self._fallback).__name__} samples every "
            "trial. `optuna-meta models` lists the shipped models."
        )

    def _barely_known(
        self,
        names: Mapping[str, BaseDistribution],
        trial: FrozenTrial,
        asked: Mapping[str, BaseDistribution] | None = None,
    ) -> bool:
        """Whether the model knows too few of ``names``, the parameters of the study's other
        finished trials (:func:`_finished_names`).

        Then the fallback samples the whole study, relative sampling included (TPE is
        multivariate by default since Optuna 5), except a trial on a branch no finished trial
        took (:meth:`_new_branch`). The trial being sampled is judged again with its own names
        in ``_compute_proposal``: trial 0 has no predecessors to judge by.
        """
        if not names:
            return False
        try:
            state = self._model_state()
        except Exception:  # an unusable model: ``sample_independent`` falls back and says why
            return False
        if asked and self._new_branch(state, names, trial, asked):
            return False
        return self._too_few_known(state, names)

    def _new_branch(
        self,
        state: _ModelState,
        finished: Collection[str],
        trial: FrozenTrial,
        asked: Mapping[str, BaseDistribution],
    ) -> bool:
        """Whether ``trial`` asks a parameter the model serves that no finished trial asked.

        Why: a conditional study is judged by the names of its finished trials. When they all
        took a branch the model does not know (``classifier="svm"``), a trial that takes
        another (``"mlp"``, asking ``learning_rate``, ``batch_size``, ...) would go to the
        fallback on their account, and the design's first entry would wait for a later trial
        on that branch. Such a trial is judged as trial 0 is, by the names it asks
        (``_compute_proposal``); once it finishes its names judge the study with the others.
        """
        own = {**trial.distributions, **asked}
        return any(
            k not in finished and self._served_range(state, k, d, claim=False)
            for k, d in own.items()
        )

    def _model_state(self) -> _ModelState:
        with self._lock:
            if self._state is None:
                model = (
                    self.model
                    if isinstance(self.model, SurrogateModel)
                    else SurrogateModel.load(model_source(self.model, self._model_file))
                )
                self._state = _ModelState(model)
                if self.task and not model.manifest.get("meta_features"):
                    _logger.info(
                        "The surrogate was trained without task meta-features; `task` is "
                        "recorded but does not condition its proposals."
                    )
            return self._state

    def _fixed_model_params(
        self, state: _ModelState, values: Mapping[str, Any], warn: Collection[str]
    ) -> dict[str, Any]:
        """``values`` in the model's names and representation.

        Names the model does not know and values it cannot represent are left out, with a
        warning for those in ``warn``.
        """
        mapping = self.param_mapping or {}
        out: dict[str, Any] = {}
        for user_name, value in values.items():
            target = mapping[user_name] if user_name in mapping else state.match(user_name)
            if target is None or target not in state.model.search_space:
                if user_name not in warn:
                    continue
                warnings.warn(
                    f"fixed_params: the model does not know {user_name!r} (its parameters: "
                    f"{list(state.model.search_space)}); the value is ignored.",
                    stacklevel=user_stacklevel(),
                )
                continue
            try:
                out[target] = project_value(value, state.model.search_space[target])
            except ProjectionError as e:
                if user_name not in warn:
                    continue
                warnings.warn(
                    f"fixed_params: {user_name}={value!r} cannot be represented by the model's "
                    f"{target!r} ({e}); the model's default is assumed instead.",
                    stacklevel=user_stacklevel(),
                )
        return out

    def _apply_fixed(self, state: _ModelState, wrapper_fixed: Mapping[str, Any]) -> None:
        """Make ``state`` assume ``fixed_params`` plus ``wrapper_fixed`` (if they changed)."""
        values = {**(self.fixed_params or {}), **wrapper_fixed}
        if values != state.fixed_values:
            # fixed_params' problems are said at the first fix; a wrapper's parameters may be
            # unknown to the model by design.
            first = state.fixed_values is None
            warn = set(self.fixed_params or {}) - set(wrapper_fixed) if first else set()
            state.fix(self._fixed_model_params(state, values, warn))
            state.fixed_values = values

    def _warn_range(
        self,
        name: str,
        model_name: str,
        model_dist: BaseDistribution,
        coverage: float,
        choices: bool = False,
    ) -> None:
        """Say once per parameter that its range (or, with ``choices``, its categorical
        choices) reaches beyond what the model knows."""
        if not self._first_for_study(self._warned_ranges, name):
            return
        lo, hi = getattr(model_dist, "low", None), getattr(model_dist, "high", None)
        known = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else "its choices"
        if coverage < MIN_RANGE_COVERAGE:
            what = f"so {type(self._fallback).__name__} samples {name!r}"
        else:
            what = (
                f"so during the meta phase {name!r} is proposed inside {known} only (the "
                "fallback explores the rest after it)"
            )
        share = math.floor(100 * coverage)
        where = (
            f"of the choices of {name!r} are values the model knows for"
            if choices
            else f"of the range of {name!r} lies where the model knows"
        )
        warnings.warn(
            f"Only {share}% {where} {model_name!r} ({known}), {what}.",
            stacklevel=user_stacklevel(),
        )

    def _warn_fixed_and_suggested(self, state: _ModelState, names: Collection[str]) -> None:
        """Say once that ``fixed_params`` names a parameter the study suggests."""
        both = [k for k in names if self._model_name(state, k) in state.fixed]
        if not both:
            return
        self._warned_fixed.add(self._study_key())
        warnings.warn(
            f"fixed_params names {both}, which the study suggests: the suggested values are "
            "used for them (a first trial may take the fixed value before it is suggested).",
            stacklevel=user_stacklevel(),
        )

    def _served_range(
        self, state: _ModelState, name: str, dist: BaseDistribution, claim: bool = True
    ) -> bool:
        """Whether the model knows ``name`` and enough of ``dist``'s range to serve it.

        ``claim=False`` leaves a name not matched yet unmatched (see :meth:`_model_name`).
        """
        model_name = self._model_name(state, name, claim=claim, dist=dist)
        if model_name is None:
            return False
        model_dist = state.model.search_space[model_name]
        return range_coverage(dist, model_dist) >= MIN_RANGE_COVERAGE

    def _first_for_study(self, said: set[Any], name: str | None = None) -> bool:
        """Whether this thread's study (and ``name`` in it) has not been told a warning of the
        kind ``said`` records yet; marks it told. Warnings are said once per study: a sampler
        shared by studies (or reused) must tell each of them."""
        key = self._study_key() if name is None else (self._study_key(), name)
        with self._lock:
            if key in said:
                return False
            said.add(key)
            return True

    def _study_key(self) -> tuple[int, str] | None:
        """The key of the study this thread serves (:meth:`_use_study`); None before one."""
        return getattr(self._local, "study_key", None)

    def _use_study(self, study: Study) -> None:
        """Match names in ``study``'s own map from now on, in this thread.

        Names are matched per study: a sampler reused for a study with other names (``lr``
        in one, ``learning_rate`` in the next) must not find them taken. Each entry point
        that has the study sets it (threads may serve different studies at once).
        """
        storage = study._storage
        key = (id(storage), study.study_name)
        with self._lock:
            if key not in self._name_maps:
                # A dead storage's address may be reused by a new one: forget its studies.
                # One finalizer a storage, holding the sampler weakly: a bound method kept
                # every sampler a long-lived storage had served alive (a sweep of studies on
                # one InMemoryStorage or JournalStorage leaked each sampler and its model).
                if not any(k[0] == id(storage) for k in self._name_maps):
                    try:
                        weakref.finalize(storage, _forget_storage, weakref.ref(self), id(storage))
                    except TypeError:  # a storage type without weak references
                        pass
                self._name_maps[key] = {}
            self._local.name_map = self._name_maps[key]
            self._local.study_key = key

    def _forget_storage(self, storage_id: int) -> None:
        with self._lock:
            for key in [k for k in self._name_maps if k[0] == storage_id]:
                del self._name_maps[key]

    @property
    def _name_map(self) -> dict[str, str | None]:
        name_map = getattr(self._local, "name_map", None)
        if name_map is None:  # used outside a study (tests, tools): one map of its own
            name_map = self._local.name_map = {}
        return name_map

    def _model_name(
        self,
        state: _ModelState,
        user_name: str,
        claim: bool = True,
        dist: BaseDistribution | None = None,
    ) -> str | None:
        """Map a user parameter name to a model parameter (first come, first served).

        ``claim=False`` only looks: a name not matched yet stays free for the study's own
        suggestions to claim in their order (a fallback reused across studies may still name
        another study's parameters). With ``dist``, a name whose values the model parameter
        cannot take (:func:`~optuna_meta.space.can_represent`: scikit-learn's ``learning_rate``
        schedule strings) maps to nothing, and leaves the model parameter free for another
        of the study's names (``learning_rate_init``).
        """
        with self._lock:
            if user_name in self._name_map:
                mapped = self._name_map[user_name]
                if mapped is not None and not self._represents(state, user_name, mapped, dist):
                    if claim:
                        self._name_map[user_name] = None
                    return None
                return mapped
            target: str | None = None
            mapping = self.param_mapping or {}
            if user_name in mapping:
                target = mapping[user_name]
                if target is not None and target not in state.model.search_space:
                    if claim:  # only this parameter goes to the fallback; say so once
                        warnings.warn(
                            f"param_mapping sends {user_name!r} to {target!r}, which the model "
                            f"does not know (its parameters: {list(state.model.search_space)}); "
                            f"{user_name!r} is sampled by the fallback.",
                            stacklevel=user_stacklevel(),
                        )
                    target = None
            else:
                target = state.match(user_name)
            taken = {v for k, v in self._name_map.items() if v is not None}
            if target in taken or (
                target is not None
                and target in mapping.values()
                and mapping.get(user_name) != target
            ):
                target = None
            if target is not None and not self._represents(state, user_name, target, dist):
                target = None
            if claim:
                self._name_map[user_name] = target
            return target

    def _represents(
        self,
        state: _ModelState,
        user_name: str,
        model_name: str,
        dist: BaseDistribution | None,
    ) -> bool:
        """Whether ``model_name`` can take ``user_name``'s values (``dist``; None: unknown,
        assumed so); warns once per name when it cannot."""
        model_dist = state.model.search_space[model_name]
        if dist is None or can_represent(dist, model_dist):
            return True
        if self._first_for_study(self._warned_ranges, user_name):
            choices = getattr(dist, "choices", None)
            values = f"choices {list(choices)!r}" if choices is not None else repr(dist)
            warnings.warn(
                f"{user_name!r} takes {values}, which the model's {model_name!r} cannot take "
                f"({model_dist!r}), so {type(self._fallback).__name__} samples it as a "
                "parameter the model does not know. If another of your names is the model's "
                f"{model_name!r}, it is matched to it.",
                stacklevel=user_stacklevel(),
            )
        return False

    def _sample_meta(
        self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> tuple[Any] | None:
        state = self._model_state()
        model_name = self._model_name(state, name, dist=dist)
        if model_name is None:
            return None
        # Checked before the proposal: a parameter the fallback samples must not make the
        # first trial's proposal judge the study by it alone (the coverage rule).
        model_dist = state.model.search_space[model_name]
        coverage = range_coverage(dist, model_dist)
        if coverage < WARN_RANGE_COVERAGE:
            choices = isinstance(dist, CategoricalDistribution)
            self._warn_range(name, model_name, model_dist, coverage, choices)
            if coverage < MIN_RANGE_COVERAGE:
                return None
        proposal = self._proposal(study, trial, state, {name: dist})
        if proposal is None or model_name not in proposal:
            return None
        try:
            value = project_value(proposal[model_name], dist, state.model.search_space[model_name])
        except ProjectionError:
            return None
        self._label_meta(study, trial, proposal)
        return (value,)

    def _label_meta(self, study: Study, trial: FrozenTrial, proposal: dict[str, Any]) -> None:
        """Record, once per trial, that the surrogate served it, with its prediction.

        Only when a value of the proposal is used: a trial whose every parameter went to the
        fallback (the model's choices projected onto none of the study's) was labelled
        ``meta`` with a prediction of a configuration it did not run (session 32 review).
        """
        with self._lock:  # other threads read proposals (``_proposed_x``) under the lock
            if proposal.get(_LABELLED):
                return
            proposal[_LABELLED] = True
        pred = proposal.get(_PREDICTION)
        set_user_attr(study, trial, ATTR_SOURCE, "meta")
        if pred is None:
            return
        sign, scale, shift, n_obs = pred
        if n_obs >= 2:  # before that the standardisation does not know the user's units
            mean = shift + scale * proposal_mean(proposal)
            std = scale * proposal_std(proposal)
            if math.isfinite(mean) and math.isfinite(std):  # JSON has no inf (the dashboard)
                set_user_attr(study, trial, ATTR_PRED_MEAN, float(sign * mean))
                set_user_attr(study, trial, ATTR_PRED_STD, float(std))

    def _proposal(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _ModelState,
        asked: Mapping[str, BaseDistribution],
    ) -> dict[str, Any] | None:
        """The surrogate's configuration for ``trial`` (computed once), or None: fallback.

        ``asked`` is the parameter being sampled: not in ``trial.distributions`` yet.
        """
        with self._lock:
            key = _trial_key(study, trial)
            if key in self._proposals:
                return self._proposals[key]
            proposal, pred = self._compute_proposal(study, trial, state, asked)
            if proposal is _UNDECIDED:
                return None
            if proposal is not None and pred is not None:
                proposal[_PREDICTION] = pred  # recorded by `_label_meta` once a value is used
            _remember(self._proposals, key, proposal)
        return proposal

    def _compute_proposal(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _ModelState,
        asked: Mapping[str, BaseDistribution],
    ) -> tuple[dict[str, Any] | None, tuple[float, float, float, int] | None]:
        trials = study._get_trials(deepcopy=False, use_cache=False)
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        X_obs, y_raw, margins, X_pending = [], [], [], []
        X_dead = []  # failed trials, and pruned ones without a predicted final
        X_proposed = []  # proposals of trials other threads are sampling
        constrained = False
        # Each parameter's current distribution: this trial's, then the most recent trial's
        # (a user who moves a range searches the new one, not the oldest trial's).
        seen: dict[str, BaseDistribution] = dict(trial.distributions)
        for t in reversed(trials):
            for k, d in t.distributions.items():
                seen.setdefault(k, d)
        seen.update((k, d) for k, d in asked.items() if k in seen)
        # Parameters a PartialFixedSampler around this sampler fixes are fixed values, like
        # ``fixed_params``: searching them would make proposals that differ only there, and
        # so repeat a trial once the wrapper puts its value back.
        wrapper_fixed = _wrapper_fixed_params(study, self)
        self._apply_fixed(state, wrapper_fixed)
        seen = {k: d for k, d in seen.items() if k not in wrapper_fixed}
        # Parameters whose range the model serves too little of are the fallback's: like names
        # it does not know, they stay out of the encoding, the search box and the duplicate
        # checks, or proposals that differ only there would repeat the served parameters.
        unserved = self._unserved(state, seen)
        # Values this trial already holds (enqueued, a retry's, or suggested before the
        # proposal) are not the surrogate's to choose: their names are pinned at those values
        # in the search box, the design entries, the duplicate checks and the prediction
        # (:func:`_pinned_space`).
        # Which names the model serves is still judged by the study's ranges (``seen``): a
        # value outside the model's range would otherwise read as a range it does not cover,
        # warn, leave the other trials' encodings without that name and might hand the study
        # to the fallback.
        pinned = _pinned_space(trial, seen)
        served = {k: pinned.get(k, d) for k, d in seen.items() if k not in unserved}
        # Other workers' trials: while any runs, the design keeps its order and each trial
        # claims its entry (``_design_point``). A finished trial tells the study's names.
        others_running = False
        judged = False
        finished_names: set[str] = set()
        for t in trials:
            if t._trial_id == trial._trial_id:
                continue
            others_running |= t.state in _ACTIVE
            if t.state.is_finished():
                judged |= bool(t.params)
                finished_names.update(t.distributions)
            # A trial another thread is sampling may have none or only some of its params in
            # the storage yet, but this sampler proposed all of them: pending there, so two
            # threads do not propose one point.
            x = self._proposed_x(state, _trial_key(study, t)) if t.state in _ACTIVE else None
            if x is not None:
                X_pending.append(x)
                X_proposed.append(x)
                continue
            x = self._encoded(state, t, unserved)
            if x is None:
                continue
            y = _observed_value(t)
            if y is None:
                if t.state in _ACTIVE:
                    X_pending.append(x)
                elif t.state in (TrialState.FAIL, TrialState.PRUNED):
                    X_dead.append(x)
                continue
            X_obs.append(x)
            y_raw.append(sign * y)
            margin = _margin(t)
            constrained |= margin is not None
            margins.append(-math.inf if margin is None else margin)  # none set: feasible
        names = {**asked, **seen}  # the parameter being asked is not in a distribution yet
        # The study is judged once a finished trial tells its parameters. Before that (trial 0,
        # or workers starting together) names still to come may be known ones: a study asking
        # two unknown names before four known ones takes the design's first entry. Only when a
        # shipped model of another kind knows more of the names asked so far (an XGBoost
        # study asking ``booster``, ``nrounds``, then ``eta``; or ``n_estimators``, then
        # ``learning_rate``) does the name being asked go to the fallback, and the trial's
        # next known name is judged again. A trial on a branch no finished trial took is
        # judged as trial 0 is, by its own names (``_new_branch``).
        if judged and not self._new_branch(state, finished_names, trial, asked):
            if self._too_few_known(state, names):
                return None, None
        elif self._another_kind(state, {**trial.distributions, **asked} if judged else names):
            return _UNDECIDED, None
        if state.fixed and self._study_key() not in self._warned_fixed:
            self._warn_fixed_and_suggested(state, names)
        y = np.asarray(y_raw, dtype=float)
        X = np.asarray(X_obs, dtype=float).reshape(len(X_obs), state.n_features)
        if not np.isfinite(y).all():
            y = _finite_oriented(y)
            if y is None:  # nothing finite: nothing to learn from
                X, y = X[:0], np.zeros(0)
        g = np.asarray(margins, dtype=float)[: len(y)]
        if constrained and (g <= 0.0).any():  # infeasible trials rank below every feasible one
            y = np.where(g <= 0.0, y, np.min(y[g <= 0.0]))
        X, y, g = _cap(X, y, g)
        ys, mu, sd = _standardise(_clip_outliers(y))
        feasibility = _feasibility(state, X, g) if constrained and len(y) else None
        box = state.box(self._user_space_in_model(state, served))
        rng = np.random.default_rng([self._base_seed, trial.number])
        # Failed and value-less pruned trials are fantasies too (no proposal near them), the
        # most recent MAX_DEAD_FANTASIES only: under WilcoxonPruner or HyperbandPruner they pile
        # up by the thousand, and each is a row of the GP (2000 of them: 1.2 s a trial). The
        # duplicate check below still sees them all.
        fantasies = X_pending + X_dead[max(0, len(X_dead) - MAX_DEAD_FANTASIES) :]
        P = np.asarray(fantasies, dtype=float).reshape(len(fantasies), state.n_features)
        user_space = self._served_space(state, served)
        # Existing configurations, keyed on the served parameters each trial has: in a
        # conditional space (XGBoost's ``booster``) a trial lacks the parameters inactive on
        # its branch, and a proposal that agrees with it on all of its own parameters (the
        # branch's parents included) repeats it.
        taken: dict[frozenset[str], set[tuple[tuple[str, Any], ...]]] = {}
        for t in trials:
            if t._trial_id != trial._trial_id and t.params:
                own = frozenset(k for k in t.params if k in user_space)
                if own:  # a trial of parameters the model does not serve repeats nothing
                    taken.setdefault(own, set()).add(_param_key(t.params, own))
        for x in X_proposed:  # what those trials will get, once projected onto the user's space
            params = self._to_user_params(state, x, user_space)
            own = frozenset(params)
            if own:
                taken.setdefault(own, set()).add(_param_key(params, own))

        near = np.asarray(X_obs + X_pending + X_dead, dtype=float).reshape(-1, state.n_features)

        def is_duplicate(x: np.ndarray) -> bool:
            # Two proposals that project onto the same user configuration waste a trial, and
            # so does one a hair's breadth from a tried one (:data:`MIN_SEPARATION`).
            if len(near) and np.min(np.max(np.abs(near - x), axis=1)) < MIN_SEPARATION:
                return True
            params = self._to_user_params(state, x, user_space)
            return any(_param_key(params, own) in keys for own, keys in taken.items())

        design_x = self._design_point(
            study,
            trial,
            state,
            # The entry is clipped into the asked parameter's range or choices too, and onto
            # the enqueued values.
            {k: pinned.get(k, d) for k, d in names.items() if k not in unserved},
            (X, ys, feasibility) if len(ys) and not others_running else None,
            is_duplicate if user_space and taken else None,
            racing=others_running,
        )
        if design_x is not None and not (user_space and taken and is_duplicate(design_x)):
            with single_threaded_blas():
                pred = state.gp.condition(X, ys).predict(design_x[None, :])
            params = state.decode(design_x)
            params["__mean__"] = float(pred.mean[0])
            params["__std__"] = float(pred.std[0])
            return params, (sign, sd, mu, len(y))
        with single_threaded_blas():
            prop: Proposal = propose(
                state.gp,
                box,
                X,
                ys,
                P,
                rng,
                n_candidates=self.n_candidates,
                is_duplicate=is_duplicate if taken else None,
                # Until a trial is feasible, the surrogate's own proposals look for feasibility
                # too (chosen by benchmark, ``benchmarks/README.md``, session 13).
                weight=(
                    feasibility.prob
                    if feasibility is not None and not feasibility.any_feasible
                    else None
                ),
            )
        params = state.decode(prop.x)
        params["__mean__"] = prop.mean
        params["__std__"] = prop.std
        return params, (sign, sd, mu, len(y))

    def _proposed_x(self, state: _ModelState, key: tuple[int, int]) -> np.ndarray | None:
        """The encoded configuration proposed for the trial ``key`` (None if none is cached)."""
        proposal = self._proposals.get(key)
        if not proposal:
            return None
        return state.encode({k: v for k, v in proposal.items() if not k.startswith("__")})

    def _another_kind(self, state: _ModelState, names: Collection[str]) -> bool:
        """Whether a shipped model of another kind knows more of ``names`` than this one
        (by name).

        Why: before a finished trial tells a study's names, a known name asked among unknown
        ones fits two studies: one whose known names come later (an MLP script asking
        ``activation`` and ``label_smoothing`` before ``lr`` and four more), served best by the
        design's entry, and one of another kind that shares a name with the model (XGBoost's
        ``booster``, ``nrounds``, then ``eta``; or ``n_estimators``, then ``learning_rate``, 1
        known name of 2, which the coverage rule alone would serve), where an MLP's learning
        rate is a poor ``eta``. The names asked so far tell them apart when a shipped model of
        that other kind knows them. Names ``param_mapping`` sends to the fallback count for no
        model. A model that is not a shipped one (``optuna-meta train`` on the user's own
        studies) is never second-guessed: it was chosen for such studies, and a shipped
        XGBoost model knowing one more name sent trial 0 to the fallback without a word
        (session 32 review). Measured on LCBench with two unknown names asked first
        (``benchmarks/unknown_params.py``) and on rbv2_xgboost with the MLP model
        (``benchmarks/README.md``, session 31).
        """
        if not _is_shipped(state.model):
            return False  # a model of the user's own is never second-guessed by ours
        own = sum(self._model_name(state, k, claim=False) is not None for k in names)
        better = _best_shipped_model(self._not_excluded(names), exclude=state.model)
        return better is not None and better[1] > own

    def _not_excluded(self, names: Collection[str]) -> list[str]:
        """``names`` less those ``param_mapping`` sends to the fallback (mapped to None): no
        model should count them when the shipped models are compared."""
        mapping = self.param_mapping or {}
        return [k for k in names if not (k in mapping and mapping[k] is None)]

    def _too_few_known(self, state: _ModelState, names: Mapping[str, BaseDistribution]) -> bool:
        """The coverage rule (:data:`MIN_KNOWN_PARAMS`); warns once when it sends a study away.

        A parameter counts as known when the model knows its name and at least
        :data:`MIN_RANGE_COVERAGE` of its range (otherwise the fallback samples it anyway).
        """
        known = [k for k, d in names.items() if self._served_range(state, k, d)]
        if len(known) >= min(MIN_KNOWN_PARAMS, math.ceil(len(names) / 2)):
            return False
        if not self._first_for_study(self._warned_coverage):
            return True
        name = state.model.manifest.get("name", "the model")
        hint = ""
        outside = [
            k for k, d in names.items() if k not in known and self._model_name(state, k, dist=d)
        ]
        # Another model is suggested only if it knows more of the names this one could serve
        # at all: not the names the user sent to the fallback, nor those whose ranges lie
        # outside (a sibling with the same ranges would send the user straight back).
        candidates = [k for k in self._not_excluded(names) if k not in outside]
        better = _best_shipped_model(candidates, exclude=state.model)
        if better is not None and better[1] > len(known):
            hint = (
                f" The shipped model {better[0]!r} knows {better[1]}: "
                f"MetaSampler(model={better[0]!r})."
            )
        excluded = [k for k in names if k not in candidates and k not in outside]
        verb = "lies" if len(outside) == 1 else "lie"
        if outside:
            why = f"; {', '.join(outside)} {verb} mostly outside the ranges it was trained on"
        elif excluded:
            why = f"; param_mapping sends {', '.join(excluded)} to the fallback"
        else:
            why = " (it was trained on another kind of model)"
        warnings.warn(
            f"MetaSampler's model {name!r} knows {len(known)} of this study's {len(names)} "
            f"parameters ({', '.join(known) or 'none'}), too few to help{why}, so "
            f"{type(self._fallback).__name__} samples this study (until its finished trials "
            "show more of the names the model knows; a trial asking known names they did not "
            f"ask is judged by its own).{hint} Train a model on "
            "studies like this one with `optuna-meta train`, or map names with "
            "`param_mapping`.",
            stacklevel=user_stacklevel(),
        )
        return True

    def _design_point(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _ModelState,
        seen: Mapping[str, BaseDistribution],
        observed: tuple[np.ndarray, np.ndarray, Feasibility | None] | None,
        is_duplicate: Callable[[np.ndarray], bool] | None,
        racing: bool = False,
    ) -> np.ndarray | None:
        """The design entry ``trial`` takes, clipped into the study's ranges, or None.

        Trials ``0 .. n_design - 1`` take the design's entries; trial 0 takes entry 0 (the best
        single configuration on the training tasks), or the first entry on the study's branch of a
        conditional space (:meth:`_ModelState.off_default_branch`). A later trial with no
        finished trial of the served parameters to rank the entries by (the earlier ones
        failed, or took a branch the model does not serve) takes the first entry none of them
        tried. A model whose manifest sets ``design_fixed_trials``
        (:data:`DESIGN_FIXED_TRIALS_KEY`; 2 for a design that hedges for short runs from its
        second entry) has that many trials take their entries in order in a study without
        constraints. After them, with ``observed`` (the finished
        trials' encoded configurations and standardised values, given only while no other trial
        runs), a trial takes the untried entry with the highest expected improvement under the
        surrogate conditioned on them. The set of entries stays the one chosen to complement each
        other, but a task whose first results point to, say, small learning rates tries the entries
        there first (chosen by benchmark, ``benchmarks/README.md``, session 10: regret at 5 trials
        0.0041 against 0.0103 in fixed order). With ``task_optima``, in a study without
        constraints, trials before :data:`TASK_OPTIMA_TRIALS` pick from the training tasks' own
        optima the model carries too (session 19: on LCBench's held-out tasks 0.0095 against
        0.0279 at 5 and 10 trials).

        Parallel workers never take the same entry. While other trials run (``racing``), trial
        ``k`` takes the ``k``-th entry on the study's branch (numbers are unique), unless a
        running trial claims it or one alike (their ``optuna_meta:design_entry`` system attrs,
        :meth:`_take_entry`) or a trial tried it: then the first entry none has
        (:meth:`_take_free_entry`). A trial that picks by EI claims its entry first, then looks
        again: a trial that started meanwhile may not have seen the claim and takes the entry
        of its own number, so this one then takes its own number's, or the first free one.
        ``is_duplicate`` marks entries already tried. In a study with constraints the
        entries are ranked by expected improvement times their probability of being feasible
        (that alone while no trial is feasible), and the design is left for the surrogate's
        proposals (None) once the best entry's is below :data:`DESIGN_MIN_FEASIBILITY`.

        Parameters the study has not suggested yet keep the entry's value (a design entry is
        a whole configuration; in a define-by-run study the next ``suggest_*`` projects it),
        rather than the model's default the surrogate's search box pins them to.
        """
        design = state.design
        limit = len(design) if self.n_design_trials is None else self.n_design_trials
        number = trial.number
        if number >= min(limit, len(design)):
            return None
        tuned = self._user_space_in_model(state, seen)
        unfixed = {k: v for k, v in state.model.search_space.items() if k not in state.fixed}
        ranges = {**unfixed, **tuned}
        raw = np.asarray(design, dtype=float)
        box = state.box(ranges)
        entries = box.clip(raw)
        # The design's first `limit` distinct entries on the study's branch, in order: trial k
        # takes the k-th of them. Entries the study cannot tell apart (they differ only in
        # parameters it does not tune) count once, or two workers deciding at the same moment
        # would run one configuration twice; they are dropped before the `limit` cut, so
        # `n_design_trials` design trials try that many distinct configurations.
        # Entries for a choice the study does not offer (or not the value enqueued) are
        # skipped too, not run with the choice swapped.
        other = state.off_default_branch(raw, tuned) | box.off_choices(raw)
        on_branch = self._distinct_entries(
            state, entries, [i for i in range(len(design)) if i not in other], seen
        )[:limit]
        own_entry = on_branch[number] if number < len(on_branch) else None
        own = None if own_entry is None else entries[own_entry]
        if racing:
            return self._take_free_entry(
                study, trial, state, entries, own_entry, on_branch, seen, is_duplicate
            )
        if observed is None:
            if number == 0:
                return own
            # Nothing finished to rank the entries by, yet trials before this one ran: on
            # another branch (``_new_branch``), or they failed. The first entry they did not
            # try, not the one of this trial's number, which would skip entries never run.
            tried = is_duplicate or (lambda x: False)
            untried = [i for i in on_branch if not tried(entries[i])]
            if not untried or untried[0] == own_entry:
                return own
            if self._claim(study, trial, untried[0], own_entry):  # as an EI pick is
                return entries[untried[0]]
            return self._take_free_entry(
                study, trial, state, entries, own_entry, on_branch, seen, is_duplicate
            )
        X, ys, feasibility = observed
        if number < state.design_fixed_trials and feasibility is None:
            # The fixed order serves unconstrained studies; in a study with constraints the
            # first trials' feasibility is news the design never saw, so from trial 1 the
            # entries are ranked with it (session 23: 0.0901 and 0.1582 less regret at 3
            # trials on constrained LCBench, see DESIGN_FIXED_TRIALS_KEY).
            return own
        if (
            self.task_optima
            and feasibility is None
            and len(state.task_optima)
            and number < TASK_OPTIMA_TRIALS
        ):
            # The training tasks' optima join the candidates; they are numbered after the
            # design's entries (in the claim attr as well).
            optima = box.clip(state.task_optima)
            off = state.off_default_branch(state.task_optima, tuned)
            off |= box.off_choices(state.task_optima)
            on_branch += [len(design) + j for j in range(len(optima)) if j not in off]
            entries = np.vstack([entries, optima])
        free = [i for i in on_branch if is_duplicate is None or not is_duplicate(entries[i])]
        if not free:
            return None
        with single_threaded_blas():
            pred = state.gp.condition(X, ys).predict(entries[free])
            acq = expected_improvement(pred.mean, pred.std, float(np.max(ys)))
            if feasibility is not None:
                p_feasible = feasibility.prob(entries[free])
                acq = acq * p_feasible if feasibility.any_feasible else p_feasible
        pick = int(np.argmax(acq))
        if feasibility is not None and p_feasible[pick] < DESIGN_MIN_FEASIBILITY:
            return None  # the design was learned without this study's constraints
        best = free[pick]
        if best == own_entry or self._claim(study, trial, best, own_entry):
            return entries[best]
        # Another trial started meanwhile: this one takes its own entry as racing trials do.
        return self._take_free_entry(
            study, trial, state, entries, own_entry, on_branch, seen, is_duplicate
        )

    def _take_free_entry(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _ModelState,
        entries: np.ndarray,
        own_entry: int | None,
        on_branch: list[int],
        seen: Mapping[str, BaseDistribution],
        is_duplicate: Callable[[np.ndarray], bool] | None,
    ) -> np.ndarray | None:
        """The trial's own entry (by number) if no trial has tried or claimed it, else the
        first entry of ``on_branch`` none has (:meth:`_take_entry` claims it), else None.

        Why: a trial that picked by expected improvement (it decided alone) may have claimed
        the entry of a later trial's number, and that trial may start while it runs; taking
        nothing then left an entry untried for good (a reviewer's two workers: 5 design trials
        ran 4 of the 5 entries, session 33).
        """
        if own_entry is None:
            return None
        tried = is_duplicate or (lambda x: False)
        order = [own_entry] + [i for i in on_branch if i != own_entry]
        for i in order:
            if tried(entries[i]):
                continue
            taken = self._take_entry(study, trial, state, entries, i, seen)
            if taken is not None:
                return taken
        return None

    def _take_entry(
        self,
        study: Study,
        trial: FrozenTrial,
        state: _ModelState,
        entries: np.ndarray,
        entry: int | None,
        seen: Mapping[str, BaseDistribution],
    ) -> np.ndarray | None:
        """``entries[entry]`` (the trial's own, by number) claimed for ``trial``, or None when
        another running trial claims it or one alike in the study's space (the surrogate then
        proposes).

        Why: while trials run in other workers, trial ``k`` takes the ``k``-th entry of the
        study's list, but workers that started together may have built their lists from
        different parts of the study's space (the parameters suggested so far: entries alike
        in it count once), and two trial numbers then met on one entry (1 run in 25 of four
        workers on SQLite). So each trial announces its entry (``optuna_meta:design_entry``)
        and looks again once it is written. Of two trials that claim alike entries at once,
        the one that reads last sees the other's claim and leaves the entry.
        """
        if entry is None:
            return None
        user_space = self._served_space(state, seen)
        keys: dict[int, tuple[tuple[str, Any], ...]] = {}

        def key(i: int) -> tuple[tuple[str, Any], ...]:
            if i not in keys:
                params = self._to_user_params(state, entries[i], user_space)
                keys[i] = _param_key(params, user_space)
            return keys[i]

        def clash(i: int) -> bool:
            now = study._get_trials(deepcopy=False, use_cache=False)
            for t in now:
                if t._trial_id == trial._trial_id or t.state not in _ACTIVE:
                    continue
                j = t.system_attrs.get(ATTR_DESIGN_ENTRY)
                if not isinstance(j, int):
                    continue
                if j == i or (user_space and 0 <= j < len(entries) and key(j) == key(i)):
                    return True
            return False

        if clash(entry):
            return None
        storage = study._storage
        try:
            storage.set_trial_system_attr(trial._trial_id, ATTR_DESIGN_ENTRY, entry)
        except Exception as e:  # a storage that refuses the write: take it unannounced
            _logger.debug(f"Could not claim design entry {entry} for trial {trial.number}: {e}")
            return entries[entry]
        if not clash(entry):
            return entries[entry]
        try:
            storage.set_trial_system_attr(trial._trial_id, ATTR_DESIGN_ENTRY, None)
        except Exception as e:  # the claim stays; the other trial left the entry too
            _logger.debug(f"Could not withdraw the claim of trial {trial.number}: {e}")
        return None

    def _unserved(
        self, state: _ModelState, space: Mapping[str, BaseDistribution]
    ) -> frozenset[str]:
        """The names of ``space`` the model knows but whose range it serves too little of."""
        return frozenset(
            k
            for k, d in space.items()
            if self._model_name(state, k, dist=d) is not None
            and not self._served_range(state, k, d)
        )

    def _served_space(
        self, state: _ModelState, space: Mapping[str, BaseDistribution]
    ) -> dict[str, BaseDistribution]:
        """The parameters of ``space`` the model serves (under the study's own names)."""
        # No ``dist`` here: ``space`` may hold a trial's pinned values (``_pinned_space``),
        # which must not decide what a name maps to; ``_unserved`` claimed each name with the
        # study's own distribution first.
        return {k: d for k, d in space.items() if self._model_name(state, k) is not None}

    def _distinct_entries(
        self,
        state: _ModelState,
        entries: np.ndarray,
        indices: list[int],
        seen: Mapping[str, BaseDistribution],
    ) -> list[int]:
        """``indices`` without the entries that repeat an earlier one in the study's space.

        Every worker computes the same list from the same space, so trial ``k`` still takes a
        configuration no other trial number takes.
        """
        user_space = self._served_space(state, seen)
        if not user_space:
            return indices
        keys: set[tuple[tuple[str, Any], ...]] = set()
        distinct = []
        for i in indices:
            key = _param_key(self._to_user_params(state, entries[i], user_space), user_space)
            if key not in keys:
                keys.add(key)
                distinct.append(i)
        return distinct

    def _claim(self, study: Study, trial: FrozenTrial, entry: int, own_entry: int | None) -> bool:
        """Announce that ``trial`` takes design entry ``entry``; False if it must not.

        False when the claim cannot be written, or when another trial is running once it is
        written (it may have decided without seeing the claim); the claim then names the
        trial's own entry (``own_entry``), the one it takes instead.
        """
        storage = study._storage
        try:
            storage.set_trial_system_attr(trial._trial_id, ATTR_DESIGN_ENTRY, entry)
            now = study._get_trials(deepcopy=False, use_cache=False)
            if not any(t._trial_id != trial._trial_id and t.state in _ACTIVE for t in now):
                return True
            storage.set_trial_system_attr(trial._trial_id, ATTR_DESIGN_ENTRY, own_entry)
        except Exception as e:  # a storage that refuses the write: keep the fixed order
            _logger.debug(f"Could not claim design entry {entry} for trial {trial.number}: {e}")
        return False

    def _encoded(
        self, state: _ModelState, t: FrozenTrial, unserved: frozenset[str] = frozenset()
    ) -> np.ndarray | None:
        """A trial's configuration in the model's unit space (cached once it is finished).

        ``unserved`` names the parameters the fallback samples although the model knows them
        (too little of their range inside the model's): they are encoded as if not suggested.
        """
        cached = self._encodings.get(t._trial_id)
        # Trial ids are only unique within a storage (a sampler reused for a second in-memory
        # study sees ids 0, 1, ... again), so a cached encoding counts only for the same params
        # under the same study's name map and assumed values of untuned parameters (a sweep
        # over `PartialFixedSampler({"batch_size": bs}, sampler)` took the first study's
        # batch size into the second's history; session 33).
        context = (id(self._name_map), state.default_x.tobytes())
        if (
            cached is not None
            and cached[0] == t.params
            and cached[1] == unserved
            and cached[2] == context
        ):
            return cached[3]
        params = {k: v for k, v in t.params.items() if k not in unserved}
        x = state.encode(self._to_model_params(state, params))
        if t.state.is_finished():
            self._encodings[t._trial_id] = (t.params, unserved, context, x)
        return x

    def _to_user_params(
        self, state: _ModelState, x: np.ndarray, user_space: Mapping[str, BaseDistribution]
    ) -> dict[str, Any]:
        model_params = state.decode(x)
        out: dict[str, Any] = {}
        for user_name, dist in user_space.items():
            model_name = self._model_name(state, user_name)  # no pinned ``dist``: see above
            if model_name is None or model_name not in model_params:
                continue
            try:
                out[user_name] = project_value(
                    model_params[model_name], dist, state.model.search_space[model_name]
                )
            except ProjectionError:
                continue
        return out

    def _to_model_params(self, state: _ModelState, params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for user_name, value in params.items():
            model_name = self._model_name(state, user_name)
            if model_name is None:
                continue
            try:
                out[model_name] = project_value(value, state.model.search_space[model_name])
            except ProjectionError:
                continue
        return out

    def _user_space_in_model(
        self, state: _ModelState, seen: Mapping[str, BaseDistribution]
    ) -> dict[str, BaseDistribution]:
        out: dict[str, BaseDistribution] = {}
        for user_name, dist in seen.items():
            model_name = self._model_name(state, user_name)  # no pinned ``dist``: see above
            if model_name is not None:
                out[model_name] = dist
        return out


@dataclass(frozen=True)
class _History:
    """What :meth:`MetaSampler._use_fallback` reads of a study's trials (once per trial)."""

    n_complete: int
    names: dict[str, BaseDistribution]


def _check_count(name: str, value: object, minimum: int, optional: bool = True) -> None:
    """A clear error for a count argument that is not an int >= ``minimum``."""
    if value is None and optional:
        return
    kind = f"None or an int >= {minimum}" if optional else f"an int >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {kind}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be {kind}; got {value!r}.")


def _forget_storage(ref: weakref.ref[MetaSampler], storage_id: int) -> None:
    """A storage died: its studies' name maps go, if the sampler still lives."""
    sampler = ref()
    if sampler is not None:
        sampler._forget_storage(storage_id)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**31)


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Store a per-trial entry, dropping the oldest beyond :data:`_PROPOSAL_CACHE_SIZE` (trials
    asked and never told). The caller holds the sampler's lock."""
    cache[key] = value
    while len(cache) > _PROPOSAL_CACHE_SIZE:
        cache.popitem(last=False)


def proposal_mean(p: Mapping[str, Any]) -> float:
    return float(p.get("__mean__", math.nan))


def proposal_std(p: Mapping[str, Any]) -> float:
    return float(p.get("__std__", math.nan))
