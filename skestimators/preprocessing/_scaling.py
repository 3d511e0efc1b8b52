"""Standardisation of n-D arrays (spectra, images) per channel or per element."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._output import ArrayOutputMixin
from ._spectral import _zero_safe, tabular_input, tabular_names, validate_spectra

__all__ = ["NDStandardScaler"]


class NDStandardScaler(
    ArrayOutputMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
    """Standardise n-D arrays per channel or per element, over samples.

    With ``per="channel"`` every channel gets one mean and one standard
    deviation, computed over the samples and every other axis (wavelengths,
    pixels): the usual normalisation of network inputs, which keeps the
    shape of each spectrum or image. With ``per="feature"`` every element
    position gets its own statistics, as :class:`~sklearn.preprocessing.
    StandardScaler` does on the flattened array.

    As in scikit-learn's scalers, NaN (a missing value) is left out of the
    statistics and kept as NaN by :meth:`transform`.

    Parameters
    ----------
    per : {"channel", "feature"}, default="channel"
        Whether the statistics are per channel or per element position.
    channel_axis : int, default=-1
        Axis of the channels for inputs of three dimensions or more: ``-1``
        for spectra ``(n_samples, n_wavelengths, n_channels)``, ``1`` for
        images ``(n_samples, n_channels, height, width)``. A 2-D input is a
        single channel.
    with_mean : bool, default=True
        Whether to subtract the mean.
    with_std : bool, default=True
        Whether to divide by the standard deviation.

    Attributes
    ----------
    mean_ : ndarray
        Mean per channel, shape ``(n_channels,)`` (``(1,)`` for 2-D input), or
        per element, shape ``input_shape_``.
    var_ : ndarray
        Variance, same shape as ``mean_``.
    scale_ : ndarray
        Standard deviation used to scale (1 where it is zero, or everywhere
        when ``with_std=False``), same shape as ``mean_``.
    n_samples_seen_ : int
        Number of samples seen in :meth:`fit`.
    n_features_in_ : int
        Length of axis 1 of the input seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in :meth:`fit`, for a DataFrame input.
    input_shape_ : tuple of int
        Shape of one sample seen in :meth:`fit`.

    See Also
    --------
    SpectrumNormalizer : Normalise each spectrum on its own.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import NDStandardScaler
    >>> X = np.array([[[0.0, 10.0], [2.0, 30.0]], [[4.0, 50.0], [6.0, 70.0]]])
    >>> scaler = NDStandardScaler().fit(X)
    >>> scaler.mean_, scaler.scale_.round(3)
    (array([ 3., 40.]), array([ 2.236, 22.361]))
    >>> np.allclose(scaler.inverse_transform(scaler.transform(X)), X)
    True
    """

    _parameter_constraints: dict = {
        "per": [StrOptions({"channel", "feature"})],
        "channel_axis": [Integral],
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }

    def __init__(
        self, per="channel", *, channel_axis=-1, with_mean=True, with_std=True
    ):
        self.per = per
        self.channel_axis = channel_axis
        self.with_mean = with_mean
        self.with_std = with_std

    def _stat_shape(self, ndim):
        """Shape that broadcasts the statistics against a batch of ``ndim`` dims."""
        if self.per == "feature":
            return (1, *self.input_shape_)
        if ndim == 2:
            return (1, 1)
        shape = [1] * ndim
        shape[self._axis(ndim)] = -1
        return tuple(shape)

    def _axis(self, ndim):
        if not -ndim < self.channel_axis < ndim or self.channel_axis % ndim == 0:
            raise ValueError(
                f"channel_axis={self.channel_axis} is not a non-sample axis of a "
                f"{ndim}-D input."
            )
        return self.channel_axis % ndim

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            The data, of two dimensions or more.
        y : None
            Ignored.

        Returns
        -------
        self : NDStandardScaler
            The fitted scaler.
        """
        X = validate_spectra(self, X, reset=True, max_ndim=None, allow_nan=True)
        X64 = X.astype(np.float64, copy=False)
        if self.per == "feature":
            values = X64
        elif X.ndim == 2:
            values = X64.reshape(-1, 1)
        else:
            axis = self._axis(X.ndim)
            values = np.moveaxis(X64, axis, -1).reshape(-1, X.shape[axis])
        with warnings.catch_warnings():
            # A channel with no value at all: NaN statistics, scale 1 below.
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(values, axis=0))
            var = np.nan_to_num(np.nanvar(values, axis=0))
            magnitude = np.nan_to_num(np.nanmax(np.abs(values), axis=0))
        self.mean_ = mean.astype(X.dtype)
        self.var_ = var.astype(X.dtype)
        if self.with_std:
            scale = _zero_safe(np.sqrt(var), magnitude)
            # A variance within the rounding error of its mean is a constant
            # (scikit-learn's StandardScaler bound): a wavelength grid shared
            # by every spectrum, up to rounding, was blown up to +-1.
            n = np.sum(~np.isnan(values), axis=0)
            eps = np.finfo(np.float64).eps
            scale[var <= n * eps * var + (n * mean * eps) ** 2] = 1.0
        else:
            scale = np.ones_like(var)
        self.scale_ = scale.astype(X.dtype)
        self.n_samples_seen_ = X.shape[0]
        return self

    def _broadcast(self, X):
        shape = self._stat_shape(X.ndim)
        # In X's floating dtype: float32 data stays float32, as with StandardScaler.
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        mean = self.mean_.reshape(shape).astype(dtype) if self.with_mean else 0
        return mean, self.scale_.reshape(shape).astype(dtype)

    def transform(self, X):
        """Standardise ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Data of the shape seen in :meth:`fit`.

        Returns
        -------
        X_new : ndarray of the same shape as ``X``
            The standardised data.
        """
        check_is_fitted(self)
        X = validate_spectra(self, X, reset=False, max_ndim=None, allow_nan=True)
        mean, scale = self._broadcast(X)
        return (X - mean) / scale

    def inverse_transform(self, X):
        """Undo the standardisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Standardised data.

        Returns
        -------
        X_original : ndarray of the same shape as ``X``
            The data in the original units.
        """
        check_is_fitted(self)
        X = validate_spectra(self, X, reset=False, max_ndim=None, allow_nan=True)
        mean, scale = self._broadcast(X)
        return X * scale + mean

    @available_if(tabular_input)
    def get_feature_names_out(self, input_features=None):
        """Names of the output features, for 2-D input.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
            The input names (the transformer is one-to-one).
        """
        return tabular_names(
            self, input_features, lambda n: n if len(self.input_shape_) == 1 else None
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
