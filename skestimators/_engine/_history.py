"""The training history: skorch's records of each epoch and batch, and the
estimator's ``history_`` made from them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["best_epoch", "history_frame", "record_batches", "record_best"]

_BOOKKEEPING = (
    "batches",
    "train_batch_count",
    "valid_batch_count",
    "train_loss_best",  # skorch's flags, for its Checkpoint and PrintLog
    "valid_loss_best",
)


def validation_losses(history) -> list:
    """The validation loss of each epoch of a skorch history that has one."""
    return [row["valid_loss"] for row in history if "valid_loss" in row]


def never_finite(losses) -> bool:
    """Whether there are losses and none of them is finite."""
    losses = pd.to_numeric(pd.Series(losses, dtype=object), errors="coerce")
    return bool(len(losses)) and not np.isfinite(losses.to_numpy(dtype=float)).any()


def check_validation_losses(losses) -> None:
    """Refuse a training whose validation loss was never finite."""
    if never_finite(losses):
        raise ValueError(
            f"The validation loss was not finite in any of the {len(losses)} "
            "epochs: the network's predictions on the validation split (in "
            "evaluation mode) are NaN or infinite although it trains. Check the "
            "module's evaluation path (dropout, batch normalisation) and the "
            "validation inputs."
        )


def best_epoch(net, history):
    """The epoch whose weights early stopping kept, else the lowest validation
    loss's (they differ when an improvement was smaller than ``tol``)."""
    check_validation_losses(history["valid_loss"])
    losses = pd.to_numeric(history["valid_loss"], errors="coerce")
    early = dict(net.callbacks_ or ()).get("early_stopping")
    kept = getattr(early, "best_epoch_", None)
    if getattr(early, "load_best", False) and kept in history.index:
        return int(kept)
    return int(losses.idxmin())


def history_frame(history):
    """``history_``: one row per epoch, without skorch's bookkeeping."""
    rows = [{k: v for k, v in row.items() if k not in _BOOKKEEPING} for row in history]
    return pd.DataFrame(rows).set_index("epoch") if rows else pd.DataFrame()


def record_batches(history, prefix, losses, sizes, training):
    """Each batch's loss and size in the epoch's batch rows, as skorch
    records them (``history[-1, "batches", i, "train_loss"]``); written once
    the epoch's losses are on the host, not one device sync per batch.
    Training batches come first in the epoch's rows, validation ones last."""
    rows = history[-1]["batches"]
    rows = rows[: len(losses)] if training else rows[len(rows) - len(losses) :]
    if len(rows) != len(losses):  # a callback replaced the batch rows
        return
    for row, loss, size in zip(rows, losses, sizes):
        row[prefix + "_loss"] = loss
        row[prefix + "_batch_size"] = size


def record_best(history, key):
    """skorch's ``<key>_best`` flag: whether this epoch's loss is the lowest
    so far (skorch's ``Checkpoint`` and ``PrintLog`` read it)."""
    value, flag, best = history[-1][key], key + "_best", None
    rows = reversed(history)
    next(rows)
    for row in rows:  # back to the last best epoch: a few rows, not all
        if row.get(flag):
            best = row[key]
            break
    history.record(flag, bool(math.isfinite(value) and (best is None or value < best)))
