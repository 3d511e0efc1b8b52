"""What a fit keeps and says when its training loss stops being finite."""

from __future__ import annotations

import copy

import torch


def training_state(net):
    """What a continuing fit restores if its training diverges."""
    return {
        "module": copy.deepcopy(net.module_.state_dict()),
        "optimizer": copy.deepcopy(net.optimizer_.state_dict()),
        "n_history": len(net.history),
    }


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
