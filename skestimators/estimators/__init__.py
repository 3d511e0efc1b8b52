"""The public scikit-learn estimators, one module each."""

from ._galaxy_zoo import GalaxyZooRegressor
from ._image import ImageClassifier
from ._net import NetClassifier, NetRegressor
from ._spatiotemporal import SpatioTemporalRegressor
from ._spectra_aux import SpectraAuxClassifier

__all__ = [
    "GalaxyZooRegressor",
    "ImageClassifier",
    "NetClassifier",
    "NetRegressor",
    "SpatioTemporalRegressor",
    "SpectraAuxClassifier",
]
