"""Uncertainty of regression predictions: deep ensembles, spatial calibration.

Every network regressor also estimates its uncertainty by Monte Carlo dropout
(``predict(X, return_std=True)``); conformal intervals come from MAPIE, which
wraps any of them (see the user guide's page on uncertainty).
"""

from ._distances import calibration_block_size
from ._ensemble import DeepEnsembleRegressor

__all__ = ["DeepEnsembleRegressor", "calibration_block_size"]
