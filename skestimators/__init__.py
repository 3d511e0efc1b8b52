"""scikit-learn estimators for scientific deep learning, built on skorch and PyTorch."""

from ._io import ModelFileError, ModelVersionWarning, load, read_metadata, save
from ._multiinput import MultiInput
from .estimators import (
    GalaxyZooRegressor,
    ImageClassifier,
    NetClassifier,
    NetRegressor,
    SpatioTemporalRegressor,
    SpectraAuxClassifier,
)

__version__ = "0.1.0"

__all__ = [
    "GalaxyZooRegressor",
    "ImageClassifier",
    "ModelFileError",
    "ModelVersionWarning",
    "MultiInput",
    "NetClassifier",
    "NetRegressor",
    "SpatioTemporalRegressor",
    "SpectraAuxClassifier",
    "__version__",
    "load",
    "read_metadata",
    "save",
]
