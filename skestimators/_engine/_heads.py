"""Output heads: which part of the network output meets which targets, how.

A head group maps one network output (the whole output tensor, a slice of its
columns, or one entry of a ``dict`` returned by ``forward``) to columns of the
target matrix, with an element-wise loss, per-column loss weights and the
metrics recorded in ``history_`` for each target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import r2_score, roc_auc_score
from torch import nn
from torch.nn import functional as F


def _bce(pred, target):
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none")


@dataclass
class HeadGroup:
    """One output of the network and the target columns it predicts.

    Parameters
    ----------
    names : list of str
        Target names, one per column (used in ``history_`` keys).
    kind : {"binary", "multiclass", "regression"}
        How outputs are read and scored.
    out_key : str or None
        Key of the output in the ``dict`` returned by ``forward``; None when
        ``forward`` returns one tensor.
    out_cols : slice or None
        Columns of the output tensor belonging to this group (None: all).
    y_cols : slice or None
        Columns of the target matrix (None: the target is 1-D, multiclass).
    loss : callable
        Element-wise loss ``(pred, target) -> tensor`` of the target's shape.
    weights : torch.Tensor
        One loss weight per target column.
    class_weight : torch.Tensor or None
        Single-label classification: the weight of each class (two for a
        binary logit), scaled to a mean of one over the training samples.
        The validation loss weighs each sample's cross-entropy by it, which
        scores ``predict_proba`` (the class-weighted posterior) properly.
    pos_weight : torch.Tensor or None
        Binary only: weight of the positive class of each column.
    logit_offset : torch.Tensor or None
        Single-label classification: what the training loss adds to the
        logits (``-log`` of the class weights; for one binary logit, the
        log ratio of the negative to the positive class weight). This logit
        adjustment trains the network for the class-weighted decision rule
        without weighting samples (Menon et al., ICLR 2021).
    """

    names: list
    kind: str
    out_key: str | None
    out_cols: slice | None
    y_cols: slice | None
    loss: object
    weights: torch.Tensor
    class_weight: torch.Tensor | None = None
    pos_weight: torch.Tensor | None = None
    logit_offset: torch.Tensor | None = None

    def output(self, y_pred):
        out = y_pred[self.out_key] if self.out_key is not None else y_pred
        if self.kind == "multiclass":
            return out
        if out.ndim == 1:
            out = out.unsqueeze(1)
        return out if self.out_cols is None else out[:, self.out_cols]

    def target(self, y):
        return y if self.y_cols is None else y[:, self.y_cols]

    def elementwise(self, pred, target, training=True):
        """Loss per sample and column, shape ``(n, n_columns)``.

        With class weights, the training loss adjusts the logits and the
        validation loss (``training=False``) weighs the samples by class.
        """
        if self.logit_offset is not None:
            if self.logit_offset.device != pred.device:
                self.logit_offset = self.logit_offset.to(pred.device)
                self.class_weight = self.class_weight.to(pred.device)
            if training:
                pred = pred + self.logit_offset
            elif self.kind == "binary":
                per = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
                return per * self.class_weight[target.long()]
        if self.kind == "multiclass":
            cw = None if training else self.class_weight
            return F.cross_entropy(pred, target, weight=cw, reduction="none")[:, None]
        if pred.shape != target.shape:
            raise ValueError(
                f"The network output for {self.names} has shape {tuple(pred.shape)} "
                f"but the targets have shape {tuple(target.shape)}; check the "
                "module's n_outputs."
            )
        if self.kind == "binary" and self.pos_weight is not None:
            pw = self.pos_weight = self.pos_weight.to(pred.device)
            return F.binary_cross_entropy_with_logits(
                pred, target, pos_weight=pw, reduction="none"
            )
        per = self.loss(pred, target)
        if not isinstance(per, torch.Tensor) or per.shape != target.shape:
            # A reduced loss (MSELoss() with its default reduction="mean")
            # would weigh the batch by its mean sample weight, and a
            # broadcasting one train on an (n, n) matrix: both silently.
            shape = tuple(per.shape) if isinstance(per, torch.Tensor) else type(per)
            raise ValueError(
                f"The loss of {self.names} returned {shape} for targets of shape "
                f"{tuple(target.shape)}: it must return one value per sample and "
                "column, unreduced (e.g. torch.nn.MSELoss(reduction='none'))."
            )
        return per


def check_output_shapes(out, groups, targets, module, n_outputs=None):
    """Refuse module outputs that the losses cannot read as the targets.

    Called once, on a probe batch, before training: an output of another
    dtype, width or number of rows failed later with a raw torch error (or,
    with more logits than classes, trained and predicted out of range).
    """
    name = type(module).__name__
    n = len(targets)
    for tensor in out.values() if isinstance(out, dict) else [out]:
        if not tensor.is_floating_point():
            raise TypeError(
                f"The module {name} returned {tensor.dtype} outputs; the losses "
                "need real floating-point outputs (logits or values)."
            )
    if isinstance(out, torch.Tensor) and isinstance(n_outputs, int):
        width = 1 if out.ndim == 1 else out.shape[1] if out.ndim == 2 else None
        if width != n_outputs or len(out) != n:
            raise ValueError(
                f"The module {name} returned an output of shape {tuple(out.shape)} "
                f"for a batch of {n} samples; it must be ({n}, {n_outputs}): one "
                f"row per sample and n_outputs={n_outputs} columns."
            )
    for group in groups:
        pred = group.output(out)
        if pred.ndim != 2 or len(pred) != n:
            raise ValueError(
                f"The module {name} returned an output of shape "
                f"{tuple(pred.shape)} for {group.names} on a batch of {n} "
                "samples; it must have one row per sample and one column per "
                "output."
            )


class HeadsLoss(nn.Module):
    """The training criterion: weighted mean of every head's loss.

    Called as ``criterion(y_pred, (y, sample_weight))``; sample weights are
    normalised to mean one over the training set by the caller, so a batch
    loss is ``mean_i(w_i * l_i)`` and its expectation is the weighted loss.
    """

    def __init__(self, groups):
        super().__init__()
        self.groups = groups
        self._total_weight = float(sum(float(g.weights.sum()) for g in groups))
        # One group with equal weights: the loss is a plain mean (the fast path).
        self._plain = len(groups) == 1 and bool((groups[0].weights == 1).all())

    def forward(self, y_pred, y_true):
        y, sample_weight = y_true
        if self._plain and sample_weight is None:
            group = self.groups[0]
            return group.elementwise(
                group.output(y_pred).float(), group.target(y), self.training
            ).mean()
        total = 0.0
        for group in self.groups:
            pred = group.output(y_pred).float()
            per = group.elementwise(pred, group.target(y), self.training)
            weights = group.weights
            if weights.device != per.device:
                weights = group.weights = weights.to(per.device)
            per = per * weights
            if sample_weight is not None:
                per = per * sample_weight[:, None]
            total = total + per.sum(1).mean()
        return total / self._total_weight


def resolve_loss(name, **params):
    """Element-wise loss for a regression loss name (with its parameters) or
    callable."""
    if isinstance(name, type):  # called with (pred, target), it built a module
        raise ValueError(
            f"loss is the class {name.__name__}; pass an element-wise loss "
            f"callable, such as an instance: {name.__name__}(reduction='none')."
        )
    if callable(name):
        return name
    from ..nn import elementwise_loss

    return elementwise_loss(name, **params)


def regression_groups(names, *, loss, weights):
    """One regression head group over every target (split per target for dicts)."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    return [HeadGroup(list(names), "regression", None, None, None, loss, w)]


def multilabel_groups(names, *, weights, pos_weight=None):
    """One binary head group over every label (split per label for dict outputs)."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    return [
        HeadGroup(
            list(names),
            "binary",
            None,
            None,
            slice(0, len(names)),
            _bce,
            w,
            pos_weight=pos_weight,
        )
    ]


# -- metrics recorded per epoch on the validation split ------------------------------
def _safe_auc(y_true, score):
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))


_METRICS = {
    "multiclass": ("accuracy",),
    "binary": ("accuracy", "roc_auc"),
    "regression": ("rmse", "r2"),
}


def head_metrics(groups, y_pred, y_true, prefix="valid"):
    """Metrics per target as ``{f"{prefix}_{name}_{metric}": value}``.

    ``y_pred`` is the concatenated raw network output (tensor or dict of
    tensors), ``y_true`` the target tensor.
    """
    scores = {}
    single = sum(len(g.names) for g in groups) == 1
    for group in groups:
        pred = group.output(y_pred).float().cpu().numpy()
        target = group.target(y_true).cpu().numpy()
        for j, name in enumerate(group.names):
            key = prefix if single else f"{prefix}_{name}"
            column = pred if group.kind == "multiclass" else pred[:, j]
            if not np.isfinite(column).all():
                # A diverging network: the metrics are undefined, never an error.
                for metric in _METRICS[group.kind]:
                    scores[f"{key}_{metric}"] = float("nan")
                continue
            if group.kind == "multiclass":
                scores[f"{key}_accuracy"] = float(np.mean(pred.argmax(1) == target))
            elif group.kind == "binary":
                t = target[:, j]
                scores[f"{key}_accuracy"] = float(
                    np.mean((pred[:, j] > 0) == (t > 0.5))
                )
                scores[f"{key}_roc_auc"] = _safe_auc(t, pred[:, j])
            else:
                t, p = target[:, j], pred[:, j]
                scores[f"{key}_rmse"] = float(np.sqrt(np.mean((t - p) ** 2)))
                scores[f"{key}_r2"] = (
                    float(r2_score(t, p)) if t.size > 1 else float("nan")
                )
    return scores
