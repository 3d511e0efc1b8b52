"""Regression metrics of soil spectroscopy and mapping: RMSE and RPIQ."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import get_scorer, make_scorer, root_mean_squared_error
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import check_array

__all__ = ["regression_scorers", "rmse", "rmse_scorer", "rpiq", "rpiq_scorer"]


def rmse(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    """Root mean squared error.

    A short name for :func:`sklearn.metrics.root_mean_squared_error`, which
    does the work.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        True values.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    multioutput : {"raw_values", "uniform_average"} or array-like, \
            default="uniform_average"
        How to combine the errors of several outputs.

    Returns
    -------
    error : float or ndarray of shape (n_outputs,)
        The RMSE (one per output for ``"raw_values"``).

    See Also
    --------
    rpiq : Interquartile range of the truth over the RMSE.

    Examples
    --------
    >>> from skestimators.metrics import rmse
    >>> float(rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]))
    1.1547005383792515
    """
    return root_mean_squared_error(
        y_true, y_pred, sample_weight=sample_weight, multioutput=multioutput
    )


def _weighted_quantile(values, q, weights=None):
    """Linear-interpolation quantile that reduces to NumPy's default unweighted.

    Sorted values sit at cumulative positions ``(S_i - w_i) / (S_n - w_n)``
    (``S`` the cumulative weights), which are ``(i - 1) / (n - 1)`` for equal
    weights, i.e. ``np.quantile(values, q)``.
    """
    if weights is None:
        return np.quantile(values, q)
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    if len(values) == 1:
        return np.full(np.shape(q), values[0])
    cum = np.cumsum(weights)
    positions = (cum - weights) / (cum[-1] - weights[-1])
    return np.interp(q, positions, values)


def rpiq(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    """Ratio of performance to interquartile distance, ``IQR(y_true) / RMSE``.

    Higher is better; it compares the error with the spread of the central
    half of the true values, which suits skewed targets such as soil organic
    carbon better than the standard deviation (RPD).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        True values.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, applied to both the RMSE and the quartiles (a weighted
        linear-interpolation quantile equal to :func:`numpy.quantile` for
        equal weights).
    multioutput : {"raw_values", "uniform_average"} or array-like, \
            default="uniform_average"
        How to combine the ratios of several outputs.

    Returns
    -------
    score : float or ndarray of shape (n_outputs,)
        The RPIQ; ``inf`` for a perfect prediction of a spread target.

    See Also
    --------
    rmse : Root mean squared error.

    Examples
    --------
    >>> from skestimators.metrics import rpiq
    >>> float(rpiq([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 7.0]))
    2.23606797749979
    """
    y_true = check_array(y_true, ensure_2d=False, dtype=float, input_name="y_true")
    y_pred = check_array(y_pred, ensure_2d=False, dtype=float, input_name="y_pred")
    check_consistent_length(y_true, y_pred, sample_weight)
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred have different shapes: {y_true.shape}, {y_pred.shape}."
        )
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=float)
    errors = root_mean_squared_error(
        y_true, y_pred, sample_weight=weights, multioutput="raw_values"
    )
    iqr = np.array(
        [
            np.subtract(*_weighted_quantile(column, [0.75, 0.25], weights))
            for column in y_true.T
        ]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = iqr / errors
    if isinstance(multioutput, str):
        if multioutput == "raw_values":
            return scores
        if multioutput != "uniform_average":
            raise ValueError(
                "multioutput must be 'raw_values', 'uniform_average' or an array of "
                f"weights, got {multioutput!r}."
            )
        return float(np.mean(scores))
    return float(np.average(scores, weights=multioutput))


#: Scorer for :func:`rmse`; sign-flipped (``greater_is_better=False``).
rmse_scorer = make_scorer(rmse, greater_is_better=False)
#: Scorer for :func:`rpiq`.
rpiq_scorer = make_scorer(rpiq)


def regression_scorers() -> dict:
    """The seed's evaluation metrics, as a ``scoring`` dict for ``cross_validate``.

    Returns
    -------
    scoring : dict of str to scorer
        ``"r2"``, ``"neg_rmse"``, ``"neg_mae"`` and ``"rpiq"``. Error scorers
        are negated, as scikit-learn's convention requires; results appear as
        ``test_neg_rmse`` etc. A new dict is returned on each call.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skestimators.metrics import regression_scorers
    >>> X = [[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]
    >>> y = [0.1, 1.1, 1.9, 3.2, 3.9, 5.1]
    >>> scores = cross_validate(LinearRegression(), X, y, cv=2,
    ...                         scoring=regression_scorers())
    >>> sorted(k for k in scores if k.startswith("test_"))
    ['test_neg_mae', 'test_neg_rmse', 'test_r2', 'test_rpiq']
    """
    return {
        "r2": get_scorer("r2"),
        "neg_rmse": rmse_scorer,
        "neg_mae": get_scorer("neg_mean_absolute_error"),
        "rpiq": rpiq_scorer,
    }
