"""Regression metrics of soil spectroscopy and mapping: RPIQ and the scorers."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import get_scorer, make_scorer, root_mean_squared_error
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import _check_sample_weight, check_array

__all__ = ["regression_scorers", "rpiq_score", "rpiq_scorer"]


def _weighted_quantile(values, q, weights=None):
    """Weighted linear-interpolation quantile, NumPy's default for equal weights.

    The weighted version of Hyndman and Fan's type 7 (``np.quantile``'s
    ``"linear"`` method) of Akinshin [1]_: the sorted values get the
    consecutive stretches of ``[0, 1]`` of their normalised weights, and the
    ``q``-quantile averages them over the window
    ``[q (n* - 1) / n*, (q (n* - 1) + 1) / n*]``, each in proportion to its
    overlap, where ``n* = (sum w)**2 / sum w**2`` is Kish's effective sample
    size. For equal weights it is ``np.quantile(values, q)``; it is
    symmetric (the ``q``-quantile of ``-values`` is minus their
    ``(1 - q)``-quantile), invariant to rescaling the weights, and a
    point's influence vanishes with its weight, so a zero weight drops it.

    References
    ----------
    .. [1] A. Akinshin, "Weighted quantile estimators", arXiv:2304.07265, 2023.
    """
    if weights is None:
        return np.quantile(values, q)
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    weights = weights / weights.max()  # squares of weights near 1e200 overflowed
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    total = weights.sum()
    n_eff = total**2 / np.sum(weights**2)
    edges = np.concatenate([[0.0], np.cumsum(weights) / total])
    low = np.reshape(q, (-1, 1)) * (n_eff - 1) / n_eff
    high = low + 1 / n_eff
    overlap = np.clip(edges[1:], low, high) - np.clip(edges[:-1], low, high)
    quantiles = overlap @ values / overlap.sum(axis=1)
    return quantiles.reshape(np.shape(q))


def rpiq_score(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    """Ratio of performance to interquartile distance, ``IQR(y_true) / RMSE``.

    Higher is better; it compares the error with the spread of the central
    half of the true values, which suits skewed targets such as soil organic
    carbon better than the standard deviation (RPD) [1]_.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        True values.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights, applied to both the RMSE and the
        quartiles. The quartiles are the weighted linear-interpolation
        quantiles of Akinshin [2]_: equal to :func:`numpy.quantile` for equal
        weights, unchanged by rescaling the weights, symmetric (negating
        ``y_true`` and ``y_pred`` keeps the score), and a sample's influence
        vanishes with its weight. Integer weights are not repetitions: a
        weight of 2 counts more than 1, but the quartiles differ from those
        of the sample listed twice.
    multioutput : {"raw_values", "uniform_average"} or array-like of shape \
            (n_outputs,), default="uniform_average"
        How to combine the ratios of several outputs: return them all, their
        mean, or their average with these weights.

    Returns
    -------
    score : float or ndarray of shape (n_outputs,)
        The RPIQ; ``inf`` for a perfect prediction of a spread target.

    See Also
    --------
    sklearn.metrics.root_mean_squared_error : Root mean squared error.

    References
    ----------
    .. [1] V. Bellon-Maurel et al., "Critical review of chemometric
       indicators commonly used for assessing the quality of the prediction
       of soil attributes by NIR spectroscopy", TrAC Trends in Analytical
       Chemistry 29(9), 1073-1081, 2010.
    .. [2] A. Akinshin, "Weighted quantile estimators", arXiv:2304.07265, 2023.

    Examples
    --------
    >>> from skestimators.metrics import rpiq_score
    >>> float(rpiq_score([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 7.0]))
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
        weights = _check_sample_weight(sample_weight, y_true, ensure_non_negative=True)
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
    output_weights = np.asarray(multioutput, dtype=float)
    if output_weights.shape != scores.shape:
        raise ValueError(
            f"multioutput has shape {output_weights.shape}, but there are "
            f"{len(scores)} outputs: give one weight per output."
        )
    return float(np.average(scores, weights=output_weights))


#: Scorer for :func:`rpiq_score` (greater is better).
rpiq_scorer = make_scorer(rpiq_score)


def regression_scorers() -> dict:
    """R², RMSE, MAE and RPIQ, as a ``scoring`` dict for ``cross_validate``.

    The indicators of soil organic carbon mapping reported with the CNN-LSTM
    model of [1]_: R² for the share of variance explained, RMSE and MAE for
    the error in the target's units, and RPIQ [2]_ for the error relative to
    the spread of a skewed target. R² here is the coefficient of
    determination (:func:`~sklearn.metrics.r2_score`, ``1 - SS_res /
    SS_tot``), which counts bias and scale errors; [1]_ reports the squared
    correlation of predictions and observations under that name, which
    ignores them and is never smaller for a least-squares fit. The two can
    differ widely (in one example, predictions 30 % too large: 0.78 against
    -0.08), so compare like with like.

    Returns
    -------
    scoring : dict of str to scorer
        ``"r2"``, ``"neg_root_mean_squared_error"``,
        ``"neg_mean_absolute_error"`` and ``"rpiq"``: scikit-learn's scorer
        names, and :data:`rpiq_scorer` for RPIQ, which scikit-learn lacks.
        Error scorers are negated, as scikit-learn's convention requires;
        results appear as ``test_neg_root_mean_squared_error`` etc. A new
        dict is returned on each call.

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023).
    .. [2] V. Bellon-Maurel et al., "Critical review of chemometric
       indicators commonly used for assessing the quality of the prediction
       of soil attributes by NIR spectroscopy", TrAC Trends in Analytical
       Chemistry 29(9), 1073-1081, 2010.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skestimators.metrics import regression_scorers
    >>> X = [[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]
    >>> y = [0.1, 1.1, 1.9, 3.2, 3.9, 5.1]
    >>> scores = cross_validate(LinearRegression(), X, y, cv=2,
    ...                         scoring=regression_scorers())
    >>> for key in sorted(k for k in scores if k.startswith("test_")):
    ...     print(key)
    test_neg_mean_absolute_error
    test_neg_root_mean_squared_error
    test_r2
    test_rpiq
    """
    return {
        "r2": get_scorer("r2"),
        "neg_root_mean_squared_error": get_scorer("neg_root_mean_squared_error"),
        "neg_mean_absolute_error": get_scorer("neg_mean_absolute_error"),
        "rpiq": rpiq_scorer,
    }
