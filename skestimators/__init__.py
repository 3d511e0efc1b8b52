"""scikit-learn estimators for scientific deep learning, built on skorch and PyTorch.

The estimators and the model-file functions are imported on first use, so
that ``import skestimators`` (and the light subpackages: metrics, splitters,
datasets) does not import PyTorch.
"""

from ._exports import lazy_exports as _lazy_exports
from ._version import __version__

_EXPORTS = {
    "GalaxyZooRegressor": ".estimators",
    "ImageClassifier": ".estimators",
    "NetClassifier": ".estimators",
    "NetRegressor": ".estimators",
    "SpatioTemporalRegressor": ".estimators",
    "SpectraAuxClassifier": ".estimators",
    "ModelFileError": "._io",
    "ModelFileNotFoundError": "._io",
    "ModelVersionWarning": "._io",
    "UntrustedTypeError": "._io",
    "load": "._io",
    "read_metadata": "._io",
    "save": "._io",
    "MultiInput": "._multiinput",
}
# The public subpackages and modules, reachable as attributes (the command
# line is not: nothing imports it).
_SUBMODULES = (
    "datasets",
    "distributed",
    "ensemble",
    "estimators",
    "exceptions",
    "galaxy_zoo",
    "mapping",
    "metrics",
    "model_selection",
    "nn",
    "preprocessing",
    "recipes",
    "scoring",
    "tracking",
    "uncertainty",
)
__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "GalaxyZooRegressor",
    "ImageClassifier",
    "ModelFileError",
    "ModelFileNotFoundError",
    "ModelVersionWarning",
    "MultiInput",
    "NetClassifier",
    "NetRegressor",
    "SpatioTemporalRegressor",
    "SpectraAuxClassifier",
    "UntrustedTypeError",
    "__version__",
    "load",
    "read_metadata",
    "save",
]
