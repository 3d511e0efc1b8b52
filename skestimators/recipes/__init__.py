"""Ready-made, unfitted pipelines for the package's scientific tasks."""

from ._exoplanet import exoplanet_features, exoplanet_pipeline
from ._soc import soc_baseline_pipeline, soc_pipeline

__all__ = [
    "exoplanet_features",
    "exoplanet_pipeline",
    "soc_baseline_pipeline",
    "soc_pipeline",
]
