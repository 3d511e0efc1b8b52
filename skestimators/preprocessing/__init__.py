"""Transformers for named inputs, spectra, images, rasters and targets."""

from ._image import ImagePreprocessor
from ._input_transformer import InputTransformer
from ._physics import PhysicsFeatures
from ._scaling import NDStandardScaler
from ._spectral import ChannelSelector, SpectrumNormalizer
from ._spectral_features import SpectralFeatures
from ._target import quantile_balanced_weights

__all__ = [
    "ChannelSelector",
    "ImagePreprocessor",
    "InputTransformer",
    "NDStandardScaler",
    "PhysicsFeatures",
    "SpectralFeatures",
    "SpectrumNormalizer",
    "quantile_balanced_weights",
]
