"""Streaming batch scoring of saved models over files, locally or on Dask.

:func:`score` reads ``.npy``, Parquet, CSV, exoplanet folders, image folders
or rasters in chunks, predicts each chunk with a model saved by
:func:`skestimators.save`, and writes one Parquet, CSV or ``.npy`` file (a
GeoTIFF for rasters), resumably (by content) and atomically, one run per
output at a time. The ``skestimators score`` command line is a thin layer
over it.
"""

from .._io import OutputLockedError
from ._readers import ScoringInputError
from ._score import InvalidRowsWarning, ScoreResult, score
from ._writer import ResumeConflictError

__all__ = [
    "InvalidRowsWarning",
    "OutputLockedError",
    "ResumeConflictError",
    "ScoreResult",
    "ScoringInputError",
    "score",
]
