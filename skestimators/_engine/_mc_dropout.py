"""Monte Carlo dropout whose draws do not depend on how the rows are batched.

Dropout in training mode draws a fresh mask for every row of every batch
from torch's global generator, so the mask a row gets depends on its
position in its batch and on the batches before it: the standard deviation
of a Monte Carlo run changed with ``batch_size``, with the chunks of bulk
scoring and of a map, and between ``predict(X[:5])`` and
``predict(X[:10])[:5]`` (a map's uncertainty band repeated with the chunk
period on a constant raster).

Here the ``t``-th pass draws one mask per dropout layer, shared by every row
of every batch (broadcast along the batch dimension, the first), from a
generator seeded by ``random_state``, the pass and the layer. For each row
the passes are independent dropout draws, as Monte Carlo dropout needs [1]_;
a row's draws, and so its mean and standard deviation, are a function of the
row alone. (Rows of one pass share the mask, so their Monte Carlo errors are
correlated; each row's estimate is unchanged in law.) Layers that see the
time steps of a sequence as rows of the batch (a CNN applied to each year)
drop the same units at every step, as variational dropout does in recurrent
networks [2]_. A layer called several times in one forward pass draws a
mask for each call. Masks are drawn on the CPU, so that every device gives
the same draws. Networks whose first dimension is not the batch (time
first) still draw by the row's place, as do alpha dropout and dropout
layers with a forward of their own (left to torch).

References
----------
.. [1] Y. Gal and Z. Ghahramani, "Dropout as a Bayesian approximation:
   representing model uncertainty in deep learning", ICML 2016.
.. [2] Y. Gal and Z. Ghahramani, "A theoretically grounded application of
   dropout in recurrent neural networks", NeurIPS 2016.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["shared_mask_dropout"]

#: Layers whose units are dropped one by one (masks of a row's shape) and
#: layers that drop whole channels (masks of shape (channels, 1, ...)).
_ELEMENTWISE = (torch.nn.Dropout,)
_CHANNELWISE = (torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d)
#: Mask values kept per layer for the next batches (beyond, a mask is drawn
#: again for every batch: the same mask, from the same seed).
_CACHED_VALUES = 2**22


class Passes:
    """The pass being computed, and a count of the network's forward calls
    (so that a layer called several times in one forward draws a mask per
    call)."""

    def __init__(self):
        self.draw = 0
        self.forward = 0

    def start(self, draw):
        """Before each forward call of the network: its pass ``draw``."""
        self.draw = draw
        self.forward += 1


class _SharedMaskDropout:
    """The forward pass of one dropout layer during a Monte Carlo run."""

    def __init__(self, layer, index, seed, passes):
        self.p = float(layer.p)
        self.channelwise = isinstance(layer, _CHANNELWISE)
        self.index = index
        self.seed = seed
        self.passes = passes
        self.seen = None  # the forward call of the calls counted
        self.calls = 0  # calls of this layer within that forward call
        self.masks = {}  # (pass, call, shape, device, dtype) -> mask
        self.cached = 0  # values held by ``masks``

    def __call__(self, x):
        if x.dim() < 2:  # no batch dimension to share the mask along
            return torch.nn.functional.dropout(x, self.p, training=True)
        if self.seen != self.passes.forward:
            self.seen, self.calls = self.passes.forward, 0
        call, self.calls = self.calls, self.calls + 1
        if self.channelwise:
            shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
        else:
            shape = (1, *x.shape[1:])
        draw = self.passes.draw
        key = (draw, call, shape, x.device, x.dtype)
        mask = self.masks.get(key)
        if mask is None:
            state = np.random.SeedSequence([self.seed, draw, self.index, call])
            generator = torch.Generator().manual_seed(int(state.generate_state(1)[0]))
            keep = torch.empty(shape).bernoulli_(1.0 - self.p, generator=generator)
            scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
            mask = (keep * scale).to(device=x.device, dtype=x.dtype)
            if self.cached + mask.numel() <= _CACHED_VALUES:  # else drawn again
                self.masks[key] = mask
                self.cached += mask.numel()
        return x * mask


#: The forward methods replaced: those of torch's own dropout layers (a
#: subclass with a forward of its own, which may reshape its input, keeps it).
_REPLACED = {cls.forward for cls in _ELEMENTWISE + _CHANNELWISE}


def shared_mask_dropout(layers, seed):
    """Make ``layers`` (dropout layers of a copy of the network) drop units in
    every pass, with masks shared by the rows (see the module's docstring).

    Returns the :class:`Passes`: call its ``start(t)`` before each forward
    call of pass ``t``. Layers of other kinds (alpha dropout, subclasses with
    a forward of their own) are switched to training mode and draw from
    torch's generator, row by row.
    """
    passes = Passes()
    for index, layer in enumerate(layers):
        if type(layer).forward in _REPLACED:
            layer.forward = _SharedMaskDropout(layer, index, seed, passes)
        else:
            layer.train()
    return passes
