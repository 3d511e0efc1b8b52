"""Out-of-core inputs: arrays memory-mapped from disk, read one batch at a time.

An input given as a :class:`numpy.memmap` (``np.load(path, mmap_mode="r")``
or ``np.memmap(...)``) is never loaded whole: it is validated in chunks
(dtype, shape, NaN/inf), wrapped in :class:`LazyRows`, and every training or
prediction batch reads only its own rows, converted to float32 tensors. The
shuffled order, the validation split and therefore the fitted weights are
exactly those of the same data held in memory.

Batches are read in the training thread. Reading the next batch in a
background thread was tried and measured slower on 2 cores (1.13x instead
of 1.03x the bare loop with the file in the page cache): the reader competes
with PyTorch's own threads.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

# Rows per chunk of the NaN/inf scan: about 64 MiB of the mapped file at a time.
_SCAN_BYTES = 64 * 2**20


class LazyRows:
    """Rows ``index`` of a memory-mapped ``array``, read as float32 tensors on demand.

    Parameters
    ----------
    array : numpy.memmap
        The data on disk (any real numeric dtype).
    index : numpy.ndarray of int or None
        The rows in use, in order; None for all rows.
    convert : callable or None
        Picklable ``numpy batch -> numpy batch`` applied after reading (layout
        changes, pixel scaling); must keep the first axis.
    sample_shape : tuple of int or None
        Shape of one sample after ``convert`` (default: that of ``array``).
    """

    def __init__(self, array, index=None, convert=None, sample_shape=None):
        self.array = array
        self.index = index
        self.convert = convert
        self.sample_shape = (
            tuple(array.shape[1:]) if sample_shape is None else tuple(sample_shape)
        )

    @property
    def shape(self):
        return (len(self),) + self.sample_shape

    @property
    def ndim(self):
        return 1 + len(self.sample_shape)

    @property
    def device(self):
        return torch.device("cpu")

    def __len__(self) -> int:
        return int(self.array.shape[0] if self.index is None else len(self.index))

    def index_select(self, dim, index) -> LazyRows:
        """The rows ``index`` (positions in this view), still on disk."""
        if dim != 0:
            raise ValueError("LazyRows selects rows (dim=0) only.")
        index = np.asarray(index, dtype=np.int64)
        rows = index if self.index is None else self.index[index]
        return LazyRows(self.array, rows, self.convert, self.sample_shape)

    def to(self, device, non_blocking=False) -> LazyRows:
        """Stays on disk: batches are moved to ``device`` when read."""
        return self

    def __getitem__(self, key) -> torch.Tensor:
        """Rows ``key`` (a slice) of this view, read from disk as float32."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("LazyRows reads contiguous slices of rows only.")
        start, stop, _ = key.indices(len(self))
        if self.index is None:
            batch = self.array[start:stop]
        else:
            batch = self.array[self.index[start:stop]]
        batch = np.asarray(batch)
        if self.convert is not None:
            batch = self.convert(batch)
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not batch.flags.owndata:  # a view into the file: never alias it
            batch = batch.copy()
        return torch.from_numpy(batch)


def check_memmap(name, array, *, reshape_1d=True, scan=True, inspect=None):
    """Validate a memory-mapped input without loading it; returns the memmap.

    Checks what ``check_array`` checks for in-memory data (real numeric
    dtype, at least one sample and, with ``scan``, no NaN or infinity,
    reading the file in chunks of about 64 MiB; ``scan="allow-nan"``: no
    infinity). A 1-D array becomes one feature per sample. ``inspect``, a
    function of ``(start, chunk)``, also reads every chunk of a float scan
    (statistics gathered in the same pass over the file).
    """
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: input {name!r} is complex.")
    if kind not in "biuf":
        raise ValueError(
            f"Input {name!r} has dtype {array.dtype}; the networks need real "
            "numbers (a float, integer or bool array)."
        )
    if array.ndim == 0:
        raise ValueError(f"Input {name!r} is a scalar, not an array of samples.")
    if array.ndim == 1 and reshape_1d:
        array = array.reshape(-1, 1)
    n = array.shape[0]
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={array.shape}) in input {name!r} "
            "while a minimum of 1 is required."
        )
    if array.ndim > 1 and 0 in array.shape[1:]:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) in input "
            f"{name!r} while a minimum of 1 is required."
        )
    if array.ndim > 1 and not array.flags.c_contiguous and n > 1:
        row_stride = abs(array.strides[0])
        if row_stride < max(abs(s) for s in array.strides[1:]):
            warnings.warn(
                f"Input {name!r} is memory-mapped with samples not contiguous on "
                "disk (Fortran order or a transposed view): every batch reads "
                "from all over the file. Rewrite it once in C order "
                "(np.save(path, np.ascontiguousarray(x)) in chunks) for "
                "sequential reads.",
                UserWarning,
                stacklevel=3,
            )
    if scan and kind == "f":
        row_bytes = max(1, array.itemsize * math.prod(array.shape[1:]))
        step = max(1, _SCAN_BYTES // row_bytes)
        for start in range(0, n, step):
            chunk = np.asarray(array[start : start + step])
            if inspect is not None:
                inspect(start, chunk)
            # A sum is finite only if every term is: one cheap pass per chunk.
            with np.errstate(over="ignore", invalid="ignore"):
                total = chunk.sum(dtype=np.float64)
            if array.itemsize > 4:
                _check_float32_range(name, chunk, start, min(n, start + step) - 1)
            if np.isfinite(total):
                continue
            if scan == "allow-nan":  # missing values allowed; infinity is not
                if np.isinf(chunk).any():
                    raise ValueError(
                        f"Input {name!r} contains infinity (memory-mapped rows "
                        f"{start}-{min(n, start + step) - 1}); the networks need "
                        "finite values (NaN marks a missing value)."
                    )
                continue
            if not np.isfinite(chunk).all():
                bad = "NaN" if np.isnan(chunk).any() else "infinity"
                raise ValueError(
                    f"Input {name!r} contains {bad} (memory-mapped rows "
                    f"{start}-{min(n, start + step) - 1}); the networks need "
                    "finite values."
                )
    return array


def _check_float32_range(name, chunk, first, last):
    """Refuse finite values that become infinite in float32 (the networks'
    dtype): training would blame them on a diverged loss."""
    # fmax/fmin ignore NaN; no |chunk| copy of a 64 MiB chunk.
    peak = np.fmax(np.fmax.reduce(chunk, axis=None), -np.fmin.reduce(chunk, axis=None))
    if np.isfinite(peak) and peak > np.finfo(np.float32).max:  # inf: named later
        raise ValueError(
            f"Input {name!r} holds values too large for float32, the networks' "
            f"dtype (|x| up to {peak:.3g} in memory-mapped rows {first}-{last}); "
            "rescale it (e.g. log or divide by a unit)."
        )


def scale_uint8(batch):
    """8-bit pixels to [0, 1] (the in-memory image path does the same)."""
    return batch.astype(np.float32) / np.float32(255.0)
