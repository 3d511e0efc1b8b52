"""Repeated cross-validation with reseeded estimators: multi-run statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._compare import compare_variants
from ._summaries import strict

__all__ = ["repeated_cv"]

COLUMNS = ["repeat", "fold", "metric", "value", "fit_time"]


def repeated_cv(
    estimator,
    X,
    y=None,
    *,
    cv=5,
    n_repeats: int = 5,
    scoring=None,
    groups=None,
    params: dict | None = None,
    random_state=None,
    n_jobs: int | None = None,
    error_score=np.nan,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validate one model several times with different seeds.

    Multi-run statistics, so that a difference between models can be told
    from the spread due to weight initialisation and fold assignment (as in
    the multi-run experiments of the CNN-LSTM soil-carbon model of
    :func:`~skestimators.recipes.soc_pipeline`): every repeat clones
    ``estimator``, sets every ``random_state`` parameter found in
    ``get_params(deep=True)`` (pipeline steps, the regressor of a
    :class:`~sklearn.compose.TransformedTargetRegressor`...) to that repeat's
    seed, reshuffles the folds with the same seed when the splitter has a
    ``random_state``, and cross-validates. This is :func:`compare_variants`
    with one variant, so both give the same seeds and folds for the same
    ``random_state``.

    Parameters
    ----------
    estimator : estimator
        The model (cloned, never fitted in place).
    X : array-like of shape (n_samples, ...)
        Inputs (any number of dimensions).
    y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
        Targets.
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.cross_validate`. Spatial
        splitters (:class:`SpatialBlockKFold`, :class:`BufferedKFold`) take
        the coordinates as ``groups``.
    n_repeats : int, default=5
        Number of repetitions of the whole cross-validation.
    scoring : str, callable, list, tuple or dict, default=None
        One or several metrics, as in ``cross_validate`` (for instance
        :func:`skestimators.metrics.regression_scorers`); None uses the
        estimator's ``score`` (metric ``"score"``).
    groups : array-like, default=None
        Group labels or coordinates for the splitter.
    params : dict, default=None
        Fit parameters (``sample_weight``, the ``groups`` of an internal
        validation split, ``step__param`` for pipelines), indexed by fold
        like ``cross_validate``'s ``params``.
    random_state : int, RandomState instance or None, default=None
        Seeds the per-repeat seeds. With ``n_repeats=1`` and
        ``random_state=None``, estimator and splitter are used as given.
    n_jobs : int, default=None
        Fits (every fold of every repeat) run in parallel through joblib.
    error_score : "raise" or float, default=np.nan
        Value of every metric of a fit that raises, as in
        :func:`compare_variants`: the other fits go on, a
        :class:`~sklearn.exceptions.FitFailedWarning` names each failure,
        and the summary statistics of a metric with a failed fit are NaN.
        ``"raise"`` stops at the first error.

    Returns
    -------
    scores : DataFrame
        One row per repeat, fold and metric, with columns ``repeat, fold,
        metric, value, fit_time`` (seconds). Higher values are better
        (``neg_*`` metrics are negated errors).
    summary : DataFrame
        One row per metric, with columns ``mean`` and ``std`` (over all
        fits, ``ddof=0``), ``repeat_std`` (standard deviation of the
        per-repeat means, ``ddof=1``: how much the cross-validated estimate
        moves with the random seed; NaN for one repeat), ``min`` and ``max``.

    See Also
    --------
    compare_variants : The same for several models on shared folds.
    sklearn.model_selection.RepeatedKFold : Reshuffles folds, no reseeding.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from skestimators.model_selection import repeated_cv
    >>> X, y = make_regression(60, 4, noise=5.0, random_state=0)
    >>> scores, summary = repeated_cv(
    ...     RandomForestRegressor(10), X, y, cv=3, n_repeats=2,
    ...     scoring=["r2", "neg_mean_absolute_error"], random_state=0,
    ... )
    >>> scores.shape, list(scores.columns)
    ((12, 5), ['repeat', 'fold', 'metric', 'value', 'fit_time'])
    >>> list(summary.index), list(summary.columns)
    (['r2', 'neg_mean_absolute_error'], ['mean', 'std', 'repeat_std', 'min', 'max'])
    """
    scores = compare_variants(
        {type(estimator).__name__: estimator},
        X,
        y,
        cv=cv,
        scoring=scoring,
        groups=groups,
        params=params,
        n_repeats=n_repeats,
        n_jobs=n_jobs,
        random_state=random_state,
        error_score=error_score,
    ).drop(columns="variant")
    return scores, summarize_repeats(scores)


def summarize_repeats(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-metric summary of :func:`repeated_cv` scores (see its ``summary``)."""
    order = list(dict.fromkeys(scores["metric"]))
    by_metric = scores.groupby("metric", sort=False)["value"]
    summary = by_metric.agg(
        mean=strict(np.mean), std=strict(np.std), min=strict(np.min),
        max=strict(np.max),
    )  # fmt: skip
    per_repeat = scores.groupby(["metric", "repeat"], sort=False)["value"].agg(
        strict(np.mean)
    )
    summary["repeat_std"] = per_repeat.groupby("metric", sort=False).agg(
        lambda v: float(np.std(v.to_numpy(), ddof=1)) if len(v) > 1 else np.nan
    )
    return summary.reindex(order)[["mean", "std", "repeat_std", "min", "max"]]
