"""Validation of ``X`` (arrays, DataFrames, MultiInput) for the network estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_array, validate_data

from .._multiinput import as_mapping
from .._stack import caller_stacklevel
from ._batching import SparseRows
from ._lazy import LazyRows, check_memmap

_FLOATS = [np.float32, np.float64]
# Sparse inputs (any scipy format, matrix or array) are converted once to CSR,
# whose rows are sliced into dense batches; 64-bit indices are fine.
_SPARSE = {"accept_sparse": "csr", "accept_large_sparse": True}


def _check_named(name, value, finite=True):
    if isinstance(value, LazyRows):
        return value
    if isinstance(value, np.memmap):
        return check_memmap(name, value, scan=finite)
    sparse = sp.issparse(value)
    if sparse and value.ndim != 2:
        raise ValueError(
            f"Input {name!r} is a {value.ndim}-D sparse array; sparse inputs must "
            "be 2-D (samples, features)."
        )
    array = check_array(
        value,
        dtype=_FLOATS,
        allow_nd=True,
        ensure_2d=False,
        input_name=name,
        ensure_all_finite=finite,
        **(_SPARSE if sparse else {}),
    )
    if array.ndim == 1:
        array = array[:, None]
    return array


def _check_sample_shape(estimator, X):
    """Refuse an array of 3 or more axes whose sample shape differs from the
    fitted one, before scikit-learn's feature count ("X has 5 features")
    speaks of the first axis only (image channels, patch bands)."""
    shape = getattr(X, "shape", None)
    expected = getattr(estimator, "input_shape_", None)
    if shape is None or len(shape) < 3 or not isinstance(expected, tuple):
        return
    got = tuple(int(v) for v in shape[1:])
    if got == expected:
        return
    name = type(estimator).__name__
    hint = ""
    if sorted(got) == sorted(expected):
        hint = " The same sizes in another order: are the axes swapped?"
    if got[0] != expected[0]:  # scikit-learn's words, which its tools look for
        hint += (
            f" (X has {got[0]} features, but {name} is expecting {expected[0]} "
            "features as input, counting the first axis as scikit-learn does.)"
        )
    raise ValueError(
        f"X has sample shape {got}, but {name} was fitted on sample shape "
        f"{expected}.{hint}"
    )


def check_inputs(estimator, X, *, reset: bool, finite: bool | str = True):
    """Validate ``X`` and return a float array or a dict of float arrays.

    A sparse ``X`` (or named input) of any scipy format comes back as a CSR
    matrix, never densified: training and prediction make each batch dense.

    On ``reset`` the expected layout is stored on the estimator
    (``input_shape_``, ``input_columns_`` and, for array input, the standard
    ``n_features_in_``/``feature_names_in_``); otherwise ``X`` must match it.
    ``finite=False`` leaves the NaN/infinity check to the caller (prediction
    checks each batch as it goes, see :func:`check_finite_batch`);
    ``finite="allow-nan"`` refuses infinity only (NaN marks missing values
    that the estimator's network handles).
    """
    mapping = as_mapping(X)
    if mapping is None and not reset:
        _check_sample_shape(estimator, X)
    if isinstance(X, (np.memmap, LazyRows)):
        # Out of core: validated in chunks, never loaded whole.
        if isinstance(X, np.memmap) and X.ndim == 1:
            raise ValueError(
                "Expected 2D array, got 1D array instead: reshape the memory-mapped "
                "X with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) "
                "for a single sample."
            )
        array = X if isinstance(X, LazyRows) else check_memmap("X", X, scan=finite)
        validate_data(estimator, array, reset=reset, skip_check_array=True)
    elif mapping is None:
        array = validate_data(
            estimator,
            X,
            reset=reset,
            allow_nd=True,
            dtype=_FLOATS,
            ensure_all_finite=finite,
            **_SPARSE,
        )
        if sp.issparse(array) and array.ndim != 2:
            raise ValueError(
                f"X is a {array.ndim}-D sparse array; sparse inputs must be 2-D "
                "(samples, features)."
            )
    if mapping is None:
        shape = tuple(array.shape[1:])
        if reset:
            estimator.input_shape_ = shape
        elif isinstance(estimator.input_shape_, dict):
            raise ValueError(
                "This estimator was fitted on named inputs "
                f"{sorted(estimator.input_shape_)} (a MultiInput); got a single array."
            )
        elif shape != estimator.input_shape_:
            raise ValueError(
                f"X has sample shape {shape}, but {type(estimator).__name__} was "
                f"fitted on sample shape {estimator.input_shape_}."
            )
        return array

    if not mapping:
        raise ValueError("X holds no named inputs.")
    named = {str(k): v for k, v in mapping.items()}  # the names forward gets
    if len(named) != len(mapping):
        raise ValueError(
            f"X has named inputs whose names are equal as text: {list(mapping)}."
        )
    mapping = named
    if not reset:
        expected = estimator.input_shape_  # fitted (check_is_fitted ran)
        if not isinstance(expected, dict):
            raise ValueError(
                "This estimator was fitted on a single array; got named inputs "
                f"{list(mapping)}."
            )
        missing = [k for k in expected if k not in mapping]
        if missing:
            raise ValueError(
                f"X is missing the named input(s) {missing}; the estimator was "
                f"fitted on {list(expected)}."
            )
        mapping = {k: _align_columns(k, mapping[k], estimator) for k in expected}
    arrays = {k: _check_named(k, v, finite) for k, v in mapping.items()}
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Named inputs have different numbers of samples: {lengths}.")
    shapes = {k: tuple(v.shape[1:]) for k, v in arrays.items()}
    if reset:
        estimator.input_shape_ = shapes
        estimator.input_columns_ = {
            k: list(map(str, v.columns))
            for k, v in mapping.items()
            if isinstance(v, pd.DataFrame)
        }
        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attr):
                delattr(estimator, attr)
    else:
        for k, shape in shapes.items():
            if shape != estimator.input_shape_[k]:
                raise ValueError(
                    f"Input {k!r} has sample shape {shape}, but "
                    f"{type(estimator).__name__} was fitted on "
                    f"{estimator.input_shape_[k]}."
                )
    return arrays


def _align_columns(name, value, estimator):
    columns = estimator.input_columns_.get(name)  # set by every named-input fit
    if columns is None or not isinstance(value, pd.DataFrame):
        return value
    got = list(map(str, value.columns))
    missing = [c for c in columns if c not in got]
    if missing:
        raise ValueError(
            f"Input {name!r} is missing column(s) {missing} seen during fit."
        )
    return value[columns]


def check_finite_batch(batch, start, allow_nan=False):
    """Raise if a prediction batch (tensor or dict of tensors) holds NaN or inf.

    One sum per tensor, on data about to be read by the network anyway (so it
    is nearly free); only a non-finite sum, which may also be an overflow of
    large finite values, triggers the element-wise check. ``allow_nan``: NaN
    marks missing values the network handles; only infinity is refused.
    """
    items = batch.items() if isinstance(batch, dict) else [("X", batch)]
    for name, tensor in items:
        if torch.isfinite(tensor.sum()) or torch.isfinite(tensor).all():
            continue
        if allow_nan and not torch.isinf(tensor).any():
            continue
        flat = tensor.reshape(len(tensor), -1)
        bad = torch.isinf(flat).any(1) if allow_nan else ~torch.isfinite(flat).all(1)
        row = start + int(bad.nonzero()[0, 0])
        kind = (
            "NaN"
            if not allow_nan and torch.isnan(tensor).any()
            else "infinity (or a value too large for float32, the networks' dtype)"
        )
        need = " (NaN marks a missing value)" if allow_nan else ""
        raise ValueError(
            f"Input {name!r} contains {kind} (first at row {row}); the networks "
            f"need finite values{need}."
        )


def check_float32(tensors, allow_nan=False):
    """Raise if training inputs hold values that are not finite in float32.

    ``fit`` checks finiteness in the input's own dtype; a finite float64
    beyond float32's range (about 3.4e38) becomes infinity in the tensors the
    network reads, and would surface as a diverged training. Sparse inputs
    are checked on their stored (float32) values; memory-mapped ones when
    they are scanned (:func:`check_memmap`).
    """
    items = tensors.items() if isinstance(tensors, dict) else [("X", tensors)]
    for name, tensor in items:
        if isinstance(tensor, torch.Tensor):
            check_finite_batch({name: tensor}, 0, allow_nan=allow_nan)
        elif isinstance(tensor, SparseRows):
            values = tensor.matrix.data
            bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
            if bad.any():
                raise ValueError(
                    f"Input {name!r} holds values too large for float32, the "
                    "networks' dtype (sparse, stored values); rescale it (e.g. "
                    "log or divide by a unit)."
                )


def n_samples_of(X) -> int:
    if isinstance(X, dict):
        return next(iter(X.values())).shape[0]
    return X.shape[0]


def input_shape_for_module(X):
    """``input_shape`` injected into module constructors."""
    if isinstance(X, dict):
        return {k: tuple(v.shape[1:]) for k, v in X.items()}
    return tuple(X.shape[1:])


def check_sample_weight_array(sample_weight, n_samples):
    from sklearn.utils.validation import _check_sample_weight

    weights = _check_sample_weight(
        sample_weight,
        np.empty((n_samples, 1)),
        dtype=np.float64,
        ensure_non_negative=True,
    )
    total = weights.sum()
    if total <= 0:
        raise ValueError("sample_weight sums to zero; at least one must be positive.")
    return (weights * (n_samples / total)).astype(np.float32)


__all__ = [
    "caller_stacklevel",
    "check_finite_batch",
    "check_float32",
    "check_inputs",
    "check_sample_weight_array",
    "input_shape_for_module",
]


#: Where the settings of a part without parameters of its own go.
_NESTED_HINTS = {
    "optimizer": "set them with optimizer=functools.partial(torch.optim.SGD, "
    "{inner}=...)",
    "lr_scheduler": "set them with lr_scheduler_params={{'{inner}': ...}}",
    "callbacks": "set them on the callback object itself",
}


def check_nested_params(estimator, params):
    """Refuse skorch-style ``part__setting`` keys for parts that are not
    estimators (scikit-learn's error was a bare ``AttributeError``), saying
    where the setting goes instead."""
    own = estimator.get_params(deep=False)
    for key in params:
        outer, nested, inner = key.partition("__")
        if not nested or outer not in own:
            continue  # scikit-learn names keys it does not know
        value = params.get(outer, own[outer])
        if callable(getattr(value, "set_params", None)) and not isinstance(value, type):
            continue
        if outer == "module" and "module_params" in own:
            hint = f"set the network's arguments with module_params={{'{inner}': ...}}"
        elif outer == "module":
            hint = (
                "the default network is built from this estimator's own "
                "parameters (width, depth, ...); for another network pass "
                "module=YourModule(...) configured"
            )
        else:
            hint = _NESTED_HINTS.get(outer, "set them where it is made").format(
                inner=inner
            )
        name = type(estimator).__name__
        raise ValueError(
            f"{name} has no parameter {key!r}: {outer}={value!r} has no "
            f"parameters of its own to set (skorch's {outer}__* keywords are not "
            f"used here); {hint}."
        )
