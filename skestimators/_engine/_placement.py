"""Prediction plumbing of the engine: batch sizes, device placement, checks."""

from __future__ import annotations

import math
import numbers

import torch

from ._batching import data_nbytes

__all__ = [
    "_nonfinite_rows",
    "_place",
    "_predict_batch_size",
    "_to",
    "dropout_layers",
]


def _nonfinite_rows(output, start):
    """Positions (offset by ``start``) of the rows of ``output`` that are not finite."""
    tensors = output.values() if isinstance(output, dict) else [output]
    bad = None
    for t in tensors:
        if bool(torch.isfinite(t).all()):
            continue
        rows = ~torch.isfinite(t.reshape(len(t), -1)).all(1)
        bad = rows if bad is None else bad | rows
    if bad is None:
        return None
    return start + torch.nonzero(bad).reshape(-1).numpy()


def dropout_layers(module):
    """The dropout layers of ``module`` that drop units (``p > 0``)."""
    return [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
    ]


def _predict_batch_size(batch_size, data):
    """Prediction batches of ``batch_size`` samples, or more (up to 1024) while
    a batch holds under 2**20 input values.

    Inference needs no gradients, so large batches amortise the per-batch cost
    on small samples (spectra, tables). Large samples (images) keep
    ``batch_size``, so that a lower ``batch_size`` lowers the memory a forward
    pass needs (a floor of 256 samples made that impossible).
    """
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        # set after fit, it skipped the checks (None: a raw TypeError)
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    tensors = data.X.values() if isinstance(data.X, dict) else [data.X]
    per_sample = max(1, sum(math.prod(t.shape[1:]) for t in tensors))
    return max(int(batch_size), min(1024, 2**20 // per_sample))


def _place(data, device):
    """``data`` on the GPU when it takes under a quarter of its free memory;
    else (and off CUDA) on the host, each batch moved as it is read."""
    if data is None or device.type != "cuda":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    return data.to(device) if data_nbytes(data) < 0.25 * free else data


def _to(value, device, float_=False):
    if isinstance(value, dict):
        return {k: _to(v, device, float_) for k, v in value.items()}
    value = value.to(device)
    return value.float() if float_ and value.is_floating_point() else value
