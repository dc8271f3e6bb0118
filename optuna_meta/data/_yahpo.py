"""Direct access to the YAHPO Gym surrogate benchmarks through onnxruntime.

YAHPO Gym (Pfisterer et al., AutoML-Conf 2022) ships, for each scenario, an ONNX neural network
fitted to real training runs. Querying it costs well under a millisecond per configuration, which
makes it the workhorse of both meta-training data (many tasks x many configurations) and the
benchmarks. The ``yahpo-gym`` package pins ``numpy<2``, so this module talks to the ONNX model
directly and re-implements the small column contract documented in ``shared/README.md``.

Example:
    .. code-block:: python

        import numpy as np
        from optuna_meta.data import YahpoSurrogate

        bench = YahpoSurrogate("lcbench")
        configs = bench.sample(5, np.random.default_rng(0))
        acc = bench.evaluate("3945", configs)["val_accuracy"]  # at the last epoch
        curves = bench.curves("3945", configs)  # shape (5, 52)
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

if TYPE_CHECKING:
    import onnxruntime

YAHPO_DATA_ENV = "OPTUNA_META_YAHPO_DATA"
"""Environment variable naming the folder that holds the YAHPO scenario folders."""

TEST_INSTANCES: dict[str, tuple[str, ...]] = {
    "lcbench": ("167168", "189873", "189906"),
    "rbv2_xgboost": ("12", "1501", "16", "40499"),
}
"""YAHPO's own single-objective test instances: never part of a shipped model's training data."""

_NA = "#na#"
_MAX_ROWS_PER_CALL = 2_048  # measured: ~1.45x faster than one huge call


@dataclass(frozen=True)
class Hyperparameter:
    """One tunable hyperparameter of a scenario, in the scenario's raw units."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[str, ...] = ()
    condition: tuple[str, tuple[str, ...]] | None = None  # (parent, allowed parent values)

    def distribution(self) -> BaseDistribution:
        if self.kind == "categorical":
            return CategoricalDistribution(self.choices)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class ScenarioSpec:
    """The column contract of one YAHPO scenario's ONNX model."""

    name: str
    task_column: str
    cat_columns: tuple[str, ...]
    cont_columns: tuple[str, ...]
    outputs: tuple[str, ...]
    hyperparameters: tuple[Hyperparameter, ...]
    fidelity: str
    fidelity_max: float
    default_output: str
    maximize: dict[str, bool]
    fixed: dict[str, float] = field(default_factory=dict)


_LCBENCH = ScenarioSpec(
    name="lcbench",
    task_column="OpenML_task_id",
    cat_columns=("OpenML_task_id",),
    cont_columns=(
        "epoch",
        "batch_size",
        "learning_rate",
        "momentum",
        "weight_decay",
        "num_layers",
        "max_units",
        "max_dropout",
    ),
    outputs=(
        "time",
        "val_accuracy",
        "val_cross_entropy",
        "val_balanced_accuracy",
        "test_cross_entropy",
        "test_balanced_accuracy",
    ),
    hyperparameters=(
        Hyperparameter("batch_size", "int", 16, 512, log=True),
        Hyperparameter("learning_rate", "float", 1e-4, 1e-1, log=True),
        Hyperparameter("momentum", "float", 0.1, 0.99),
        Hyperparameter("weight_decay", "float", 1e-5, 0.1),
        Hyperparameter("num_layers", "int", 1, 5),
        Hyperparameter("max_units", "int", 64, 1024, log=True),
        Hyperparameter("max_dropout", "float", 0.0, 1.0),
    ),
    fidelity="epoch",
    fidelity_max=52,
    default_output="val_accuracy",
    maximize={
        "time": False,
        "val_accuracy": True,
        "val_cross_entropy": False,
        "val_balanced_accuracy": True,
        "test_cross_entropy": False,
        "test_balanced_accuracy": True,
    },
)

_TREE = ("gbtree", "dart")
_RBV2_XGBOOST = ScenarioSpec(
    name="rbv2_xgboost",
    task_column="task_id",
    cat_columns=("task_id", "booster", "num.impute.selected.cpo"),
    cont_columns=(
        "nrounds",
        "eta",
        "gamma",
        "lambda",
        "alpha",
        "subsample",
        "max_depth",
        "min_child_weight",
        "colsample_bytree",
        "colsample_bylevel",
        "rate_drop",
        "skip_drop",
        "trainsize",
        "repl",
    ),
    outputs=("acc", "bac", "auc", "brier", "f1", "logloss", "timetrain", "timepredict", "memory"),
    hyperparameters=(
        Hyperparameter("booster", "categorical", choices=("gblinear", "gbtree", "dart")),
        Hyperparameter("nrounds", "int", 7, 2981, log=True),
        Hyperparameter(
            "eta", "float", 0.0009118819655545162, 1.0, log=True, condition=("booster", _TREE)
        ),
        Hyperparameter(
            "gamma",
            "float",
            4.5399929762484854e-05,
            7.38905609893065,
            log=True,
            condition=("booster", _TREE),
        ),
        Hyperparameter("lambda", "float", 0.0009118819655545162, 1096.6331584284585, log=True),
        Hyperparameter("alpha", "float", 0.0009118819655545162, 1096.6331584284585, log=True),
        Hyperparameter("subsample", "float", 0.1, 1.0),
        Hyperparameter("max_depth", "int", 1, 15, condition=("booster", _TREE)),
        Hyperparameter(
            "min_child_weight",
            "float",
            2.718281828459045,
            148.4131591025766,
            log=True,
            condition=("booster", _TREE),
        ),
        Hyperparameter("colsample_bytree", "float", 0.01, 1.0, condition=("booster", _TREE)),
        Hyperparameter("colsample_bylevel", "float", 0.01, 1.0, condition=("booster", _TREE)),
        Hyperparameter("rate_drop", "float", 0.0, 1.0, condition=("booster", ("dart",))),
        Hyperparameter("skip_drop", "float", 0.0, 1.0, condition=("booster", ("dart",))),
    ),
    fidelity="trainsize",
    fidelity_max=1.0,
    default_output="acc",
    maximize={
        "acc": True,
        "bac": True,
        "auc": True,
        "brier": False,
        "f1": True,
        "logloss": False,
        "timetrain": False,
        "timepredict": False,
        "memory": False,
    },
    fixed={"repl": 1.0},  # the replication index acts as noise: fix it; imputation: _fixed_cat
)

SCENARIOS: dict[str, ScenarioSpec] = {s.name: s for s in (_LCBENCH, _RBV2_XGBOOST)}


def default_yahpo_dir() -> Path | None:
    """The YAHPO folder: ``$OPTUNA_META_YAHPO_DATA``, else ``../shared/data/yahpo`` if present.

    The relative default is looked up from the working directory and from the repository root
    (the parent of the installed package when it is used from a checkout).
    """
    env = os.environ.get(YAHPO_DATA_ENV)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), repo_root):
        candidate = (base / ".." / "shared" / "data" / "yahpo").resolve()
        if candidate.is_dir():
            return candidate
    return None


def resolve_yahpo_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the YAHPO data folder or raise a clear :class:`FileNotFoundError`."""
    path = Path(data_dir) if data_dir is not None else default_yahpo_dir()
    if path is None or not path.is_dir():
        raise FileNotFoundError(
            f"YAHPO data folder not found ({path!s}). Pass its path or set ${YAHPO_DATA_ENV} "
            "to the folder that holds the scenario folders (e.g. 'lcbench/model.onnx')."
        )
    return path


class YahpoSurrogate:
    """One YAHPO scenario's surrogate model, queried with onnxruntime.

    Args:
        scenario: ``"lcbench"`` or ``"rbv2_xgboost"``.
        data_dir: The folder holding the scenario folders; defaults to :func:`default_yahpo_dir`.

    The ONNX session is created on first use and is shared by threads (onnxruntime sessions are
    thread-safe); the object pickles without it and re-opens the model after unpickling.
    """

    def __init__(self, scenario: str, data_dir: str | os.PathLike[str] | None = None) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"Unknown YAHPO scenario {scenario!r}; known: {sorted(SCENARIOS)}.")
        self.scenario = scenario
        self.data_dir = data_dir
        self._session: onnxruntime.InferenceSession | None = None
        self._encoding: dict[str, dict[str, int]] | None = None
        self._tasks: list[str] | None = None
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def spec(self) -> ScenarioSpec:
        return SCENARIOS[self.scenario]

    @property
    def path(self) -> Path:
        return resolve_yahpo_dir(self.data_dir) / self.scenario

    def _load(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._session is None:
                import onnxruntime

                path = self.path
                if not (path / "model.onnx").is_file():
                    raise FileNotFoundError(f"No YAHPO model at {path / 'model.onnx'}.")
                with open(path / "encoding.json") as f:
                    self._encoding = json.load(f)
                with open(path / "config_space.json") as f:
                    space = json.load(f)
                task_hp = next(
                    h for h in space["hyperparameters"] if h["name"] == self.spec.task_column
                )
                self._tasks = [str(c) for c in task_hp["choices"]]
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    str(path / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    # -- public API ---------------------------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        """Every task (OpenML id, as a string) the surrogate knows, test instances included."""
        self._load()
        assert self._tasks is not None
        return list(self._tasks)

    @property
    def test_instances(self) -> tuple[str, ...]:
        return TEST_INSTANCES[self.scenario]

    def search_space(self) -> dict[str, BaseDistribution]:
        """Optuna distributions of the tunable hyperparameters (conditional ones included)."""
        return {h.name: h.distribution() for h in self.spec.hyperparameters}

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (partial) configuration ``params``."""
        hp = next(h for h in self.spec.hyperparameters if h.name == name)
        if hp.condition is None:
            return True
        parent, allowed = hp.condition
        return params.get(parent) in allowed

    def sample(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """``n`` configurations drawn uniformly (log-uniformly for log parameters).

        Inactive conditional parameters are left out of each dictionary, as Optuna would.
        """
        configs = columns_to_configs(self.sample_columns(n, rng))
        ints = [h.name for h in self.spec.hyperparameters if h.kind == "int"]
        for cfg in configs:
            for name in ints:
                if name in cfg:
                    cfg[name] = int(cfg[name])
        return configs

    def sample_columns(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Like :meth:`sample`, but column-wise: floats (NaN = inactive) and object arrays."""
        out: dict[str, np.ndarray] = {}
        for hp in self.spec.hyperparameters:
            if hp.kind == "categorical":
                col: np.ndarray = np.asarray(hp.choices, dtype=object)[
                    rng.integers(0, len(hp.choices), n)
                ]
            elif hp.kind == "int":
                if hp.log:
                    lo, hi = math.log(hp.low - 0.5), math.log(hp.high + 0.5)
                    col = np.clip(np.round(np.exp(rng.uniform(lo, hi, n))), hp.low, hp.high)
                else:
                    col = rng.integers(int(hp.low), int(hp.high) + 1, n).astype(float)
            elif hp.log:
                col = np.exp(rng.uniform(math.log(hp.low), math.log(hp.high), n))
            else:
                col = rng.uniform(hp.low, hp.high, n)
            out[hp.name] = col
        for hp in self.spec.hyperparameters:
            if hp.condition is not None:
                parent, allowed = hp.condition
                inactive = ~np.isin(out[parent], allowed)
                if hp.kind == "categorical":
                    out[hp.name] = out[hp.name].copy()
                    out[hp.name][inactive] = None
                else:
                    out[hp.name] = np.where(inactive, np.nan, out[hp.name])
        return out

    def evaluate(
        self,
        task: str,
        configs: Sequence[Mapping[str, Any]] | Mapping[str, np.ndarray],
        fidelity: float | np.ndarray | None = None,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Predicted metrics of ``configs`` on ``task`` at ``fidelity`` (default: the maximum).

        ``configs`` is a list of parameter dictionaries or a dict of columns. Returns one
        float64 array per requested output (all outputs by default).
        """
        session = self._load()
        assert self._encoding is not None and self._tasks is not None
        task = str(task)
        if task not in self._tasks:
            raise ValueError(f"Task {task!r} is not a {self.scenario} task; known: {self._tasks}.")
        columns = (
            configs
            if isinstance(configs, Mapping)
            else configs_to_columns(configs, [h.name for h in self.spec.hyperparameters])
        )
        n = len(next(iter(columns.values()))) if columns else 0
        spec = self.spec
        fid = np.broadcast_to(
            np.asarray(spec.fidelity_max if fidelity is None else fidelity, dtype=float), (n,)
        )
        x_cat = np.zeros((n, len(spec.cat_columns)), dtype=np.int32)
        x_cont = np.zeros((n, len(spec.cont_columns)), dtype=np.float32)
        for j, name in enumerate(spec.cat_columns):
            enc = self._encoding[name]
            if name == spec.task_column:
                x_cat[:, j] = enc[task]
            elif name in columns:
                vals = np.asarray(columns[name], dtype=object)
                x_cat[:, j] = [enc[_NA] if v is None or v != v else enc[str(v)] for v in vals]
            else:
                x_cat[:, j] = enc[_fixed_cat(name)]
        for j, name in enumerate(spec.cont_columns):
            if name == spec.fidelity:
                x_cont[:, j] = fid
            elif name in columns:
                col = np.asarray(columns[name], dtype=float)
                x_cont[:, j] = np.nan_to_num(col, nan=0.0)  # inactive -> 0
            else:
                x_cont[:, j] = spec.fixed.get(name, 0.0)
        wanted = list(outputs) if outputs is not None else list(spec.outputs)
        for w in wanted:
            if w not in spec.outputs:
                raise ValueError(f"Unknown output {w!r}; known: {spec.outputs}.")
        idx = [spec.outputs.index(w) for w in wanted]
        cat_name, cont_name = (i.name for i in session.get_inputs())
        result = np.empty((n, len(spec.outputs)), dtype=np.float64)
        for start in range(0, n, _MAX_ROWS_PER_CALL):
            stop = min(n, start + _MAX_ROWS_PER_CALL)
            result[start:stop] = session.run(
                None, {cat_name: x_cat[start:stop], cont_name: x_cont[start:stop]}
            )[0]
        return {w: result[:, i] for w, i in zip(wanted, idx, strict=True)}

    def curves(
        self,
        task: str,
        configs: Sequence[Mapping[str, Any]] | Mapping[str, np.ndarray],
        output: str | None = None,
        fidelities: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Learning curves: ``output`` at every fidelity (LCBench: epochs 1..52), shape (n, T)."""
        spec = self.spec
        if fidelities is None:
            if spec.fidelity != "epoch":
                raise ValueError(f"{self.scenario} has no epoch axis; pass `fidelities`.")
            fidelities = list(range(1, int(spec.fidelity_max) + 1))
        output = output or spec.default_output
        columns = (
            configs
            if isinstance(configs, Mapping)
            else configs_to_columns(configs, [h.name for h in spec.hyperparameters])
        )
        n = len(next(iter(columns.values())))
        t = len(fidelities)
        tiled = {k: np.repeat(np.asarray(v), t) for k, v in columns.items()}
        fid = np.tile(np.asarray(fidelities, dtype=float), n)
        flat = self.evaluate(task, tiled, fidelity=fid, outputs=[output])[output]
        return flat.reshape(n, t)


def _fixed_cat(name: str) -> str:
    if name == "num.impute.selected.cpo":
        return "impute.mean"
    raise KeyError(name)


def configs_to_columns(
    configs: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Turn a list of parameter dicts into columns (missing floats -> NaN, categories -> None)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        vals = [c.get(name) for c in configs]
        if any(isinstance(v, str) for v in vals):
            out[name] = np.asarray(vals, dtype=object)
        else:
            out[name] = np.asarray([np.nan if v is None else float(v) for v in vals], dtype=float)
    return out


def columns_to_configs(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Inverse of :func:`configs_to_columns`; inactive (NaN/None) entries are left out."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    out: list[dict[str, Any]] = []
    for i in range(n):
        cfg: dict[str, Any] = {}
        for name in names:
            v = columns[name][i]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            cfg[name] = v if isinstance(v, str) else float(v)
        out.append(cfg)
    return out
