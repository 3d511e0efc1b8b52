"""Simulated soil organic carbon (SOC) data: multi-year covariate patches.

The simulator draws one "world" (covariate fields per band and year, a hidden
spatial field and a region with a different covariate-to-carbon relation) on a
projected grid, then samples clustered locations in it. The same world can be
written to per-year GeoTIFFs with :func:`make_soc_rasters`, so that a model
fitted on :func:`make_soc` samples can map the rasters.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from ._rasters import _cut_patches

__all__ = ["make_soc", "make_soc_rasters"]

#: Projected CRS of the simulated grid (ETRS89 / UTM zone 32N, used in Bavaria).
SOC_CRS = "EPSG:25832"
# Upper-left corner of the simulated grid, in metres (in Swabia, near the
# western border of Bavaria; the grid itself lies in Bavaria).
_ORIGIN = (600_000.0, 5_400_000.0)
_MEDIAN_OC = 20.0  # g/kg
_LOG_SD = 0.55  # spread of log-OC explained by the world (before noise)


def _seeds(random_state):
    """Two independent generators: one for the world, one for the sampling."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    world, sampling = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(world), np.random.default_rng(sampling)


def _gaussian_field(rng, shape, length_px):
    """Standardised Gaussian random field: white noise filtered in Fourier space.

    ``length_px`` is the standard deviation (in pixels) of the Gaussian kernel
    the noise is smoothed with. The grid is padded before filtering so that
    the field does not wrap around its edges.
    """
    pad = int(math.ceil(3 * length_px))
    ny, nx = shape[0] + pad, shape[1] + pad
    noise = rng.standard_normal((ny, nx))
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    kernel = np.exp(-2.0 * np.pi**2 * length_px**2 * (ky**2 + kx**2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(ny, nx))
    field = field[: shape[0], : shape[1]]
    return (field - field.mean()) / field.std()


def _simulate_world(rng, *, bands, n_years, grid_shape, pixel_size, corr_length):
    """Covariates ``(bands, ny, nx, n_years)``, noise-free log-OC and region centre."""
    length_px = corr_length / pixel_size
    ny, nx = grid_shape
    tau = np.linspace(-1.0, 1.0, n_years) if n_years > 1 else np.zeros(1)
    covariates = np.empty((bands, ny, nx, n_years), dtype=np.float32)
    trends = []
    for b in range(bands):
        base = _gaussian_field(rng, grid_shape, length_px)
        trend = _gaussian_field(rng, grid_shape, length_px)
        trends.append(trend)
        amplitude = 0.8 if b == 0 else 0.3
        for t in range(n_years):
            yearly = _gaussian_field(rng, grid_shape, length_px / 2)
            covariates[b, :, :, t] = base + amplitude * trend * tau[t] + 0.35 * yearly
    mean = covariates.mean(axis=-1, dtype=np.float64)
    m0, m1, m2, m3 = (mean[b % bands] for b in range(4))
    gy, gx = np.gradient(m3)
    roughness = np.hypot(gx, gy)
    roughness = (roughness - roughness.mean()) / roughness.std()

    # The region: a disc where carbon is higher and reacts to band 0 in reverse.
    centre = rng.uniform(0.25, 0.75, size=2) * np.array(grid_shape)
    rows, cols = np.indices(grid_shape)
    radius = 0.12 * min(grid_shape)
    dist = np.hypot(rows - centre[0], cols - centre[1])
    region = 1.0 / (1.0 + np.exp((dist - radius) / 2.0))

    effect0 = 0.6 * np.tanh(1.5 * m0)
    signal = (
        (1.0 - 2.0 * region) * effect0
        + 0.35 * m1 * m2
        + 0.5 * (trends[0] if n_years > 1 else 0.0)
        - 0.3 * roughness
        + 0.9 * region
        + 0.5 * _gaussian_field(rng, grid_shape, length_px)  # hidden field
    )
    log_oc = np.log(_MEDIAN_OC) + _LOG_SD * (signal - signal.mean()) / signal.std()
    return covariates, log_oc, centre


def _check_params(bands, window, n_years, grid_shape, **positive):
    """Refuse parameters the simulation cannot use, naming them.

    ``positive`` are further numbers that must be finite and above 0 (pixel
    size, lengths), checked by name.
    """
    for name, value in (("bands", bands), ("n_years", n_years), ("window", window)):
        if not _is_integer(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if (
        np.ndim(grid_shape) != 1
        or len(grid_shape) != 2
        or not all(_is_integer(side) and side >= 1 for side in grid_shape)
    ):
        raise ValueError(
            f"grid_shape must be two positive integers (rows, columns), got "
            f"{grid_shape!r}."
        )
    for name, value in positive.items():
        if not _is_number(value) or not 0 < value < np.inf:
            raise ValueError(f"{name} must be a positive number, got {value!r}.")
    if window % 2 == 0:
        raise ValueError(f"window must be odd so patches have a centre, got {window}.")
    if min(grid_shape) < 4 * window:
        raise ValueError(
            f"grid_shape={grid_shape} is too small for window={window}; each side "
            "needs at least 4 * window pixels."
        )


def _is_number(value):
    """A real number: a Python or NumPy scalar, or a 0-d array."""
    if isinstance(value, bool):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iuf"
    return isinstance(value, numbers.Real)


def _is_integer(value):
    """An integer: a Python or NumPy integer, or a 0-d integer array (a float
    such as 20.0 is refused: it failed later, where an index was needed)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iu"
    return isinstance(value, numbers.Integral)


def make_soc(
    n_samples: int = 500,
    *,
    bands: int = 6,
    window: int = 5,
    n_years: int = 5,
    grid_shape: tuple[int, int] = (200, 200),
    pixel_size: float = 250.0,
    correlation_length: float = 2500.0,
    n_clusters: int = 6,
    cluster_std: float = 3000.0,
    scattered_fraction: float = 0.25,
    noise: float = 0.1,
    random_state=None,
):
    """Simulate multi-year covariate patches and soil organic carbon (SOC).

    Each covariate band is a spatially autocorrelated Gaussian random field
    (white noise smoothed with a Gaussian kernel of ``correlation_length``)
    made of a shared field, a spatially varying trend over the years and a
    yearly perturbation. Log-SOC depends nonlinearly on the multi-year band
    means (``tanh`` of band 0, a band 1 x band 2 interaction), on the trend of
    band 0 over the years, on the local roughness of band 3, on a hidden
    spatial field that no covariate shows, and on a disc-shaped region where
    carbon is higher and band 0 acts in reverse. SOC is positive and
    right-skewed, roughly log-normal: its logarithm is a sum of these terms,
    not a Gaussian, and its skewness varies with ``random_state`` (-0.8 to
    0.5 over the integers 0 to 19, for 300 samples at the other defaults).

    Locations are clustered: ``n_clusters`` Gaussian clusters (the first lies
    in the distinct region) plus ``scattered_fraction`` of uniform points, so
    a random K-fold is optimistic and a spatial one is not.

    Parameters
    ----------
    n_samples : int, default=500
        Number of sampled locations.
    bands : int, default=6
        Number of covariate bands.
    window : int, default=5
        Side of the square patch cut around each location (odd).
    n_years : int, default=5
        Number of years (time steps).
    grid_shape : tuple of int, default=(200, 200)
        Rows and columns of the simulated grid.
    pixel_size : float, default=250.0
        Pixel side in metres.
    correlation_length : float, default=2500.0
        Length scale of the covariate and hidden random fields, in metres.
    n_clusters : int, default=6
        Number of clusters of sampled locations.
    cluster_std : float, default=3000.0
        Standard deviation of each cluster, in metres.
    scattered_fraction : float, default=0.25
        Fraction of locations drawn uniformly over the grid.
    noise : float, default=0.1
        Standard deviation of the measurement noise, in log-SOC units.
    random_state : int, RandomState instance or None, default=None
        Seed. The same seed and world parameters (``bands``, ``n_years``,
        ``grid_shape``, ``pixel_size``, ``correlation_length``) give the same
        world as :func:`make_soc_rasters`, whatever ``n_samples``.

    Returns
    -------
    X : ndarray of shape (n_samples, bands, window, window, n_years), float32
        Covariate patches centred on each location.
    y : ndarray of shape (n_samples,)
        Soil organic carbon in g/kg (positive, right-skewed).
    coords : ndarray of shape (n_samples, 2)
        Easting and northing in metres (EPSG:25832).

    See Also
    --------
    make_soc_rasters : Write the same world as per-year GeoTIFFs.
    skestimators.model_selection.SpatialBlockKFold : Spatial cross-validation.

    Examples
    --------
    >>> from skestimators.datasets import make_soc
    >>> X, y, coords = make_soc(100, random_state=0)
    >>> X.shape, y.shape, coords.shape
    ((100, 6, 5, 5, 5), (100,), (100, 2))
    >>> bool((y > 0).all())
    True
    """
    if not _is_integer(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    _check_params(
        bands, window, n_years, grid_shape,
        pixel_size=pixel_size, correlation_length=correlation_length,
    )  # fmt: skip
    for name, value in (("noise", noise), ("cluster_std", cluster_std)):
        if not _is_number(value) or not 0 <= value < np.inf:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    if not 0.0 <= scattered_fraction <= 1.0:
        raise ValueError(
            f"scattered_fraction must be in [0, 1], got {scattered_fraction!r}."
        )
    if not _is_integer(n_clusters) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}.")
    world_rng, rng = _seeds(random_state)
    covariates, log_oc, centre = _simulate_world(
        world_rng,
        bands=bands,
        n_years=n_years,
        grid_shape=grid_shape,
        pixel_size=pixel_size,
        corr_length=correlation_length,
    )
    ny, nx = grid_shape
    half = window // 2
    n_scattered = int(round(scattered_fraction * n_samples))
    counts = rng.multinomial(n_samples - n_scattered, np.ones(n_clusters) / n_clusters)
    # Cluster centres in pixel units (row, col); the first one is the region.
    centres = rng.uniform(0.15, 0.85, size=(n_clusters, 2)) * np.array(grid_shape)
    centres[0] = centre
    low = np.array([half, half], dtype=float)
    high = np.array([ny - half, nx - half], dtype=float)
    label = np.repeat(np.arange(n_clusters + 1), [*counts, n_scattered])
    pos = np.empty((n_samples, 2))
    todo = np.ones(n_samples, dtype=bool)
    while todo.any():  # rejection sampling keeps patches inside the grid
        k = int(todo.sum())
        is_cluster = label[todo] < n_clusters
        draw = rng.uniform(low, high, size=(k, 2))
        spread = rng.normal(scale=cluster_std / pixel_size, size=(k, 2))
        draw[is_cluster] = centres[label[todo][is_cluster]] + spread[is_cluster]
        pos[todo] = draw
        todo = ((pos < low) | (pos >= high)).any(axis=1)
    rows, cols = pos.astype(int).T
    # Keep coordinates away from pixel edges so that any floor-based reader
    # finds the same pixel.
    frac = rng.uniform(0.05, 0.95, size=(n_samples, 2))
    x0, y0 = _ORIGIN
    coords = np.column_stack(
        [x0 + (cols + frac[:, 1]) * pixel_size, y0 - (rows + frac[:, 0]) * pixel_size]
    )
    X = _cut_patches(covariates, rows - half, cols - half, window)
    y = np.exp(log_oc[rows, cols] + noise * rng.standard_normal(n_samples))
    order = rng.permutation(n_samples)
    return np.ascontiguousarray(X[order]), y[order], coords[order]


def make_soc_rasters(
    path,
    *,
    bands: int = 6,
    n_years: int = 5,
    grid_shape: tuple[int, int] = (200, 200),
    pixel_size: float = 250.0,
    correlation_length: float = 2500.0,
    random_state=None,
    return_oc: bool = False,
):
    """Write the simulated covariates of :func:`make_soc` as per-year GeoTIFFs.

    One float32 GeoTIFF per year (``covariates_year00.tif``,
    ``covariates_year01.tif``...: numbered from 0, zero-padded), one band per
    covariate, in EPSG:25832 with a north-up affine transform. With the same
    ``random_state`` and world parameters as :func:`make_soc`, patches cut
    from these files at the returned ``coords`` equal ``X``. Requires
    rasterio.

    Parameters
    ----------
    path : str or path-like
        Directory to write to (created if missing).
    bands : int, default=6
        Number of covariate bands.
    n_years : int, default=5
        Number of years, one file each.
    grid_shape : tuple of int, default=(200, 200)
        Rows and columns of the grid.
    pixel_size : float, default=250.0
        Pixel side in metres.
    correlation_length : float, default=2500.0
        Length scale of the random fields, in metres.
    random_state : int, RandomState instance or None, default=None
        Seed; see :func:`make_soc`.
    return_oc : bool, default=False
        Also return the noise-free SOC map (g/kg) on the grid.

    Returns
    -------
    paths : list of pathlib.Path
        The written files, in year order.
    oc : ndarray of shape grid_shape
        Noise-free SOC; only when ``return_oc=True``.

    See Also
    --------
    make_soc : Sample patches and SOC from the same world.
    skestimators.datasets.extract_patches : Cut patches from these files.
    skestimators.mapping.predict_raster : Map a fitted model over them.

    Examples
    --------
    >>> import tempfile
    >>> from skestimators.datasets import make_soc_rasters
    >>> paths = make_soc_rasters(tempfile.mkdtemp(), n_years=2, random_state=0)
    >>> [p.name for p in paths]
    ['covariates_year00.tif', 'covariates_year01.tif']
    """
    import rasterio
    from rasterio.transform import Affine

    _check_params(
        bands, 1, n_years, grid_shape,
        pixel_size=pixel_size, correlation_length=correlation_length,
    )  # fmt: skip
    world_rng, _ = _seeds(random_state)
    covariates, log_oc, _ = _simulate_world(
        world_rng,
        bands=bands,
        n_years=n_years,
        grid_shape=grid_shape,
        pixel_size=pixel_size,
        corr_length=correlation_length,
    )
    directory = Path(os.fspath(path))
    directory.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": grid_shape[0],
        "width": grid_shape[1],
        "count": bands,
        "dtype": "float32",
        "crs": SOC_CRS,
        "transform": Affine(pixel_size, 0.0, _ORIGIN[0], 0.0, -pixel_size, _ORIGIN[1]),
    }
    paths = []
    # Zero-padded, so that sorting the names keeps the years in order.
    digits = max(2, len(str(n_years - 1)))
    for t in range(n_years):
        file = directory / f"covariates_year{t:0{digits}d}.tif"
        with rasterio.open(file, "w", **profile) as dst:
            dst.write(covariates[..., t])
        paths.append(file)
    if return_oc:
        return paths, np.exp(log_oc)
    return paths
