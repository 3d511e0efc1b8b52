"""Transformers for named inputs, spectra, images, rasters and targets.

Each name is imported on first use (:class:`ImagePreprocessor` needs PyTorch;
the others do not).
"""

from .._exports import lazy_exports as _lazy_exports

__all__ = [
    "ChannelSelector",
    "ImagePreprocessor",
    "InputTransformer",
    "NDStandardScaler",
    "PatchStatistics",
    "PhysicsFeatures",
    "SpectralFeatures",
    "SpectrumNormalizer",
    "SystemReference",
    "quantile_balanced_weights",
]

_EXPORTS = {
    "ChannelSelector": "._spectral",
    "ImagePreprocessor": "._image",
    "InputTransformer": "._input_transformer",
    "NDStandardScaler": "._scaling",
    "PatchStatistics": "._patches",
    "PhysicsFeatures": "._physics",
    "SpectralFeatures": "._spectral_features",
    "SpectrumNormalizer": "._spectral",
    "SystemReference": "._system_reference",
    "quantile_balanced_weights": "._target",
    # Not public (not in __all__): for the image estimators and the exoplanet
    # data and scoring readers.
    "to_channels_first": "._image",
    "UNIT_RANGE": "._image",
    "AUX_COLUMNS": "._physics",
    "WATER_BANDS_UM": "._physics",
    "equilibrium_temperature": "._physics",
    "scale_height": "._physics",
    "surface_gravity": "._physics",
}
__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
