"""Sample weights that balance a regression target across its range."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_array

__all__ = ["quantile_balanced_weights"]


def quantile_balanced_weights(y, n_bins=10, *, strategy="quantile") -> np.ndarray:
    """Sample weights giving every bin of the target the same total weight.

    The weighted counterpart of quantile-based balanced sampling, which
    resamples bins of the target so that the rare high or low values of a
    skewed target such as soil organic carbon count as much as the common
    ones [1]_. Instead of resampling, the target is cut into ``n_bins`` bins
    and each sample gets ``n / (k * n_b)``, where ``n_b`` is the size of its
    bin and ``k`` the number of non-empty bins. Every bin then weighs
    ``n / k`` and the weights average to one.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Regression target.
    n_bins : int, default=10
        Number of bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        ``"quantile"``: bin edges at quantiles of ``y`` (as in [1]_).
        Quantile bins hold about the same number of samples by construction,
        so the weights stay close to one; they depart from one where ties
        (repeated values, detection limits) make bins unequal. ``"uniform"``:
        equal-width bins from ``min(y)`` to ``max(y)``, which up-weights the
        rare values in the tail of a skewed target (pass ``np.log(y)`` to
        balance on a log scale).

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)
        Positive weights with mean 1, for ``fit(..., sample_weight=...)``.

    Notes
    -----
    Bins are half-open, ``[a, b)``, except the last, which includes the
    maximum; duplicated quantile edges (ties) are merged.

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023): quantile-based
       balanced sampling of organic carbon.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import quantile_balanced_weights
    >>> y = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 3.0])
    >>> quantile_balanced_weights(y, n_bins=3)
    array([0.75, 0.75, 0.75, 0.75, 1.5 , 1.5 ])
    >>> quantile_balanced_weights([1.0, 1.1, 1.2, 9.0], n_bins=2, strategy="uniform")
    array([0.66666667, 0.66666667, 0.66666667, 2.        ])
    """
    y = check_array(y, ensure_2d=False, dtype=float, input_name="y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    if (
        not isinstance(n_bins, numbers.Integral)
        or isinstance(n_bins, bool)
        or n_bins < 1
    ):
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    if strategy == "quantile":
        edges = np.unique(np.quantile(y, np.linspace(0.0, 1.0, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(y.min(), y.max(), n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}.")
    bins = np.searchsorted(edges[1:-1], y, side="right")
    counts = np.bincount(bins)
    n_nonempty = np.count_nonzero(counts)
    return len(y) / (n_nonempty * counts[bins])
