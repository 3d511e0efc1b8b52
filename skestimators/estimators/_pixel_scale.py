"""The pixel scale of images: channel statistics of the training images, and
the check that images to predict are on the same scale.

``uint8`` pixels are scaled to [0, 1], floats are not: uint8 pixels in
``fit`` and 0-255 floats at prediction (or the reverse) would be
standardised with the statistics of another scale, silently.
"""

from __future__ import annotations

import numpy as np

from .._engine import LazyRows
from ..preprocessing import UNIT_RANGE

__all__ = ["channel_stats", "check_pixel_scale", "pixel_peak", "stats_sample"]

#: A peak beyond which images are not on the [0, 1] scale of training images
#: (0-255 pixels reach far past it; bright pixels in [0, 1] do not).
_FAR_BEYOND_UNIT = 4.0

#: Images read to estimate the channel statistics of the training images.
_STATS_IMAGES = 4096


#: Bytes of a memory-mapped input read to check its pixel scale at prediction.
_SCALE_SAMPLE_BYTES = 32 * 2**20


def stats_sample(X):
    """The training images that estimate the channel statistics: every
    ``n // 4096``-th in memory, the first 4096 on disk (out of core)."""
    n = len(X)
    if isinstance(X, LazyRows):
        return X[0 : min(n, _STATS_IMAGES)].numpy()
    return X[:: max(1, n // _STATS_IMAGES)]


def channel_stats(sample):
    """Per-channel mean and standard deviation of the images ``sample`` (1 for
    a constant channel)."""
    mean = sample.mean(axis=(0, 2, 3), dtype=np.float64)
    std = sample.std(axis=(0, 2, 3), dtype=np.float64)
    std[~(std > 1e-6)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def pixel_peak(X, on_disk):
    """The largest pixel of ``X``: of every image in memory, of evenly spaced
    images (about 32 MiB) of a memory-mapped ``X``, which is not read whole.
    NaN or infinity (refused later, batch by batch) give a non-finite peak."""
    if on_disk:
        row_bytes = max(1, X.itemsize * int(np.prod(X.shape[1:])))
        count = min(len(X), max(1, _SCALE_SAMPLE_BYTES // row_bytes))
        X = np.asarray(X[np.linspace(0, len(X) - 1, count).round().astype(np.intp)])
    return float(X.max())


def check_pixel_scale(estimator, X, dtype, on_disk):
    """Refuse images on another pixel scale than the training images:
    ``uint8`` pixels are scaled to [0, 1], others are not, so uint8 pixels
    in ``fit`` and 0-255 floats here (or the reverse) would be standardised
    with statistics of another scale. ``X``: the float32 copy of in-memory
    images, or the memory-mapped images (sampled)."""
    fitted_max = getattr(estimator, "input_max_", None)
    if fitted_max is None:  # fitted before the pixel scale was recorded
        return
    name, fitted = type(estimator).__name__, estimator.input_dtype_
    if dtype == "uint8":
        if fitted_max > UNIT_RANGE:
            raise ValueError(
                f"{name} was fitted on {fitted} images whose pixels reach "
                f"{fitted_max:g}, but these are uint8 images, whose pixels "
                "it scales from 0-255 to [0, 1]: pass them as floats on the "
                "scale of the training images (0-255 pixels: "
                "X.astype(np.float32)), as in fit."
            )
        return
    if fitted != "uint8" and fitted_max > UNIT_RANGE:
        return  # floats after floats beyond [0, 1]: their scale is the user's
    # uint8 pixels were scaled to [0, 1]; floats in [0, 1] are on that scale
    # too, where 0-255 pixels reach far beyond (bright pixels do not).
    limit = UNIT_RANGE if fitted == "uint8" else _FAR_BEYOND_UNIT
    peak = pixel_peak(X, on_disk)
    if np.isfinite(peak) and peak > limit:
        seen = (
            "uint8 images, scaled to [0, 1]"
            if fitted == "uint8"
            else f"{fitted} images with pixels in [0, {fitted_max:g}]"
        )
        raise ValueError(
            f"{name} was fitted on {seen}, but these {dtype} images reach "
            f"{peak:g}: pass uint8 images, or floats in [0, 1] (0-255 pixels "
            "divided by 255), as in fit."
        )
