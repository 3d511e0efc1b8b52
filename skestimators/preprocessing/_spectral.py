"""Transformers for sets of spectra: normalisation, channel selection, features.

A set of spectra is a 3-D array ``(n_samples, n_wavelengths, n_channels)``, for
instance the wavelength, the transit depth and its uncertainty of exoplanet
spectra; a 2-D array ``(n_samples, n_wavelengths)`` is a single channel.
"""

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
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

from ._output import ArrayOutputMixin

__all__ = ["ChannelSelector", "SpectrumNormalizer"]


def validate_spectra(estimator, X, *, reset, max_ndim=3, allow_nan=False):
    """``validate_data`` for n-D arrays, also checking the shape of one sample.

    Sets ``n_features_in_`` (the length of axis 1, as scikit-learn does) and
    ``input_shape_`` (the shape of one sample) when ``reset``; otherwise checks
    that ``X`` matches them. ``allow_nan``: NaN (missing values) passes,
    infinity does not.
    """
    name = type(estimator).__name__
    if getattr(X, "dtype", None) == np.float16:
        warnings.warn(
            f"{name} got float16 spectra: half precision keeps about three "
            "significant digits, and spectral features as small as the noise of "
            "a transit depth are lost in it (uncertainties may round to zero). "
            "Store spectra as float32 or float64.",
            UserWarning,
            stacklevel=3,
        )
    try:
        # Half precision is upcast: depths and uncertainties of 1e-3 to 1e-9
        # lose their digits in it (or underflow to zero).
        X = validate_data(
            estimator,
            X,
            reset=reset,
            allow_nd=True,
            dtype=(np.float64, np.float32),
            ensure_all_finite="allow-nan" if allow_nan else True,
        )
    except ValueError as exc:
        rows = _nonfinite_samples(X, allow_nan)
        if rows is None or not len(rows):
            raise
        what = "infinite values" if allow_nan else "NaN or infinite values"
        raise ValueError(
            f"{name}: {len(rows)} spectra hold {what} (first: sample "
            f"{int(rows[0])}; samples {rows[:10].tolist()}). "
            + " ".join(str(exc).split())
        ) from None
    if max_ndim is not None and X.ndim > max_ndim:
        raise ValueError(
            f"{name} expects 2-D (n_samples, n_wavelengths) or 3-D (n_samples, "
            f"n_wavelengths, n_channels) spectra; got a {X.ndim}-D array of shape "
            f"{X.shape}."
        )
    if reset:
        estimator.input_shape_ = tuple(X.shape[1:])
    elif tuple(X.shape[1:]) != estimator.input_shape_:
        raise ValueError(
            f"X has samples of shape {tuple(X.shape[1:])}, but {name} was fitted "
            f"on samples of shape {estimator.input_shape_}."
        )
    return X


def _nonfinite_samples(X, allow_nan):
    """Positions of the samples of ``X`` holding non-finite values (infinite
    only with ``allow_nan``), or None when ``X`` is not numeric."""
    try:
        array = np.asarray(X)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in "fiu" or array.ndim < 2 or not len(array):
        return None  # complex, text, no samples: scikit-learn's message stands
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    return np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))


def resolve_channels(channels, n_channels, param="channel"):
    """Turn an int or a sequence of ints into valid non-negative channel indices."""
    indices = np.atleast_1d(np.asarray(channels))
    if indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu":
        raise ValueError(f"{param} must be an int or a non-empty list of ints.")
    out_of_range = [int(c) for c in indices if not -n_channels <= c < n_channels]
    if out_of_range:
        raise ValueError(
            f"{param}={channels!r} is out of range for spectra with {n_channels} "
            "channel(s) (a 2-D array is one channel)."
        )
    resolved = [int(c) % n_channels for c in indices]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{param}={channels!r} repeats a channel.")
    return resolved


def tabular_input(estimator) -> bool:
    """Whether a one-to-one spectral transformer has a 2-D output: before
    ``fit`` (so that ``set_output`` is offered), then when fitted on 2-D input.

    ``get_feature_names_out`` exists only then: scikit-learn wraps the outputs
    of transformers that have it in DataFrames (``set_output``, or
    ``transform_output="pandas"``), and a 3-D output must pass as it is.
    """
    if len(getattr(estimator, "input_shape_", ())) <= 1:
        return True
    raise no_feature_names(estimator)


def no_feature_names(estimator) -> AttributeError:
    """The error of ``get_feature_names_out`` for a 3-D (or higher) output."""
    return AttributeError(
        f"{type(estimator).__name__} returns arrays of more than two dimensions "
        "for this input, so its output has no feature names."
    )


def tabular_names(estimator, input_features, names_for):
    """Output names of a transformer whose output is 2-D only for some inputs."""
    check_is_fitted(estimator)
    names = _check_feature_names_in(estimator, input_features)
    out = names_for(names)
    if out is None:
        raise no_feature_names(estimator)
    return np.asarray(out, dtype=object)


def _zero_safe(scale, magnitude):
    """Replace scales that are zero up to rounding by 1, like scikit-learn."""
    eps = np.finfo(scale.dtype).eps
    return np.where(scale <= 10 * eps * magnitude, 1.0, scale).astype(scale.dtype)


_LOCATION_SCALE = {
    "standard": lambda x: (x.mean(axis=1), x.std(axis=1)),
    "minmax": lambda x: (x.min(axis=1), np.ptp(x, axis=1)),
    "median": lambda x: (
        np.median(x, axis=1),
        np.subtract(*np.percentile(x, [75, 25], axis=1)),
    ),
}


class SpectrumNormalizer(
    ArrayOutputMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
    """Centre and scale every spectrum on its own, along the wavelength axis.

    Where the level of a spectrum varies from sample to sample far more than
    its shape (the transit depth of exoplanets grows with the planet radius),
    per-feature standardisation across samples hides the shape; normalising
    each spectrum by its own location and scale exposes it. The transformer
    learns nothing from the data: ``fit`` only records the shape.

    Parameters
    ----------
    channel : int, list of int or None, default=1
        Channel(s) of a 3-D input ``(n_samples, n_wavelengths, n_channels)`` to
        normalise, each on its own; the other channels pass through unchanged.
        ``None`` normalises every channel. Ignored for a 2-D input
        ``(n_samples, n_wavelengths)``, which is a single channel.
    method : {"standard", "minmax", "median"}, default="standard"
        ``"standard"`` subtracts the mean and divides by the standard
        deviation; ``"minmax"`` maps the range to [0, 1]; ``"median"``
        subtracts the median and divides by the interquartile range.
    uncertainty_channel : int or None, default=None
        Channel holding the uncertainty of ``channel`` (a single int then): it
        is divided by the same scale, so that it remains the uncertainty of the
        normalised channel.

    Attributes
    ----------
    n_features_in_ : int
        Number of wavelengths seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in :meth:`fit`, for a DataFrame input.
    input_shape_ : tuple of int
        Shape of one sample seen in :meth:`fit`.

    See Also
    --------
    NDStandardScaler : Standardise with statistics over samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import SpectrumNormalizer
    >>> X = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    >>> SpectrumNormalizer(method="minmax").fit_transform(X)
    array([[0. , 0.5, 1. ],
           [0. , 0.5, 1. ]])
    """

    _parameter_constraints: dict = {
        "channel": [Integral, "array-like", None],
        "method": [StrOptions(set(_LOCATION_SCALE))],
        "uncertainty_channel": [Integral, None],
    }

    def __init__(self, channel=1, *, method="standard", uncertainty_channel=None):
        self.channel = channel
        self.method = method
        self.uncertainty_channel = uncertainty_channel

    def _channels(self, shape):
        if len(shape) == 1:
            if self.uncertainty_channel is not None:
                raise ValueError(
                    "uncertainty_channel needs 3-D spectra; X is 2-D (one channel)."
                )
            return None, None
        n_channels = shape[1]
        channels = (
            list(range(n_channels))
            if self.channel is None
            else resolve_channels(self.channel, n_channels)
        )
        if self.uncertainty_channel is None:
            return channels, None
        (unc,) = resolve_channels(
            self.uncertainty_channel, n_channels, "uncertainty_channel"
        )
        if len(channels) != 1 or unc in channels:
            raise ValueError(
                "uncertainty_channel needs a single channel to normalise, different "
                f"from it; got channel={self.channel!r}, "
                f"uncertainty_channel={self.uncertainty_channel!r}."
            )
        return channels, unc

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and the channels, and record the shape of one sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumNormalizer
            The fitted transformer.
        """
        X = validate_spectra(self, X, reset=True)
        self._channels(X.shape[1:])
        return self

    def transform(self, X):
        """Normalise each spectrum of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.

        Returns
        -------
        X_new : ndarray of the same shape as ``X``
            The normalised spectra.
        """
        check_is_fitted(self)
        X = validate_spectra(self, X, reset=False)
        out = np.array(X, copy=True)
        channels, unc = self._channels(X.shape[1:])
        views = [out] if channels is None else [out[:, :, c] for c in channels]
        for view in views:
            location, scale = _LOCATION_SCALE[self.method](view)
            scale = _zero_safe(scale, np.abs(view).max(axis=1, initial=0.0))
            view -= location[:, None]
            view /= scale[:, None]
            if unc is not None:
                out[:, :, unc] /= scale[:, None]
        return out

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
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _one_channel_output(selector) -> bool:
    """Whether ChannelSelector's output is 2-D: one channel selected by an int
    (a list of channels gives a 3-D output, also of 2-D input); or not known
    yet, before fit."""
    if isinstance(selector.channels, Integral):
        return True
    if not hasattr(selector, "input_shape_"):
        return True
    raise no_feature_names(selector)


class ChannelSelector(ArrayOutputMixin, TransformerMixin, BaseEstimator):
    """Select channels of a set of spectra.

    Parameters
    ----------
    channels : int or list of int, default=1
        An int returns that channel as a 2-D array ``(n_samples,
        n_wavelengths)``; a list returns a 3-D array with these channels, in
        this order (NumPy indexing semantics). A 2-D input is one channel,
        number 0.

    Attributes
    ----------
    n_features_in_ : int
        Number of wavelengths seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in :meth:`fit`, for a DataFrame input.
    input_shape_ : tuple of int
        Shape of one sample seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import ChannelSelector
    >>> X = np.arange(12.0).reshape(2, 3, 2)
    >>> ChannelSelector(channels=1).fit_transform(X)
    array([[ 1.,  3.,  5.],
           [ 7.,  9., 11.]])
    >>> ChannelSelector(channels=[1, 0]).fit_transform(X).shape
    (2, 3, 2)
    """

    _parameter_constraints: dict = {"channels": [Integral, "array-like"]}

    def __init__(self, channels=1):
        self.channels = channels

    def _indices(self, shape):
        n_channels = 1 if len(shape) == 1 else shape[1]
        return resolve_channels(self.channels, n_channels, "channels")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and the channels, and record the shape of one sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.
        y : None
            Ignored.

        Returns
        -------
        self : ChannelSelector
            The fitted transformer.
        """
        X = validate_spectra(self, X, reset=True)
        self._indices(X.shape[1:])
        return self

    def transform(self, X):
        """Select the channels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_wavelengths[, n_selected])
            The selected channel(s).
        """
        check_is_fitted(self)
        X = validate_spectra(self, X, reset=False)
        X3 = X[:, :, None] if X.ndim == 2 else X
        indices = self._indices(X.shape[1:])
        if isinstance(self.channels, Integral):
            return X3[:, :, indices[0]].copy()
        return X3[:, :, indices]

    @available_if(_one_channel_output)
    def get_feature_names_out(self, input_features=None):
        """Names of the output features, when the output is 2-D.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
            The input names for a 2-D input, ``c<channel>_<name>`` for a 3-D one.
        """

        def names_for(names):  # one channel (see _one_channel_output)
            if len(self.input_shape_) == 1:
                return names
            (channel,) = self._indices(self.input_shape_)
            return [f"c{channel}_{name}" for name in names]

        return tabular_names(self, input_features, names_for)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
