"""The regression losses by name: the one registry behind every ``loss=``.

Every regressor's ``loss`` parameter, its validation, :func:`get_loss`,
:func:`elementwise_loss` and the documentation read the names, aliases and
parameters from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from ._losses import CompositeLoss, align_target


@dataclass(frozen=True)
class LossSpec:
    """One named loss: its plain part and whether a chi² term is added."""

    base: str
    composite: bool
    description: str


#: The losses by canonical name.
LOSSES = {
    "mse": LossSpec("l2", False, "mean squared error"),
    "l1": LossSpec("l1", False, "mean absolute error"),
    "huber": LossSpec("huber", False, "Huber loss (quadratic below 1, linear above)"),
    "composite_l1": LossSpec("l1", True, "absolute error plus a chi² term"),
    "composite_l2": LossSpec("l2", True, "squared error plus a chi² term"),
}
#: Other accepted spellings.
LOSS_ALIASES = {"l2": "mse", "mae": "l1"}
#: Every accepted name (canonical names and aliases) to its canonical name.
LOSS_NAMES = {**{name: name for name in LOSSES}, **LOSS_ALIASES}
#: Parameters of the composite losses and their defaults (the estimators'
#: ``loss_alpha`` and ``sigma``); the plain losses ignore them.
LOSS_PARAMS = {"loss_alpha": 0.5, "sigma": 3.0}


def _mse(pred, target):
    return F.mse_loss(pred, align_target(pred, target), reduction="none")


def _l1(pred, target):
    return F.l1_loss(pred, align_target(pred, target), reduction="none")


def _huber(pred, target):
    return F.huber_loss(pred, align_target(pred, target), reduction="none")


_PLAIN = {"l2": _mse, "l1": _l1, "huber": _huber}


def _spec(name):
    try:
        return LOSSES[LOSS_NAMES[name]]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown loss {name!r}; choose one of {sorted(LOSS_NAMES)} or pass "
            "a callable."
        ) from None


def _params(params):
    unknown = sorted(set(params) - set(LOSS_PARAMS))
    if unknown:
        raise TypeError(
            f"Unknown loss parameters {unknown}; known: {list(LOSS_PARAMS)}."
        )
    return {**LOSS_PARAMS, **params}


def get_loss(
    name,
    loss_alpha=LOSS_PARAMS["loss_alpha"],
    sigma=LOSS_PARAMS["sigma"],
    *,
    reduction="mean",
) -> CompositeLoss:
    """Loss module for a registered loss name.

    Parameters
    ----------
    name : {"mse", "l1", "huber", "composite_l1", "composite_l2"}
        Loss name (``"l2"`` and ``"mae"`` are accepted as aliases).
    loss_alpha : float, default=0.5
        Weight of the plain part of the composite losses; ignored otherwise.
    sigma : float, default=3.0
        Error scale of the chi² term of the composite losses; ignored otherwise.
    reduction : {"mean", "sum", "none"}, default="mean"
        Reduction of the returned module.

    Returns
    -------
    loss : CompositeLoss
        Called as ``loss(y_pred, y_true, sample_weight=None)``. The plain
        losses are composite losses with ``alpha=1``.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import get_loss
    >>> get_loss("mse")(torch.tensor([2.0]), torch.tensor([0.0]))
    tensor(4.)
    >>> get_loss("composite_l2", loss_alpha=0.5, sigma=2.0, reduction="none")(
    ...     torch.tensor([2.0]), torch.tensor([0.0]))
    tensor([2.5000])
    """
    spec = _spec(name)
    if not spec.composite:  # both ignored, so not checked either
        loss_alpha, sigma = 1.0, 3.0
    return CompositeLoss(
        base=spec.base, alpha=loss_alpha, sigma=sigma, reduction=reduction
    )


def elementwise_loss(name, **params):
    """Return the element-wise loss ``(pred, target) -> tensor`` called ``name``.

    Parameters
    ----------
    name : {"mse", "l1", "huber", "composite_l1", "composite_l2"}
        The loss (``"l2"`` and ``"mae"`` are aliases).
    **params : float
        ``loss_alpha`` and ``sigma`` of the composite losses, whose element-wise
        loss is ``loss_alpha * base(e) + (1 - loss_alpha) * (e / sigma)**2``
        for errors ``e``; see :class:`CompositeLoss`.

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
    spec = _spec(name)
    params = _params(params)
    if not spec.composite:
        return _PLAIN[spec.base]
    return get_loss(name, reduction="none", **params)
