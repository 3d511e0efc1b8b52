"""Metrics as plain functions, with scorers for ``cross_validate``.

Only what scikit-learn lacks is here: use :mod:`sklearn.metrics` (for
instance :func:`~sklearn.metrics.root_mean_squared_error` and the
``"neg_root_mean_squared_error"`` scorer) for the rest.
"""

from ._galaxy import (
    galaxy_zoo_root_mean_squared_error,
    galaxy_zoo_root_mean_squared_error_per_column,
    neg_galaxy_zoo_root_mean_squared_error_scorer,
)
from ._multilabel import multilabel_scorers
from ._regression import regression_scorers, rpiq_score, rpiq_scorer

__all__ = [
    "galaxy_zoo_root_mean_squared_error",
    "galaxy_zoo_root_mean_squared_error_per_column",
    "multilabel_scorers",
    "neg_galaxy_zoo_root_mean_squared_error_scorer",
    "regression_scorers",
    "rpiq_score",
    "rpiq_scorer",
]
