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


def _cv_summary(cv_scores) -> dict:
    if isinstance(cv_scores, dict):
        scores = {str(k): np.asarray(v, dtype=float) for k, v in cv_scores.items()}
    else:
        scores = {"score": np.asarray(cv_scores, dtype=float)}
    return {
        name: {
            "values": [float(v) for v in np.ravel(s)],
            "mean": float(np.mean(s)),
            "std": float(np.std(s)),
        }
        for name, s in scores.items()
    }
