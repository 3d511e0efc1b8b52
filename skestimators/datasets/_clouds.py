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
    Patches at one place share their clouds (whole years lost together), so
    where many patches share coordinates the fraction is met only roughly.

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
    patches = cKDTree(coords)
    # Beyond 9 blob widths a blob adds less than 3e-18: only the patches
    # within that (plus half a patch diagonal) of it are evaluated, so the
    # cost does not grow with the area that the coordinates span.
    reach = 9 * cloud_size + pixel_size * np.hypot(height, width) / 2
    for year in range(years):
        centres = rng.uniform(low, high, size=(n_blobs, 2))
        field = np.zeros(pixels.shape[:3])
        for centre, near in zip(centres, patches.query_ball_point(centres, reach)):
            if not near:
                continue
            rows = slice(None) if len(near) == n else near  # every patch: a view
            d2 = ((pixels[rows] - centre) ** 2).sum(-1)
            field[rows] += np.exp(-d2 / (2 * cloud_size**2))
        # Pixels at one place (patches sharing coordinates) share their fate.
        covered = field > np.quantile(field, 1 - fraction)
        out[:, :, :, :, year][np.broadcast_to(covered[:, None], out.shape[:4])] = np.nan
    return out
