"""Spatial and multilabel CV splitters, and helpers to compare and tune variants.

Each name is imported on first use, so that the splitters do not import
PyTorch (the comparisons and searches of networks do).
"""

from .._exports import lazy_exports as _lazy_exports

__all__ = [
    "BufferedKFold",
    "MultilabelStratifiedKFold",
    "OptunaSearchCV",
    "SpatialBlockKFold",
    "check_dask_workers",
    "compare_variants",
    "plot_comparison",
    "plot_fold_map",
    "repeated_cv",
    "summarize_comparison",
]

_EXPORTS = {
    "BufferedKFold": "._spatial",
    "MultilabelStratifiedKFold": "._multilabel",
    "OptunaSearchCV": "._optuna",
    "SpatialBlockKFold": "._spatial",
    "check_dask_workers": "._dask",
    "compare_variants": "._compare",
    "plot_comparison": "._summaries",
    "plot_fold_map": "._plotting",
    "repeated_cv": "._repeated",
    "summarize_comparison": "._summaries",
}
__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
