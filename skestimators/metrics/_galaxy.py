"""The Galaxy Challenge metric and the projection of predictions onto its tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import make_scorer
from sklearn.utils import check_consistent_length

from ..nn._galaxy_tree import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS

__all__ = [
    "galaxy_zoo_rmse",
    "galaxy_zoo_rmse_per_column",
    "galaxy_zoo_scorer",
    "project_galaxy_zoo",
]

_N = len(GALAXY_ZOO_COLUMNS)


def _as_targets(y, name: str) -> np.ndarray:
    """``y`` as a float64 array of shape (n, 37), in the canonical column order."""
    if isinstance(y, pd.DataFrame):
        missing = [c for c in GALAXY_ZOO_COLUMNS if c not in y.columns]
        extra = [c for c in y.columns if c not in GALAXY_ZOO_COLUMNS]
        if missing or extra:
            raise ValueError(
                f"{name} must have the 37 Galaxy Zoo columns (Class1.1 ... "
                f"Class11.6); missing {missing[:5]}, unexpected {extra[:5]}."
            )
        y = y.loc[:, list(GALAXY_ZOO_COLUMNS)]
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != _N or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n_samples, {_N}) with n_samples >= 1, "
            f"got {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _squared_errors(y_true, y_pred, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    true = _as_targets(y_true, "y_true")
    pred = _as_targets(y_pred, "y_pred")
    check_consistent_length(true, pred, sample_weight)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim != 1 or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("sample_weight must be 1-D, non-negative, not all 0.")
    return (true - pred) ** 2, weights


def galaxy_zoo_rmse(y_true, y_pred, *, sample_weight=None) -> float:
    """Root mean squared error over all 37 answers and all galaxies.

    This is the metric of the Kaggle Galaxy Challenge (2014): the square root
    of the mean of the squared errors over every galaxy and every column.

    Parameters
    ----------
    y_true, y_pred : array-like or DataFrame of shape (n_samples, 37)
        Vote fractions. DataFrames are matched by column name (``Class1.1``
        ... ``Class11.6``, any order); arrays are in the canonical order.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the galaxies.

    Returns
    -------
    rmse : float

    See Also
    --------
    galaxy_zoo_rmse_per_column : The same error per answer.
    galaxy_zoo_scorer : Scorer for ``cross_validate`` and grid searches.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.metrics import galaxy_zoo_rmse
    >>> y = np.zeros((2, 37))
    >>> round(galaxy_zoo_rmse(y, y + 0.1), 6)
    0.1
    """
    errors, weights = _squared_errors(y_true, y_pred, sample_weight)
    return float(np.sqrt(np.average(errors.mean(axis=1), weights=weights)))


def galaxy_zoo_rmse_per_column(y_true, y_pred, *, sample_weight=None) -> pd.Series:
    """Root mean squared error of each of the 37 answers.

    Parameters
    ----------
    y_true, y_pred : array-like or DataFrame of shape (n_samples, 37)
        Vote fractions, as for :func:`galaxy_zoo_rmse`.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the galaxies.

    Returns
    -------
    rmse : pandas.Series
        Indexed by the column names ``Class1.1`` ... ``Class11.6``. The mean
        of its squares is the square of :func:`galaxy_zoo_rmse`.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.metrics import galaxy_zoo_rmse_per_column
    >>> y_pred = np.zeros((2, 37))
    >>> y_pred[:, 0] = 0.5
    >>> galaxy_zoo_rmse_per_column(np.zeros((2, 37)), y_pred).head(2)
    Class1.1    0.5
    Class1.2    0.0
    Name: rmse, dtype: float64
    """
    errors, weights = _squared_errors(y_true, y_pred, sample_weight)
    values = np.sqrt(np.average(errors, axis=0, weights=weights))
    return pd.Series(values, index=list(GALAXY_ZOO_COLUMNS), name="rmse")


def project_galaxy_zoo(y_pred):
    """Project predictions onto the constraints of the Galaxy Zoo tree.

    Negative values are clipped to 0; then, in tree order, each question's
    answers are rescaled to sum to the (already projected) value of the
    answer that leads to it, or to 1 for Q1 and Q6. A question whose answers
    are all 0 gets equal shares. Predictions that already obey the tree are
    returned unchanged (up to rounding), so the projection is idempotent.

    Parameters
    ----------
    y_pred : array-like or DataFrame of shape (n_samples, 37)
        Predicted vote fractions; DataFrames are matched by column name.

    Returns
    -------
    projected : ndarray or DataFrame of shape (n_samples, 37)
        A float64 array in the canonical column order, or a DataFrame with
        the columns and index of ``y_pred``.

    See Also
    --------
    skestimators.nn.GalaxyZooConstraint : The same constraint as a network
        output layer.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.metrics import project_galaxy_zoo
    >>> p = project_galaxy_zoo(np.full((1, 37), 0.5))
    >>> p[0, :5].round(4).tolist()  # Q1, then Q2 sums to Class1.2
    [0.3333, 0.3333, 0.3333, 0.1667, 0.1667]
    >>> bool(np.allclose(project_galaxy_zoo(p), p))
    True
    """
    y = np.clip(_as_targets(y_pred, "y_pred"), 0.0, None)
    out = np.empty_like(y)
    for question in GALAXY_ZOO_QUESTIONS:
        group = y[:, question.start : question.stop]
        total = group.sum(axis=1, keepdims=True)
        share = np.divide(
            group,
            total,
            out=np.full_like(group, 1.0 / group.shape[1]),
            where=total > 0,
        )
        if question.parent is not None:
            share = share * out[:, question.parent : question.parent + 1]
        out[:, question.start : question.stop] = share
    if isinstance(y_pred, pd.DataFrame):
        projected = pd.DataFrame(
            out, columns=list(GALAXY_ZOO_COLUMNS), index=y_pred.index
        )
        return projected.loc[:, list(y_pred.columns)]
    return out


#: Scorer for ``cross_validate`` and searches: the negated :func:`galaxy_zoo_rmse`.
galaxy_zoo_scorer = make_scorer(galaxy_zoo_rmse, greater_is_better=False)
