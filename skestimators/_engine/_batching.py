"""In-memory data as pre-converted tensors, and batches sliced from them.

Training batches are views into tensors that were converted once per fit (and
shuffled once per epoch), never samples gathered one at a time through a
``Dataset`` and a collate function: that per-sample path is what makes plain
``DataLoader`` training several times slower than a bare PyTorch loop on small
networks. Data too large for memory come as memory-mapped arrays
(:mod:`._lazy`): their batches are read from disk, one batch of rows at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from ._lazy import LazyRows


def to_tensor(array):
    """A validated NumPy array as a float32 tensor, without copying when possible.

    A memory-mapped array is not loaded: it becomes :class:`LazyRows`, whose
    batches are read from disk when sliced.
    """
    if isinstance(array, torch.Tensor):
        return array.float()
    if isinstance(array, LazyRows):
        return array
    if isinstance(array, np.memmap):
        return LazyRows(array)
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


class TensorData:
    """Inputs, targets and sample weights of one data set, as tensors.

    Parameters
    ----------
    X : torch.Tensor or dict of str to torch.Tensor
        One input, or named inputs that become ``forward`` keyword arguments.
    y : torch.Tensor or None
        Targets, first axis aligned with ``X``.
    sample_weight : torch.Tensor or None
        One weight per sample.
    """

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self) -> int:
        first = next(iter(self.X.values())) if isinstance(self.X, dict) else self.X
        return int(first.shape[0])

    def _map(self, fn):
        X = (
            {k: fn(v) for k, v in self.X.items()}
            if isinstance(self.X, dict)
            else fn(self.X)
        )
        y = None if self.y is None else fn(self.y)
        w = None if self.sample_weight is None else fn(self.sample_weight)
        return TensorData(X, y, w)

    def subset(self, index) -> TensorData:
        index = torch.as_tensor(np.asarray(index), dtype=torch.int64)
        return self._map(lambda t: t.index_select(0, index.to(t.device)))

    def to(self, device) -> TensorData:
        return self._map(lambda t: t.to(device))

    def slice(self, start: int, stop: int):
        """The batch ``[start:stop]`` as ``(X, (y, w))`` views."""
        if isinstance(self.X, dict):
            Xb = {k: v[start:stop] for k, v in self.X.items()}
        else:
            Xb = self.X[start:stop]
        yb = None if self.y is None else self.y[start:stop]
        wb = None if self.sample_weight is None else self.sample_weight[start:stop]
        return Xb, (yb, wb)


def data_nbytes(data: TensorData) -> int:
    """Bytes held in memory by the tensors of ``data`` (out-of-core inputs: 0)."""
    tensors = list(data.X.values()) if isinstance(data.X, dict) else [data.X]
    tensors += [t for t in (data.y, data.sample_weight) if t is not None]
    tensors = [t for t in tensors if not isinstance(t, LazyRows)]
    return sum(t.element_size() * t.nelement() for t in tensors)


def _move(batch, device, non_blocking):
    Xb, (yb, wb) = batch
    if isinstance(Xb, dict):
        Xb = {k: v.to(device, non_blocking=non_blocking) for k, v in Xb.items()}
    else:
        Xb = Xb.to(device, non_blocking=non_blocking)
    yb = None if yb is None else yb.to(device, non_blocking=non_blocking)
    wb = None if wb is None else wb.to(device, non_blocking=non_blocking)
    return Xb, (yb, wb)


class BatchIterator:
    """Iterate over ``data`` in batches sliced from (shuffled) tensors.

    Parameters
    ----------
    data : TensorData
        The data; may live on the CPU or already on ``device``.
    batch_size : int
        Samples per batch.
    shuffle : bool
        Shuffle once per epoch (one gather of every tensor), then slice.
    generator : torch.Generator or None
        Source of the permutations, seeded from the estimator's ``random_state``.
    device : torch.device
        Where batches are moved when ``data`` lives elsewhere.
    drop_single : bool
        Drop a last batch of one sample (batch normalisation cannot train on it).
    """

    def __init__(
        self,
        data,
        batch_size,
        *,
        shuffle,
        generator=None,
        device=None,
        drop_single=False,
    ):
        self.data = data
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.device = device
        self.drop_single = drop_single

    def _n_used(self, n) -> int:
        """Samples batched per epoch: ``n``, less a last batch of one dropped."""
        if self.drop_single and n > 1 and n % self.batch_size == 1:
            return n - 1
        return n

    def __len__(self) -> int:
        return -(-self._n_used(len(self.data)) // self.batch_size)

    def _epoch_data(self) -> TensorData:
        if not self.shuffle:
            return self.data
        perm = torch.randperm(len(self.data), generator=self.generator)
        return self.data.subset(perm)

    def __iter__(self):
        data = self._epoch_data()
        stop_at = self._n_used(len(data))
        first = next(iter(data.X.values())) if isinstance(data.X, dict) else data.X
        move = self.device is not None and first.device != self.device
        non_blocking = move and self.device.type == "cuda"
        for start in range(0, stop_at, self.batch_size):
            batch = data.slice(start, min(start + self.batch_size, stop_at))
            yield _move(batch, self.device, non_blocking) if move else batch
