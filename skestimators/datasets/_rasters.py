"""Patches cut from per-year multi-band GeoTIFFs around points.

The rasters of one stack are one file per time step (year), each with the
same bands, CRS and grid. Patches have shape ``(bands, window, window, T)``.
Reads are windowed: points are grouped into tiles of the grid and each tile is
read once per file, so memory is bounded by the tile size and not by the
raster size. Pixels outside the raster (at the edges) and nodata pixels
become NaN internally; :func:`extract_patches` then masks, fills or refuses
them. Requires rasterio.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

__all__ = ["NodataWarning", "extract_patches"]

_NODATA_POLICIES = ("mask", "raise", "fill")


class NodataWarning(UserWarning):
    """Some patches hold nodata pixels or reach outside the raster.

    Emitted by :func:`extract_patches` (and mapping) with the affected points.

    Examples
    --------
    >>> import warnings
    >>> from skestimators.datasets import NodataWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", NodataWarning)  # refuse incomplete patches
    ...     issubclass(NodataWarning, UserWarning)
    True
    """


def _as_paths(rasters) -> list:
    if isinstance(rasters, (str, os.PathLike)):
        rasters = [rasters]
    paths = [os.fspath(p) for p in rasters]
    if not paths:
        raise ValueError("rasters is empty; give at least one GeoTIFF path.")
    for path in paths:
        is_local = not path.startswith("/vsi") and "://" not in path
        if is_local and not os.path.isfile(path):
            raise FileNotFoundError(f"Raster file not found: {path}")
    return paths


def _natural_key(path):
    """A path with its digit runs read as numbers (``year2`` < ``year10``)."""
    parts = re.split(r"(\d+)", os.fspath(path))
    return [int(part) if i % 2 else part for i, part in enumerate(parts)]


def _warn_time_order(rasters, stacklevel=3):
    """Warn when the file names number the rasters in another order than given.

    The rasters are read as time steps in the order given; a shell glob or
    ``sorted()`` puts ``year10`` before ``year2``, and the model then reads
    the years shuffled, silently.
    """
    if isinstance(rasters, (str, os.PathLike)):
        return
    paths = list(rasters)
    keys = [_natural_key(p) for p in paths]
    for i in range(1, len(paths)):
        a, b, key_a, key_b = paths[i - 1], paths[i], keys[i - 1], keys[i]
        # Names alike but for their numbers (year2, year10): only these
        # number the files; other names (ndvi, red) have no time order.
        if key_a[::2] == key_b[::2] and key_b < key_a:
            warnings.warn(
                "The rasters are read as time steps in the order given, but their "
                f"names number them in another order: {os.fspath(a)!r} comes "
                f"before {os.fspath(b)!r}. A shell glob or sorted() puts 10 "
                "before 2; pass the files in time order (sorted with their "
                "numbers read as numbers).",
                UserWarning,
                stacklevel=stacklevel,
            )
            return


def _check_positive_int(value, name) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_window(window) -> int:
    _check_positive_int(window, "window")
    if window % 2 == 0:
        raise ValueError(
            f"window must be odd so that the point is the patch centre, got {window}."
        )
    return int(window)


#: Largest offset (in pixels) between two rasters' pixels taken as one grid:
#: rounding in the transforms a GIS writes (1e-9 m on a 30 m grid).
_SAME_GRID = 1e-6


def _grid_offset(a, b):
    """How far apart (in pixels of ``a``) the two grids put the corners of
    the raster's first pixel and of pixels 10^5 pixels away."""

    def place(t, col, row):
        return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f

    size = max(abs(a.a), abs(a.b), abs(a.d), abs(a.e))
    corners = [(0, 0), (1e5, 0), (0, 1e5), (1e5, 1e5)]
    apart = [
        abs(pa - pb)
        for corner in corners
        for pa, pb in zip(place(a, *corner), place(b, *corner), strict=True)
    ]
    return max(apart) / size


class _RasterStack:
    """Open, consistency-checked per-year rasters with NaN-padded block reads."""

    def __init__(self, rasters):
        import rasterio

        self.paths = _as_paths(rasters)
        self.datasets = []
        try:
            for path in self.paths:
                self.datasets.append(rasterio.open(path))
            self._check_consistent()
        except BaseException:
            self.close()
            raise
        first = self.datasets[0]
        self.height, self.width, self.count = first.height, first.width, first.count
        self.crs, self.transform = first.crs, first.transform

    def _check_consistent(self):
        first, name = self.datasets[0], self.paths[0]
        for path, ds in zip(self.paths[1:], self.datasets[1:]):
            for what, a, b in (
                ("CRS", first.crs, ds.crs),
                ("band count", first.count, ds.count),
                ("shape (height, width)", first.shape, ds.shape),
            ):
                if a != b:
                    raise ValueError(
                        f"All rasters must share one grid, but {path} has {what} {b} "
                        f"and {name} has {a}."
                    )
            offset = _grid_offset(first.transform, ds.transform)
            if offset > _SAME_GRID:
                raise ValueError(
                    f"All rasters must share one grid, but {path} and {name} have "
                    f"different transforms ({tuple(ds.transform)[:6]} and "
                    f"{tuple(first.transform)[:6]}): their pixels lie up to "
                    f"{offset:.3g} pixel apart. Resample them onto one grid."
                )

    def close(self):
        for ds in self.datasets:
            ds.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def index(self, coords):
        """Row and column (floor) of the pixel containing each ``(x, y)``."""
        inverse = ~self.transform
        x, y = coords[:, 0], coords[:, 1]
        cols = np.floor(inverse.a * x + inverse.b * y + inverse.c).astype(np.int64)
        rows = np.floor(inverse.d * x + inverse.e * y + inverse.f).astype(np.int64)
        return rows, cols

    def read_block(self, row_off, col_off, height, width):
        """Pixels ``[row_off, row_off + height) x [col_off, col_off + width)``.

        Returns float32 of shape ``(bands, height, width, T)``; pixels outside
        the raster or flagged as nodata (nodata value, mask band) are NaN. A
        file that cannot be read (truncated, corrupt) raises a ValueError
        naming it.
        """
        from rasterio.errors import RasterioError
        from rasterio.windows import Window

        block = np.full(
            (self.count, height, width, len(self.datasets)), np.nan, dtype=np.float32
        )
        r0, c0 = max(row_off, 0), max(col_off, 0)
        r1 = min(row_off + height, self.height)
        c1 = min(col_off + width, self.width)
        if r1 <= r0 or c1 <= c0:
            return block
        window = Window(c0, r0, c1 - c0, r1 - r0)
        rows = slice(r0 - row_off, r1 - row_off)
        cols = slice(c0 - col_off, c1 - col_off)
        for t, (path, ds) in enumerate(zip(self.paths, self.datasets)):
            try:
                data = ds.read(window=window, masked=True)
            except RasterioError as err:  # "Read failed", the cause in __cause__
                cause = str(err.__cause__ or err).rstrip(".")
                raise ValueError(
                    f"Cannot read raster {path} (rows {r0} to {r1 - 1}): {cause}. "
                    "Is the file truncated or corrupt?"
                ) from err
            block[:, rows, cols, t] = data.astype(np.float32).filled(np.nan)
        return block


def _cut_patches(block, rows, cols, window):
    """Patches whose top-left corners are ``(rows, cols)`` in ``block``."""
    offsets = np.arange(window)
    r = (rows[:, None] + offsets)[:, :, None]
    c = (cols[:, None] + offsets)[:, None, :]
    return np.moveaxis(block[:, r, c, :], 1, 0)


def _read_patches(stack, rows, cols, window, tile_size=512):
    """Patches centred on pixels ``(rows, cols)``, one tile read at a time."""
    half = window // 2
    out = np.empty((len(rows), stack.count, window, window, len(stack.datasets)), "f4")
    tiles = (rows // tile_size) * (stack.width // tile_size + 1) + cols // tile_size
    order = np.argsort(tiles, kind="stable")
    bounds = np.flatnonzero(np.diff(tiles[order])) + 1
    for group in np.split(order, bounds):
        if not len(group):
            continue
        r0, c0 = rows[group].min() - half, cols[group].min() - half
        height = rows[group].max() + half + 1 - r0
        width = cols[group].max() + half + 1 - c0
        block = stack.read_block(int(r0), int(c0), int(height), int(width))
        out[group] = _cut_patches(
            block, rows[group] - half - r0, cols[group] - half - c0, window
        )
    return out


def extract_patches(
    rasters,
    coords,
    window: int,
    *,
    nodata: str = "mask",
    fill_value: float = 0.0,
    return_mask: bool = False,
):
    """Cut ``window x window`` patches around points from per-year GeoTIFFs.

    Parameters
    ----------
    rasters : str, path-like or sequence of them
        One GeoTIFF per time step, in time order, all with the same CRS,
        transform, shape and band count.
    coords : array-like of shape (n_points, 2)
        ``(x, y)`` of each point in the rasters' CRS. The patch is centred on
        the pixel containing the point.
    window : int
        Side of the square patch, in pixels (odd).
    nodata : {"mask", "raise", "fill"}, default="mask"
        What to do with pixels that are nodata (the files' nodata value or
        mask, or NaN) or that lie outside the raster because the point is near
        an edge: ``"mask"`` sets them to NaN, ``"fill"`` to ``fill_value``,
        ``"raise"`` raises a ValueError naming the points. With ``"mask"`` and
        ``"fill"``, a :class:`NodataWarning` names the affected points unless
        ``return_mask=True``.
    fill_value : float, default=0.0
        Value of nodata pixels for ``nodata="fill"``.
    return_mask : bool, default=False
        Also return which points have a patch with nodata.

    Returns
    -------
    patches : ndarray of shape (n_points, bands, window, window, T), float32
        The patches; the last axis is time (file order).
    has_nodata : ndarray of shape (n_points,), bool
        True where the patch holds at least one nodata pixel; only when
        ``return_mask=True``.

    Raises
    ------
    FileNotFoundError
        If a raster file does not exist.
    ValueError
        If the rasters do not share one grid, one cannot be read (truncated,
        corrupt), a point lies outside the raster, ``window`` is even, or
        (``nodata="raise"``) a patch has nodata.

    See Also
    --------
    skestimators.mapping.predict_raster : Map a model over the whole grid with
        the same patch code.

    Examples
    --------
    >>> import tempfile
    >>> from skestimators.datasets import extract_patches, make_soc, make_soc_rasters
    >>> X, y, coords = make_soc(20, n_years=2, random_state=0)
    >>> paths = make_soc_rasters(tempfile.mkdtemp(), n_years=2, random_state=0)
    >>> patches = extract_patches(paths, coords, window=5)
    >>> patches.shape
    (20, 6, 5, 5, 2)
    >>> bool((patches == X).all())
    True
    """
    window = _check_window(window)
    if nodata not in _NODATA_POLICIES:
        raise ValueError(f"nodata must be one of {_NODATA_POLICIES}, got {nodata!r}.")
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (n_points, 2), got {coords.shape}.")
    if not np.isfinite(coords).all():
        raise ValueError("coords contains NaN or infinite values.")
    if not len(coords):
        raise ValueError("coords holds no points: pass at least one (x, y) pair.")
    _warn_time_order(rasters)
    with _RasterStack(rasters) as stack:
        rows, cols = stack.index(coords)
        outside = (
            (rows < 0) | (rows >= stack.height) | (cols < 0) | (cols >= stack.width)
        )
        if outside.any():
            raise ValueError(
                f"{int(outside.sum())} point(s) lie outside the raster extent "
                f"{tuple(_stack_bounds(stack))}: indices {_head(outside)}."
            )
        patches = _read_patches(stack, rows, cols, window)
    is_nan = np.isnan(patches)
    has_nodata = is_nan.reshape(len(patches), -1).any(axis=1)
    if has_nodata.any():
        if nodata == "raise":
            raise ValueError(
                f"{int(has_nodata.sum())} patch(es) hold nodata pixels or reach "
                f"outside the raster: indices {_head(has_nodata)}."
            )
        if nodata == "fill":
            patches[is_nan] = fill_value
        if not return_mask:
            warnings.warn(
                f"{int(has_nodata.sum())} of {len(patches)} patch(es) hold nodata "
                f"pixels or reach outside the raster (indices {_head(has_nodata)}); "
                + ("they are NaN." if nodata == "mask" else f"set to {fill_value}.")
                + " Pass return_mask=True to get them all.",
                NodataWarning,
                stacklevel=2,
            )
    if return_mask:
        return patches, has_nodata
    return patches


def _stack_bounds(stack):
    """``(left, bottom, right, top)`` of a stack's grid."""
    from rasterio.transform import array_bounds

    return array_bounds(stack.height, stack.width, stack.transform)


def _head(mask, limit=10):
    """First indices of a boolean mask, as text."""
    idx = np.flatnonzero(mask)
    text = ", ".join(str(i) for i in idx[:limit])
    return f"[{text}{', ...' if len(idx) > limit else ''}]"
