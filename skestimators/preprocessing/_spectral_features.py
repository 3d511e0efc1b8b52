"""Features computed along the wavelength axis of spectra."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from scipy.signal import savgol_filter
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._output import ArrayOutputMixin
from ._spectral import (
    no_feature_names,
    resolve_channels,
    tabular_names,
    validate_spectra,
)

__all__ = ["SpectralFeatures"]


def _gradient(x):
    """Central differences along axis 1 (zeros for a single wavelength)."""
    if x.shape[1] < 2:
        return np.zeros_like(x)
    return np.gradient(x, axis=1)


def _flat_output(features) -> bool:
    """Whether the output is 2-D (``flatten``; or not known yet: before fit)."""
    if features.flatten or not hasattr(features, "input_shape_"):
        return True
    raise no_feature_names(features)


class SpectralFeatures(ArrayOutputMixin, TransformerMixin, BaseEstimator):
    """Features of the depth channel along the wavelength axis.

    Computes, for every wavelength, the depth itself, its gradient (central
    differences between neighbouring bins, large at the edges of absorption
    bands), its ratio to the wavelength (a channel ratio) and its
    signal-to-noise ratio (depth over uncertainty). Smoothing
    (Savitzky-Golay) and derivatives, when asked, are applied to the depth
    before every feature. Placed after
    ``SpectrumNormalizer(channel=1, uncertainty_channel=2)``, the ratio to the
    uncertainty becomes the deviation from the spectrum's mean in units of
    the noise.

    Parameters
    ----------
    include_depth : bool, default=True
        Whether to output the (processed) depth.
    gradients : bool, default=True
        Whether to output the gradient of the depth along the wavelength axis.
    ratios : bool, default=True
        Whether to output the depth divided by the wavelength (3-D input).
    snr : bool, default=True
        Whether to output the depth divided by its uncertainty (3-D input).
    smooth : int or None, default=None
        Window length (number of bins) of a Savitzky-Golay filter applied to
        the depth; ``None`` does not smooth.
    polyorder : int, default=2
        Order of the Savitzky-Golay polynomial; must be less than ``smooth``.
    derivative : {0, 1, 2}, default=0
        Order of the derivative of the depth (with respect to the bin index)
        to use instead of the depth: from the Savitzky-Golay filter when
        ``smooth`` is set, from central differences otherwise.
    flatten : bool, default=True
        ``True`` returns a table ``(n_samples, n_wavelengths * n_blocks)``,
        block after block (depth, gradient, ratio, snr), with
        :meth:`get_feature_names_out`; ``False`` returns spectra
        ``(n_samples, n_wavelengths, n_blocks)``, one channel per block.
    depth_channel : int, default=1
        Channel holding the depth. A 2-D input is the depth alone.
    wavelength_channel : int, default=0
        Channel holding the wavelength, for ``ratios``.
    uncertainty_channel : int, default=2
        Channel holding the depth's uncertainty, for ``snr``.

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
    SpectrumNormalizer : Normalise each spectrum before computing features.
    PhysicsFeatures : Features that also use the star and the orbit.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import SpectralFeatures
    >>> X = np.array([[1.0, 2.0, 4.0]])
    >>> features = SpectralFeatures(ratios=False, snr=False).fit(X)
    >>> features.transform(X)
    array([[1. , 2. , 4. , 1. , 1.5, 2. ]])
    >>> features.get_feature_names_out().tolist()
    ['depth_x0', 'depth_x1', 'depth_x2', 'gradient_x0', 'gradient_x1', 'gradient_x2']
    """

    _parameter_constraints: dict = {
        "include_depth": ["boolean"],
        "gradients": ["boolean"],
        "ratios": ["boolean"],
        "snr": ["boolean"],
        "smooth": [Interval(Integral, 1, None, closed="left"), None],
        "polyorder": [Interval(Integral, 0, None, closed="left")],
        "derivative": [Interval(Integral, 0, 2, closed="both")],
        "flatten": ["boolean"],
        "depth_channel": [Integral],
        "wavelength_channel": [Integral],
        "uncertainty_channel": [Integral],
    }

    def __init__(
        self,
        include_depth=True,
        *,
        gradients=True,
        ratios=True,
        snr=True,
        smooth=None,
        polyorder=2,
        derivative=0,
        flatten=True,
        depth_channel=1,
        wavelength_channel=0,
        uncertainty_channel=2,
    ):
        self.include_depth = include_depth
        self.gradients = gradients
        self.ratios = ratios
        self.snr = snr
        self.smooth = smooth
        self.polyorder = polyorder
        self.derivative = derivative
        self.flatten = flatten
        self.depth_channel = depth_channel
        self.wavelength_channel = wavelength_channel
        self.uncertainty_channel = uncertainty_channel

    def _blocks(self):
        flags = {
            "depth": self.include_depth,
            "gradient": self.gradients,
            "ratio": self.ratios,
            "snr": self.snr,
        }
        return [name for name, on in flags.items() if on]

    def _check_settings(self, shape):
        if not self._blocks():
            raise ValueError("SpectralFeatures has every feature switched off.")
        if len(shape) == 1 and (self.ratios or self.snr):
            raise ValueError(
                "ratios and snr need the wavelength and uncertainty channels of 3-D "
                "spectra, but X is 2-D (the depth alone); set ratios=False and "
                "snr=False."
            )
        if len(shape) == 2:
            params = {"depth_channel": self.depth_channel}
            if self.ratios:
                params["wavelength_channel"] = self.wavelength_channel
            if self.snr:
                params["uncertainty_channel"] = self.uncertainty_channel
            for param, channel in params.items():
                resolve_channels(channel, shape[1], param)
        if self.smooth is not None:
            if self.smooth > shape[0]:
                raise ValueError(
                    f"smooth={self.smooth} is longer than the {shape[0]} wavelengths."
                )
            if self.polyorder >= self.smooth or self.derivative > self.polyorder:
                raise ValueError(
                    "Savitzky-Golay smoothing needs derivative <= polyorder < smooth; "
                    f"got derivative={self.derivative}, polyorder={self.polyorder}, "
                    f"smooth={self.smooth}."
                )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and the settings, and record the shape of one sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.
        y : None
            Ignored.

        Returns
        -------
        self : SpectralFeatures
            The fitted transformer.
        """
        X = validate_spectra(self, X, reset=True)
        self._check_settings(X.shape[1:])
        return self

    def transform(self, X):
        """Compute the features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths[, n_channels])
            The spectra.

        Returns
        -------
        X_new : ndarray
            ``(n_samples, n_wavelengths * n_blocks)`` when ``flatten``, else
            ``(n_samples, n_wavelengths, n_blocks)``.
        """
        check_is_fitted(self)
        X = validate_spectra(self, X, reset=False)
        depth = X if X.ndim == 2 else X[:, :, self.depth_channel]
        if self.smooth is not None:
            depth = savgol_filter(
                depth, self.smooth, self.polyorder, deriv=self.derivative, axis=1
            )
        else:
            for _ in range(self.derivative):
                depth = _gradient(depth)
        blocks = []
        if self.include_depth:
            blocks.append(depth)
        if self.gradients:
            blocks.append(_gradient(depth))
        if self.ratios:
            wavelength = X[:, :, self.wavelength_channel]
            if np.any(wavelength == 0):
                raise ValueError("ratios=True needs non-zero wavelengths.")
            blocks.append(depth / wavelength)
        if self.snr:
            uncertainty = X[:, :, self.uncertainty_channel]
            if np.any(uncertainty <= 0):
                raise ValueError("snr=True needs strictly positive uncertainties.")
            blocks.append(depth / uncertainty)
        out = np.concatenate(blocks, axis=1) if self.flatten else np.stack(blocks, -1)
        return out.astype(X.dtype, copy=False)

    @available_if(_flat_output)
    def get_feature_names_out(self, input_features=None):
        """Names of the output features, when ``flatten=True``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the wavelengths; by default ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
            ``<block>_<name>`` with block in depth, gradient, ratio, snr.
        """
        blocks = self._blocks()
        return tabular_names(
            self,
            input_features,
            lambda names: (
                [f"{b}_{n}" for b in blocks for n in names] if self.flatten else None
            ),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
