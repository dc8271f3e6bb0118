"""MetaSampler and MetaPruner inside Hugging Face ``Trainer.hyperparameter_search``.

Why this example: ``Trainer.hyperparameter_search(backend="optuna")`` forwards extra keyword
arguments to ``optuna.create_study``, so ``sampler=MetaSampler()`` and ``pruner=MetaPruner()``
drop in. The Trainer reports the objective at every evaluation with ``trial.report(value,
global_step)``: the steps are optimizer steps (50, 100, ...), not epochs. MetaPruner learns the
final step from the completed trials, so give every trial the same step schedule: fix
``max_steps`` (as here) when you tune the batch size, because with ``num_train_epochs`` a larger
batch ends at a smaller global step.

The task is generated locally (no download): sequences of random tokens, labelled 1 when token
``A`` occurs more often than token ``B``. The model is a small BERT built from a config, and
``model_init`` reads the trial's ``num_layers``/``hidden_size``/``dropout``. Hyperparameter
names are the Trainer's own (``learning_rate``, ``weight_decay``,
``per_device_train_batch_size``) and MetaSampler maps them onto its model's vocabulary by alias,
except the learning rate: the Trainer trains with AdamW, and what the shipped model learned of
SGD learning rates does not carry over, so ``param_mapping={"learning_rate": None}`` hands it
to TPE.

Run (CPU, about a minute)::

    pip install -e ".[examples,train]"
    python examples/hf_trainer.py --trials 12

Each trial's user attrs (``optuna_meta:source``, ``optuna_meta:predicted_final``, ...) are
printed at the end; with ``--storage sqlite:///hf.db`` they show up in optuna-dashboard.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings

import numpy as np

VOCAB_SIZE = 32
SEQ_LEN = 24
TOKEN_A, TOKEN_B = 5, 6
N_TRAIN, N_EVAL = 512, 256


def make_dataset(n: int, seed: int):
    """Token sequences labelled by whether TOKEN_A occurs more often than TOKEN_B."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    ids = rng.integers(4, VOCAB_SIZE, size=(n, SEQ_LEN))
    # enrich A and B so the counts differ by small margins and the task needs the whole sequence
    mask = rng.random((n, SEQ_LEN)) < 0.3
    ids[mask] = rng.choice([TOKEN_A, TOKEN_B], size=int(mask.sum()))
    count_a = (ids == TOKEN_A).sum(axis=1)
    count_b = (ids == TOKEN_B).sum(axis=1)
    keep = count_a != count_b
    ids, labels = ids[keep], (count_a > count_b)[keep].astype(np.int64)
    ids[:, 0] = 2  # a [CLS]-like first token
    return Dataset.from_dict(
        {
            "input_ids": ids.tolist(),
            "attention_mask": np.ones_like(ids).tolist(),
            "labels": labels.tolist(),
        }
    )


def hp_space(trial) -> dict:
    """The search space; ``model_init`` reads the architecture parameters from the trial."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        "per_device_train_batch_size": trial.suggest_categorical(
            "per_device_train_batch_size", [16, 32, 64]
        ),
        "num_layers": trial.suggest_int("num_layers", 1, 3),
        "hidden_size": trial.suggest_categorical("hidden_size", [32, 64, 128]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def model_init(trial=None):
    from transformers import BertConfig, BertForSequenceClassification

    p = trial.params if trial is not None else {}
    hidden = int(p.get("hidden_size", 64))
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        num_hidden_layers=int(p.get("num_layers", 2)),
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=SEQ_LEN,
        hidden_dropout_prob=float(p.get("dropout", 0.1)),
        attention_probs_dropout_prob=float(p.get("dropout", 0.1)),
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def compute_metrics(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--max-steps", type=int, default=80, help="optimizer steps per trial")
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="Optuna storage URL (optional)")
    args = parser.parse_args(argv)
    # before Hugging Face is imported: it reads this at import time
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is built locally: never download

    import optuna
    from transformers import PrinterCallback, ProgressCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from optuna_meta import MetaPruner, MetaSampler

    hf_logging.set_verbosity_error()
    logging.getLogger("optuna_meta").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*Trying to set.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    train, evaluation = make_dataset(N_TRAIN, args.seed), make_dataset(N_EVAL, args.seed + 1)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out,
            max_steps=args.max_steps,
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=args.seed,
            disable_tqdm=True,
        )
        trainer = Trainer(
            args=training_args,
            model_init=model_init,
            train_dataset=train,
            eval_dataset=evaluation,
            compute_metrics=compute_metrics,
        )
        for callback in (PrinterCallback, ProgressCallback):  # keep the output to the table
            trainer.remove_callback(callback)
        study_name = "hf-trainer-meta"
        # a storage object (not None) so the study can be reloaded after the search
        storage = args.storage or optuna.storages.InMemoryStorage()
        best = trainer.hyperparameter_search(
            hp_space=hp_space,
            compute_objective=lambda metrics: metrics["eval_accuracy"],
            n_trials=args.trials,
            direction="maximize",
            backend="optuna",
            # everything below goes to optuna.create_study
            # The Trainer's AdamW learning rate is not the SGD one lcbench-mlp learned: TPE
            # samples it; the model serves the rest (README, "Hugging Face").
            sampler=MetaSampler(seed=args.seed, param_mapping={"learning_rate": None}),
            pruner=MetaPruner(n_startup_trials=3, top_k=3),
            storage=storage,
            study_name=study_name,
            load_if_exists=True,
        )

    study = optuna.load_study(study_name=study_name, storage=storage)
    _print_trials(study)
    print(f"best run: trial {best.run_id}, eval accuracy {best.objective:.4f}")
    print(f"best hyperparameters: {best.hyperparameters}")
    return 0


def _print_trials(study) -> None:
    print("| trial | state | source | accuracy | predicted final | last step |")
    print("|---|---|---|---|---|---|")
    for t in study.trials:
        pred = t.user_attrs.get("optuna_meta:predicted_final")
        print(
            f"| {t.number} | {t.state.name} | {t.user_attrs.get('optuna_meta:source', '-')} | "
            f"{t.value if t.value is not None else float('nan'):.4f} | "
            f"{pred if pred is not None else float('nan'):.4f} | {t.last_step} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
