"""Spatial cross-validation splitters: blocks of space and buffered folds.

Coordinates reach the splitters through scikit-learn's ``groups`` route: pass
the ``(n_samples, 2)`` coordinate array as ``groups`` to ``split``,
``cross_val_score``, ``cross_validate`` or ``GridSearchCV.fit``. With metadata
routing enabled, pass ``params={"groups": coords}`` instead; both splitters
request ``groups`` by default.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
from scipy.spatial import cKDTree
from sklearn.model_selection import BaseCrossValidator, KFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples

__all__ = ["BufferedKFold", "SpatialBlockKFold"]


def _check_coords(groups, n_samples: int) -> np.ndarray:
    """Validate the coordinates passed as ``groups``."""
    if groups is None:
        raise ValueError(
            "Spatial splitters need the sample coordinates: pass an array of shape "
            "(n_samples, 2) as groups, e.g. cross_val_score(..., groups=coords)."
        )
    try:
        coords = np.asarray(groups, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"groups (coordinates) must be numbers: {exc}.") from None
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(
            "groups must hold the coordinates as an array of shape (n_samples, 2); "
            f"got shape {coords.shape}."
        )
    if coords.shape[0] != n_samples:
        raise ValueError(
            f"groups has {coords.shape[0]} coordinates but X has {n_samples} samples."
        )
    if not np.isfinite(coords).all():
        raise ValueError("groups (coordinates) contains NaN or infinite values.")
    if len(coords) == 0:
        raise ValueError("No samples to split: X and groups are empty.")
    return coords


#: Most blocks along one axis (a grid finer than this is a mistake).
_MAX_BLOCKS = 2**31


def _requests_groups(cv) -> bool:
    """Whether a splitter takes ``groups`` (KFold & co. warn when given them)."""
    try:
        request = cv.get_metadata_routing().split.requests.get("groups")
    except AttributeError:  # a splitter outside sklearn's metadata API
        return True
    return request is True


def _pair(value, name):
    """One positive number, or one per axis, as an array of 2."""
    pair = np.asarray(value)
    if pair.dtype.kind not in "iuf" or pair.ndim > 1 or pair.size not in (1, 2):
        raise ValueError(
            f"{name} must be a number or a pair of numbers (one per axis), "
            f"got {value!r}."
        )
    pair = np.broadcast_to(pair, (2,))
    if not (np.isfinite(pair) & (pair > 0)).all():
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return pair


class SpatialBlockKFold(BaseCrossValidator):
    """K-fold over blocks of space, with balanced fold sizes.

    The bounding box of the coordinates is cut into blocks (squares of side
    ``block_size``, or rectangles of the box's proportions with ``n_blocks``
    per axis: on a long transect, give ``block_size``); every point belongs to the block
    it falls in, and whole blocks go to the test folds. Blocks are assigned
    largest first to the fold with the fewest points so far, which balances
    fold sizes; ``shuffle`` with ``random_state`` breaks ties between blocks of
    equal size at random.

    Holding out whole blocks keeps most training points away from the test
    points, so that spatial autocorrelation does not leak between them: the
    score then measures prediction at new places, which a random K-fold
    overstates [1]_ [2]_. Blocks should be larger than the range of the
    autocorrelation.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (at least 2).
    block_size : float or tuple of float, default=None
        Side of the blocks (one value, or one per axis), in coordinate units.
        Exactly one of ``block_size`` and ``n_blocks`` must be set.
    n_blocks : int or tuple of int, default=None
        Number of blocks along each axis of the bounding box.
    shuffle : bool, default=True
        Break ties between blocks of equal size at random.
    random_state : int, RandomState instance or None, default=None
        Seed for ``shuffle``. It only breaks ties: where the blocks all differ
        in size (clustered points), every seed gives the same folds, and
        repeated cross-validation (:func:`repeated_cv`, ``compare_variants``
        with ``n_repeats``) warns that its repeats share their folds. Vary
        ``block_size`` or ``n_blocks`` for other partitions.

    See Also
    --------
    BufferedKFold : Drop training points near the test points.
    sklearn.model_selection.GroupKFold : K-fold over given group labels.

    Notes
    -----
    The coordinates are passed as ``groups`` (shape ``(n_samples, 2)``), which
    is how ``cross_val_score``, ``cross_validate`` and ``GridSearchCV.fit``
    hand them to the splitter.

    References
    ----------
    .. [1] D. R. Roberts et al., "Cross-validation strategies for data with
       temporal, spatial, hierarchical, or phylogenetic structure",
       Ecography 40, 913-929, 2017.
    .. [2] P. Ploton et al., "Spatial validation reveals poor predictive
       performance of large-scale ecological mapping models", Nature
       Communications 11, 4540, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.model_selection import SpatialBlockKFold
    >>> coords = np.random.default_rng(0).uniform(0, 100, size=(200, 2))
    >>> cv = SpatialBlockKFold(n_splits=4, block_size=25.0, random_state=0)
    >>> [len(test) for _, test in cv.split(coords, groups=coords)]
    [51, 49, 49, 51]
    """

    __metadata_request__split = {"groups": True}

    def __init__(
        self,
        n_splits=5,
        *,
        block_size=None,
        n_blocks=None,
        shuffle=True,
        random_state=None,
    ):
        self.n_splits = n_splits
        self.block_size = block_size
        self.n_blocks = n_blocks
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of folds, ``n_splits``."""
        return self.n_splits

    def block_labels(self, coords) -> np.ndarray:
        """Label of the block each point falls in.

        Parameters
        ----------
        coords : array-like of shape (n_samples, 2)
            Point coordinates.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Integer block label, consecutive from 0 over the non-empty blocks.
        """
        coords = _check_coords(coords, _num_samples(coords))
        if (self.block_size is None) == (self.n_blocks is None):
            raise ValueError("Set exactly one of block_size and n_blocks.")
        low, high = coords.min(axis=0), coords.max(axis=0)
        if self.block_size is not None:
            size = _pair(self.block_size, "block_size").astype(float)
            shape = np.maximum(np.ceil((high - low) / size), 1)
        else:
            shape = _pair(self.n_blocks, "n_blocks")
            if not all(float(s).is_integer() for s in shape):
                raise ValueError(f"n_blocks must be integers, got {self.n_blocks!r}.")
            shape = shape.astype(float)
            size = np.where(high > low, (high - low) / shape, 1.0)
        if (shape > _MAX_BLOCKS).any():
            raise ValueError(
                f"block_size={self.block_size!r} or n_blocks={self.n_blocks!r} "
                f"cuts the bounding box into more than {_MAX_BLOCKS} blocks along "
                "an axis; choose blocks larger than the autocorrelation range."
            )
        shape = shape.astype(np.int64)
        index = np.minimum(((coords - low) // size).astype(np.int64), shape - 1)
        # Rows of block indices, labelled in lexicographic order (as a
        # flattened index, without its overflow for huge grids).
        return np.unique(index, axis=0, return_inverse=True)[1].ravel()

    def split(self, X, y=None, groups=None):
        """Generate train and test indices, one pair per fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Data; only its length is used.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        groups : array-like of shape (n_samples, 2)
            Coordinates of the samples.

        Yields
        ------
        train : ndarray
            Training set indices of the fold.
        test : ndarray
            Test set indices of the fold.
        """
        if not isinstance(self.n_splits, numbers.Integral) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {self.n_splits}.")
        if not self.shuffle and self.random_state is not None:
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False. "
                "Leave random_state at its default (None), or set shuffle=True."
            )
        n_samples = _num_samples(X)
        labels = self.block_labels(_check_coords(groups, n_samples))
        sizes = np.bincount(labels)
        if len(sizes) < self.n_splits:
            raise ValueError(
                f"Cannot split {len(sizes)} non-empty blocks into "
                f"n_splits={self.n_splits} folds; use smaller blocks or fewer splits."
            )
        order = np.arange(len(sizes))
        if self.shuffle:
            order = check_random_state(self.random_state).permutation(order)
        order = order[np.argsort(-sizes[order], kind="stable")]
        fold_of_block = np.empty(len(sizes), dtype=int)
        fold_sizes = np.zeros(self.n_splits, dtype=int)
        for block in order:
            fold = int(np.argmin(fold_sizes))
            fold_of_block[block] = fold
            fold_sizes[fold] += sizes[block]
        fold_of_sample = fold_of_block[labels]
        indices = np.arange(n_samples)
        for fold in range(self.n_splits):
            test = fold_of_sample == fold
            yield indices[~test], indices[test]


#: The distances of BufferedKFold, as the Minkowski p of scipy's KD-tree.
_MINKOWSKI_P = {"euclidean": 2.0, "chebyshev": np.inf}


class BufferedKFold(BaseCrossValidator):
    """Any K-fold whose training sets keep away from the test points.

    Runs a base splitter, then removes from each training set every point
    closer than ``buffer`` to a point of the test set, so that no training
    point is a near neighbour of a test point. Removed points are in neither
    set of that fold. Nearby samples are spatially autocorrelated: a random
    K-fold leaves near neighbours of each test point in the training set and
    measures interpolation rather than prediction at new places, which
    overstates the accuracy of a map [1]_ [2]_. A buffer of at least the
    range of that autocorrelation removes the leak; distance-based
    validation of the same kind is used to validate soil organic carbon
    models [3]_. For square patches around each point, ``metric="chebyshev"``
    with ``buffer`` equal to the patch width (window times pixel size)
    leaves no training patch that shares a pixel with a test patch; under
    the Euclidean distance, diagonal neighbours up to √2 patch widths apart
    still overlap.

    Parameters
    ----------
    buffer : float
        Minimum distance between any training point and any test point, in
        coordinate units. Training points strictly closer are dropped.
    n_splits : int, default=5
        Number of folds of the default base splitter; ignored when ``cv`` is
        given.
    cv : int, cross-validation generator, iterable or None, default=None
        Base splitter: ``None`` for ``KFold(n_splits, shuffle=True,
        random_state=random_state)``, an int for ``KFold(cv)``, any
        splitter (e.g. :class:`SpatialBlockKFold`), or an iterable of
        ``(train, test)`` index pairs (read once). The spatial splitters
        receive the coordinates as ``groups``; other splitters that request
        group labels (``GroupKFold``) are refused, since the coordinates are
        not labels. When folds are repeated with other seeds
        (:func:`~skestimators.model_selection.repeated_cv`), the base
        splitter is the one reseeded.
    random_state : int, RandomState instance or None, default=None
        Seed of the default base splitter.
    metric : {"euclidean", "chebyshev"}, default="euclidean"
        Distance between points: the straight-line distance, or the largest
        of the differences along the axes (the right one for square patches,
        see above).

    See Also
    --------
    SpatialBlockKFold : K-fold over blocks of space.

    References
    ----------
    .. [1] D. R. Roberts et al., "Cross-validation strategies for data with
       temporal, spatial, hierarchical, or phylogenetic structure",
       Ecography 40, 913-929, 2017.
    .. [2] P. Ploton et al., "Spatial validation reveals poor predictive
       performance of large-scale ecological mapping models", Nature
       Communications 11, 4540, 2020.
    .. [3] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023): distance-based
       train/validation splitting.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.model_selection import BufferedKFold
    >>> coords = np.random.default_rng(0).uniform(0, 100, size=(200, 2))
    >>> cv = BufferedKFold(10.0, n_splits=4, random_state=0)
    >>> train, test = next(cv.split(coords, groups=coords))
    >>> len(train) + len(test) < 200
    True
    """

    __metadata_request__split = {"groups": True}

    def __init__(
        self, buffer, *, n_splits=5, cv=None, random_state=None, metric="euclidean"
    ):
        self.buffer = buffer
        self.n_splits = n_splits
        # An iterable of (train, test) pairs is read once: a generator would
        # be used up by get_n_splits, and split would then give no fold.
        self.cv = list(cv) if isinstance(cv, Iterator) else cv
        self.random_state = random_state
        self.metric = metric

    def _base_cv(self):
        if self.cv is None:
            return KFold(self.n_splits, shuffle=True, random_state=self.random_state)
        return check_cv(self.cv)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of folds of the base splitter."""
        return self._base_cv().get_n_splits(X, y, groups)

    def split(self, X, y=None, groups=None):
        """Generate buffered train and test indices, one pair per fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Data; passed on to the base splitter.
        y : array-like of shape (n_samples,), default=None
            Passed on to the base splitter.
        groups : array-like of shape (n_samples, 2)
            Coordinates of the samples; also passed on to the base splitter.

        Yields
        ------
        train : ndarray
            Training set indices, without the points within ``buffer`` of the
            test set.
        test : ndarray
            Test set indices of the base fold.
        """
        if not isinstance(self.buffer, numbers.Real) or not self.buffer >= 0:
            raise ValueError(
                f"buffer must be a non-negative number, got {self.buffer!r}."
            )
        if self.metric not in _MINKOWSKI_P:
            raise ValueError(
                f"metric must be one of {sorted(_MINKOWSKI_P)}, got {self.metric!r}."
            )
        coords = _check_coords(groups, _num_samples(X))
        base = self._base_cv()
        base_groups = coords if _requests_groups(base) else None
        if base_groups is not None and not isinstance(
            base, (SpatialBlockKFold, BufferedKFold)
        ):
            raise ValueError(
                f"BufferedKFold passes the coordinates as groups to its base "
                f"splitter, but {type(base).__name__} expects group labels. Use "
                "a spatial base splitter (SpatialBlockKFold), or one that takes "
                "no groups."
            )
        for fold, (train, test) in enumerate(base.split(X, y, base_groups)):
            train, test = np.asarray(train), np.asarray(test)
            if len(test) and len(train) and self.buffer > 0:
                # No distance_upper_bound: it is squared internally and
                # underflows for tiny buffers.
                distance, _ = cKDTree(coords[test]).query(
                    coords[train], k=1, p=_MINKOWSKI_P[self.metric]
                )
                train = train[distance >= self.buffer]
            if len(train) == 0:
                raise ValueError(
                    f"Fold {fold}: every training point lies within buffer="
                    f"{self.buffer} of the test set; use a smaller buffer or a "
                    "spatial base splitter with more folds."
                )
            yield train, test
