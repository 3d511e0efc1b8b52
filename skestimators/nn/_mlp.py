"""A plain multilayer perceptron, the default module of the generic estimators."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected network on flattened inputs.

    Parameters
    ----------
    input_shape : tuple of int or dict of str to tuple
        Shape of one sample; it is flattened. A dict of shapes means named
        inputs (``forward(**inputs)``), flattened and concatenated in the
        order of the dict. Injected by the estimators.
    n_outputs : int
        Number of outputs (logits or regression targets). Injected by the
        estimators.
    width : int, default=64
        Units of each hidden layer.
    depth : int, default=1
        Number of hidden layers (0: a linear model).
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    activation : {"relu", "gelu", "tanh"}, default="relu"
        Hidden activation.
    batch_norm : bool, default=False
        Add batch normalisation after each hidden linear layer.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import MLP
    >>> net = MLP(input_shape=(3, 4), n_outputs=2, width=8)
    >>> net(torch.zeros(5, 3, 4)).shape
    torch.Size([5, 2])
    """

    _activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}

    def __init__(
        self,
        input_shape=(1,),
        n_outputs=1,
        width=64,
        depth=1,
        dropout=0.0,
        activation="relu",
        batch_norm=False,
    ):
        super().__init__()
        if int(width) < 1 or int(depth) < 0:
            # width=0 trained a constant, depth=-1 a linear model, silently.
            raise ValueError(
                f"width must be at least 1 and depth at least 0, got {width} and "
                f"{depth}."
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if activation not in self._activations:
            raise ValueError(
                f"activation must be one of {sorted(self._activations)}, got "
                f"{activation!r}."
            )
        if isinstance(input_shape, dict):
            self.input_names = list(input_shape)
            n_in = sum(int(math.prod(s)) for s in input_shape.values())
        else:
            self.input_names = None
            n_in = int(math.prod(input_shape))
        layers = [nn.Flatten()]
        for _ in range(int(depth)):
            layers.append(nn.Linear(n_in, int(width)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(width)))
            layers.append(self._activations[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            n_in = int(width)
        layers.append(nn.Linear(n_in, int(n_outputs)))
        self.layers = nn.Sequential(*layers)

    def forward(self, X=None, **inputs):
        if self.input_names is not None:
            X = torch.cat([inputs[k].flatten(1) for k in self.input_names], dim=1)
        return self.layers(X)
