"""What a fit keeps and says when its training loss stops being finite."""

from __future__ import annotations

import copy

import torch

from ._callbacks import LRScheduler


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
    del net.history[state["n_history"] :]
    callbacks = dict(net.callbacks_)
    for name, schedule in state["schedules"].items():
        if schedule is None:
            callbacks[name].lr_scheduler_ = None  # the next fit replays it
        else:
            callbacks[name].load_state_dict(schedule)


def finite_state(state_dict):
    return all(
        bool(torch.isfinite(t).all())
        for t in state_dict.values()
        if torch.is_tensor(t) and t.is_floating_point()
    )


def advice(config):
    tips = [f"a lower learning rate (lr={config.lr:g} now)"]
    if config.gradient_clip is None:
        tips.append("gradient clipping (gradient_clip=1.0)")
    if config.amp is not None:
        tips.append("full precision (amp=None)")
    if len(tips) == 1:
        return f"Try {tips[0]}."
    return f"Try {', '.join(tips[:-1])} or {tips[-1]}."
