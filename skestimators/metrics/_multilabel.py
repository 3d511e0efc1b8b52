"""Scorers for multilabel classifiers: ROC AUC per target and subset accuracy."""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.sparse import issparse
from sklearn.metrics import roc_auc_score
from sklearn.utils.multiclass import type_of_target

__all__ = ["multilabel_scorers"]


def _column_auc(estimator, X, y, *, column):
    """ROC AUC of one target of a multilabel model (a scorer)."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, np.newaxis]
    proba = estimator.predict_proba(X)
    if isinstance(proba, list):  # one (n_samples, 2) array per target (forests)
        score = np.asarray(proba[column])[:, -1]
    else:
        proba = np.asarray(proba)
        if y.shape[1] == 1 and proba.shape[1] == 2:
            # One binary target: the columns are its two classes, in sorted
            # order, and the second is the one roc_auc_score counts positive.
            score = proba[:, 1]
        else:
            score = proba[:, column]
    return roc_auc_score(y[:, column], score)


def multilabel_scorers(y) -> dict:
    """ROC AUC of each target and subset accuracy, as a ``scoring`` dict.

    scikit-learn's ``"roc_auc"`` scorer expects a binary classifier with two
    classes (``classes_ == [0, 1]``) and scores one column only; a multilabel
    model whose ``predict_proba`` returns one probability per target, of
    shape (n_samples, n_targets), gets one ROC AUC scorer per target here
    instead. ``predict_proba`` may also return a list of one (n_samples, 2)
    array per target, as random forests and k-nearest neighbours do. The
    scorers are picklable, so they run in parallel folds.

    Parameters
    ----------
    y : DataFrame of shape (n_samples, n_targets) or Series
        The targets; its column names name the scorers. An array's targets
        are named by their position (``"0_auc"``, ``"1_auc"``, ...). A
        single target (a Series, a 1-D array or one column) is scored on the
        probability of its greater class, as scikit-learn's ``"roc_auc"``
        does.

    Returns
    -------
    scoring : dict of str to scorer
        ``"<target>_auc"`` for each target, then ``"accuracy"`` (the subset
        accuracy: every target of a sample right). Results appear as
        ``test_<target>_auc`` etc. in :func:`~sklearn.model_selection.cross_validate`.

    See Also
    --------
    regression_scorers : The scorers of regression targets.

    Examples
    --------
    >>> import pandas as pd
    >>> from skestimators.metrics import multilabel_scorers
    >>> y = pd.DataFrame({"water": [0, 1, 1, 0], "clouds": [1, 1, 0, 0]})
    >>> list(multilabel_scorers(y))
    ['water_auc', 'clouds_auc', 'accuracy']
    """
    if hasattr(y, "columns"):
        names = y.columns
    elif np.ndim(y) == 1:
        names = [y.name if getattr(y, "name", None) is not None else 0]
    else:
        names = range(np.shape(y)[1])
    columns = y.toarray() if issparse(y) else np.asarray(y)
    columns = columns.reshape(columns.shape[0], -1)
    for j, name in enumerate(names):
        try:
            kind = type_of_target(columns[:, j])
        except ValueError:  # NaN: scoring says so, naming the metric
            continue
        if kind in ("multiclass", "continuous"):
            raise ValueError(
                f"multilabel_scorers scores binary targets (two classes each); "
                f"target {name!r} is {kind}. For one target of several classes, "
                "use scoring='roc_auc_ovr' (and 'accuracy')."
            )
    scoring = {
        f"{name}_auc": partial(_column_auc, column=j) for j, name in enumerate(names)
    }
    scoring["accuracy"] = "accuracy"
    return scoring
