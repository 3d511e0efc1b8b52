"""Scoring one chunk: skip invalid rows, predict, name the output columns.

Used both in the driver process and on Dask workers (where the model is
loaded once per worker and cached).
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags

from .._io import final_estimator, walk_estimators
from .._multiinput import _take, as_mapping
from ..exceptions import NonFinitePredictionError
from ._readers import ScoringInputError
from ._writer import UNSCORED, write_part

__all__ = [
    "check_id_name",
    "chunk_fingerprint",
    "model_columns",
    "prediction_columns",
    "prepare_model",
    "run_chunk",
    "score_chunk",
]

_NONFINITE = "NaN or infinite value"
_INFINITE = "infinite value"
_NOTHING_OBSERVED = "no value observed (every value NaN)"
_NONFINITE_PREDICTION = "NaN or infinite prediction"


def prepare_model(estimator, device=None, batch_size=None):
    """Move every network of ``estimator`` to ``device`` and set its batch size.

    Parameters
    ----------
    estimator : estimator
        A fitted model (networks may be nested in Pipelines).
    device : str or None, default=None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``; None keeps the
        device the model was loaded on.
    batch_size : int or None, default=None
        Samples per forward pass of the networks (more, up to 1024, while a
        pass holds under 2**20 input values).

    Returns
    -------
    estimator : estimator
        The same object, changed in place.
    """
    from .._engine import resolve_device

    target = None if device is None else resolve_device(device)
    for _, est in walk_estimators(estimator):
        net = est.__dict__.get("net_")
        if net is None:
            continue
        if target is not None:
            net.module_.to(target)
            net.device = str(target)
            est.device_ = target
        if batch_size is not None:
            est.batch_size = int(batch_size)
    return estimator


def resolve_method(estimator, method: str) -> str:
    """``"auto"``: ``predict_proba`` when the model has it, else ``predict``."""
    if method == "auto":
        return "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
    if not hasattr(estimator, method):
        raise ValueError(f"The model has no {method} method.")
    return method


def prediction_columns(estimator, method: str, width: int, ndim: int) -> list[str]:
    """Names of the prediction columns, from the model's classes or targets.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skestimators.scoring._chunks import prediction_columns
    >>> clf = LogisticRegression().fit([[0], [1], [2]], ["a", "b", "c"])
    >>> prediction_columns(clf, "predict_proba", 3, 2)
    ['proba_a', 'proba_b', 'proba_c']
    """
    final = final_estimator(estimator)
    targets = getattr(final, "target_names_", None)
    classes = getattr(final, "classes_", None)
    if method == "predict_proba":
        multilabel = getattr(final, "target_type_", None) == "multilabel-indicator"
        names = targets if multilabel else classes
        if names is not None and len(names) == width:
            return [f"proba_{n}" for n in names]
        return [f"proba_{j}" for j in range(width)]
    if ndim == 1:
        return ["prediction"]
    if targets is not None and len(targets) == width:
        return [str(t) for t in targets]
    return [f"prediction_{j}" for j in range(width)]


def model_columns(estimator, method: str) -> list[str]:
    """The prediction columns of ``estimator``, known without predicting.

    From its classes (``predict_proba``), target names or number of outputs;
    ``["prediction"]`` when it says nothing. Names the (null) prediction
    columns of an output in which no row could be scored.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from skestimators.scoring._chunks import model_columns
    >>> clf = LogisticRegression().fit([[0], [1], [2]], ["a", "b", "b"])
    >>> model_columns(clf, "predict_proba"), model_columns(clf, "predict")
    (['proba_a', 'proba_b'], ['prediction'])
    >>> reg = LinearRegression().fit([[0], [1]], [[0, 1], [1, 2]])
    >>> model_columns(reg, "predict")
    ['prediction_0', 'prediction_1']
    """
    final = final_estimator(estimator)
    targets = getattr(final, "target_names_", None)
    multilabel = getattr(final, "target_type_", None) == "multilabel-indicator"
    if method == "predict_proba":
        names = targets if multilabel else getattr(final, "classes_", None)
        width = 1 if names is None else len(names)
        return prediction_columns(estimator, method, width, 2)
    if targets is not None and (multilabel or len(targets) > 1):
        return prediction_columns(estimator, method, len(targets), 2)
    if getattr(final, "classes_", None) is not None:
        return ["prediction"]
    width = getattr(final, "n_outputs_", None)
    coef = getattr(final, "coef_", None)
    if width is None and coef is not None and np.ndim(coef) == 2:
        width = np.shape(coef)[0]
    if width is None or width == 1:
        return ["prediction"]
    return prediction_columns(estimator, method, int(width), 2)


def check_id_name(id_name: str, names) -> None:
    """Refuse an id column named like a prediction column (the ids would be
    lost in the output)."""
    if id_name in names:
        raise ScoringInputError(
            f"The id column {id_name!r} has the name of a prediction column of "
            f"the model ({', '.join(names)}); rename that column of the input."
        )


def _nonfinite(value, infinite_only: bool) -> np.ndarray:
    test = np.isinf if infinite_only else lambda v: ~np.isfinite(v)
    if isinstance(value, pd.DataFrame):
        bad = np.zeros(len(value), dtype=bool)
        if not infinite_only:
            bad |= value.isna().to_numpy().any(axis=1)
        numeric = value.select_dtypes(include="number")
        if numeric.shape[1]:
            bad |= test(numeric.to_numpy(np.float64)).any(axis=1)
        return bad
    array = np.asarray(value)
    if array.dtype.kind not in "fc":
        return np.zeros(len(array), dtype=bool)
    return test(array.reshape(len(array), -1)).any(axis=1)


def invalid_rows(X, *, infinite_only: bool = False) -> np.ndarray:
    """Rows of ``X`` with a NaN or infinite value in any input.

    With ``infinite_only``, the rows with an infinite value only.
    """
    mapping = as_mapping(X)
    arrays = [X] if mapping is None else list(mapping.values())
    bad = np.zeros(len(X), dtype=bool)
    for value in arrays:
        bad |= _nonfinite(value, infinite_only)
    return bad


def unobserved_rows(X) -> np.ndarray:
    """Rows of ``X`` in which no value is observed (every value NaN, in every
    input): nothing for a model that reads NaN to predict from."""
    mapping = as_mapping(X)
    arrays = [X] if mapping is None else list(mapping.values())
    empty = np.ones(len(X), dtype=bool)
    for value in arrays:
        if isinstance(value, pd.DataFrame):
            empty &= value.isna().to_numpy().all(axis=1)
            continue
        array = np.asarray(value)
        if array.dtype.kind not in "fc" or array.size == 0:
            return np.zeros(len(X), dtype=bool)
        empty &= np.isnan(array.reshape(len(array), -1)).all(axis=1)
    return empty


#: Transformers whose ``allow_nan`` tag says nothing of what they pass on:
#: scikit-learn tags them False, whatever transformers they hold (an
#: imputer or an encoder of missing values inside a ColumnTransformer).
_COMPOSITE = (ColumnTransformer, FeatureUnion, FunctionTransformer)


def _allows_nan(estimator) -> bool | None:
    """Whether the model says it takes NaN (a Pipeline: if its first step
    does; a TransformedTargetRegressor: if its regressor does); None where
    its tags cannot tell (a ColumnTransformer, FeatureUnion or
    FunctionTransformer first).

    A Pipeline whose first step passes NaN on (a scaler) to a model that
    refuses it is caught when predicting: see ``score_chunk``.
    """
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):
        steps = [s for _, s in steps if s not in (None, "passthrough")]
        return bool(steps) and _allows_nan(steps[0])
    if isinstance(estimator, TransformedTargetRegressor):  # the soil-carbon recipe
        inner = getattr(estimator, "regressor_", None)
        return inner is not None and _allows_nan(inner)
    if isinstance(estimator, _COMPOSITE):
        return None
    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # third-party estimators without tags
        return False


def score_chunk(estimator, chunk, *, method: str, id_name: str):
    """Predict one chunk; return ``(predictions table, invalid-rows table)``.

    Rows with NaN or infinite values and rows the reader flagged are not
    passed to the model; their predictions are null and they are listed in
    the invalid-rows table with the reason. Models that take NaN (a Pipeline
    starting with an imputer, HistGradientBoosting, the soil-carbon
    networks...), or may (a Pipeline starting with a ColumnTransformer,
    whose tags cannot tell), get every row in which some value is observed; if
    they refuse the chunk, its rows with infinite values are left out, and
    then, if they still refuse it, its rows with NaN: those the model
    refuses, found by halves with its message as the reason, where its tags
    cannot tell, else all of them. Which rows are left out thus depends on
    each row alone, never on the other rows of its chunk.
    """
    n = len(chunk.ids)
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, _NONFINITE, dtype=object)
    for position, reason in chunk.bad.items():
        bad[position] = True
        reasons[position] = reason
    nonfinite = invalid_rows(chunk.X)
    allows = _allows_nan(estimator)
    # Its tags cannot tell: any error while rows with NaN are passed may be
    # its refusal of some of them ("Found unknown categories [nan]").
    predict = functools.partial(_predict_finite, refusal=allows is None)
    if allows is False:
        bad |= nonfinite
    else:  # partly missing rows are the model's to read; empty ones are not
        empty = unobserved_rows(chunk.X) & ~bad
        bad |= empty
        reasons[empty] = _NOTHING_OBSERVED
    pred = predict(estimator, method, chunk.X, bad, reasons)
    if pred is _NAN_REFUSED:  # an imputer refuses inf: leave those rows out
        infinite = invalid_rows(chunk.X, infinite_only=True) & ~bad
        bad |= infinite
        reasons[infinite] = _INFINITE
        if infinite.any():
            pred = predict(estimator, method, chunk.X, bad, reasons)
    if pred is _NAN_REFUSED and allows is None:
        # Which rows it refuses depends on where their values are missing:
        # found by halves, each with the model's own message.
        for position, message in _refused(
            estimator, method, chunk.X, np.flatnonzero(nonfinite & ~bad)
        ):
            bad[position] = True
            reasons[position] = f"refused by the model: {message}"
        pred = predict(estimator, method, chunk.X, bad, reasons)
    if pred is _NAN_REFUSED:  # claimed to accept NaN (e.g. a scaler first) but not
        bad |= nonfinite
        pred = predict(estimator, method, chunk.X, bad, reasons)
    good = ~bad
    columns = {id_name: pa.array(chunk.ids)}
    if pred is not None:
        values = pred.reshape(len(pred), -1)
        names = prediction_columns(estimator, method, values.shape[1], pred.ndim)
        check_id_name(id_name, names)
        for j, name in enumerate(names):
            columns[name] = _scatter(values[:, j], good)
    else:
        columns[UNSCORED] = pa.nulls(n)  # prediction columns unknown here
    table = pa.table(columns)
    invalid = None
    if bad.any():
        invalid = pa.Table.from_arrays(  # from arrays: an id column "reason" stays
            [pa.array(chunk.ids[bad]), pa.array(reasons[bad].astype(str))],
            names=[id_name, "reason"],
        )
    return table, invalid


_NAN_REFUSED = object()


def _refused(estimator, method, X, rows) -> list:
    """``(row, message)`` for the rows among ``rows`` that the model refuses
    (a ValueError), found by halves: a row's fate depends on the row alone,
    never on the rows of its chunk."""
    if not len(rows):
        return []
    mask = np.zeros(len(X), dtype=bool)
    mask[rows] = True
    try:
        getattr(estimator, method)(_take(X, mask))
        return []
    except ValueError as exc:
        if len(rows) == 1:
            message = " ".join(str(exc).split())
            return [(rows[0], message[:200] or type(exc).__name__)]
    half = len(rows) // 2
    return _refused(estimator, method, X, rows[:half]) + _refused(
        estimator, method, X, rows[half:]
    )


def _predict_finite(estimator, method, X, bad, reasons, refusal=False):
    """Predictions for the rows not ``bad``; rows predicted NaN/inf become bad.

    ``bad`` and ``reasons`` are updated in place. The package's networks
    refuse to return non-finite values (``NonFinitePredictionError`` names the
    rows, which are then left out); other models' non-finite rows are found
    in their output.
    """
    while True:
        try:
            pred = _predict(estimator, method, X, ~bad, refusal)
        except NonFinitePredictionError as exc:
            positions = np.flatnonzero(~bad)[exc.rows]
            bad[positions] = True
            reasons[positions] = _NONFINITE_PREDICTION
            continue
        if pred is None or pred is _NAN_REFUSED:
            return pred
        values = np.asarray(pred)
        if values.dtype.kind != "f":
            return pred
        finite = np.isfinite(values.reshape(len(values), -1)).all(1)
        if finite.all():
            return pred
        positions = np.flatnonzero(~bad)[~finite]
        bad[positions] = True
        reasons[positions] = _NONFINITE_PREDICTION
        return pred[finite]


def _predict(estimator, method, X, good, refusal=False):
    """Predictions for the rows ``good`` of ``X`` (None if there are none).

    ``refusal``: any ValueError, not only one naming NaN or infinity, is the
    model's refusal of the rows holding them, when there are some.
    """
    if not good.any():
        return None
    X = X if good.all() else _take(X, good)
    try:
        pred = getattr(estimator, method)(X)
    except ValueError as exc:
        refused = refusal or "NaN" in str(exc) or "infinity" in str(exc)
        if refused and invalid_rows(X).any():
            return _NAN_REFUSED
        raise
    if isinstance(pred, list):  # multi-output predict_proba of some estimators
        raise ValueError(
            f"{method} returned a list of arrays; score with method='predict'."
        )
    return np.asarray(pred)


def _scatter(values, good):
    if good.all():
        return pa.array(values)
    full = np.empty(len(good), dtype=values.dtype)
    full[good] = values
    return pa.array(full, mask=~good)


def _hash_values(digest, value) -> None:
    if isinstance(value, pd.DataFrame):
        for name, column in value.items():
            digest.update(f"\x1e{name}\x1f".encode())
            _hash_values(digest, column.to_numpy())
        return
    array = np.asarray(value)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.hasobject:
        digest.update("\x1f".join(map(repr, array.ravel().tolist())).encode())
    else:
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


def chunk_fingerprint(chunk) -> str:
    """xxh3-128 of a chunk's ids, inputs and unreadable rows, as read.

    Stored in the resume manifest: a resumed run scores again every chunk
    whose fingerprint changed, whatever the files' sizes and times say.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.scoring._readers import Chunk
    >>> from skestimators.scoring._chunks import chunk_fingerprint
    >>> a = chunk_fingerprint(Chunk(np.arange(2), np.zeros((2, 3))))
    >>> b = chunk_fingerprint(Chunk(np.arange(2), np.ones((2, 3))))
    >>> len(a), a == b
    (32, False)
    """
    digest = xxhash.xxh3_128()
    _hash_values(digest, chunk.ids)
    mapping = as_mapping(chunk.X)
    for name, value in [("X", chunk.X)] if mapping is None else mapping.items():
        digest.update(f"\x1d{name}\x1d".encode())
        _hash_values(digest, value)
    for position, reason in sorted(chunk.bad.items()):
        digest.update(f"\x1c{position}:{reason}".encode())
    return digest.hexdigest()


def run_chunk(estimator, spec, parts_dir, *, method, id_name, chunk=None):
    """Load, score and write one chunk.

    Returns ``(index, n_rows, n_invalid, fingerprint)``; ``chunk`` is the
    chunk when the caller has already loaded it.
    """
    if chunk is None:
        chunk = spec.load()
    fingerprint = chunk_fingerprint(chunk)
    try:
        table, invalid = score_chunk(estimator, chunk, method=method, id_name=id_name)
    except ScoringInputError:
        raise
    except Exception as exc:
        first, last = chunk.ids[0], chunk.ids[-1]
        raise RuntimeError(
            f"Scoring chunk {spec.index} (rows with ids {first} to {last}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    write_part(parts_dir, spec.index, table, invalid)
    n_invalid = 0 if invalid is None else invalid.num_rows
    return spec.index, len(chunk.ids), n_invalid, fingerprint


# -- Dask workers ---------------------------------------------------------------------
_WORKER_MODELS: dict = {}
#: A worker of several threads loads the model once, in one of them.
_WORKER_LOCK = threading.Lock()


def worker_model(path, sha256, trust, trusted, device, batch_size):
    """The model, loaded once per worker process (checked against ``sha256``)."""
    key = (path, sha256, device, batch_size)
    with _WORKER_LOCK:
        if key not in _WORKER_MODELS:
            from .._io import file_sha256, load

            if sha256 is not None and file_sha256(path) != sha256:
                raise RuntimeError(
                    f"The model file {path} seen by this worker differs from the "
                    "one the job was started with."
                )
            _WORKER_MODELS.clear()
            model = load(path, trust=trust, trusted=trusted)
            _WORKER_MODELS[key] = prepare_model(model, device, batch_size)
        return _WORKER_MODELS[key]


def run_remote(model, spec, parts_dir, method, id_name):
    """Dask task: score one chunk with the worker's cached model."""
    estimator = worker_model(*model)
    return run_chunk(estimator, spec, parts_dir, method=method, id_name=id_name)
