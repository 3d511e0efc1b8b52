"""What a fit keeps and says when its training loss stops being finite."""

from __future__ import annotations

import copy
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning

from ..exceptions import TrainingDivergedError
from ._callbacks import LRScheduler
from ._validation import caller_stacklevel


def training_state(net):
    """What a continuing fit restores if its training diverges.

    The learning-rate schedules continue across calls, so their state is
    kept too (None: not started yet, as after a safe model file); the other
    callbacks start afresh at every call.
    """
    return {
        "module": copy.deepcopy(net.module_.state_dict()),
        "optimizer": copy.deepcopy(net.optimizer_.state_dict()),
        "n_history": len(net.history),
        # continue_with compares the estimator's lr with this one: a retry
        # after a failure must apply it again.
        "lr": net.lr,
        "schedules": {
            name: (
                None
                if callback.lr_scheduler_ is None
                else copy.deepcopy(callback.state_dict())
            )
            for name, callback in net.callbacks_
            if isinstance(callback, LRScheduler)
        },
    }


def restore_training_state(net, state):
    """Put ``net`` back in the :func:`training_state` ``state``."""
    net.module_.load_state_dict(state["module"])
    net.optimizer_.load_state_dict(state["optimizer"])
    net.lr = state["lr"]
    del net.history[state["n_history"] :]
    callbacks = dict(net.callbacks_)
    for name, schedule in state["schedules"].items():
        if schedule is None:
            callbacks[name].lr_scheduler_ = None  # the next fit replays it
        else:
            callbacks[name].load_state_dict(schedule)


def finite_state(state_dict, keys=None):
    """Whether the floating tensors of ``state_dict`` (those named in
    ``keys``, if given) are finite."""
    return all(
        bool(torch.isfinite(t).all())
        for k, t in state_dict.items()
        if (keys is None or k in keys) and torch.is_tensor(t) and t.is_floating_point()
    )


def nonfinite_buffers(module) -> tuple:
    """Names of the floating buffers of ``module`` that are not finite (when
    the network is built: constants, such as a causal mask of ``-inf``)."""
    return tuple(
        name
        for name, buffer in module.named_buffers()
        if buffer.is_floating_point() and not bool(torch.isfinite(buffer).all())
    )


def weight_names(net) -> set:
    """The parameters and buffers of ``net.module_`` whose values must stay
    finite: all but the buffers that were not finite when it was built."""
    constant = set(getattr(net, "constant_nonfinite_", ()))
    names = {name for name, _ in net.module_.named_parameters()}
    return names | {n for n, _ in net.module_.named_buffers() if n not in constant}


def finite_weights(net):
    """Whether the parameters and buffers of ``net.module_`` are finite
    (those read by :func:`weight_names`): a batch normalisation's running
    variance overflowing to infinity makes every prediction the same."""
    return finite_state(net.module_.state_dict(keep_vars=True), weight_names(net))


def advice(config):
    tips = [f"a lower learning rate (lr={config.lr:g} now)"]
    if config.gradient_clip is None:
        tips.append("gradient clipping (gradient_clip=1.0)")
    if config.amp is not None:
        tips.append("full precision (amp=None)")
    if len(tips) == 1:
        return f"Try {tips[0]}."
    return f"Try {', '.join(tips[:-1])} or {tips[-1]}."


def diverged(net, exc, config, snapshot, refit=False):
    """The loss became non-finite: restore the best weights or raise.

    Warns (:class:`~sklearn.exceptions.ConvergenceWarning`) when early
    stopping kept the weights of a best epoch, which are restored; else
    raises :class:`TrainingDivergedError`, after putting a continuing fit
    back in its ``snapshot`` (``refit``: the estimator had a model before).
    """
    if net.history and "train_loss" not in net.history[-1]:
        net.history.pop()  # the epoch that diverged is not complete
    early = dict(net.callbacks_).get("early_stopping")
    best = None if early is None else early.best_model_weights_
    if best is not None and finite_state(best, weight_names(net)) and net.history:
        net.module_.load_state_dict(best)
        # The optimizer's moments followed the diverged steps: start them
        # afresh from the restored weights (the schedule keeps its place).
        net.optimizer_.state.clear()
        early.stopped_ = True  # training is over: a checkpoint says so
        net.notify("on_train_end")
        warnings.warn(
            f"{config.name}: {exc.describe()}; training stopped there and "
            f"the weights of epoch {early.best_epoch_} (lowest validation "
            "loss) were restored, with a fresh optimizer state. " + advice(config),
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
        return
    _end_training(net, exc)  # loggers end their runs failed
    if snapshot is not None:
        restore_training_state(net, snapshot)
        state = "The estimator keeps its state from before this call."
    elif refit:
        state = "The estimator keeps the model of its previous fit."
    else:
        state = "The estimator is left unfitted."
    fallback = ""
    if exc.epoch == 1 and exc.batch == 1 and exc.value is not None:
        # No step was taken: neither the learning rate nor clipping is at fault.
        amp = " or full precision (amp=None)" if config.amp is not None else ""
        raise TrainingDivergedError(
            f"{config.name}: the loss is {exc.value} on the first training batch, "
            "before any update: the untrained network's outputs or the loss are "
            "not finite on these (finite) inputs. Check the module's forward "
            f"(a log or square root of negatives, a division by zero){amp}, and "
            f"that the targets suit the loss. {state}",
            epoch=exc.epoch,
            batch=exc.batch,
        ) from None
    if early is not None and not net.history:
        fallback = (
            " It diverged in the first epoch, before early stopping had an "
            "epoch to fall back on."
        )
    elif best is None or not net.history:
        fallback = (
            " No weights of an earlier epoch were kept: train with a validation "
            "split and early_stopping=True to fall back on the best epoch."
        )
    raise TrainingDivergedError(
        f"{config.name} training diverged: {exc.describe()}.{fallback} "
        f"{advice(config)} {state}",
        epoch=exc.epoch,
        batch=exc.batch,
    ) from None


def _end_training(net, error):
    """End a training that diverged: ``on_train_failed(net, error=...)`` for
    the callbacks that define it (the loggers end their run failed),
    ``on_train_end`` for the others; early stopping is skipped when no epoch
    was completed (it reads the last epoch of the history)."""
    for name, callback in net.callbacks_:
        failed = getattr(callback, "on_train_failed", None)
        if failed is not None:
            failed(net, error=error)
        elif name != "early_stopping" or net.history:
            callback.on_train_end(net)


#: How many times the untrained network's loss the kept weights' training
#: loss may reach before the fit warns that training blew up.
_BLOW_UP = 100.0


#: Cross-entropy (nats per sample) above which a classifier learned nothing:
#: a constant prediction of the class frequencies scores under log(K) (13.8
#: for a million classes).
_NEVER_LEARNED = 100.0


def _warn_if_never_learned(net, config, kept, end):
    """Warn when a classifier's kept epoch has a cross-entropy far above a
    constant prediction's: from its first batch on, as when the inputs are far
    from unit scale (masses in kg, 1e30), which the blow-up check, comparing
    with the first batch, cannot see."""
    groups = getattr(net, "head_groups", None) or []
    classifies = groups and all(g.kind in ("binary", "multiclass") for g in groups)
    if not classifies or end is None or not end > _NEVER_LEARNED:
        return
    warnings.warn(
        f"{config.name}: the training loss of epoch {kept}, whose weights are "
        f"kept, is {end:.3g} nats per sample, where predicting the class "
        "frequencies would score under log(number of classes): the network "
        "learned nothing, and its predictions are unreliable. Inputs far from "
        "unit scale (values near 1e30, say) do this: standardise them "
        "(StandardScaler; the recipes' preprocessing does it).",
        ConvergenceWarning,
        stacklevel=caller_stacklevel(),
    )


def warn_if_blown_up(net, config):
    """Warn when training diverged without overflowing.

    A learning rate far too high can throw the weights to values whose loss
    stays finite but is many times the untrained network's: the fit ends
    without error and predicts nonsense. Compares the mean training loss of
    the epoch whose weights are kept (early stopping's best epoch, else the
    last) with the loss of the first training batch, computed by the
    untrained network (its mean weighted by the batch's sample weights);
    warns (:class:`~sklearn.exceptions.ConvergenceWarning`) above
    :data:`_BLOW_UP` times, and above 1. Losses that can be negative (a
    likelihood) are not judged (nor, without the first batch's loss, a fit
    continued from a safe model file).
    """
    history = net.history
    start = net.__dict__.get("first_batch_loss_") if history else None
    early = dict(net.callbacks_).get("early_stopping")
    kept = len(history)
    if getattr(early, "load_best", False) and getattr(early, "best_epoch_", None):
        kept = min(int(early.best_epoch_), len(history))
    end = history[kept - 1].get("train_loss")
    # Also above 1 (a standardised target's variance, a nat): an untrained
    # network that happens to fit constant targets has a near-zero loss.
    blown = (
        start is not None
        and end is not None
        and start > 0
        and end > max(_BLOW_UP * start, 1.0)
    )
    if not blown:  # high from the first batch on, if at all
        _warn_if_never_learned(net, config, kept, end)
        return
    warnings.warn(
        f"{config.name}: training diverged without overflowing: the training "
        f"loss of epoch {kept}, whose weights are kept, is {end:.3g}, "
        f"{end / start:.3g} times the untrained network's ({start:.3g} on the "
        "first batch). The predictions are unreliable. " + advice(config),
        ConvergenceWarning,
        stacklevel=caller_stacklevel(),
    )
