"""Ready-made, unfitted pipelines for the package's scientific tasks."""

from ._exoplanet import exoplanet_features, exoplanet_pipeline

__all__ = ["exoplanet_features", "exoplanet_pipeline"]
