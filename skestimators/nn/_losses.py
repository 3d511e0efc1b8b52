"""Composite regression losses for soil organic carbon, with per-sample weights.

The composite loss of the CNN-LSTM soil organic carbon model for Bavaria
blends a plain loss on the errors with a chi-squared term, the squared
errors scaled by an assumed measurement uncertainty ``sigma``::

    loss_i = alpha * base(e_i) + (1 - alpha) * (e_i / sigma) ** 2

with errors ``e_i = y_pred_i - y_true_i``, where ``base`` is ``|e|``
(``composite_l1``) or ``e ** 2`` (``composite_l2``); ``alpha`` (``loss_alpha``
of the estimators) weights the L1/L2 part. See :class:`CompositeLoss` for
the reference.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CompositeLoss"]
_REDUCTIONS = ("mean", "sum", "none")


def _weighted_reduce(loss, sample_weight, reduction):
    """Apply per-sample weights (along the first axis), then reduce."""
    if sample_weight is not None:
        weight = torch.as_tensor(sample_weight, dtype=loss.dtype, device=loss.device)
        if weight.ndim != 1 or weight.shape[0] != loss.shape[0]:
            raise ValueError(
                f"sample_weight must have shape ({loss.shape[0]},), got "
                f"{tuple(weight.shape)}."
            )
        weight = weight.reshape(-1, *([1] * (loss.ndim - 1))).expand_as(loss)
        loss = loss * weight
        if reduction == "mean":
            total = weight.sum()
            if total == 0:
                raise ValueError(
                    "sample_weight sums to 0: the weighted mean loss is undefined."
                )
            return loss.sum() / total
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def align_target(y_pred, y_true):
    """``y_true`` in the shape of ``y_pred``, when only axes of length 1 differ.

    ``(n,)`` against ``(n, 1)`` is reshaped; any other difference, such as a
    transposed ``(2, n)`` against ``(n, 2)``, which reshaping would scramble
    and broadcasting would turn into an ``(n, n)`` loss, is refused.
    """
    if y_true.shape == y_pred.shape:
        return y_true
    if [d for d in y_true.shape if d != 1] != [d for d in y_pred.shape if d != 1]:
        raise ValueError(
            f"y_pred has shape {tuple(y_pred.shape)} but y_true has shape "
            f"{tuple(y_true.shape)}."
        )
    return y_true.reshape(y_pred.shape)


class CompositeLoss(nn.Module):
    """Blend of an L1 or L2 loss with a chi-squared term.

    For errors ``e = y_pred - y_true``, the element-wise loss is
    ``alpha * base(e) + (1 - alpha) * (e / sigma) ** 2`` with ``base(e)`` equal
    to ``|e|`` (``base="l1"``) or ``e ** 2`` (``base="l2"``). ``alpha=1`` gives
    the plain L1 loss or MSE. The chi-squared term measures the errors in
    units of an assumed measurement uncertainty ``sigma`` of the soil organic
    carbon values; the composite L1 and L2 losses are those of the CNN-LSTM
    model for soil organic carbon in Bavaria [1]_.

    Parameters
    ----------
    base : {"l1", "l2", "huber"}, default="l1"
        The plain part of the loss.
    alpha : float, default=0.5
        Weight of the plain part, in ``[0, 1]``; the chi-squared term gets
        ``1 - alpha``.
    sigma : float, default=3.0
        Scale of the errors in the chi-squared term (the default of [1]_).
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"none"`` returns the element-wise loss (times the sample weights),
        so that a training engine can weight and reduce it itself.

    Notes
    -----
    With ``base="l2"`` the loss is ``(alpha + (1 - alpha) / sigma**2) * e**2``,
    a rescaled MSE: it has the same minimiser as the MSE and only changes the
    effective learning rate. With ``base="l1"`` it is a Huber-like blend of
    absolute and squared errors. The chi-squared term is the ``chi2_loss``
    of the code listed in [1]_, ``mean(e**2 / sigma**2)`` (its return line
    names an undefined ``chi2_scaled``).

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023): composite
       L1/L2 + chi-squared losses, ``--loss_alpha``.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import CompositeLoss
    >>> loss = CompositeLoss(base="l1", alpha=0.5, sigma=2.0)
    >>> y_pred, y_true = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    >>> loss(y_pred, y_true)
    tensor(1.0625)
    >>> loss(y_pred, y_true, sample_weight=torch.tensor([1.0, 0.0]))
    tensor(0.6250)
    """

    def __init__(self, base="l1", alpha=0.5, sigma=3.0, reduction="mean"):
        super().__init__()
        if base not in ("l1", "l2", "huber"):
            raise ValueError(f"base must be 'l1', 'l2' or 'huber', got {base!r}.")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        if not float(sigma) > 0.0:
            raise ValueError(f"sigma must be positive, got {sigma!r}.")
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r}."
            )
        self.base = base
        self.alpha = float(alpha)
        self.sigma = float(sigma)
        self.reduction = reduction

    def forward(self, y_pred, y_true, sample_weight=None):
        """Loss of ``y_pred`` against ``y_true``.

        Parameters
        ----------
        y_pred : torch.Tensor of shape (n_samples, ...)
            Predictions.
        y_true : torch.Tensor
            Targets, of the shape of ``y_pred``, or of a shape that differs
            from it only by axes of length 1 (``(n,)`` against ``(n, 1)``), in
            which case it is reshaped.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Per-sample weights; ``"mean"`` then divides by their total.

        Returns
        -------
        loss : torch.Tensor
            A scalar, or the element-wise loss for ``reduction="none"``.
        """
        y_true = align_target(y_pred, y_true)
        error = y_pred - y_true.to(y_pred.dtype)
        if self.base == "huber":
            plain = F.huber_loss(error, torch.zeros_like(error), reduction="none")
        else:
            plain = error.abs() if self.base == "l1" else error.square()
        loss = (
            plain
            if self.alpha == 1.0
            else (
                self.alpha * plain + (1.0 - self.alpha) * (error / self.sigma).square()
            )
        )
        return _weighted_reduce(loss, sample_weight, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"base={self.base!r}, alpha={self.alpha}, sigma={self.sigma}, "
            f"reduction={self.reduction!r}"
        )
