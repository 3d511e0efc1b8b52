"""Element-wise regression losses by name (the ``loss=`` of every regressor)."""

from __future__ import annotations

from torch.nn import functional as F

from ._losses import get_loss


def _mse(pred, target):
    return F.mse_loss(pred, target, reduction="none")


def _l1(pred, target):
    return F.l1_loss(pred, target, reduction="none")


def _huber(pred, target):
    return F.huber_loss(pred, target, reduction="none")


_SIMPLE = {"mse": _mse, "l1": _l1, "huber": _huber}


def elementwise_loss(name, *, loss_alpha=0.5, sigma=3.0):
    """Return the element-wise loss ``(pred, target) -> tensor`` called ``name``.

    Parameters
    ----------
    name : {"mse", "l1", "huber", "composite_l1", "composite_l2"}
        The loss.
    loss_alpha : float, default=0.5
        Composite losses only: weight of the L1/L2 term; the chi² term
        ``(error / sigma)**2`` gets ``1 - loss_alpha`` (the seed's definition).
    sigma : float, default=3.0
        Composite losses only: the error scale of the chi² term.

    Returns
    -------
    loss : callable
        Maps ``(pred, target)`` to a tensor of per-element losses (no reduction).

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import elementwise_loss
    >>> elementwise_loss("l1")(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]))
    tensor([1., 2.])
    """
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name in ("composite_l1", "composite_l2"):
        return get_loss(name, loss_alpha, sigma, reduction="none")
    raise ValueError(
        "loss must be one of 'mse', 'l1', 'huber', 'composite_l1', 'composite_l2' "
        f"or a callable, got {name!r}."
    )
