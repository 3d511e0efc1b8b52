"""The map file of :func:`predict_raster`: checks before writing, and after.

GDAL does not report every failed write: with a full disk or a file size
limit, the blocks flushed by ``dst.write`` or ``dst.close()`` are lost with an
error message on stderr only, and rasterio returns normally. So every block
written is checksummed, and the file is read back and compared before it is
renamed into place.
"""

from __future__ import annotations

import math
import os
import zlib
from numbers import Real
from pathlib import Path

import numpy as np

#: Largest magnitude of a finite float32, the map's dtype.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_nodata(nodata):
    """``nodata`` as a float, refusing a value float32 cannot hold."""
    if nodata is None:  # a map of NaN gaps that declared none
        raise TypeError(
            "nodata must be a number: give float('nan') for NaN where no "
            "prediction was made (declared as the map's nodata value), or a "
            "number such as -9999."
        )
    if isinstance(nodata, bool) or not isinstance(nodata, Real):
        raise TypeError(
            f"nodata must be a number (or float('nan')), got {nodata!r} of type "
            f"{type(nodata).__name__}."
        )
    nodata = float(nodata)
    if not math.isnan(nodata) and not abs(nodata) <= FLOAT32_MAX:
        raise ValueError(
            f"nodata={nodata} cannot be stored in the map, whose pixels are float32: "
            f"give a finite number within +-{FLOAT32_MAX:.4g}, or float('nan')."
        )
    return nodata


def check_output_path(output_path, rasters) -> Path:
    """``output_path`` as a Path, refused before any work if a map cannot be
    written there: a missing folder, a folder in its place, one of the input
    rasters (``rasters``: their paths)."""
    output_path = Path(os.fspath(output_path))
    if not output_path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write the map {output_path}: the folder {output_path.parent} "
            "does not exist."
        )
    if output_path.is_dir():
        raise IsADirectoryError(
            f"Cannot write the map {output_path}: it is a folder; give the path of "
            f"a file, e.g. {output_path / 'map.tif'}."
        )
    if output_path.exists():
        for raster in rasters:
            if _same_file(raster, output_path):
                raise ValueError(
                    f"Cannot write the map {output_path}: it is one of the input "
                    f"rasters ({os.fspath(raster)}), which the map would replace. "
                    "Give another output path."
                )
    return output_path


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):  # a /vsi or remote path, a bad name
        return False


def empty_rows(count, height, width, nodata) -> np.ndarray:
    """``(count, height, width)`` float32 rows of ``nodata``."""
    return np.full((count, height, width), nodata, dtype=np.float32)


def write_rows(dst, values, row, digests) -> None:
    """Write ``values`` ``(bands, rows, width)`` from ``row`` on and record
    their checksum in ``digests`` for :func:`check_written`."""
    from rasterio.windows import Window

    values = np.ascontiguousarray(values, dtype=np.float32)
    height = values.shape[1]
    dst.write(values, window=Window(0, row, values.shape[2], height))
    digests[(row, row + height)] = zlib.crc32(values)


def check_written(path, digests, output_path) -> None:
    """Read ``path`` back and compare every block with its checksum; an
    OSError naming ``output_path`` (the map it was to become) if one
    differs or cannot be read."""
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            for (i0, i1), digest in sorted(digests.items()):
                data = src.read(window=Window(0, i0, src.width, i1 - i0))
                data = np.ascontiguousarray(data, dtype=np.float32)
                if zlib.crc32(data) != digest:
                    raise ValueError(f"rows {i0} to {i1 - 1} differ from those written")
    except (rasterio.errors.RasterioError, OSError, ValueError) as err:
        cause = err.__cause__ or err
        raise OSError(
            f"Could not write the map {output_path}: the file written does not "
            f"read back as written ({cause}). Is the disk full, or the file larger "
            "than a size limit (ulimit -f)? A map already at that path was left "
            "as it was."
        ) from err
