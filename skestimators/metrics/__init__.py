"""Metrics as plain functions, with scorers for ``cross_validate``."""

from ._galaxy import (
    galaxy_zoo_rmse,
    galaxy_zoo_rmse_per_column,
    galaxy_zoo_scorer,
    project_galaxy_zoo,
)
from ._regression import (
    regression_scorers,
    rmse,
    rmse_scorer,
    rpiq,
    rpiq_scorer,
)

__all__ = [
    "galaxy_zoo_rmse",
    "galaxy_zoo_rmse_per_column",
    "galaxy_zoo_scorer",
    "project_galaxy_zoo",
    "regression_scorers",
    "rmse",
    "rmse_scorer",
    "rpiq",
    "rpiq_scorer",
]
