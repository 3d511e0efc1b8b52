"""What a continuing fit (``warm_start``, ``partial_fit``) applies to its network.

scikit-learn's warm-started estimators read their current parameters: a
continuing fit applies those it can to the network it continues, and warns
of the changed parameters it cannot apply (the network, its optimizer, loss
and callbacks are kept).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd

from ._validation import caller_stacklevel

#: Parameters that a continuing fit applies (or reads afresh each fit), and
#: those that only prediction reads.
_APPLIED_WHEN_CONTINUING = frozenset(
    {
        "lr", "batch_size", "gradient_clip", "weight_decay", "max_epochs",
        "warm_start", "verbose", "random_state", "validation_fraction",
        "validation_cv", "tta", "mc_samples",
    }
)  # fmt: skip


def _same(a, b):
    """Whether two parameter values are equal (arrays, frames and containers
    by content: a model file rebuilds them as new objects)."""
    if a is b:
        return True
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return np.array_equal(np.asarray(a), np.asarray(b))
        if isinstance(a, (pd.DataFrame, pd.Series)):
            return type(a) is type(b) and a.equals(b)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(map(_same, a, b))
        return bool(a == b)
    except Exception:  # objects without a plain equality
        return False


def logged_params(config) -> dict:
    """The estimator's parameters as the experiment loggers record them."""
    return {k: v for k, v in config.params.items() if k != "callbacks"}


def continue_with(net, config):
    """Apply the training parameters of a continuing fit (``warm_start``,
    ``partial_fit``) to the network it continues, as scikit-learn's
    warm-started estimators read their current parameters: the batch size,
    gradient clipping, weight decay and, unless a schedule drives it, the
    learning rate. The network and optimizer themselves are kept; the
    parameters that the experiment loggers record are this fit's."""
    net.estimator_params = logged_params(config)
    net.batch_size = config.batch_size
    net.gradient_clip = config.gradient_clip
    groups = net.optimizer_.param_groups
    for group in groups:
        if "weight_decay" in group:
            group["weight_decay"] = config.weight_decay
    if config.lr == net.lr:
        return
    if config.lr_scheduler is not None:
        warnings.warn(
            f"{config.name}: lr={config.lr:g} is not applied to the continuing "
            f"fit: its learning-rate schedule ({config.lr_scheduler}) sets the "
            "rate and continues where it stopped. Fit without warm_start to "
            "train at the new rate.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
        return
    for group in groups:
        # Scaled: groups trained at a fraction of lr (a pretrained backbone's
        # feature_lr_factor) keep their fraction.
        group["lr"] = group["lr"] * (config.lr / net.lr)
    net.lr = config.lr


def kept_split_seed(config, estimator, seed):
    """Seed of a continuing fit's validation split, recorded with the
    network (``estimator._module_spec``) for the next continuing fit.

    Without an int ``random_state`` each fit draws a new ``seed``, and a
    continuing fit splitting with it would train on the rows validated on
    so far (early stopping would then monitor rows the network has learnt):
    it splits with the recorded seed instead, that of the last fit. An int
    ``random_state`` gives the same seed anyway, or, changed, a new split as
    asked, which the next fits keep; a network without a recorded seed (a
    file of an older version) splits with ``seed`` and records it.
    """
    spec = estimator.__dict__.get("_module_spec")
    if spec is None:
        return seed
    if not isinstance(config.random_state, numbers.Integral):
        seed = int(spec.get("split_seed", seed))
    spec["split_seed"] = seed
    return seed


def warn_unapplied(name, built, current, warned):
    """Warn of parameters changed since the network was built that a
    continuing fit does not apply (the network, optimizer, loss...).

    ``built`` and ``current`` are the estimator's parameters when its network
    was built and now; ``warned`` the names of the last warning, which is
    not repeated. Returns the names of the changed parameters.
    """
    changed = sorted(
        k
        for k in current
        if k in built
        and k not in _APPLIED_WHEN_CONTINUING
        and not _same(built[k], current[k])
    )
    if not changed or changed == warned:
        return changed
    warnings.warn(
        f"{name}: {changed} changed since the network was built, and "
        "a continuing fit (warm_start, partial_fit) keeps the network, its "
        "optimizer, loss and callbacks: it applies only lr, batch_size, "
        "gradient_clip, weight_decay and max_epochs. Fit with "
        "warm_start=False to apply the others.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
    return changed


def warn_validation_change(config, built_with_valid, valid):
    """Warn when a continuing fit has a validation split and the network was
    built without one, or the reverse: its callbacks (early stopping, a
    plateau schedule) were chosen then and are kept."""
    if built_with_valid is None or built_with_valid == (valid is not None):
        return
    warnings.warn(
        f"{config.name}: the network was built "
        f"{'with' if built_with_valid else 'without'} a validation split, and a "
        "continuing fit keeps its callbacks: early stopping and a plateau "
        "schedule do not follow the change of validation_fraction or "
        "validation_cv. Fit with warm_start=False to apply it.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
