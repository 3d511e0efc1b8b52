"""Loaders for the real file formats and simulators for tests and demos."""

from ._clouds import add_clouds
from ._exoplanet import _implausible_planets as _implausible_planets
from ._exoplanet import load_exoplanet, make_exoplanet
from ._galaxy_morphology import GALAXY_CLASSES
from ._galaxy_sim import make_galaxy_classes, make_galaxy_zoo
from ._galaxy_zoo import (
    load_galaxy_zoo,
    write_galaxy_zoo_folder,
    write_galaxy_zoo_submission,
)
from ._image_folder import load_image_folder
from ._images import _IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from ._images import _read_image as _read_image
from ._rasters import NodataWarning, extract_patches
from ._rasters import _check_positive_int as _check_positive_int
from ._rasters import _check_window as _check_window
from ._rasters import _cut_patches as _cut_patches
from ._rasters import _RasterStack as _RasterStack
from ._rasters import _warn_time_order as _warn_time_order
from ._soc import make_soc, make_soc_rasters

# Names imported "as" themselves are not public (not in __all__): the raster
# reading of skestimators.mapping and the image and spectra checks of
# skestimators.scoring.
__all__ = [
    "GALAXY_CLASSES",
    "NodataWarning",
    "add_clouds",
    "extract_patches",
    "load_exoplanet",
    "load_galaxy_zoo",
    "load_image_folder",
    "make_exoplanet",
    "make_galaxy_classes",
    "make_galaxy_zoo",
    "make_soc",
    "make_soc_rasters",
    "write_galaxy_zoo_folder",
    "write_galaxy_zoo_submission",
]
