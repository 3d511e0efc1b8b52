"""Ready-made, unfitted pipelines for the package's scientific tasks."""

from ._exoplanet import exoplanet_features, exoplanet_pipeline
from ._soc import PatchStatistics, soc_baseline_pipeline, soc_pipeline

__all__ = [
    "PatchStatistics",
    "exoplanet_features",
    "exoplanet_pipeline",
    "soc_baseline_pipeline",
    "soc_pipeline",
]
