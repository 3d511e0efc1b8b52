"""Clouds over multi-year patches: spatially correlated missing values."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from sklearn.utils import check_random_state

from ._soc import _is_number

__all__ = ["add_clouds"]


def add_clouds(
    X,
    coords,
    fraction: float,
    *,
    pixel_size: float = 250.0,
    cloud_size: float = 3000.0,
    random_state=None,
):
    """Blank the pixels of patches under simulated clouds (NaN), year by year.

    Real yearly composites have gaps where clouds (or their shadows) covered
    every acquisition. Clouds are spatially correlated: neighbouring points
    lose the same year, and a cloud's edge blanks part of a patch. Each year
    gets its own cloud field, a sum of Gaussian blobs of ``cloud_size``
    metres at random places, evaluated at every pixel of every patch and
    thresholded so that about ``fraction`` of the pixels are covered.

    Parameters
    ----------
    X : ndarray of shape (n_samples, bands, window, window, n_years)
        Patches, e.g. from :func:`make_soc`.
    coords : ndarray of shape (n_samples, 2)
        Easting and northing of the patch centres, in metres.
    fraction : float in [0, 1)
        Share of the pixel-years to blank.
    pixel_size : float, default=250.0
        Pixel size in metres (that of :func:`make_soc`).
    cloud_size : float, default=3000.0
        Standard deviation of a cloud blob, in metres.
    random_state : int, RandomState instance or None, default=None
        Seed of the cloud fields.

    Returns
    -------
    X_cloudy : ndarray of the shape and dtype of ``X``
        A copy of ``X`` with NaN under the clouds (every band of a pixel).

    See Also
    --------
    make_soc : Simulated patches and soil organic carbon.
    skestimators.SpatioTemporalRegressor : Reads NaN as missing values.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.datasets import add_clouds, make_soc
    >>> X, y, coords = make_soc(200, n_years=4, random_state=0)
    >>> cloudy = add_clouds(X, coords, 0.3, random_state=0)
    >>> round(float(np.isnan(cloudy[:, 0]).mean()), 1)
    0.3
    """
    X = np.asarray(X)
    coords = np.asarray(coords, dtype=np.float64)
    if X.ndim != 5:
        raise ValueError(
            "add_clouds expects patches (n_samples, bands, window, window, "
            f"n_years); got shape {X.shape}."
        )
    if coords.shape != (X.shape[0], 2):
        raise ValueError(
            f"coords must have shape ({X.shape[0]}, 2); got {coords.shape}."
        )
    if not _is_number(fraction) or not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1); got {fraction!r}.")
    if X.shape[0] == 0:
        raise ValueError("add_clouds needs at least one patch; X holds none.")
    for name, value in (("cloud_size", cloud_size), ("pixel_size", pixel_size)):
        if not _is_number(value) or not 0 < value < np.inf:
            raise ValueError(f"{name} must be a positive number; got {value!r}.")
    if not np.isfinite(coords).all():
        raise ValueError("coords must be finite; they hold NaN or infinity.")
    rng = check_random_state(random_state)
    out = X.astype(X.dtype if X.dtype.kind == "f" else np.float32, copy=True)
    if fraction == 0:
        return out
    n, _, height, width, years = X.shape
    dy = (np.arange(height) - height // 2) * pixel_size
    dx = (np.arange(width) - width // 2) * pixel_size
    # Pixel positions (n, height, width, 2): the patch centre plus offsets.
    east = coords[:, 0, None, None] + dx[None, None, :]
    north = coords[:, 1, None, None] - dy[None, :, None]
    pixels = np.stack(np.broadcast_arrays(east, north), axis=-1)
    low, high = coords.min(0) - 3 * cloud_size, coords.max(0) + 3 * cloud_size
    area = np.prod(high - low)
    n_blobs = max(4, int(np.ceil(4 * area / (np.pi * cloud_size**2) / 10)))
    flat = pixels.reshape(-1, 2)
    tree = cKDTree(flat)
    # Ties (patches at one place) are broken in a fixed scattered order that
    # leaves the seeded draws alone.
    tiebreak = np.random.default_rng(0).permutation(len(flat))
    for year in range(years):
        centres = rng.uniform(low, high, size=(n_blobs, 2))
        field = _cloud_field(tree, centres, cloud_size, len(flat))
        covered = _top_fraction(field, fraction, tiebreak).reshape(pixels.shape[:3])
        out[:, :, :, :, year][np.broadcast_to(covered[:, None], out.shape[:4])] = np.nan
    return out


def _cloud_field(tree, centres, cloud_size, n_pixels):
    """The sum of the Gaussian blobs at ``centres`` at every pixel of ``tree``.

    Only pixels within ``9 * cloud_size`` of a blob are summed (beyond, a
    blob adds less than 3e-18): the cost follows the pixels under each
    blob, not the number of blobs times the number of pixels, which grows
    with the area that the coordinates span.
    """
    field = np.zeros(n_pixels)
    near = cKDTree(centres).query_ball_tree(tree, 9 * cloud_size)
    for centre, pixels in zip(centres, near):
        if pixels:
            d2 = ((tree.data[pixels] - centre) ** 2).sum(-1)
            field[pixels] += np.exp(-d2 / (2 * cloud_size**2))
    return field


def _top_fraction(field, fraction, tiebreak):
    """Pixels above the ``1 - fraction`` quantile of ``field``; where equal
    values straddle it (patches at one place), as many of them as the
    fraction asks, taken in the order of ``tiebreak``."""
    threshold = np.quantile(field, 1 - fraction)
    covered = field > threshold
    tied = np.flatnonzero(field == threshold)
    missing = int(round(fraction * field.size)) - int(covered.sum())
    if len(tied) > 1 and missing > 0:
        covered[tied[np.argsort(tiebreak[tied])][:missing]] = True
    return covered
