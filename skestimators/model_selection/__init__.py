"""Spatial cross-validation splitters and helpers to compare and tune variants."""

from ._compare import compare_variants, plot_comparison, summarize_comparison
from ._dask import check_dask_workers
from ._optuna import OptunaSearchCV
from ._plotting import plot_fold_map
from ._repeated import repeated_cv
from ._spatial import BufferedKFold, SpatialBlockKFold

__all__ = [
    "BufferedKFold",
    "OptunaSearchCV",
    "SpatialBlockKFold",
    "check_dask_workers",
    "compare_variants",
    "plot_comparison",
    "plot_fold_map",
    "repeated_cv",
    "summarize_comparison",
]
