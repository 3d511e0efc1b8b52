"""Maps of cross-validation folds: which points train, test or are left out."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._spatial import _requests_groups

__all__ = ["plot_fold_map"]

_DEFAULT_COLORS = {"train": "tab:blue", "test": "tab:orange", "excluded": "0.8"}


def plot_fold_map(
    cv,
    coords,
    *,
    groups=None,
    y=None,
    ax=None,
    ncols: int | None = None,
    s: float = 8.0,
    colors: dict | None = None,
):
    """Map the training, test and excluded points of every fold of a splitter.

    One subplot per fold. Points in neither the training nor the test set of a
    fold (the buffer of :class:`BufferedKFold`, for instance) are drawn as
    "excluded".

    Parameters
    ----------
    cv : cross-validation generator
        Any splitter with a ``split(X, y, groups)`` method.
    coords : array-like of shape (n_samples, 2)
        Point coordinates; also the ``X`` given to ``cv.split``.
    groups : array-like, default=None
        What ``cv.split`` receives as ``groups``; ``None`` passes ``coords``
        to splitters that take groups (the spatial splitters need them) and
        nothing to the others (``KFold``). Pass labels for a ``GroupKFold``.
    y : array-like of shape (n_samples,), default=None
        Passed on to ``cv.split`` (for stratified splitters).
    ax : array-like of matplotlib Axes, default=None
        At least one Axes per fold; ``None`` makes a new figure.
    ncols : int, default=None
        Subplot columns of a new figure (default: up to 5).
    s : float, default=8.0
        Marker size.
    colors : dict, default=None
        Colours for the keys ``"train"``, ``"test"`` and ``"excluded"``.

    Returns
    -------
    axes : ndarray of matplotlib Axes
        One Axes per fold, each with three scatter collections (excluded,
        train, test).

    See Also
    --------
    SpatialBlockKFold : K-fold over blocks of space.
    BufferedKFold : K-fold with a buffer around the test points.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skestimators.model_selection import BufferedKFold, plot_fold_map
    >>> coords = np.random.default_rng(0).uniform(0, 100, size=(100, 2))
    >>> axes = plot_fold_map(BufferedKFold(10.0, n_splits=3, random_state=0), coords)
    >>> len(axes)
    3
    """
    import matplotlib.pyplot as plt

    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (n_samples, 2), got {coords.shape}.")
    if not hasattr(cv, "split"):
        raise TypeError(
            f"cv must be a splitter with a split method (KFold(5), not 5), got {cv!r}."
        )
    if ncols is not None and (
        not isinstance(ncols, numbers.Integral) or isinstance(ncols, bool) or ncols < 1
    ):
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    colors = {**_DEFAULT_COLORS, **(colors or {})}
    if groups is None and (
        _requests_groups(cv) or not type(cv).__module__.startswith("sklearn.")
    ):
        # scikit-learn's KFold & co. warn when given groups they ignore; other
        # splitters (the user's) may read the coordinates without saying so.
        groups = coords
    splits = list(cv.split(coords, y, groups))
    n_folds = len(splits)
    if ax is None:
        ncols = min(n_folds, 5) if ncols is None else ncols
        nrows = math.ceil(n_folds / ncols)
        fig, grid = plt.subplots(
            nrows,
            ncols,
            figsize=(3.2 * ncols, 3.2 * nrows),
            sharex=True,
            sharey=True,
            squeeze=False,
        )
        grid = grid.ravel()
        for extra in grid[n_folds:]:
            fig.delaxes(extra)
        axes = grid[:n_folds]
    else:
        axes = np.ravel(np.asarray(ax, dtype=object))
        if len(axes) < n_folds:
            raise ValueError(f"Got {len(axes)} Axes for {n_folds} folds.")
        axes = axes[:n_folds]

    n_samples = len(coords)
    for fold, (axis, (train, test)) in enumerate(zip(axes, splits)):
        role = np.full(n_samples, "excluded", dtype=object)
        role[train] = "train"
        role[test] = "test"
        for name in ("excluded", "train", "test"):
            points = coords[role == name]
            axis.scatter(
                points[:, 0],
                points[:, 1],
                s=s,
                c=colors[name],
                label=f"{name} ({len(points)})",
                linewidths=0,
            )
        axis.set_title(f"Fold {fold}")
        axis.set_aspect("equal", adjustable="datalim")
        axis.legend(loc="best", fontsize="x-small", markerscale=1.5)
    return axes
