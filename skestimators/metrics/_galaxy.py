"""The Galaxy Challenge metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import make_scorer
from sklearn.utils import check_consistent_length

from ..galaxy_zoo import GALAXY_ZOO_COLUMNS, _as_targets

__all__ = [
    "galaxy_zoo_root_mean_squared_error",
    "galaxy_zoo_root_mean_squared_error_per_column",
    "neg_galaxy_zoo_root_mean_squared_error_scorer",
]


def _squared_errors(y_true, y_pred, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    true = _as_targets(y_true, "y_true")
    pred = _as_targets(y_pred, "y_pred")
    check_consistent_length(true, pred, sample_weight)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim != 1 or not np.isfinite(weights).all():
            raise ValueError(
                "sample_weight must be 1-D and finite (no NaN or infinite values)."
            )
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("sample_weight must be 1-D, non-negative, not all 0.")
    return (true - pred) ** 2, weights


def galaxy_zoo_root_mean_squared_error(y_true, y_pred, *, sample_weight=None) -> float:
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
    galaxy_zoo_root_mean_squared_error_per_column : The same error per answer.
    neg_galaxy_zoo_root_mean_squared_error_scorer : Scorer for
        ``cross_validate`` and grid searches.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.metrics import galaxy_zoo_root_mean_squared_error
    >>> y = np.zeros((2, 37))
    >>> round(galaxy_zoo_root_mean_squared_error(y, y + 0.1), 6)
    0.1
    """
    errors, weights = _squared_errors(y_true, y_pred, sample_weight)
    return float(np.sqrt(np.average(errors.mean(axis=1), weights=weights)))


def galaxy_zoo_root_mean_squared_error_per_column(
    y_true, y_pred, *, sample_weight=None
) -> pd.Series:
    """Root mean squared error of each of the 37 answers.

    Parameters
    ----------
    y_true, y_pred : array-like or DataFrame of shape (n_samples, 37)
        Vote fractions, as for :func:`galaxy_zoo_root_mean_squared_error`.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the galaxies.

    Returns
    -------
    rmse : pandas.Series
        Indexed by the column names ``Class1.1`` ... ``Class11.6``. The mean
        of its squares is the square of :func:`galaxy_zoo_root_mean_squared_error`.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.metrics import galaxy_zoo_root_mean_squared_error_per_column
    >>> y_pred = np.zeros((2, 37))
    >>> y_pred[:, 0] = 0.5
    >>> galaxy_zoo_root_mean_squared_error_per_column(np.zeros((2, 37)), y_pred).head(2)
    Class1.1    0.5
    Class1.2    0.0
    Name: rmse, dtype: float64
    """
    errors, weights = _squared_errors(y_true, y_pred, sample_weight)
    values = np.sqrt(np.average(errors, axis=0, weights=weights))
    return pd.Series(values, index=list(GALAXY_ZOO_COLUMNS), name="rmse")


#: Scorer for ``cross_validate`` and searches: the negated
#: :func:`galaxy_zoo_root_mean_squared_error`.
neg_galaxy_zoo_root_mean_squared_error_scorer = make_scorer(
    galaxy_zoo_root_mean_squared_error, greater_is_better=False
)
