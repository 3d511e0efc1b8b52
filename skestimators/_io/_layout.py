"""What a fitted model expects as input, and fingerprints of training data.

The layout is a JSON-ready dict stored in a model's sidecar and checked by the
batch scorer::

    {"kind": "array" | "named",
     "inputs": {name: {"shape": [..] | None, "dtype": str | None,
                       "columns": [..] | None, "dtypes": [..] | None}},
     "source": "training_data" | "<step path>",
     "exact": bool}

``kind="array"`` models take one array (its entry is named ``"X"``);
``kind="named"`` models take a :class:`~skestimators.MultiInput`. ``dtype``
is the input's dtype (``"mixed"`` for a DataFrame whose columns differ);
``dtypes`` the dtype of each of a DataFrame's ``columns``, both known only
from training data (sidecars written before ``dtypes`` lack it). ``exact`` is
True when the layout describes the raw input (it comes from the training data
or from the first step of the model); a layout read from a later step (after
preprocessing that may reshape) only fixes the input names.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .._multiinput import as_mapping

__all__ = ["data_fingerprint", "final_estimator", "input_layout", "walk_estimators"]


def _steps(estimator):
    """Sub-estimators of a meta-estimator, in data order, as ``(name, est)``."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):
        return [(n, s) for n, s in steps if s not in (None, "passthrough")]
    for attr in ("regressor_", "estimator_", "best_estimator_", "classifier_"):
        inner = getattr(estimator, attr, None)
        if inner is not None and hasattr(inner, "fit"):
            return [(attr, inner)]
    return []


def _members(estimator):
    """Fitted members of an ensemble or per-target meta-estimator, as
    ``(name, est)``: ``named_estimators_`` (voting, stacking), then the
    entries of an ``estimators_`` list not already named (multi-output,
    chains, one-vs-rest, bagging, deep ensembles), then a stacking's
    ``final_estimator_``; each object once."""
    found = []
    named = getattr(estimator, "named_estimators_", None)
    if isinstance(named, dict):
        found += [(n, m) for n, m in named.items() if hasattr(m, "fit")]
    listed = vars(estimator).get("estimators_")
    if isinstance(listed, list):
        known = {id(m) for _, m in found}
        found += [
            (f"estimators_[{i}]", m)
            for i, m in enumerate(listed)
            if hasattr(m, "fit") and id(m) not in known
        ]
    final = vars(estimator).get("final_estimator_")
    if final is not None and hasattr(final, "fit"):
        found.append(("final_estimator_", final))
    return found


def walk_estimators(estimator, path=""):
    """Yield ``(path, estimator)`` for an estimator and everything nested in it.

    Pipelines are walked step by step (in order), meta-estimators into
    their fitted ``regressor_``/``estimator_``/``best_estimator_``, and
    ensembles and per-target meta-estimators into their fitted members.
    """
    yield path or type(estimator).__name__, estimator
    for name, sub in _steps(estimator) + _members(estimator):
        yield from walk_estimators(sub, f"{path}/{name}" if path else name)


def final_estimator(estimator):
    """The estimator that makes the predictions (last step, inner regressor;
    an ensemble itself, not one of its members)."""
    steps = _steps(estimator)
    return final_estimator(steps[-1][1]) if steps else estimator


def _entry(shape=None, columns=None):
    return {
        "shape": None if shape is None else [int(v) for v in shape],
        "dtype": None,
        "columns": None if columns is None else [str(c) for c in columns],
        "dtypes": None,
    }


def _input_transformer_layout(estimator) -> dict:
    """Per-input layout of a fitted InputTransformer, from its single-input parts."""
    fitted = getattr(estimator, "transformers_", {}) or {}
    sources = getattr(estimator, "_sources", {}) or {}
    inputs = {}
    for name in estimator.input_names_:
        entry = _entry()
        for out_name, inner in fitted.items():
            if list(sources.get(out_name, [])) == [name] and not isinstance(inner, str):
                sub = _layout_of(inner)
                if sub is not None and sub["kind"] == "array":
                    entry = sub["inputs"]["X"]
                break
        inputs[str(name)] = entry
    if getattr(estimator, "_single_input", False):
        return {"kind": "array", "inputs": {"X": inputs.get("X", _entry())}}
    return {"kind": "named", "inputs": inputs}


def _layout_of(estimator) -> dict | None:
    """The input layout one fitted estimator records, or None."""
    if isinstance(getattr(estimator, "steps", None), list):  # a Pipeline
        steps = _steps(estimator)
        return _layout_of(steps[0][1]) if steps else None
    if hasattr(estimator, "input_names_") and hasattr(estimator, "transformers_"):
        return _input_transformer_layout(estimator)
    shape = getattr(estimator, "input_shape_", None)
    if isinstance(shape, dict):
        columns = getattr(estimator, "input_columns_", None) or {}
        return {
            "kind": "named",
            "inputs": {
                str(k): _entry(v, columns.get(k) or None) for k, v in shape.items()
            },
        }
    names = getattr(estimator, "feature_names_in_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    if shape is None:
        # A wrapper that hands X on (TransformedTargetRegressor, a search):
        # its n_features_in_ counts only the first axis of image or patch
        # inputs, where the estimator inside records their whole shape.
        inner = _steps(estimator)
        layout = _layout_of(inner[0][1]) if inner else None
        if layout is not None and _agrees(layout, n_features):
            return layout
    if shape is None and n_features is not None:
        shape = (int(n_features),)
    if shape is None:
        return None
    return {"kind": "array", "inputs": {"X": _entry(shape, names)}}


def _agrees(layout, n_features) -> bool:
    """Whether a layout read inside a wrapper fits the wrapper's input (an
    inner estimator fitted on selected columns, as RFE's, does not)."""
    if n_features is None or layout["kind"] != "array":
        return True
    shape = layout["inputs"]["X"]["shape"]
    return bool(shape) and shape[0] == int(n_features)


def _layout_of_data(X) -> dict:
    mapping = as_mapping(X)
    kind = "array" if mapping is None else "named"
    mapping = {"X": X} if mapping is None else mapping
    inputs = {}
    for name, value in mapping.items():
        columns = dtypes = None
        if isinstance(value, pd.DataFrame):
            columns = [str(c) for c in value.columns]
            dtypes = [str(t) for t in value.dtypes]
            dtype = dtypes[0] if len(set(dtypes)) == 1 else "mixed"
        else:
            value = np.asarray(value) if not hasattr(value, "dtype") else value
            dtype = str(value.dtype)
        inputs[str(name)] = {
            "shape": [int(s) for s in value.shape[1:]],
            "dtype": dtype,
            "columns": columns,
            "dtypes": dtypes,
        }
    return {"kind": kind, "inputs": inputs}


def input_layout(estimator, X=None) -> dict | None:
    """The input layout of a fitted model, from ``X`` when given.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator or Pipeline.
    X : array-like, DataFrame or MultiInput, default=None
        Training inputs; when given they define the layout exactly.

    Returns
    -------
    layout : dict or None
        See the module docstring; None when nothing records a layout.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skestimators._io._layout import input_layout
    >>> model = LinearRegression().fit(np.ones((3, 2)), [1, 2, 3])
    >>> input_layout(model)["inputs"]
    {'X': {'shape': [2], 'dtype': None, 'columns': None, 'dtypes': None}}
    """
    if X is not None:
        given = _layout_of_data(X)
        _check_training_data(input_layout(estimator), given)
        return {**given, "source": "training_data", "exact": True}
    for position, (path, est) in enumerate(walk_estimators(estimator)):
        layout = _layout_of(est)
        if layout is not None:
            # The outer estimator (position 0) and the first step of a
            # Pipeline both see the raw input.
            first = position == 0 or _is_first(estimator, est)
            return {**layout, "source": path, "exact": first}
    return None


def _check_training_data(model, given) -> None:
    """Refuse ``training_data`` that the model was not fitted on: the model
    file would record its columns, and scoring would ask for them."""
    if model is None or not model["exact"]:
        return
    if model["kind"] != given["kind"]:
        kinds = {"named": "named inputs", "array": "one array"}
        raise ValueError(
            f"training_data is {kinds[given['kind']]}, but the model was fitted "
            f"on {kinds[model['kind']]}."
        )
    for name, entry in model["inputs"].items():
        data = given["inputs"].get(name)
        where = "" if name == "X" else f" input {name!r}:"
        if data is None:
            raise ValueError(f"training_data lacks the model's input {name!r}.")
        if entry["columns"] and data["columns"] and entry["columns"] != data["columns"]:
            raise ValueError(
                f"training_data{where} has columns {data['columns']}, but the model "
                f"was fitted on {entry['columns']}: pass the data it was fitted on."
            )
        if entry["shape"] and data["shape"] != entry["shape"]:
            raise ValueError(
                f"training_data{where} has rows of shape {tuple(data['shape'])}, but "
                f"the model was fitted on {tuple(entry['shape'])}: pass the data it "
                "was fitted on."
            )


def _is_first(estimator, target) -> bool:
    while True:
        steps = _steps(estimator)
        if not steps:
            return False
        estimator = steps[0][1]
        if estimator is target:
            return True


def _hash_sparse(digest, value) -> None:
    """Hash a SciPy sparse matrix or array by its values, whatever its format."""
    csr = value.tocsr(copy=True)
    csr.sum_duplicates()  # also sorts the column indices of each row
    csr.eliminate_zeros()
    digest.update(f"sparse{csr.dtype.str}{tuple(csr.shape)}".encode())
    for part in (csr.indptr.astype(np.int64), csr.indices.astype(np.int64), csr.data):
        digest.update(np.ascontiguousarray(part).data)


def _hash_array(digest, value) -> None:
    from scipy import sparse

    if sparse.issparse(value):
        _hash_sparse(digest, value)
        return
    if isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        digest.update(repr([str(c) for c in frame.columns]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy())
        return
    array = np.asarray(value)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.kind == "O":
        digest.update(repr(array.tolist()).encode())
        return
    step = max(1, (1 << 24) // max(array[:1].nbytes, 1))  # ~16 MB at a time
    for start in range(0, len(array), step):
        digest.update(np.ascontiguousarray(array[start : start + step]).data)


def data_fingerprint(X, y=None) -> dict:
    """SHA-256 fingerprints of training inputs and targets.

    Parameters
    ----------
    X : array-like, DataFrame or MultiInput
        Inputs.
    y : array-like, DataFrame or None, default=None
        Targets.

    Returns
    -------
    fingerprint : dict
        ``n_samples``, ``X_sha256`` (over every named input, its name, dtype,
        shape and values; a SciPy sparse matrix or array by its nonzero
        values and their positions, whatever its sparse format) and
        ``y_sha256`` (None without ``y``).

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators._io._layout import data_fingerprint
    >>> fp = data_fingerprint(np.zeros((4, 3)), np.arange(4))
    >>> fp["n_samples"], len(fp["X_sha256"])
    (4, 64)
    """
    mapping = as_mapping(X)
    mapping = {"X": X} if mapping is None else mapping
    digest = hashlib.sha256()
    n_samples = None
    for name, value in mapping.items():
        digest.update(str(name).encode())
        _hash_array(digest, value)
        shape = getattr(value, "shape", None)
        n_samples = int(shape[0]) if shape else len(value)
    y_sha = None
    if y is not None:
        y_digest = hashlib.sha256()
        _hash_array(y_digest, y)
        y_sha = y_digest.hexdigest()
    return {"n_samples": n_samples, "X_sha256": digest.hexdigest(), "y_sha256": y_sha}
