"""A canonical hyperparameter vocabulary, so a user's names can be matched to a model's names.

A meta-model is trained on spaces with fixed names (``eta`` in XGBoost benchmarks,
``learning_rate`` in LCBench), while users name the same knob ``lr``, ``optimizer.lr`` or
``per_device_train_batch_size``. This module decides which user parameter feeds which model
parameter. Matching is deliberately conservative: names that mean different things in different
libraries (``depth``, ``beta1``) are left out of the vocabulary, and an explicit mapping always
wins.

Name matching works on a *normalised* form: lower case, with ``-``, ``_``, ``.`` and spaces
removed, so ``Learning-Rate`` and ``learning_rate`` agree. A name also matches through its
trailing components when it is namespaced with ``.``, ``/`` or ``__`` (``optimizer.lr``,
``trainer/learning_rate``, ``model__max_depth``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

HYPERPARAMETER_ALIASES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("lr", "eta", "learning_rate_init"),
    "batch_size": ("per_device_train_batch_size", "train_batch_size", "bs"),
    "weight_decay": ("wd", "l2"),
    "dropout": ("max_dropout", "dropout_rate", "hidden_dropout_prob", "p_dropout"),
    "num_layers": ("n_layers", "num_hidden_layers"),
    "hidden_size": ("max_units", "n_units", "num_units", "units", "hidden_dim", "width"),
    "n_estimators": ("nrounds", "num_boost_round", "num_rounds", "n_rounds"),
    "reg_lambda": ("lambda", "lambda_l2"),
    "reg_alpha": ("alpha", "lambda_l1"),
    "momentum": (),
    "max_depth": (),
    "subsample": ("bagging_fraction",),
    "colsample_bytree": ("feature_fraction",),
    "min_child_weight": ("min_sum_hessian_in_leaf",),
    "gamma": ("min_split_loss",),
    "num_train_epochs": ("epochs", "n_epochs", "max_epochs"),
    "warmup_ratio": (),
    "booster": (),
}
"""Canonical name to aliases. Ambiguous names (``depth``, ``beta1``) are left out on purpose."""

_IGNORED_CHARACTERS = re.compile(r"[-_. ]")
_NAMESPACE_SEPARATOR = re.compile(r"__|[./]")


def normalize_name(name: str) -> str:
    """``name`` in lower case without ``-``, ``_``, ``.`` or spaces.

    ``Learning-Rate`` becomes ``learningrate``: separators and case are style, not meaning, and
    styles differ between libraries.
    """
    return _IGNORED_CHARACTERS.sub("", name).lower()


def _build_lookup(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Normalised name or alias to canonical name; refuses an alias claimed by two canonicals."""
    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in (canonical, *names):
            key = normalize_name(name)
            if lookup.get(key, canonical) != canonical:
                raise ValueError(
                    f"{name!r} is an alias of both {lookup[key]!r} and {canonical!r}."
                )
            lookup[key] = canonical
    return lookup


_LOOKUP = _build_lookup(HYPERPARAMETER_ALIASES)


def _trailing_components(name: str) -> list[str]:
    """Proper trailing parts of a namespaced name, longest first: ``a.b.c`` -> ``b.c``, ``c``."""
    parts = [part for part in _NAMESPACE_SEPARATOR.split(name) if part]
    return [".".join(parts[i:]) for i in range(1, len(parts))]


def _identity(name: str) -> str:
    """What a name stands for: its canonical name if it has one, else its normalised form."""
    key = normalize_name(name)
    return _LOOKUP.get(key, key)


def canonical_name(name: str) -> str | None:
    """The canonical name that ``name`` stands for, or ``None`` if it is not in the vocabulary.

    The whole name is tried first (``LR`` -> ``learning_rate``), then its trailing components,
    longest first (``optimizer.lr`` -> ``learning_rate``).
    """
    for candidate in (name, *_trailing_components(name)):
        canonical = _LOOKUP.get(normalize_name(candidate))
        if canonical is not None:
            return canonical
    return None


def map_names(
    user_names: Iterable[str],
    model_names: Iterable[str],
    mapping: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """Map each user parameter name onto at most one model parameter name.

    Matches are made in tiers, and a later tier never overrides an earlier one:

    1. ``mapping`` (user name -> model name). A value of ``None`` excludes that user name from
       automatic matching. Entries for user names not in ``user_names`` produce no match but
       still reserve their model name, so one mapping can serve a define-by-run study whose
       parameters appear over time without an alias stealing a model name meanwhile.
    2. Identical names.
    3. Identical normalised names (``Learning-Rate`` and ``learning_rate``).
    4. Aliases (``lr`` and ``eta`` both stand for ``learning_rate``).
    5. A trailing component of one name matching the other whole name (``optimizer.lr`` and
       ``eta``; ``model__max_depth`` and ``max_depth``).

    Within a tier, user names are taken in order and model names in order. A model name is used
    at most once, so when two user names compete for it the one matched in the earlier tier wins,
    else the first.

    Returns:
        User name to model name, for every user name that found a model name.

    Raises:
        ValueError: ``mapping`` names a model parameter that does not exist, or maps two user
            names onto the same model parameter.
    """
    users = list(dict.fromkeys(user_names))
    models = list(dict.fromkeys(model_names))
    result: dict[str, str] = {}
    excluded: set[str] = set()
    reserved: set[str] = set()

    if mapping:
        targets: dict[str, str] = {}
        for user, model in mapping.items():
            if model is None:
                excluded.add(user)
                continue
            if model not in models:
                raise ValueError(
                    f"mapping[{user!r}] = {model!r}, but the model has no parameter {model!r}; "
                    f"its parameters are {models!r}."
                )
            if model in targets:
                raise ValueError(
                    f"mapping sends both {targets[model]!r} and {user!r} to {model!r}; a model "
                    "parameter can receive only one user parameter."
                )
            targets[model] = user
            reserved.add(model)
            if user in users:
                result[user] = model

    def assign(match: Callable[[str, str], bool]) -> None:
        taken = set(result.values()) | reserved
        for user in users:
            if user in result or user in excluded:
                continue
            for model in models:
                if model not in taken and match(user, model):
                    result[user] = model
                    taken.add(model)
                    break

    assign(lambda u, m: u == m)
    assign(lambda u, m: normalize_name(u) == normalize_name(m))
    assign(lambda u, m: _identity(u) == _identity(m))
    assign(_suffix_match)
    return {user: result[user] for user in users if user in result}


def _suffix_match(user: str, model: str) -> bool:
    """Whether a trailing component of either name stands for the same thing as the other name."""
    user_whole, model_whole = _identity(user), _identity(model)
    return any(_identity(part) == model_whole for part in _trailing_components(user)) or any(
        _identity(part) == user_whole for part in _trailing_components(model)
    )
