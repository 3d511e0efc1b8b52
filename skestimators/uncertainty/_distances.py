"""Spatial calibration folds that hold samples out as far as a map does."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import wasserstein_distance
from sklearn.utils import check_random_state

from ..model_selection import SpatialBlockKFold

__all__ = ["calibration_block_size"]


def calibration_block_size(
    coords, prediction_coords, *, block_sizes, n_splits=5, random_state=None
) -> float:
    """The block size whose spatial folds mimic the distances of a prediction task.

    Conformal intervals hold their coverage when the calibration residuals
    resemble the errors of the predictions they bound. The error of a
    spatial prediction grows with the distance to the nearest training
    sample, so the held-out samples of the calibration folds should be as far
    from their training samples as the places to predict are from the
    samples: the idea of nearest-neighbour distance matching [1]_. For each
    candidate block size, :class:`~skestimators.model_selection.SpatialBlockKFold`
    splits ``coords``; the size whose distances from held-out samples to
    their nearest training sample are distributed most like those from
    ``prediction_coords`` to their nearest sample (the smallest Wasserstein
    distance between the two, as k-fold NNDM does [2]_) is returned. The
    whole distribution counts: a map of which a share lies far from every
    sample gets blocks that hold samples out that far, even when most of it
    is near. Only coordinates are read, never targets.

    A ``UserWarning`` says when more than 5 % of ``prediction_coords`` lie
    farther from every sample than 99 % of the held-out samples of the
    chosen folds: intervals calibrated on these folds extrapolate there.

    Parameters
    ----------
    coords : array-like of shape (n_samples, 2)
        Coordinates of the training (calibration) samples.
    prediction_coords : array-like of shape (n_points, 2)
        Where the model will predict: the pixels of a map, or the test fold
        of an outer spatial cross-validation.
    block_sizes : array-like of float
        The candidate block sizes, in the units of the coordinates. A
        candidate too large to divide ``coords`` into ``n_splits`` non-empty
        blocks is skipped.
    n_splits : int, default=5
        Number of folds of the calibration splitter.
    random_state : int, RandomState instance or None, default=None
        Seeds the splitter (ties between blocks of equal size); every
        candidate is split with the same seed.

    Returns
    -------
    block_size : float
        The candidate to pass to ``SpatialBlockKFold(block_size=...)`` as the
        calibration folds.

    References
    ----------
    .. [1] C. Milà, J. Mateu, E. Pebesma and H. Meyer, "Nearest neighbour
       distance matching Leave-One-Out Cross-Validation for map validation",
       Methods in Ecology and Evolution 13, 1304-1316, 2022.
    .. [2] J. Linnenbrink, C. Milà, M. Ludwig and H. Meyer, "kNNDM CV:
       k-fold nearest-neighbour distance matching cross-validation for map
       accuracy estimation", Geoscientific Model Development 17, 5897-5912,
       2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.uncertainty import calibration_block_size
    >>> rng = np.random.default_rng(0)
    >>> coords = rng.uniform(0, 100, size=(300, 2))
    >>> far = rng.uniform(200, 300, size=(50, 2))  # far from every sample
    >>> near = coords[:50] + 0.5  # next to samples
    >>> sizes = [5.0, 10.0, 25.0]
    >>> # It warns too: the far points lie beyond every calibration distance.
    >>> calibration_block_size(coords, far, block_sizes=sizes, random_state=0)
    25.0
    >>> calibration_block_size(coords, near, block_sizes=sizes, random_state=0)
    5.0
    """
    coords = _check_xy(coords, "coords")
    prediction_coords = _check_xy(prediction_coords, "prediction_coords")
    if not isinstance(n_splits, numbers.Integral) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}.")
    sizes = np.asarray(block_sizes, dtype=float).ravel()
    if sizes.size == 0:
        raise ValueError("block_sizes must hold at least one candidate block size.")
    if not (np.isfinite(sizes).all() and (sizes > 0).all()):
        raise ValueError(f"block_sizes must be finite and positive, got {sizes}.")
    seed = random_state
    if not isinstance(random_state, numbers.Integral):  # one draw for all
        seed = check_random_state(random_state).randint(2**31 - 1)
    target = cKDTree(coords).query(prediction_coords)[0]
    best, best_distance, best_reach, too_large = None, np.inf, None, []
    for size in sizes:
        cv = SpatialBlockKFold(
            n_splits=n_splits, block_size=float(size), shuffle=True, random_state=seed
        )
        if np.unique(cv.block_labels(coords)).size < n_splits:
            too_large.append(float(size))  # too few blocks for n_splits folds
            continue
        held_out = np.concatenate(
            [
                cKDTree(coords[train]).query(coords[test])[0]
                for train, test in cv.split(coords, groups=coords)
            ]
        )
        distance = wasserstein_distance(held_out, target)
        if distance < best_distance:
            # 99 % of the held-out samples: one isolated sample does not
            # stretch the reach of the folds.
            reach = np.quantile(held_out, 0.99)
            best, best_distance, best_reach = float(size), distance, reach
    if best is None:
        raise ValueError(
            f"None of the block_sizes {too_large} splits coords into at least "
            f"n_splits={n_splits} non-empty blocks (coords hold "
            f"{len(np.unique(coords, axis=0))} distinct points); give smaller "
            "candidates or fewer splits."
        )
    beyond = float(np.mean(target > best_reach))
    if beyond > 0.05:
        warnings.warn(
            f"{beyond:.0%} of prediction_coords lie farther from every sample "
            f"than 99 % of the held-out samples of the calibration folds "
            f"({best_reach:.4g}, "
            f"block_size={best:g}): intervals calibrated on these folds "
            "extrapolate there.",
            UserWarning,
            stacklevel=2,
        )
    return best


def _check_xy(coords, name) -> np.ndarray:
    """``coords`` as a finite float array of shape ``(n, 2)``, n >= 1."""
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
        raise ValueError(
            f"{name} must be an array of shape (n_points, 2) with at least one "
            f"point; got shape {coords.shape}."
        )
    if not np.isfinite(coords).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return coords
