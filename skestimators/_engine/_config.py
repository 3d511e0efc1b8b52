"""The engine's configuration, and the optimizer, schedule, validation split and
callbacks built from it.

:class:`EngineConfig` is the boundary between an estimator and the engine: the
estimator builds it in ``fit`` from its own parameters
(``BaseNet._engine_config``), and the engine reads nothing else from the
estimator.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import (
    GroupShuffleSplit,
    ShuffleSplit,
    StratifiedShuffleSplit,
    check_cv,
)
from sklearn.utils._param_validation import Interval, StrOptions

from ._callbacks import (
    CosineWithRestarts,
    EarlyStopping,
    EpochProgress,
    LRScheduler,
    StopTraining,
)
from ._run_directory import check_directory

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
SCHEDULERS = ("cosine", "step", "plateau", "onecycle")

# Parameter constraints shared by every network estimator.
COMMON_CONSTRAINTS = {
    "max_epochs": [
        Interval(numbers.Integral, 1, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
    "optimizer": [
        StrOptions({"adam", "adamw", "sgd", "rmsprop"}),
        type,
        functools.partial,
    ],
    "lr_scheduler": [
        None,
        StrOptions({"cosine", "step", "plateau", "onecycle"}),
        type,
    ],
    "lr_scheduler_params": [None, dict],
    "early_stopping": ["boolean"],
    "validation_fraction": [None, Interval(numbers.Real, 0, 1, closed="neither")],
    "validation_cv": [None, "cv_object"],
    "patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "gradient_clip": [None, Interval(numbers.Real, 0, None, closed="neither")],
    "device": [str, torch.device],
    "amp": [None, StrOptions({"bf16", "fp16"})],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "callbacks": [None, list],
    "checkpoint": [None, str, os.PathLike],
}

#: Names of the callbacks the engine adds itself; user callbacks may not use them.
ENGINE_CALLBACKS = (
    "epoch_timer",
    "early_stopping",
    "lr_scheduler",
    "resume",
    "checkpoint",
    "progress",
    "stop_training",
)

#: Parameters that never change what a fit computes (left out of checkpoint
#: fingerprints): how it is watched, where it runs and where it saves.
NON_COMPUTING_PARAMS = ("verbose", "callbacks", "checkpoint", "device", "warm_start")


@dataclass(frozen=True)
class TargetOptions:
    """How targets are weighted and which loss a regressor trains with.

    Parameters
    ----------
    class_weight : dict, "balanced" or None
        Classifier class weights.
    target_weights : dict, array-like or None
        Loss weight of each target column.
    loss : str or callable or None
        Regression loss name (see :func:`skestimators.nn.elementwise_loss`) or
        element-wise callable; None for classifiers.
    loss_params : dict
        Keyword parameters of a named loss (``loss_alpha``, ``sigma``).
    standardize : bool
        Regressors: train on targets standardised per column, predict in
        their original units.
    """

    class_weight: object = None
    target_weights: object = None
    loss: object = None
    loss_params: dict = field(default_factory=dict)
    standardize: bool = False


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs from an estimator to train it.

    Built by the estimator in ``fit`` (``BaseNet._engine_config``); the
    training parameters mean what the estimators' docstrings say.

    Parameters
    ----------
    name : str
        The estimator's class name (messages, progress bars, loggers).
    params : dict
        The estimator's ``get_params(deep=False)``: shown to experiment
        loggers and fingerprinted by checkpoints.
    max_epochs, batch_size, lr, optimizer, weight_decay, lr_scheduler, \
lr_scheduler_params, early_stopping, validation_fraction, validation_cv, \
patience, tol, gradient_clip, device, amp, random_state, verbose
        The training parameters of the estimator.
    callbacks : list
        The user's skorch callbacks or ``(name, callback)`` pairs.
    checkpoint : str, path or None
        Directory of the training checkpoint.
    targets : TargetOptions
        Target weights and loss.
    """

    name: str
    params: dict
    max_epochs: int | str
    batch_size: int
    lr: float
    optimizer: object
    weight_decay: float
    lr_scheduler: object
    lr_scheduler_params: dict | None
    early_stopping: bool
    validation_fraction: float | None
    validation_cv: object
    patience: int
    tol: float
    gradient_clip: float | None
    device: object
    amp: str | None
    random_state: object
    verbose: int
    callbacks: list
    checkpoint: object
    targets: TargetOptions

    def __post_init__(self):
        if self.checkpoint is not None:  # its fields, before any data is hashed
            check_directory(self.checkpoint)


#: ``max_epochs="auto"``: epochs for at least this many optimizer steps ...
AUTO_STEPS = 2000
#: ... and at least, at most this many epochs;
AUTO_EPOCHS = (20, 1000)
#: early stopping waits at least this many steps (and ``patience`` epochs).
AUTO_PATIENCE_STEPS = 200


def epoch_budget(config, n_train):
    """``config`` with ``max_epochs="auto"`` resolved for ``n_train`` samples.

    The budget is counted in optimizer steps, so that a small data set (a few
    batches per epoch) gets as many updates as a large one: enough epochs for
    :data:`AUTO_STEPS` steps, within :data:`AUTO_EPOCHS`, and a patience of
    at least :data:`AUTO_PATIENCE_STEPS` steps. From 100 batches per epoch
    on, this is ``max_epochs=20`` with the given ``patience``.
    An integer ``max_epochs`` is used as given.
    """
    if config.max_epochs != "auto":
        return config
    n_batches = max(1, math.ceil(n_train / config.batch_size))
    low, high = AUTO_EPOCHS
    return dataclasses.replace(
        config,
        max_epochs=min(high, max(low, math.ceil(AUTO_STEPS / n_batches))),
        patience=max(config.patience, math.ceil(AUTO_PATIENCE_STEPS / n_batches)),
    )


def resolve_optimizer(optimizer):
    """The optimizer class (or ``functools.partial`` of one) that ``optimizer``
    names, checked."""
    if isinstance(optimizer, str):
        try:
            return OPTIMIZERS[optimizer]
        except KeyError:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim "
                f"class, got {optimizer!r}."
            ) from None
    kind = optimizer.func if isinstance(optimizer, functools.partial) else optimizer
    if not (isinstance(kind, type) and issubclass(kind, torch.optim.Optimizer)):
        raise TypeError(
            "optimizer must be a name, a torch.optim class or a functools.partial "
            f"of one (e.g. partial(torch.optim.SGD, momentum=0.9)), got {optimizer!r}."
        )
    if issubclass(kind, torch.optim.LBFGS):
        raise ValueError(
            "optimizer=LBFGS re-evaluates the loss several times per step (a "
            "closure), which the engine's mini-batch steps do not do. Use a "
            'first-order optimizer ("adam", "sgd", ...).'
        )
    if isinstance(optimizer, functools.partial):
        _check_optimizer_arguments(kind, optimizer)
    return optimizer


def _check_optimizer_arguments(kind, optimizer):
    if optimizer.args:
        raise ValueError(
            f"optimizer={optimizer!r} gives positional arguments; give the "
            f"optimizer's settings by name (partial({kind.__name__}, momentum=0.9))."
        )
    own = {"params", "lr"} & set(optimizer.keywords)
    if own:
        raise ValueError(
            f"optimizer={optimizer!r} sets {sorted(own)}: the parameters come from "
            "the network and the learning rate from the estimator's lr."
        )
    accepted = inspect.signature(kind).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(optimizer.keywords) - set(accepted))
        if unknown:
            raise ValueError(
                f"optimizer={optimizer!r}: {kind.__name__} takes no argument "
                f"{unknown}; it takes {sorted(set(accepted) - {'params'})}."
            )


def optimizer_arguments(config):
    """skorch's ``optimizer`` and ``optimizer__weight_decay`` for ``config``.

    ``weight_decay`` is passed only when it is not 0, so that optimizers
    without weight decay (``Rprop``) train at the default.
    """
    optimizer = resolve_optimizer(config.optimizer)
    arguments = {"optimizer": optimizer}
    if not config.weight_decay:
        return arguments
    kind = getattr(optimizer, "func", optimizer)
    if "weight_decay" not in inspect.signature(kind).parameters:
        raise ValueError(
            f"weight_decay={config.weight_decay!r} needs an optimizer with weight "
            f"decay; {kind.__name__} has none. Set weight_decay=0."
        )
    if "weight_decay" in getattr(optimizer, "keywords", {}):
        raise ValueError(
            f"weight_decay is set twice: weight_decay={config.weight_decay!r} and "
            f"in optimizer={optimizer!r}. Set it once, with weight_decay."
        )
    arguments["optimizer__weight_decay"] = config.weight_decay
    return arguments


def scheduler_callback(config, n_batches, has_valid):
    """The skorch LRScheduler for ``config.lr_scheduler`` (None when unset)."""
    name = config.lr_scheduler
    params = dict(config.lr_scheduler_params or {})
    if name is None:
        return None
    epochs = config.max_epochs
    if name == "cosine":
        params.setdefault("T_max", epochs)
        return CosineWithRestarts(torch.optim.lr_scheduler.CosineAnnealingLR, **params)
    if name == "step":
        params.setdefault("step_size", max(1, epochs // 3))
        return LRScheduler(torch.optim.lr_scheduler.StepLR, **params)
    if name == "plateau":
        params.setdefault("patience", max(1, config.patience // 2))
        monitor = "valid_loss" if has_valid else "train_loss"
        return LRScheduler(
            torch.optim.lr_scheduler.ReduceLROnPlateau, monitor=monitor, **params
        )
    if name == "onecycle":
        params.setdefault("max_lr", config.lr * 10)
        params.setdefault("total_steps", max(1, epochs * n_batches))
        return LRScheduler(
            torch.optim.lr_scheduler.OneCycleLR, step_every="batch", **params
        )
    if isinstance(name, type):
        return LRScheduler(name, **params)
    raise ValueError(
        f"lr_scheduler must be None, one of {SCHEDULERS} or a torch scheduler "
        f"class, got {name!r}."
    )


def validation_indices(config, n_samples, y_strat, groups, seed, y=None):
    """Indices ``(train, valid)`` of the internal validation split, or None.

    A ``validation_cv`` splitter takes precedence (its first split is used);
    otherwise ``validation_fraction`` of the samples is held out, by groups
    when ``groups`` are given, stratified for single-label classifiers.
    A ``validation_cv`` splitter reads ``y_strat``, or else the targets
    ``y`` as given (a splitter stratifying regression targets, such as
    ``MultilabelStratifiedKFold`` on vote fractions, needs them).
    """
    cv = config.validation_cv
    fraction = config.validation_fraction
    placeholder = np.zeros((n_samples, 1))
    if cv is not None:
        # An int or an iterable of splits, as cv_object accepts: a (stratified
        # for classifiers' single-label targets) K-fold, or the folds given.
        cv = check_cv(cv, y_strat, classifier=y_strat is not None)
        unseeded = hasattr(cv, "random_state") and cv.random_state is None
        if unseeded and getattr(cv, "shuffle", True):
            # A shuffling splitter left unseeded follows the estimator's seed.
            cv = copy.copy(cv)
            cv.random_state = seed
        targets = y_strat if y_strat is not None else y
        try:
            train, valid = next(iter(cv.split(placeholder, targets, groups)))
        except ValueError as exc:
            if groups is not None or "groups" not in str(exc):
                raise
            # The splitter's advice speaks of cross_val_score's groups.
            raise ValueError(
                f"validation_cv={type(cv).__name__}(...) needs groups, and the "
                "fit got none. Pass "
                "them to fit: fit(X, y, groups=coords), or in a Pipeline "
                "fit(X, y, <step>__groups=coords) (in cross_validate or a "
                "search, through params=...). The splitter says: "
                + " ".join(str(exc).split())
            ) from None
        return np.asarray(train), np.asarray(valid)
    if fraction is None:
        return None
    n_valid = int(np.ceil(fraction * n_samples))
    if n_valid < 1 or n_samples - n_valid < 2:
        warnings.warn(
            f"Too few samples ({n_samples}) for a validation split of "
            f"{fraction}; training without one.",
            UserWarning,
            stacklevel=4,
        )
        return None
    if groups is not None:
        if np.ndim(groups) != 1:
            raise ValueError(
                f"groups has shape {np.shape(groups)}; a group label per sample is "
                "needed to hold out whole groups. For coordinates, pass a spatial "
                "splitter as validation_cv (e.g. SpatialBlockKFold(n_blocks=4)), "
                "which receives them as groups."
            )
        splitter = GroupShuffleSplit(1, test_size=fraction, random_state=seed)
    elif y_strat is not None and _can_stratify(y_strat, n_valid):
        splitter = StratifiedShuffleSplit(1, test_size=n_valid, random_state=seed)
    else:
        splitter = ShuffleSplit(1, test_size=n_valid, random_state=seed)
    train, valid = next(iter(splitter.split(placeholder, y_strat, groups)))
    return train, valid


def _can_stratify(y, n_valid):
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and n_valid >= counts.size


def skorch_verbose(config):
    """The skorch net's ``verbose``: the estimator's when the user added
    skorch's ``PrintLog`` (its table prints only then), else 0 (the engine
    shows its own progress)."""
    from skorch.callbacks import PrintLog

    callbacks = user_callbacks(config.callbacks)
    printing = any(isinstance(cb, PrintLog) for _, cb in callbacks)
    return config.verbose if printing else 0


def user_callbacks(callbacks):
    """The user's callbacks as ``(name, callback)`` pairs, checked.

    Unnamed callbacks are named after their class, as skorch does; a name of
    the engine's own callbacks, or a name used twice, is an error.
    """
    from skorch.callbacks import BatchScoring, Callback, EpochScoring

    pairs = []
    for item in callbacks or ():
        if isinstance(item, (tuple, list)):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ValueError(
                    "callbacks must hold skorch callbacks or (name, callback) "
                    f"pairs, got {item!r}."
                )
            name, callback = item
        else:
            callback = item
            name = type(callback).__name__
        if isinstance(callback, type) or not isinstance(callback, Callback):
            raise TypeError(
                f"callback {name!r} must be an instance of a skorch "
                f"Callback subclass, got {callback!r}."
            )
        if isinstance(callback, (EpochScoring, BatchScoring)):
            raise TypeError(
                f"callback {name!r}: skorch's {type(callback).__name__} is not "
                "supported (the engine's batches carry sample weights beside the "
                "targets). The engine records the validation metrics of every "
                "target itself (history_ columns valid_<target>_<metric>); to "
                "score something else, write a callback that reads "
                "net.history and net.module_ at on_epoch_end."
            )
        if name in ENGINE_CALLBACKS:
            raise ValueError(
                f"callback name {name!r} is used by the engine's own callbacks "
                f"{list(ENGINE_CALLBACKS)}; give it another name with a "
                "(name, callback) pair."
            )
        if name in dict(pairs):
            raise ValueError(
                f"two callbacks are named {name!r}; give them distinct names with "
                "(name, callback) pairs."
            )
        pairs.append((name, callback))
    return pairs


def training_callbacks(config, *, has_valid, n_batches, resume=None, save=None):
    """The engine's callbacks around the user's, in the order they run.

    ``early_stopping`` (which only flags the stop), ``lr_scheduler``,
    ``resume`` (restores a checkpoint when training begins), then the
    user's callbacks, then ``checkpoint`` (writes one at each epoch end),
    ``progress`` and ``stop_training`` (ends training when early stopping
    flagged it, after every callback has seen the epoch). skorch's
    ``epoch_timer`` runs before all of them.
    """
    callbacks = []
    early = None
    if config.early_stopping and has_valid:
        early = EarlyStopping(
            monitor="valid_loss",
            patience=config.patience,
            threshold=config.tol,
            threshold_mode="rel",
            load_best=True,
            sink=_silent,
        )
        callbacks.append(("early_stopping", early))
    scheduler = scheduler_callback(config, n_batches, has_valid)
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    if resume is not None:
        callbacks.append(("resume", resume))
    callbacks.extend(user_callbacks(config.callbacks))
    if save is not None:
        callbacks.append(("checkpoint", save))
    if config.verbose:
        callbacks.append(("progress", EpochProgress(config.max_epochs, config.name)))
    if early is not None:
        callbacks.append(("stop_training", StopTraining()))
    return callbacks


def _silent(*args, **kwargs):
    return None
