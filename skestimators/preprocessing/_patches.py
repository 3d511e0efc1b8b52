"""Summary statistics of raster patches, per band and year."""

from __future__ import annotations

import re
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._output import ArrayOutputMixin

__all__ = ["PatchStatistics"]

_QUANTILE = re.compile(r"p(\d{1,2})$")


def _statistic(stat, X, pixels, missing):
    """One statistic over the pixels ``(n, bands, pixels, years)``; with
    ``missing``, over the pixels that are not NaN."""
    if stat == "centre":
        height, width = X.shape[2:4]
        return X[:, :, height // 2, width // 2, :]
    if stat == "valid":
        if not missing:
            return np.ones(pixels.shape[:2] + pixels.shape[3:], dtype=X.dtype)
        return (~np.isnan(pixels)).mean(axis=2).astype(X.dtype)
    if stat.startswith("p"):
        q = int(_QUANTILE.match(stat).group(1))
        return (np.nanpercentile if missing else np.percentile)(pixels, q, axis=2)
    plain = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
    nan = {"mean": np.nanmean, "std": np.nanstd, "min": np.nanmin, "max": np.nanmax}
    return (nan if missing else plain)[stat](pixels, axis=2)


def _flat_output(statistics) -> bool:
    """Whether the output is a table (``flatten``; or not known yet: before fit)."""
    if statistics.flatten or not hasattr(statistics, "input_shape_"):
        return True
    raise AttributeError(
        "PatchStatistics(flatten=False) returns 5-D patches, so its output has "
        "no feature names."
    )


class PatchStatistics(ArrayOutputMixin, TransformerMixin, BaseEstimator):
    """Summary statistics of each band and year of 5-D patches.

    Turns patches ``(n, bands, height, width, years)`` into statistics over
    the pixels of the patch, for every band and year: a table for tabular
    models (random forest, gradient boosting), or, with ``flatten=False``,
    sequences over the years for a temporal network. Stateless: ``fit`` only
    records the input shape.

    Missing pixels (NaN: clouds, sensor stripes) are left out of the
    statistics; a band and year with no pixel left gives NaN (as does
    ``"centre"`` when the centre pixel is missing), which gradient boosting
    and :class:`~skestimators.SpatioTemporalRegressor` read as missing.
    A statistic of one observed pixel is still a value (``"std"`` is then 0):
    how much of a patch is seen is not in the other statistics, and
    ``"valid"`` (the share of observed pixels) gives it.

    Parameters
    ----------
    statistics : tuple of str, default=("mean", "std", "p10", "p90")
        Statistics over the pixels: ``"mean"``, ``"std"``, ``"min"``,
        ``"max"``, ``"centre"`` (the centre pixel, of patches of odd
        height and width), ``"valid"`` (the share of
        pixels that are not missing, from 0 to 1) and percentiles ``"p<q>"``
        with ``q`` from 0 to 99 (``"p10"``: the 10th percentile).
    flatten : bool, default=True
        True: a table ``(n, n_statistics * bands * years)`` for tabular
        models. False: 1x1 "patches" ``(n, n_statistics * bands, 1, 1,
        years)`` that keep the years as a sequence, for
        :class:`~skestimators.SpatioTemporalRegressor`.

    Attributes
    ----------
    n_features_in_ : int
        Number of bands (``X.shape[1]``).
    input_shape_ : tuple of int
        ``(bands, height, width, years)`` seen in ``fit``.

    See Also
    --------
    skestimators.recipes.soc_baseline_pipeline : These features and a tree
        ensemble.
    skestimators.datasets.extract_patches : Cut such patches from rasters.

    Examples
    --------
    >>> from skestimators.datasets import make_soc
    >>> from skestimators.preprocessing import PatchStatistics
    >>> X, y, coords = make_soc(10, n_years=3, random_state=0)
    >>> stats = PatchStatistics().fit(X)
    >>> stats.transform(X).shape  # 6 bands x 3 years x 4 statistics
    (10, 72)
    >>> stats.get_feature_names_out()[:3].tolist()
    ['band0_year0_mean', 'band0_year1_mean', 'band0_year2_mean']
    """

    _parameter_constraints: dict = {
        "statistics": [tuple, list],
        "flatten": ["boolean"],
    }

    def __init__(self, statistics=("mean", "std", "p10", "p90"), *, flatten=True):
        self.statistics = statistics
        self.flatten = flatten

    def _check_statistics(self):
        stats = list(self.statistics)
        fixed = {"mean", "std", "min", "max", "centre", "valid"}
        bad = [s for s in stats if s not in fixed and not _QUANTILE.match(str(s))]
        if not stats or bad:
            raise ValueError(
                "statistics must be a non-empty sequence of 'mean', 'std', 'min', "
                "'max', 'centre', 'valid' or 'p<q>' (0 <= q <= 99); got "
                f"{self.statistics!r}."
            )
        # "p5" and "p05" are one percentile.
        same = [f"p{int(s[1:])}" if _QUANTILE.match(str(s)) else s for s in stats]
        repeated = sorted({s for s, k in zip(stats, same) if same.count(k) > 1})
        if repeated:
            raise ValueError(
                f"statistics names {repeated} more than once: each would be a "
                "copy of the same feature, under the same names."
            )
        return stats

    def _validate(self, X, reset):
        X = validate_data(
            self,
            X,
            reset=reset,
            allow_nd=True,
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan",
        )
        if X.ndim != 5:
            raise ValueError(
                "PatchStatistics expects patches of shape (n_samples, bands, height, "
                f"width, years); got an array of shape {X.shape}."
            )
        if reset:
            height, width = X.shape[2:4]
            if "centre" in self.statistics and (height % 2 == 0 or width % 2 == 0):
                raise ValueError(
                    f"'centre' needs patches of odd height and width (a centre "
                    f"pixel); these are {height} x {width} (see extract_patches)."
                )
            self.input_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has patches of shape {tuple(X.shape[1:])}, but PatchStatistics "
                f"was fitted on {self.input_shape_}."
            )
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the shape of the patches.

        Parameters
        ----------
        X : array-like of shape (n_samples, bands, height, width, years)
            Patches.
        y : None
            Ignored.

        Returns
        -------
        self : PatchStatistics
            The fitted transformer.
        """
        self._check_statistics()
        self._validate(X, reset=True)
        return self

    def transform(self, X):
        """Statistics of each band and year.

        Parameters
        ----------
        X : array-like of shape (n_samples, bands, height, width, years)
            Patches of the shape seen in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_statistics * bands * years) or \
(n_samples, n_statistics * bands, 1, 1, years)
            Columns (or channels) ordered by statistic, then band (then year;
            see :meth:`get_feature_names_out`).
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        n, bands, height, width, years = X.shape
        pixels = X.reshape(n, bands, height * width, years)
        missing = bool(np.isnan(pixels).any())
        columns = []
        with warnings.catch_warnings():
            # A band-year missing entirely gives NaN ("empty slice"): expected.
            warnings.simplefilter("ignore", RuntimeWarning)
            for stat in self._check_statistics():
                columns.append(_statistic(stat, X, pixels, missing))
        out = np.concatenate(columns, axis=1).astype(X.dtype, copy=False)
        if self.flatten:
            return out.reshape(n, -1)
        return out[:, :, None, None, :]

    @available_if(_flat_output)
    def get_feature_names_out(self, input_features=None):
        """Names ``band<b>_year<t>_<statistic>`` of the output columns.

        Only with ``flatten=True``: the 5-D output of ``flatten=False`` has no
        columns, and scikit-learn wraps the output of a transformer that has
        this method in a DataFrame (``set_output``).

        Parameters
        ----------
        input_features : None
            Ignored (the inputs are patches, not named columns).

        Returns
        -------
        feature_names_out : ndarray of str
            One name per output column.
        """
        check_is_fitted(self)
        bands, _, _, years = self.input_shape_
        names = [
            f"band{b}_year{t}_{stat}"
            for stat in self._check_statistics()
            for b in range(bands)
            for t in range(years)
        ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # 5-D patches, never a table
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        return tags
