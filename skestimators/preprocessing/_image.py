"""Crop, resize and normalise batches of images for convolutional networks."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._output import ArrayOutputMixin

__all__ = ["ImagePreprocessor"]


def _infer_layout(shape: tuple[int, ...]) -> str:
    """Channels first or last for a batch of shape (n, a, b, c)."""
    _, a, b, c = shape
    if b == c and a != b:
        return "channels_first"
    if a == b and c != b:
        return "channels_last"
    return "channels_first" if a <= c else "channels_last"


def to_channels_first(X, layout, *, fitted_layout=None):
    """Images ``X`` (3-D or 4-D) as ``(n, channels, height, width)``, and the layout.

    A 3-D array is one channel. Otherwise ``fitted_layout`` (the layout seen in
    ``fit``) wins, then ``layout`` ("auto" infers it from the shape).
    """
    if X.ndim == 3:
        return X[:, None], "channels_first"
    if fitted_layout is None:
        fitted_layout = _infer_layout(X.shape) if layout == "auto" else layout
    if fitted_layout == "channels_last":
        X = X.transpose(0, 3, 1, 2)
    return X, fitted_layout


#: Largest pixel value taken as on the [0, 1] scale of uint8 pixels over 255
#: (a resampled image may overshoot 1 a little); 0-255 images reach far more.
UNIT_RANGE = 1.5


def _pixel_max(X):
    """The largest pixel value of ``X`` on the scale ``_process`` uses."""
    if X.size == 0:
        return 0.0
    peak = float(np.nanmax(X))
    return peak / 255 if X.dtype == np.uint8 else peak


class ImagePreprocessor(ArrayOutputMixin, TransformerMixin, BaseEstimator):
    """Centre-crop, resize and standardise images, returning channels first.

    Accepts a batch of images as ``(n, channels, height, width)``,
    ``(n, height, width, channels)`` or ``(n, height, width)`` (one
    channel), with integer or floating-point pixels, and returns float32
    images ``(n, channels, size, size)`` ready for a convolutional network
    such as :class:`~skestimators.nn.GalaxyCNN`. ``uint8`` pixels are scaled
    to [0, 1]; other dtypes are kept as they are. Images are centre-cropped
    to ``crop x crop`` pixels, resized to ``size x size`` (bilinear, with
    antialiasing when shrinking) and, with ``normalize="per_channel"``,
    standardised by the mean and standard deviation of each channel learned
    in :meth:`fit`.

    Parameters
    ----------
    crop : int, default=None
        Side of the centre crop, in pixels; None keeps whole images, which
        must then be square if ``size`` is set (resizing others to a square
        would stretch them: a ValueError).
    size : int, default=None
        Side of the returned images; None keeps the (cropped) size.
    layout : {"auto", "channels_first", "channels_last"}, default="auto"
        Where the channels of 4-D input are. ``"auto"`` takes the two equal
        dimensions of square images as height and width; for other images,
        the smaller of the second and last dimensions is the channels.
    normalize : {"per_channel"} or None, default="per_channel"
        Standardise each channel with statistics learned in :meth:`fit`, or
        leave the pixel values as they are (None).
    batch_size : int, default=256
        Images processed at once, to bound memory.

    Attributes
    ----------
    layout_ : str
        The layout of the images seen in :meth:`fit`.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the images seen in :meth:`fit`;
        :meth:`transform` requires the same.
    input_shape_ : tuple of int
        The shape of one image as :meth:`fit` was given it, in its layout
        (``(height, width, channels)`` for channels-last images): what a model
        file records as the input of a pipeline that starts here.
    output_shape_ : tuple of int
        ``(channels, size, size)`` of the returned images.
    mean_ : ndarray of shape (n_channels,) or None
        Mean of each channel after cropping and resizing (None when
        ``normalize=None``).
    std_ : ndarray of shape (n_channels,) or None
        Standard deviation of each channel (1 for constant channels, up to
        float32 rounding).
    input_dtype_ : str
        The dtype of the images seen in :meth:`fit`.
    input_max_ : float
        The largest pixel value seen in :meth:`fit` (``uint8`` pixels over
        255). ``uint8`` pixels are scaled to [0, 1] and others are not, so
        :meth:`transform` refuses float images above 1.5 after a fit on
        ``uint8`` images, and ``uint8`` images after a fit on floats above
        1.5 (0-255 images).
    n_features_in_ : int
        Size of the second dimension of the input, as for any scikit-learn
        transformer.

    See Also
    --------
    skestimators.datasets.load_galaxy_zoo : Loads, crops and resizes Kaggle
        images with the same geometry.
    skestimators.nn.random_dihedral : Augment batches of images.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.preprocessing import ImagePreprocessor
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> pre = ImagePreprocessor(crop=24, size=16).fit(X)
    >>> pre.layout_, pre.transform(X).shape, pre.transform(X).dtype
    ('channels_last', (4, 3, 16, 16), dtype('float32'))
    """

    _parameter_constraints: dict = {
        "crop": [Interval(Integral, 1, None, closed="left"), None],
        "size": [Interval(Integral, 1, None, closed="left"), None],
        "layout": [StrOptions({"auto", "channels_first", "channels_last"})],
        "normalize": [StrOptions({"per_channel"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        crop=None,
        *,
        size=None,
        layout="auto",
        normalize="per_channel",
        batch_size=256,
    ):
        self.crop = crop
        self.size = size
        self.layout = layout
        self.normalize = normalize
        self.batch_size = batch_size

    def _validate(self, X, reset: bool) -> tuple[np.ndarray, str, tuple]:
        """Channels-first images, their layout and one image's shape as given."""
        given = getattr(X, "shape", None)
        fitted = getattr(self, "input_shape_", None)
        if not reset and None not in (given, fitted) and given[1:] != fitted:
            # Before scikit-learn's check, which counts "features" (rows).
            other = sorted(given[1:]) == sorted(fitted)
            raise ValueError(
                f"ImagePreprocessor was fitted on images of shape {fitted} "
                f"({self.layout_}); got images of shape {tuple(given[1:])}"
                + (
                    ": the same images in another layout? Give them as in fit."
                    if other
                    else "."
                )
            )
        X = validate_data(
            self,
            X,
            reset=reset,
            allow_nd=True,
            dtype=[np.float32, np.float64, np.uint8],
        )
        if X.ndim not in (3, 4):
            raise ValueError(
                "ImagePreprocessor expects images of shape (n, channels, height, "
                f"width), (n, height, width, channels) or (n, height, width); got "
                f"an array of shape {X.shape}."
            )
        images, layout = to_channels_first(
            X, self.layout, fitted_layout=None if reset else self.layout_
        )
        return images, layout, X.shape[1:]

    def _check_geometry(self, height: int, width: int) -> None:
        """Refuse a crop larger than the images, or resizing non-square
        images to a square (which would stretch them)."""
        if self.crop is not None and self.crop > min(height, width):
            raise ValueError(
                f"crop={self.crop} is larger than the images ({height}x{width})."
            )
        if self.crop is None and self.size is not None and height != width:
            raise ValueError(
                f"size={self.size} needs square images, got {height}x{width} "
                "pixels: resizing them to a square would stretch them. Pass crop "
                "(a centre square) or size=None."
            )

    def _check_pixel_scale(self, X):
        """Refuse images on another pixel scale than those seen in fit.

        ``uint8`` pixels are divided by 255 and others are not, so uint8
        images fitted against float images in 0-255 (or the reverse) would
        be standardised with statistics of another scale.
        """
        fitted = getattr(self, "input_dtype_", X.dtype.name)
        if fitted == "uint8" and X.dtype != np.uint8:
            peak = _pixel_max(X)
            if peak > UNIT_RANGE:
                raise ValueError(
                    "ImagePreprocessor was fitted on uint8 images, whose pixels "
                    f"it scales from 0-255 to [0, 1], but these {X.dtype.name} "
                    f"images reach {peak:g}: pass uint8 images, or floats in "
                    "[0, 1]."
                )
        if fitted != "uint8" and X.dtype == np.uint8 and self.input_max_ > UNIT_RANGE:
            raise ValueError(
                f"ImagePreprocessor was fitted on {fitted} images that reach "
                f"{self.input_max_:g}, but these are uint8 images, whose pixels "
                "it scales from 0-255 to [0, 1]: pass them as floats, as in fit."
            )

    def _process(self, X: np.ndarray):
        """Yield batches (float32 tensors) cropped and resized, channels first."""
        _, _, height, width = X.shape
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(torch.float32)
            if batch.dtype == np.uint8:
                x = x / 255.0
            if self.crop is not None:
                top, left = (height - self.crop) // 2, (width - self.crop) // 2
                x = x[:, :, top : top + self.crop, left : left + self.crop]
            if self.size is not None and tuple(x.shape[-2:]) != (self.size,) * 2:
                x = F.interpolate(
                    x,
                    size=(self.size, self.size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
            yield x

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the layout, the shape and the per-channel statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W, C) or \
(n_samples, H, W)
            Training images.
        y : None
            Ignored.

        Returns
        -------
        self : ImagePreprocessor
            The fitted transformer.
        """
        X, layout, given = self._validate(X, reset=True)
        channels, height, width = X.shape[1:]
        # One image as given (the shape a model file records for the pipeline).
        self.input_shape_ = tuple(int(d) for d in given)
        self._check_geometry(height, width)
        out_h, out_w = (self.crop, self.crop) if self.crop else (height, width)
        if self.size is not None:
            out_h = out_w = self.size
        self.layout_ = layout
        self.image_shape_ = (channels, height, width)
        self.output_shape_ = (channels, out_h, out_w)
        self.mean_ = self.std_ = None
        self.input_dtype_ = X.dtype.name
        self.input_max_ = _pixel_max(X)
        if self.normalize == "per_channel":
            total = np.zeros(channels)
            squares = np.zeros(channels)
            largest = np.zeros(channels)
            for x in self._process(X):
                x = x.to(torch.float64)
                total += x.sum(dim=(0, 2, 3)).numpy()
                squares += (x**2).sum(dim=(0, 2, 3)).numpy()
                largest = np.maximum(largest, x.abs().amax(dim=(0, 2, 3)).numpy())
            count = len(X) * out_h * out_w
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - mean**2, 0))
            self.mean_ = mean
            # Cropping and resizing run in float32: a constant channel comes out
            # with a spread of a few float32 roundings of its values. Below that
            # a channel is constant, scaled by 1, so that transform does not
            # magnify rounding noise into O(1) values.
            noise = 16 * np.finfo(np.float32).eps * largest
            self.std_ = np.where(std > noise, std, 1.0)
        return self

    def transform(self, X):
        """Crop, resize and standardise images.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W, C) or \
(n_samples, H, W)
            Images in the layout and shape seen in :meth:`fit`.

        Returns
        -------
        X_new : ndarray of shape (n_samples, C, size, size), dtype float32
            Channels-first images.
        """
        check_is_fitted(self)
        X, _, _ = self._validate(X, reset=False)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"ImagePreprocessor was fitted on images of shape (channels, "
                f"height, width) = {self.image_shape_} ({self.layout_}), got "
                f"{tuple(X.shape[1:])}."
            )
        self._check_geometry(*self.image_shape_[1:])
        self._check_pixel_scale(X)
        out = np.empty((len(X), *self.output_shape_), dtype=np.float32)
        if self.mean_ is not None:
            mean = torch.as_tensor(self.mean_, dtype=torch.float32)[:, None, None]
            std = torch.as_tensor(self.std_, dtype=torch.float32)[:, None, None]
        start = 0
        for x in self._process(X):
            if self.mean_ is not None:
                x = (x - mean) / std
            out[start : start + len(x)] = x.numpy()
            start += len(x)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
