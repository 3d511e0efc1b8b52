"""What a model file's JSON sidecar records beside the hash: versions, devices,
targets and cross-validation scores, as plain JSON values."""

from __future__ import annotations

import platform

import numpy as np

from ._layout import final_estimator, walk_estimators


def versions() -> dict:
    """Versions of Python and of the libraries a pickle depends on."""
    import sklearn
    import torch

    from .._version import __version__

    return {
        "skestimators": __version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _devices(estimator) -> list[str]:
    found = []
    for _, est in walk_estimators(estimator):
        net = est.__dict__.get("net_")
        device = getattr(net, "device", None)
        if device is not None and str(device) not in found:
            found.append(str(device))
    return found


def _targets(estimator) -> dict:
    final = final_estimator(estimator)
    out = {}
    for attr in ("classes_", "target_names_"):
        value = getattr(final, attr, None)
        if value is not None:
            out[attr.rstrip("_")] = _jsonable(value)
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _score_array(value) -> np.ndarray | None:
    """``value`` as a flat float array, or None if it holds no numbers."""
    try:
        return np.ravel(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        return None


def _json_float(value: float) -> float | None:
    """A JSON-ready float: NaN (a failed fold) and infinities are null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _cv_summary(cv_scores) -> dict:
    """The cross-validation scores to store: values, mean and std per score.

    A dict (from :func:`~sklearn.model_selection.cross_validate`) keeps the
    entries that are numbers (``test_*``, ``train_*``, ``fit_time``,
    ``score_time``) and drops the others (``estimator``, ``indices``). A
    score that is not finite (NaN: a fold that failed) is stored as None
    (JSON's null). Raises ValueError when there is nothing numeric to store.
    """
    if isinstance(cv_scores, dict):
        scores = {str(k): _score_array(v) for k, v in cv_scores.items()}
        scores = {k: v for k, v in scores.items() if v is not None}
    else:
        array = _score_array(cv_scores)
        if array is None:
            raise ValueError(
                "cv_scores must be an array of scores or the dict returned by "
                f"cross_validate, got {type(cv_scores).__name__}."
            )
        scores = {"score": array}
    with np.errstate(invalid="ignore"):  # the mean of no scores is NaN
        return {
            name: {
                "values": [_json_float(v) for v in s],
                "mean": _json_float(np.mean(s)) if s.size else None,
                "std": _json_float(np.std(s)) if s.size else None,
            }
            for name, s in scores.items()
        }


def _cv_from_json(summary):
    """Stored cross-validation scores with null (a failed fold) read as NaN."""
    if not isinstance(summary, dict):
        return summary

    def nan(value):
        return float("nan") if value is None else value

    def entry_from_json(entry):
        if not isinstance(entry, dict):
            return entry
        entry = {k: nan(v) if k in ("mean", "std") else v for k, v in entry.items()}
        if isinstance(entry.get("values"), list):
            entry["values"] = [nan(v) for v in entry["values"]]
        return entry

    return {name: entry_from_json(entry) for name, entry in summary.items()}
