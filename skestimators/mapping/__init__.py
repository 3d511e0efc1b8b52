"""Maps: a fitted model run over every pixel of a raster stack.

:func:`predict_raster` walks a stack of GeoTIFFs (one per time step) in
chunks, predicts each pixel from the patch around it and writes the map as a
GeoTIFF. It needs ``rasterio`` (``pip install "skestimators[geo]"``).
"""

from ._raster import predict_raster

__all__ = ["predict_raster"]
