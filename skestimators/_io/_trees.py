"""Bounds checks that make gradient-boosting trees safe to load from skops.

skops does not trust ``TreePredictor`` (the trees of scikit-learn's
HistGradientBoosting models) by default, and says why: its ``nodes`` array
holds child and feature indices that scikit-learn follows without bounds
checks, so a crafted file loads fine and then crashes the process, or reads
memory it should not, at the first ``predict``. The safe loader of
skestimators accepts these trees only after :func:`check_tree_predictors`
has verified every index of every tree against the model that holds it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TREE_PREDICTOR", "check_tree_predictors"]

TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def _slots(item):
    """Values of the ``__slots__`` of ``item``'s class and its bases."""
    for cls in type(item).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(item, name):
                yield getattr(item, name)


def _objects(obj):
    """Every object reachable from ``obj`` through attributes and containers.

    Descends into the attributes (``__dict__`` and ``__slots__``) of objects,
    into the keys and values of dicts, the items of lists, tuples, sets and
    frozensets, and the items of NumPy arrays that hold Python objects
    (object and structured dtypes): skops stores a list of lists as a 1-D
    object array when it likes, and scikit-learn iterates either alike.
    """
    seen = {}  # id -> object: keeps what was visited alive, so ids stay unique
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes)):
            continue
        seen[id(item)] = item
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                stack.extend(item.ravel().tolist())
            continue
        yield item
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif not isinstance(item, type):
            if hasattr(item, "__dict__"):
                stack.extend(vars(item).values())
            stack.extend(_slots(item))


def _check_nodes(predictor, n_features, is_categorical):
    """Raise ValueError unless every index in the tree is in range."""
    nodes = predictor.nodes
    names = set(nodes.dtype.names or ())
    if not {"left", "right", "feature_idx", "is_leaf", "is_categorical"} <= names:
        raise ValueError("a tree's nodes lack the fields of a TreePredictor")
    n = len(nodes)
    if n == 0:
        raise ValueError("a tree has no nodes")
    split = np.flatnonzero(nodes["is_leaf"] == 0)
    index = split.astype(np.int64)
    for side in ("left", "right"):
        child = nodes[side][split].astype(np.int64)
        # Children follow their parent (depth-first order): no index out of
        # the tree, and no cycle that would make predict loop forever.
        if np.any(child <= index) or np.any(child >= n):
            raise ValueError(f"a tree's {side} child indices are out of range")
    feature = nodes["feature_idx"][split]
    if np.any(feature < 0) or np.any(feature >= n_features):
        raise ValueError("a tree splits on a feature the model does not have")
    categorical = split[nodes["is_categorical"][split] != 0]
    if categorical.size:
        allowed = np.zeros(n_features, bool)
        if is_categorical is not None:
            allowed[: len(is_categorical)] = np.asarray(is_categorical, bool)
        n_bitsets = min(
            len(predictor.raw_left_cat_bitsets),
            len(predictor.binned_left_cat_bitsets),
        )
        if not allowed[nodes["feature_idx"][categorical]].all() or np.any(
            nodes["bitset_idx"][categorical] >= n_bitsets
        ):
            raise ValueError("a tree's categorical splits are out of range")


def _owned_trees(owner, TreePredictor) -> list:
    """The trees of a HistGradientBoosting model; ValueError unless its
    ``_predictors`` is exactly what scikit-learn builds: a list (one item per
    iteration) of lists of ``TreePredictor``."""
    predictors = getattr(owner, "_predictors", [])
    if type(predictors) is not list:
        _refuse_trees(owner, predictors)
    for per_iteration in predictors:
        if type(per_iteration) is not list:
            _refuse_trees(owner, per_iteration)
        for tree in per_iteration:
            if not isinstance(tree, TreePredictor):
                _refuse_trees(owner, tree)
    return [tree for per_iteration in predictors for tree in per_iteration]


def _refuse_trees(owner, found):
    raise ValueError(
        f"the trees of a {type(owner).__name__} are not a list of lists of "
        f"TreePredictor (found a {type(found).__name__}); refusing to load it"
    )


def check_tree_predictors(model):
    """Verify every ``TreePredictor`` in ``model``; raise ValueError otherwise.

    Each tree must belong to a HistGradientBoosting model found in ``model``
    (a tree anywhere else is refused), whose ``_predictors`` must be a list
    of lists of trees, as scikit-learn builds it, and index only nodes of its
    own tree and features of that model.
    """
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    objects = list(_objects(model))
    trees = {id(o) for o in objects if isinstance(o, TreePredictor)}
    checked = set()
    for owner in objects:
        if not isinstance(owner, BaseHistGradientBoosting):
            continue
        n_features = int(getattr(owner, "n_features_in_", 0))
        is_categorical = getattr(owner, "is_categorical_", None)
        for tree in _owned_trees(owner, TreePredictor):
            try:
                _check_nodes(tree, n_features, is_categorical)
            except ValueError as exc:
                raise ValueError(f"{exc}; refusing to load it") from None
            checked.add(id(tree))
    if trees - checked:
        raise ValueError(
            "a gradient-boosting tree outside any model was found; refusing to load it"
        )
