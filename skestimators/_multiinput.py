"""Named inputs of equal length that behave like one sample-indexable array."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

__all__ = ["MultiInput"]


def _is_array_like(value) -> bool:
    return (
        isinstance(value, (np.ndarray, pd.DataFrame, pd.Series))
        or (hasattr(value, "__array__") and hasattr(value, "shape"))
        or _is_sparse(value)
    )


def _is_sparse(value) -> bool:
    # Without importing scipy: ``import skestimators`` stays light.
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "tocsr")


class MultiInput:
    """Several named arrays holding the same samples, indexed as one.

    A ``MultiInput`` is what the estimators of this package accept as ``X``
    when a network has more than one input (for instance a spectrum and a
    table of stellar parameters). Indexing it by samples (an integer array, a
    boolean mask or a slice) indexes every array at once, so every
    scikit-learn splitter, ``cross_val_score``, ``GridSearchCV``, ``Pipeline``
    and ``clone`` work on it unchanged. Indexing it by name returns the array.

    Parameters
    ----------
    **arrays : array-like
        The named inputs: NumPy arrays of any number of dimensions (the first
        is the sample axis), pandas DataFrames/Series, or 2-D SciPy sparse
        matrices (kept sparse, stored as CSR or CSC). All must have the
        same number of samples. DataFrames are kept as DataFrames so that
        column-aware transformers can use their names.

    Attributes
    ----------
    shape : tuple of int
        ``(n_samples,)``: a ``MultiInput`` is a sequence of samples.
    shapes : dict of str to tuple
        The full shape of each named input.

    See Also
    --------
    skestimators.preprocessing.InputTransformer : Transform each named input
        with its own transformer.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators import MultiInput
    >>> X = MultiInput(spectra=np.zeros((4, 52, 3)), aux=np.ones((4, 5)))
    >>> len(X), X.shape
    (4, (4,))
    >>> X.keys()
    ['spectra', 'aux']
    >>> X["spectra"].shape
    (4, 52, 3)
    >>> X[[0, 2]].shapes
    {'spectra': (2, 52, 3), 'aux': (2, 5)}
    """

    def __init__(self, **arrays):
        if not arrays:
            raise ValueError("MultiInput needs at least one named array.")
        n_samples = None
        checked = {}
        for name, value in arrays.items():
            if isinstance(value, (list, tuple)):
                try:
                    value = np.asarray(value)
                except ValueError as exc:  # ragged nested lists
                    raise ValueError(
                        f"MultiInput input {name!r} is not a regular array: {exc}"
                    ) from None
            if _is_sparse(value) and value.format not in ("csr", "csc"):
                value = value.tocsr()  # COO, DIA, ... cannot be indexed by rows
            if not _is_array_like(value):
                raise TypeError(
                    f"MultiInput input {name!r} must be a NumPy array, a SciPy "
                    "sparse matrix or a pandas DataFrame/Series, got "
                    f"{type(value).__name__}."
                )
            if len(value.shape) == 0:
                raise ValueError(
                    f"MultiInput input {name!r} is a scalar; every input needs a "
                    "sample axis."
                )
            n = value.shape[0]
            if n_samples is None:
                n_samples = n
            elif n != n_samples:
                lengths = {k: v.shape[0] for k, v in {**checked, name: value}.items()}
                raise ValueError(
                    f"All MultiInput inputs must have the same number of samples; "
                    f"got {lengths}."
                )
            checked[name] = value
        self._arrays = checked
        self._n_samples = int(n_samples)

    # -- mapping interface -------------------------------------------------------
    def keys(self) -> list[str]:
        """Names of the inputs, in the order given."""
        return list(self._arrays)

    def items(self):
        """``(name, array)`` pairs."""
        return self._arrays.items()

    def values(self):
        """The arrays, in the order of :meth:`keys`."""
        return self._arrays.values()

    def to_dict(self) -> dict:
        """A shallow ``dict`` copy of the named arrays."""
        return dict(self._arrays)

    def __contains__(self, key) -> bool:
        return key in self._arrays

    def __iter__(self) -> Iterator:
        # Iterating yields samples, like an array; use ``keys()`` for names.
        for i in range(self._n_samples):
            yield self[i : i + 1]

    # -- array-like interface ----------------------------------------------------
    def __len__(self) -> int:
        return self._n_samples

    @property
    def shape(self) -> tuple[int]:
        return (self._n_samples,)

    @property
    def shapes(self) -> dict:
        return {k: tuple(v.shape) for k, v in self._arrays.items()}

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "A MultiInput holds several named arrays "
            f"({', '.join(self.keys())}) and cannot be converted to one array. "
            "Select one with X[name], or use an estimator/InputTransformer that "
            "accepts named inputs."
        )

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return self._arrays[key]
            except KeyError:
                raise KeyError(
                    f"MultiInput has no input {key!r}; its inputs are {self.keys()}."
                ) from None
        if isinstance(key, tuple):
            # sklearn indexes rows as ``X[idx, ...]``.
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError(
                    f"MultiInput supports indexing along samples only, got {key!r}."
                )
        if isinstance(key, numbers.Integral):
            if not -self._n_samples <= key < self._n_samples:
                raise IndexError(
                    f"index {key} is out of bounds for {self._n_samples} samples"
                )
            key = slice(key, key + 1 if key != -1 else None)
        elif not isinstance(key, slice):
            key = np.asarray(key)
            if key.size == 0:  # np.asarray([]) is float: an empty selection
                key = key.astype(np.intp)
            if key.ndim != 1:
                raise IndexError(
                    "MultiInput indices must be one-dimensional (one index per "
                    f"selected sample), got an array of shape {key.shape}."
                )
            if key.dtype == bool:
                if key.shape != (self._n_samples,):
                    raise IndexError(
                        f"boolean mask of shape {key.shape} does not match "
                        f"{self._n_samples} samples"
                    )
            elif key.dtype.kind not in "iu":
                raise IndexError(
                    "MultiInput indices must be integers, booleans, slices or "
                    f"input names, got an array of dtype {key.dtype}."
                )
        return MultiInput(**{k: _take(v, key) for k, v in self._arrays.items()})

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={_describe(v)}" for k, v in self._arrays.items())
        return f"MultiInput({parts})"

    def __eq__(self, other):
        if not isinstance(other, MultiInput) or other.keys() != self.keys():
            return NotImplemented
        return all(
            np.array_equal(_dense(self[k]), _dense(other[k])) for k in self.keys()
        )

    __hash__ = None

    def __getstate__(self):
        return {"arrays": self._arrays, "n_samples": self._n_samples}

    def __setstate__(self, state):
        self._arrays = state["arrays"]
        self._n_samples = state["n_samples"]


def _take(value, key):
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.iloc[key]
    return value[key]


def _dense(value):
    return value.toarray() if _is_sparse(value) else np.asarray(value)


def _describe(value) -> str:
    if isinstance(value, pd.DataFrame):
        return f"<DataFrame {value.shape[0]}x{value.shape[1]}>"
    return f"<{type(value).__name__} {tuple(value.shape)} {value.dtype}>"


def as_mapping(X) -> Mapping | None:
    """Return the named arrays of ``X`` if it is a MultiInput or a dict, else None."""
    if isinstance(X, MultiInput):
        return X.to_dict()
    if type(X) is dict:  # not dict subclasses such as scipy's dok_matrix
        return X
    return None
