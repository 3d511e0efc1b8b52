"""Loaders for the real file formats and simulators for tests and demos."""

from ._exoplanet import load_exoplanet, make_exoplanet
from ._galaxy_morphology import GALAXY_CLASSES
from ._galaxy_sim import make_galaxy_classes, make_galaxy_zoo
from ._galaxy_zoo import (
    load_galaxy_zoo,
    write_galaxy_zoo_folder,
    write_galaxy_zoo_submission,
)
from ._mapping import predict_raster
from ._rasters import NodataWarning, extract_patches
from ._soc import make_soc, make_soc_rasters

__all__ = [
    "GALAXY_CLASSES",
    "NodataWarning",
    "extract_patches",
    "load_exoplanet",
    "load_galaxy_zoo",
    "make_exoplanet",
    "make_galaxy_classes",
    "make_galaxy_zoo",
    "make_soc",
    "make_soc_rasters",
    "predict_raster",
    "write_galaxy_zoo_folder",
    "write_galaxy_zoo_submission",
]
