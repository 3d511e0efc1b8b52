"""The safe model format: skops, which loads no code that is not trusted.

Torch networks inside the model are stored as safetensors entries of the same
file (see ``_networks``).

A skops file describes each object by its type and state; loading rebuilds
only types on a list of trusted ones (scikit-learn's estimators, NumPy
arrays, builtins, and here the estimators of skestimators itself) and
refuses the file otherwise, without running anything from it. Pickles, in
contrast, run whatever the file tells them to.
"""

from __future__ import annotations

import importlib
from importlib.util import find_spec

from sklearn.base import BaseEstimator

from .._stack import caller_stacklevel
from ._networks import add_entries, has_networks, restore_networks, split_networks
from ._trees import TREE_PREDICTOR, check_tree_predictors

__all__ = ["check_trusted", "choose_format", "load_safe", "safe_available"]

SAFE = "skops"
PICKLE = "pickle"


def safe_available() -> bool:
    """Whether the safe format can be used (skops is installed)."""
    return find_spec("skops") is not None


#: The ``__setstate__`` methods that rebuild an estimator from plain
#: attributes only: scikit-learn's, and the networks' (which reads the device
#: of the restored network). skops rebuilds a trusted type by calling its
#: ``__setstate__`` with the file's attributes, so a type whose method does
#: more (skorch's NeuralNet unpickles bytes of its state with a full
#: unpickler) would run what the file holds.
_PLAIN_SETSTATE = frozenset(
    {
        ("sklearn.base", "BaseEstimator.__setstate__"),
        ("skestimators._engine._base", "BaseNet.__setstate__"),
    }
)


def _is_package_estimator(name: str) -> bool:
    """A type name that resolves to an estimator class of skestimators that
    is rebuilt from plain attributes (see ``_PLAIN_SETSTATE``)."""
    if not name.startswith("skestimators."):
        return False
    module_name, _, qualname = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError):
        return False
    if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
        return False
    setstate = obj.__setstate__
    where = (
        getattr(setstate, "__module__", None),
        getattr(setstate, "__qualname__", None),
    )
    return where in _PLAIN_SETSTATE


#: Types skops does not trust that the safe loader of skestimators does:
#: scikit-learn's Bunch (a dict), the two plain holders of a calibrated
#: classifier (its fitted model and calibrators; a sigmoid's two floats; the
#: exoplanet recipe's support vector machine is calibrated), the recipes'
#: own functions, and the trees of HistGradientBoosting, whose indices are
#: checked after loading (``_trees``).
TRUSTED_BY_DEFAULT = frozenset(
    {
        "sklearn.utils._bunch.Bunch",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "skestimators.recipes._exoplanet._hstack_inputs",
        "skestimators.recipes._soc._log1p",
        "skestimators.recipes._soc._expm1",
        TREE_PREDICTOR,
    }
)


def _untrusted(data: bytes) -> tuple[list[str], list[str]]:
    """Types in a skops file that skops does not trust: all of them, and those
    that skestimators does not trust by default either."""
    from skops.io import get_untrusted_types

    found = sorted(get_untrusted_types(data=data))
    return found, [
        name
        for name in found
        if name not in TRUSTED_BY_DEFAULT and not _is_package_estimator(name)
    ]


def _unsafe_reason(estimator, format: str):
    """``(reason, data)``: why the safe format cannot hold the model, or its bytes."""
    if not safe_available():
        return "skops is not installed (pip install 'skestimators[safe]')", None
    weights = {}
    if has_networks(estimator):
        if find_spec("safetensors") is None:
            return (
                "safetensors is not installed (pip install 'skestimators[safe]')",
                None,
            )
        try:
            estimator, weights = split_networks(estimator)
        except ValueError as exc:
            return str(exc), None
    from skops.io import dumps

    try:
        data = dumps(estimator)
    except Exception as exc:  # skops names what it cannot store
        return f"skops cannot store it ({type(exc).__name__}: {exc})", None
    if weights:
        data = add_entries(data, weights)
    untrusted = _untrusted(data)[1]
    if untrusted and format == "auto":
        return f"loading it would need trusted={untrusted}", None
    return None, data


def choose_format(estimator, format: str, error, *, pickle_name=None):
    """``(serialization, data)`` for :func:`~skestimators.save`.

    ``data`` holds the skops bytes when the safe format is used, else None.
    ``format="safe"`` raises ``error`` when the model cannot be stored
    safely; ``format="auto"`` falls back to a pickle with a warning saying
    why, or raises ``error`` too when ``pickle_name`` is given: the file's
    name (a ``.skops`` one) is no name for a pickle, and ``pickle_name`` is
    one to suggest instead.
    """
    if format == PICKLE:
        return PICKLE, None
    reason, data = _unsafe_reason(estimator, format)
    if reason is None:
        return SAFE, data
    if format == "safe" or pickle_name is not None:
        advice = (
            "Save it with format='pickle'."
            if pickle_name is None
            else "A '.skops' file is never unpickled, so it cannot hold a pickle: "
            f"save it with format='pickle' under another name (e.g. {pickle_name})."
        )
        raise error(f"The model cannot be saved in the safe format: {reason}. {advice}")
    import warnings

    warnings.warn(
        f"The model is saved as a pickle: {reason}. Pass format='pickle' to "
        "silence this warning.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
    return PICKLE, None


def check_trusted(trusted, error):
    """``trusted`` (the types :func:`load_safe` may rebuild besides the default
    ones) as a list, or ``error`` naming what is wrong."""
    if trusted is None:
        return None
    if isinstance(trusted, (str, bytes)) or not hasattr(trusted, "__iter__"):
        raise error(
            f"trusted must be a list of type names or types, got {trusted!r}: pass "
            f"a list, e.g. trusted=[{trusted!r}]."
        )
    trusted = list(trusted)
    for item in trusted:
        if not isinstance(item, str) and not hasattr(item, "__qualname__"):
            raise error(
                f"trusted must hold type names ('module.Class') or types, got {item!r}."
            )
    return trusted


def load_safe(data: bytes, path, trusted, error, untrusted_error):
    """Rebuild a model from skops bytes, refusing types that are not trusted."""
    from skops.io import loads

    try:
        found, untrusted = _untrusted(data)
    except Exception as exc:  # a zip without a valid schema, in any way
        raise error(
            f"{path} is not a valid skops file ({type(exc).__name__}: {exc})"
        ) from exc
    allowed = {t if isinstance(t, str) else _type_name(t) for t in trusted or []}
    refused = [name for name in untrusted if name not in allowed]
    if refused:
        raise untrusted_error(
            f"{path} contains types that are not trusted: {refused}. If you trust "
            "its source, pass them to load(..., trusted=[...]) (command line: "
            "--trusted TYPE for each)."
        )
    try:
        model = loads(data, trusted=found or None)
        if TREE_PREDICTOR in found:
            check_tree_predictors(model)
        return restore_networks(model, data)
    except Exception as exc:  # skops or torch names what it cannot rebuild
        raise error(f"Cannot load {path} ({type(exc).__name__}: {exc})") from exc


def _type_name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"
