"""Map a fitted model over a raster stack, chunk by chunk.

Uses the patch code of :func:`~skestimators.datasets.extract_patches`: every
output pixel is predicted from the patch that function would cut at that
pixel's centre, so a map equals predicting the extracted patches directly.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.utils import get_tags

from .._io import (
    remove_stale_temporaries,
    sync_file,
    sync_folder,
    temporary_name,
)
from .._once import once_per_call
from ..datasets import (
    _check_positive_int,
    _check_window,
    _cut_patches,
    _RasterStack,
    _warn_time_order,
)
from ._output import (
    check_nodata,
    check_output_path,
    check_written,
    empty_rows,
    write_rows,
)

__all__ = ["predict_raster"]

logger = logging.getLogger(__name__)


def _gdal_sidecars(path):
    """Files GDAL keeps next to a map (``.aux.xml``: statistics, nodata,
    scale written by QGIS or ``gdalinfo -stats``; ``.ovr``: overviews;
    ``.msk``: a validity mask), which would describe an old map to the new
    one's readers."""
    suffixes = (".aux.xml", ".ovr", ".msk")
    return [path.with_name(path.name + suffix) for suffix in suffixes]


def predict_raster(
    estimator,
    rasters,
    output_path,
    *,
    window: int,
    chunk_rows: int = 16,
    stride: int = 1,
    batch_size: int = 1024,
    nodata: float = -9999.0,
    uncertainty: str | None = None,
) -> Path:
    """Predict every pixel of a raster stack and write the map as a GeoTIFF.

    The grid is walked in chunks of ``chunk_rows`` output rows. For each
    chunk the rasters are read once (with a margin of ``window // 2`` pixels,
    NaN outside the raster), the patches around the chunk's pixels are cut
    ``batch_size`` at a time and passed to ``estimator.predict``. Pixels whose
    patch holds nodata, or reaches outside the raster, get ``nodata``, unless
    the model reads NaN as missing (every step's ``allow_nan`` tag, as for
    :func:`~skestimators.recipes.soc_pipeline`, also inside a search such as
    ``GridSearchCV`` or a ``TransformedTargetRegressor``): then a patch that is only
    partly missing (clouds, a missing year, the raster's edge) is predicted,
    and only pixels never observed at the centre get ``nodata``. A
    :class:`~skestimators.SpatioTemporalRegressor` that reads the raw
    patches (``soc_pipeline(inputs="patches")``) and was trained on complete
    patches only warns (once) that its network never learned to read such
    gaps; the default ``soc_pipeline()`` reads patch statistics, which
    summarise a partly missing patch from its observed pixels, and does not
    warn while every band and year keeps some pixel (clouds over part of the
    patch, the raster's edge); a year missing altogether (or a missing centre
    pixel, for ``"centre"``) leaves NaN statistics, and a model trained on
    complete patches warns then too. Memory
    stays near ``bands * T * (chunk_rows * stride + window) * width`` values
    for the chunk plus ``batch_size`` patches, whatever the raster size.

    Parameters
    ----------
    estimator : object
        Fitted estimator whose ``predict`` takes patches of shape
        ``(n, bands, window, window, T)`` (use a Pipeline to flatten or
        summarise them for a tabular model). A 2-D prediction of shape
        ``(n, k)`` writes ``k`` bands.
    rasters : str, path-like or sequence of them
        One GeoTIFF per time step, as for
        :func:`~skestimators.datasets.extract_patches`.
    output_path : str or path-like
        GeoTIFF to write, neither a folder nor one of ``rasters``. It is
        written beside under a hidden name, read back and compared with what
        was written (GDAL does not report every failed write, e.g. on a full
        disk), then renamed into place: if prediction or writing fails, a map
        already there is left as it was, and no partial map is left behind.
    window : int
        Patch side in pixels (odd), the one the estimator was trained with.
    chunk_rows : int, default=16
        Output rows predicted per chunk.
    stride : int, default=1
        Predict every ``stride``-th pixel along each axis. The output then has
        ``ceil(height / stride)`` rows of pixels ``stride`` times larger (the
        transform is scaled accordingly), each predicted from the patch
        centred on the source pixel at its centre. Where ``stride`` does not
        divide the grid, the last row or column of the map reaches past the
        rasters, and is predicted from the centre of its part inside them.
        ``stride=1`` keeps the source grid.
    batch_size : int, default=1024
        Patches passed to ``predict`` at once.
    nodata : float, default=-9999.0
        Output value where no prediction was made: a number within float32's
        range, or NaN. A warning says so when the model predicts this very
        value for some pixels. Predictions that are NaN or infinite (or
        overflow float32) are written as ``nodata`` too, with a
        ``RuntimeWarning`` giving their count.
    uncertainty : {None, "std", "interval"}, default=None
        Extra bands after those of the prediction. ``"std"``: the standard
        deviation of each prediction, from ``estimator.predict(X,
        return_std=True)`` (the network regressors' Monte Carlo dropout, a
        :class:`~skestimators.uncertainty.DeepEnsembleRegressor`, a Gaussian
        process); refused for a model trained on a transformed target
        (``TransformedTargetRegressor``, as :func:`~skestimators.recipes.soc_pipeline`
        by default), whose standard deviation is not in the target's units.
        ``"interval"``: the lower and upper bounds of the interval
        of ``estimator.predict_interval(X)``, a fitted MAPIE conformal
        regressor, one pair per confidence level. The bands are named in the
        file (``prediction``, ``std``, ``lower``, ``upper``). The number of
        bands does not depend on the data: when no pixel can be predicted,
        it is that of the estimator's output for a patch of zeros.

    Returns
    -------
    path : pathlib.Path
        The written file: float32, the source CRS, the source transform (scaled
        by ``stride``) and ``nodata`` as its nodata value; with
        ``uncertainty``, the prediction bands come first.

    Raises
    ------
    FileNotFoundError
        If a raster or the folder of ``output_path`` does not exist.
    IsADirectoryError
        If ``output_path`` is a folder.
    ValueError
        If ``output_path`` is one of ``rasters``, the rasters do not share one
        grid or one cannot be read, ``nodata`` is out of float32's range, or
        the estimator returns predictions a map cannot hold.
    TypeError
        If ``nodata`` is not a number, or the estimator lacks what
        ``uncertainty`` needs.
    OSError
        If the map cannot be written in full (a full disk, a file size
        limit); nothing is left at ``output_path`` but an earlier map.

    Warns
    -----
    RuntimeWarning
        If the model predicts NaN or infinite values, written as ``nodata``.
    UserWarning
        If the model predicts the ``nodata`` value itself, or if ``window``
        is wider than the rasters and the model does not read missing
        values (the map is then all ``nodata``).

    See Also
    --------
    skestimators.datasets.extract_patches : Patches around points, with the
        same patch code.

    Examples
    --------
    >>> import os, tempfile
    >>> import rasterio
    >>> from sklearn.dummy import DummyRegressor
    >>> from skestimators.datasets import make_soc, make_soc_rasters
    >>> from skestimators.mapping import predict_raster
    >>> X, y, coords = make_soc(50, n_years=2, random_state=0)
    >>> model = DummyRegressor().fit(X.reshape(len(X), -1), y)
    >>> folder = tempfile.mkdtemp()
    >>> paths = make_soc_rasters(folder, n_years=2, random_state=0)
    >>> out = predict_raster(model, paths, os.path.join(folder, "oc.tif"), window=5)
    >>> with rasterio.open(out) as src:
    ...     src.shape, src.crs.to_epsg(), float(src.read(1)[0, 0])
    ((200, 200), 25832, -9999.0)
    """
    window = _check_window(window)
    if uncertainty not in (None, "std", "interval"):
        raise ValueError(
            f'uncertainty must be None, "std" or "interval", got {uncertainty!r}.'
        )
    chunk_rows = _check_positive_int(chunk_rows, "chunk_rows")
    stride = _check_positive_int(stride, "stride")
    batch_size = _check_positive_int(batch_size, "batch_size")
    nodata = check_nodata(nodata)
    if isinstance(rasters, (str, os.PathLike)):
        rasters = [rasters]
    rasters = list(rasters)
    _warn_time_order(rasters)
    output_path = check_output_path(output_path, rasters)
    if uncertainty == "std":
        _check_std_units(estimator)
    if uncertainty == "interval" and not hasattr(estimator, "predict_interval"):
        raise TypeError(
            f'uncertainty="interval" needs an estimator with predict_interval '
            f"(a fitted MAPIE conformal regressor); {type(estimator).__name__} "
            "has none."
        )
    # Written next to the map and renamed into place once complete: a failure
    # (an estimator error, a full disk, a killed process) leaves any earlier
    # map as it was, never a partial one.
    partial = temporary_name(output_path, ".partial")
    try:
        with once_per_call():  # a model's warnings once per map, not per chunk
            tally, digests, grid = _write_map(
                estimator, rasters, partial, window, chunk_rows, stride,
                batch_size, nodata, uncertainty,
            )  # fmt: skip
        sync_file(partial)  # on disk before it takes the map's name
        check_written(partial, digests, output_path)
        for stale in _gdal_sidecars(output_path):  # they describe the old map
            stale.unlink(missing_ok=True)
        os.replace(partial, output_path)
        sync_folder(output_path.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    remove_stale_temporaries(output_path)  # left by runs killed on this machine
    if tally["nan"] or tally["inf"]:
        what = [f"NaN for {tally['nan']}"] if tally["nan"] else []
        if tally["inf"]:
            what.append(
                "an infinite value, or one beyond float32's range (+-3.4e38), for "
                f"{tally['inf']}"
            )
        warnings.warn(
            f"The model predicted {' and '.join(what)} pixel value(s): the map "
            "shows them as pixels without a prediction (nodata). Check the "
            "model's input for these pixels (its range, its scaling).",
            RuntimeWarning,
            stacklevel=2,
        )
    if tally["too_wide"]:
        height, width = grid
        warnings.warn(
            f"window={window} is wider than the rasters ({height} x {width} "
            "pixels): every patch reaches past their edge, and the model does "
            "not read missing values, so the map is all nodata.",
            UserWarning,
            stacklevel=2,
        )
    if tally["nodata"]:
        warnings.warn(
            f"The model predicted the nodata value {nodata} for {tally['nodata']} "
            "pixel value(s): the map shows them as pixels without a prediction. "
            "Map again with another nodata, one the model cannot predict (e.g. "
            "nodata=float('nan')).",
            UserWarning,
            stacklevel=2,
        )
    return output_path


def _write_map(
    estimator, rasters, output_path, window, chunk_rows, stride, batch_size,
    nodata, uncertainty,
):  # fmt: skip
    """Write the map to ``output_path``.

    Returns the counts of predicted values that are NaN, infinite or equal
    ``nodata`` and of pixels left unpredicted because ``window`` is wider than
    the rasters (``"too_wide"``), the checksum of each block of rows written
    (for :func:`check_written`), and the rasters' ``(height, width)``.
    """
    import rasterio
    from rasterio.transform import Affine

    half = window // 2
    with _RasterStack(rasters) as stack:
        # From every pixel a window wider than the raster reaches past its
        # edge (nodata): unless the model reads NaN nothing can be predicted,
        # and cutting the patches took minutes to find it out.
        hopeless = window > min(stack.height, stack.width)
        hopeless = hopeless and not _handles_missing(estimator)
        out_h = math.ceil(stack.height / stride)
        out_w = math.ceil(stack.width / stride)
        src_cols = _centres(np.arange(out_w), stride, stack.width)
        profile = {
            "driver": "GTiff",
            "height": out_h,
            "width": out_w,
            "dtype": "float32",
            "crs": stack.crs,
            "transform": stack.transform @ Affine.scale(stride),
            "nodata": nodata,
            "compress": "deflate",
        }
        dst, pending, tally, digests = None, [], Counter(), {}
        if hopeless:
            tally["too_wide"] = out_h * out_w
        try:
            for i0 in range(0, out_h, chunk_rows):
                i1 = min(i0 + chunk_rows, out_h)
                src_rows = _centres(np.arange(i0, i1), stride, stack.height)
                r0, c0 = int(src_rows[0]) - half, -half
                block = stack.read_block(
                    r0, c0, int(src_rows[-1]) + half + 1 - r0, stack.width + 2 * half
                )
                rows = np.repeat(src_rows - half - r0, out_w)
                cols = np.tile(src_cols - half - c0, i1 - i0)
                values = None if hopeless else _predict_chunk(
                    estimator, block, rows, cols, window, batch_size, uncertainty,
                    tally,
                )  # fmt: skip
                if values is None:
                    values = np.empty((0, i1 - i0, out_w), dtype=np.float32)
                else:
                    tally["nodata"] += _nodata_hits(values, nodata)
                    values = np.where(np.isnan(values), np.float32(nodata), values)
                    values = values.reshape(-1, i1 - i0, out_w)
                if dst is None and values.shape[0]:
                    dst = rasterio.open(
                        output_path, "w", count=values.shape[0], **profile
                    )
                    dst.descriptions = _band_names(values.shape[0], uncertainty)
                    for j0, j1 in pending:
                        _write_empty(dst, j0, j1, out_w, nodata, digests)
                if dst is None:
                    pending.append((i0, i1))
                elif values.shape[0]:
                    _check_bands(values, dst.count)
                    write_rows(dst, values, i0, digests)
                else:
                    _write_empty(dst, i0, i1, out_w, nodata, digests)
                logger.debug("predict_raster: rows %d-%d of %d done", i0, i1, out_h)
            if dst is None:  # no pixel could be predicted
                count = _count_bands(estimator, stack, window, uncertainty)
                dst = rasterio.open(output_path, "w", count=count, **profile)
                dst.descriptions = _band_names(count, uncertainty)
                for j0, j1 in pending:
                    _write_empty(dst, j0, j1, out_w, nodata, digests)
        finally:
            if dst is not None:
                dst.close()
    return tally, digests, (stack.height, stack.width)


def _nodata_hits(values, nodata) -> int:
    """How many predicted values equal ``nodata`` (they would read as none)."""
    if nodata is None or np.isnan(nodata):
        return 0
    return int(np.count_nonzero(values == np.float32(nodata)))


#: Fitted attributes of scikit-learn's meta-estimators that predict for them:
#: TransformedTargetRegressor, a search (GridSearchCV, OptunaSearchCV), a
#: model loaded by skestimators.load inside a wrapper.
_PREDICTING = ("regressor_", "best_estimator_", "estimator_")


def _predicting_estimator(estimator):
    """The fitted estimator a meta-estimator's ``predict`` delegates to, or None
    (a transformer's ``estimator_``, as SelectFromModel's, is not its output).

    MAPIE's conformal regressors (1.x) have no scikit-learn tags and keep
    the regressor they wrap in ``_mapie_regressor.estimator``: what they
    accept as input is what that regressor accepts.
    """
    if hasattr(estimator, "transform"):
        return None
    for name in _PREDICTING:
        inner = getattr(estimator, name, None)
        if inner is not None and hasattr(inner, "predict"):
            return inner
    inner = getattr(estimator, "regressor", None)  # an unfitted (cloned) TTR
    if hasattr(estimator, "transformer") and hasattr(inner, "predict"):
        return inner
    if not hasattr(estimator, "__sklearn_tags__"):
        mapie = getattr(estimator, "_mapie_regressor", None)
        wrapped = getattr(mapie, "estimator", None)
        if hasattr(wrapped, "predict"):
            return wrapped
    return None


def _centres(blocks, stride, size):
    """Source pixel at the centre of each output pixel along one axis: of
    its part inside the grid, for a last pixel reaching past the edge."""
    start = blocks * stride
    return start + (np.minimum(start + stride, size) - start) // 2


def _handles_missing(estimator) -> bool:
    """Whether every step of the model reads NaN as missing (its tags say so)."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):
        return all(
            _handles_missing(step)
            for _, step in steps
            if step is not None and step != "passthrough"
        )
    inner = _predicting_estimator(estimator)
    if inner is not None:
        return _handles_missing(inner)
    if not hasattr(estimator, "__sklearn_tags__"):  # any object with predict
        return False
    return bool(get_tags(estimator).input_tags.allow_nan)


def _check_std_units(estimator):
    """Refuse ``uncertainty="std"`` through a target transformation."""
    while estimator is not None:
        if hasattr(estimator, "transformer_") and hasattr(estimator, "regressor_"):
            raise TypeError(
                'uncertainty="std" cannot map a model trained on a transformed '
                f"target ({type(estimator).__name__}, e.g. soc_pipeline's log "
                "scale): a standard deviation on that scale has no value in the "
                "target's units. Map it from a model without the transformation "
                "(soc_pipeline(target_transform=None)), or map prediction "
                'intervals, which do transform, with uncertainty="interval" and '
                "a MAPIE conformal regressor."
            )
        steps = getattr(estimator, "steps", None)
        if isinstance(steps, list):
            estimator = steps[-1][1] if steps else None  # what predicts
        else:
            estimator = _predicting_estimator(estimator)


def _predictable(patches, missing):
    """Patches to predict: complete ones; with ``missing``, also partly missing
    ones whose centre pixel was observed in some band and year."""
    if not missing:
        return ~np.isnan(patches).reshape(len(patches), -1).any(axis=1)
    half = patches.shape[2] // 2
    centre = patches[:, :, half, half, :].reshape(len(patches), -1)
    return ~np.isnan(centre).all(axis=1)


def _count_bands(estimator, stack, window, uncertainty) -> int:
    """The bands of a map no pixel of which could be predicted: as many as the
    estimator returns for a patch of zeros, or one per part (prediction, std,
    lower and upper bounds) if it cannot predict one."""
    patch = np.zeros((1, stack.count, window, window, len(stack.datasets)), "f4")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return _predict_bands(estimator, patch, uncertainty).shape[1]
    except Exception:  # e.g. trained on another window: the map is nodata anyway
        return {None: 1, "std": 2, "interval": 3}[uncertainty]


def _predict_chunk(
    estimator, block, rows, cols, window, batch_size, uncertainty, tally
):  # fmt: skip
    """Predictions ``(k, n_pixels)`` (NaN where the patch has nodata), or None.

    Non-finite predictions become NaN too, counted in ``tally`` (``"nan"``,
    ``"inf"``).
    """
    missing = _handles_missing(estimator)
    out = None
    for start in range(0, len(rows), batch_size):
        stop = min(start + batch_size, len(rows))
        patches = _cut_patches(block, rows[start:stop], cols[start:stop], window)
        valid = _predictable(patches, missing)
        if not valid.any():
            continue
        pred = _predict_bands(estimator, patches[valid], uncertainty)
        finite = np.isfinite(pred)
        if not finite.all():
            n_nan = int(np.count_nonzero(np.isnan(pred)))
            tally["nan"] += n_nan
            tally["inf"] += pred.size - int(np.count_nonzero(finite)) - n_nan
            pred = np.where(finite, pred, np.float32(np.nan))
        if out is None:
            out = np.full((pred.shape[1], len(rows)), np.nan, dtype=np.float32)
        _check_bands(pred.T, out.shape[0])
        out[:, np.arange(start, stop)[valid]] = pred.T
    return out


def _predict_bands(estimator, patches, uncertainty):
    """``(n, k)`` float32 values: the prediction, then the uncertainty bands."""
    n = len(patches)
    if uncertainty is None:
        parts = [estimator.predict(patches)]
    elif uncertainty == "std":
        parts = list(_pair(estimator.predict(patches, return_std=True), "predict"))
    else:
        y_pred, y_pis = _pair(estimator.predict_interval(patches), "predict_interval")
        y_pis = np.asarray(y_pis).reshape(n, 2, -1)  # (n, lower/upper, levels)
        parts = [y_pred, y_pis.transpose(0, 2, 1)]  # lower, upper per level
    return np.concatenate([_numeric_rows(p, n) for p in parts], axis=1)


def _numeric_rows(values, n):
    """``values`` as ``(n, k)`` float32, or an error naming what is wrong."""
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise TypeError(
            f"The estimator predicted {values.dtype} values (e.g. "
            f"{values.ravel()[:3].tolist()}); a map needs numbers. Encode the "
            "classes as integers (e.g. fit on LabelEncoder().fit_transform(y))."
        )
    if values.ndim == 0 or len(values) != n:
        raise ValueError(
            f"The estimator returned {values.shape[0] if values.ndim else 0} "
            f"predictions for {n} patches."
        )
    with np.errstate(over="ignore"):  # counted as infinite and warned about
        return values.astype(np.float32).reshape(n, -1)


def _pair(result, method):
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(
            f"estimator.{method} returned {type(result).__name__}, not the pair "
            "(prediction, uncertainty) that predict_raster's uncertainty needs."
        )
    return result


def _band_names(count, uncertainty):
    """Band descriptions for one target (None when the layout is ambiguous)."""
    names = {None: ["prediction"], "std": ["prediction", "std"]}.get(uncertainty)
    if uncertainty == "interval" and count % 2 == 1:
        names = ["prediction"] + ["lower", "upper"] * (count // 2)
    if names is None or len(names) != count:
        return (None,) * count
    return tuple(names)


def _check_bands(values, expected):
    if values.shape[0] != expected:
        raise ValueError(
            f"estimator.predict returned {values.shape[0]} output(s) per pixel in one "
            f"chunk and {expected} in another."
        )


def _write_empty(dst, i0, i1, width, nodata, digests):
    write_rows(dst, empty_rows(dst.count, i1 - i0, width, nodata), i0, digests)
