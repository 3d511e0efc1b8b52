"""Optimizers, schedulers, validation splits and callbacks built from parameters."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.model_selection import (
    GroupShuffleSplit,
    ShuffleSplit,
    StratifiedShuffleSplit,
)

from ._skorch import EarlyStopping, EpochProgress, LRScheduler

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
SCHEDULERS = ("cosine", "step", "plateau", "onecycle")


def resolve_optimizer(optimizer):
    if isinstance(optimizer, str):
        try:
            return OPTIMIZERS[optimizer]
        except KeyError:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim "
                f"class, got {optimizer!r}."
            ) from None
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer
    raise TypeError(
        f"optimizer must be a name or a torch.optim class, got {optimizer!r}."
    )


def scheduler_callback(estimator, n_batches, has_valid):
    """The skorch LRScheduler for ``estimator.lr_scheduler`` (None when unset)."""
    name = estimator.lr_scheduler
    params = dict(estimator.lr_scheduler_params or {})
    if name is None:
        return None
    epochs = estimator.max_epochs
    if name == "cosine":
        params.setdefault("T_max", epochs)
        return LRScheduler(torch.optim.lr_scheduler.CosineAnnealingLR, **params)
    if name == "step":
        params.setdefault("step_size", max(1, epochs // 3))
        return LRScheduler(torch.optim.lr_scheduler.StepLR, **params)
    if name == "plateau":
        params.setdefault("patience", max(1, estimator.patience // 2))
        monitor = "valid_loss" if has_valid else "train_loss"
        return LRScheduler(
            torch.optim.lr_scheduler.ReduceLROnPlateau, monitor=monitor, **params
        )
    if name == "onecycle":
        params.setdefault("max_lr", estimator.lr * 10)
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


def validation_indices(estimator, n_samples, y_strat, groups, seed):
    """Indices ``(train, valid)`` of the internal validation split, or None.

    A ``validation_cv`` splitter takes precedence (its first split is used);
    otherwise ``validation_fraction`` of the samples is held out, by groups
    when ``groups`` are given, stratified for single-label classifiers.
    """
    cv = getattr(estimator, "validation_cv", None)
    fraction = estimator.validation_fraction
    placeholder = np.zeros((n_samples, 1))
    if cv is not None:
        unseeded = hasattr(cv, "random_state") and cv.random_state is None
        if unseeded and getattr(cv, "shuffle", True):
            # A shuffling splitter left unseeded follows the estimator's seed.
            cv = copy.copy(cv)
            cv.random_state = seed
        train, valid = next(iter(cv.split(placeholder, y_strat, groups)))
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


def training_callbacks(estimator, *, has_valid, n_batches):
    """skorch callbacks: early stopping, LR schedule, progress bar."""
    callbacks = []
    if estimator.early_stopping and has_valid:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=estimator.patience,
                    threshold=estimator.tol,
                    threshold_mode="rel",
                    load_best=True,
                    sink=_silent,
                ),
            )
        )
    scheduler = scheduler_callback(estimator, n_batches, has_valid)
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    if estimator.verbose:
        callbacks.append(
            ("progress", EpochProgress(estimator.max_epochs, type(estimator).__name__))
        )
    return callbacks


def _silent(*args, **kwargs):
    return None
