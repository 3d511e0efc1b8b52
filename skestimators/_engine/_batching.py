"""In-memory data as pre-converted tensors, and batches sliced from them.

Training batches are views into tensors that were converted once per fit (and
shuffled once per epoch), never samples gathered one at a time through a
``Dataset`` and a collate function: that per-sample path is what makes plain
``DataLoader`` training several times slower than a bare PyTorch loop on small
networks. Data too large for memory come as memory-mapped arrays
(:mod:`._lazy`): their batches are read from disk, one batch of rows at a time.
Sparse inputs (a one-hot encoded table) stay sparse, as :class:`SparseRows`:
each batch is made dense when sliced, so a table too wide to hold densely
still trains, with the same batches and weights as its dense equivalent.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ._lazy import LazyRows


class SparseRows:
    """Rows of a CSR matrix, made dense (float32 tensors) one batch at a time.

    Only the stored values are held: selecting rows (the validation split,
    the shuffle of each epoch) gathers the nonzeros of those rows, and
    slicing a batch scatters them into a dense ``(batch, n_features)``
    tensor. Duplicate entries of a non-canonical matrix are summed, as in
    ``toarray``.

    Parameters
    ----------
    matrix : scipy.sparse matrix or array, 2-D
        The data; converted once to float32 CSR (no copy when it already is).
    device : torch.device or None
        Where the batches are made dense (the stored rows stay in host
        memory; a batch moves as its nonzeros, not as a dense block).
    """

    def __init__(self, matrix, device=None):
        if matrix.ndim != 2:
            raise ValueError(
                f"Sparse inputs must be 2-D (samples, features); got {matrix.ndim}-D."
            )
        with np.errstate(over="ignore"):  # too large for float32: refused in fit
            self.matrix = sp.csr_array(matrix, dtype=np.float32)
        self.device = torch.device("cpu") if device is None else torch.device(device)

    @property
    def shape(self):
        return tuple(self.matrix.shape)

    @property
    def ndim(self):
        return 2

    @property
    def nbytes(self) -> int:
        """Bytes of the stored values and indices."""
        m = self.matrix
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def index_select(self, dim, index) -> SparseRows:
        """The rows ``index`` (positions in this matrix), still sparse."""
        if dim != 0:
            raise ValueError("SparseRows selects rows (dim=0) only.")
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        index = np.asarray(index, dtype=np.int64)
        return SparseRows(self.matrix[index], self.device)

    def to(self, device, non_blocking=False) -> SparseRows:
        """The same rows, with batches made dense on ``device``."""
        return SparseRows(self.matrix, device)

    def __getitem__(self, key) -> torch.Tensor:
        """Rows ``key`` (a contiguous slice) as a dense float32 tensor."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("SparseRows reads contiguous slices of rows only.")
        start, stop, _ = key.indices(len(self))
        stop = max(start, stop)
        if self.device.type == "cpu":
            # SciPy fills a lazily zeroed (calloc) buffer: no pass over the zeros.
            return torch.from_numpy(self.matrix[start:stop].toarray())
        return scatter_rows(self.matrix, start, stop, self.device)


def scatter_rows(matrix, start, stop, device) -> torch.Tensor:
    """Rows ``start:stop`` of a CSR ``matrix`` as a dense tensor built on ``device``.

    Only the nonzeros of those rows are copied to ``device``; duplicate
    entries add up.
    """
    indptr = matrix.indptr[start : stop + 1]
    lo, hi = int(indptr[0]), int(indptr[-1])
    rows = np.repeat(np.arange(stop - start), np.diff(indptr))
    out = torch.zeros(
        (stop - start, matrix.shape[1]), dtype=torch.float32, device=device
    )
    index = (
        torch.from_numpy(rows).to(device),
        torch.from_numpy(matrix.indices[lo:hi].astype(np.int64)).to(device),
    )
    values = torch.from_numpy(matrix.data[lo:hi]).to(device=device, dtype=torch.float32)
    return out.index_put_(index, values, accumulate=True)


def to_tensor(array):
    """A validated NumPy array as a float32 tensor, without copying when possible.

    A memory-mapped array is not loaded: it becomes :class:`LazyRows`, whose
    batches are read from disk when sliced. A sparse matrix stays sparse: it
    becomes :class:`SparseRows`, whose batches are made dense when sliced.
    """
    if isinstance(array, torch.Tensor):
        return array.float()
    if isinstance(array, (LazyRows, SparseRows)):
        return array
    if sp.issparse(array):
        return SparseRows(array)
    if isinstance(array, np.memmap):
        return LazyRows(array)
    with np.errstate(over="ignore"):  # too large for float32: inf, refused later
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
    """Bytes that moving ``data`` to a device would copy there.

    Out-of-core and sparse inputs count 0: they stay in host memory and
    their batches move one at a time.
    """
    tensors = list(data.X.values()) if isinstance(data.X, dict) else [data.X]
    tensors += [t for t in (data.y, data.sample_weight) if t is not None]
    tensors = [t for t in tensors if not isinstance(t, (LazyRows, SparseRows))]
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
    shard : DataParallel or None
        In data-parallel training, the process's share of each batch: every
        process draws the same order and takes its contiguous slice of each
        global batch (a last batch too small to give each process two
        samples is then dropped). ``global_size`` is the size of the batch
        last sliced.
    shuffle_generator : torch.Generator or None
        Source of the permutations when it must differ from ``generator``
        (data-parallel training, where ``generator`` differs by process).
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
        shard=None,
        shuffle_generator=None,
    ):
        self.data = data
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.device = device
        self.drop_single = drop_single
        self.shard = shard
        self.shuffle_generator = shuffle_generator
        self.global_size = None

    def _n_used(self, n) -> int:
        """Samples batched per epoch: ``n``, less a last batch too small to train
        batch normalisation on (one sample, or fewer than two per process)."""
        smallest = 2 if self.shard is None else 2 * self.shard.size
        last = n % self.batch_size
        if self.drop_single and n > 1 and 0 < last < smallest:
            return n - last
        return n

    def __len__(self) -> int:
        return -(-self._n_used(len(self.data)) // self.batch_size)

    def _epoch_data(self) -> TensorData:
        if not self.shuffle:
            return self.data
        generator = self.shuffle_generator or self.generator
        perm = torch.randperm(len(self.data), generator=generator)
        return self.data.subset(perm)

    def __iter__(self):
        data = self._epoch_data()
        stop_at = self._n_used(len(data))
        # Every input is checked: named inputs may mix tensors already on the
        # device with out-of-core rows that stay on the host.
        inputs = list(data.X.values()) if isinstance(data.X, dict) else [data.X]
        inputs += [t for t in (data.y, data.sample_weight) if t is not None]
        move = self.device is not None and any(t.device != self.device for t in inputs)
        non_blocking = move and self.device.type == "cuda"
        for start in range(0, stop_at, self.batch_size):
            stop = min(start + self.batch_size, stop_at)
            self.global_size = stop - start
            if self.shard is not None:
                start, stop = self.shard.shard(start, stop)
            batch = data.slice(start, stop)
            yield _move(batch, self.device, non_blocking) if move else batch
