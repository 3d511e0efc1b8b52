"""K-fold cross-validation stratified on several labels at once."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples, check_array

from .._stack import caller_stacklevel

__all__ = ["MultilabelStratifiedKFold"]


class MultilabelStratifiedKFold(BaseCrossValidator):
    """K-fold whose folds keep the share of every label, for multi-output ``y``.

    Iterative stratification [1]_: the label with the fewest samples still
    unassigned is dealt out first, each of its samples going to the fold
    that most lacks that label (ties: the fold that lacks most samples, then
    at random, or the first such fold without ``shuffle``), until every
    sample has a fold; samples without any label go
    to the folds that lack most samples. Rare answers thus reach every fold
    in proportion, which a plain :class:`~sklearn.model_selection.KFold` over
    a few thousand galaxies does not ensure. For the 37 Galaxy Zoo vote
    fractions [2]_ the labels are the answers whose fraction reaches
    ``threshold`` (a continuous ``y`` is thresholded; a 0/1 ``y`` is used as
    it is), a split suited to cross-validating Galaxy Zoo regressors. It does
    what ``MultilabelStratifiedKFold`` of the iterative-stratification package
    does, without that dependency.

    With ``groups``, a group's samples (several cut-outs or duplicate
    entries of one galaxy, the galaxies of one field) are dealt out
    together, as one sample carrying all their labels, and never straddle
    the training and test sets of a fold.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    shuffle : bool, default=True
        Visit the samples of each label in random order and break ties at
        random, seeded by ``random_state``. False: in the order of the data,
        ties to the first fold, so that every call gives the same folds.
    random_state : int, RandomState instance or None, default=None
        Seed of the order and of the ties, with ``shuffle`` only (as for
        :class:`~sklearn.model_selection.KFold`, setting it without
        ``shuffle`` is an error).
    threshold : float, default=0.5
        A continuous ``y`` (e.g. vote fractions) counts as label ``j`` where
        ``y[:, j] >= threshold``.

    See Also
    --------
    sklearn.model_selection.StratifiedKFold : The single-label counterpart.

    References
    ----------
    .. [1] K. Sechidis, G. Tsoumakas and I. Vlahavas, "On the stratification
       of multi-label data", ECML PKDD 2011, LNCS 6913, 145-158.
    .. [2] K. W. Willett et al., "Galaxy Zoo 2: detailed morphological
       classifications for 304,122 galaxies from the Sloan Digital Sky
       Survey", MNRAS 435, 2835-2860, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators.model_selection import MultilabelStratifiedKFold
    >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]])
    >>> cv = MultilabelStratifiedKFold(n_splits=2, random_state=0)
    >>> [y[test].sum(axis=0).tolist() for _, test in cv.split(np.zeros(6), y)]
    [[2, 2], [2, 2]]
    """

    # Under metadata routing, cross_validate(..., params={"groups": g}) gives
    # the splitter its groups (the estimators' set_fit_request alone took
    # them, and the folds split groups silently).
    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits=5, *, shuffle=True, random_state=None, threshold=0.5):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state
        self.threshold = threshold

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits.

        Parameters
        ----------
        X, y, groups : object
            Ignored, for API compatibility.

        Returns
        -------
        n_splits : int
            ``n_splits``.
        """
        return self.n_splits

    def _labels(self, y, n_samples):
        names = list(y.columns) if hasattr(y, "columns") else None
        if y is None:
            raise ValueError(
                "MultilabelStratifiedKFold stratifies on y: pass y, an array of "
                "shape (n_samples, n_labels) (0/1 labels or fractions)."
            )
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or len(y) != n_samples:
            raise ValueError(
                f"y must have shape (n_samples, n_labels) with {n_samples} rows; "
                f"got shape {y.shape}."
            )
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                "MultilabelStratifiedKFold stratifies on 0/1 labels or fractions "
                f"in [0, 1]; y holds values from {y.min():g} to {y.max():g}. For "
                "class labels, use StratifiedKFold or one-hot encode them "
                "(sklearn.preprocessing.LabelBinarizer)."
            )
        if np.isin(y, (0.0, 1.0)).all():  # labels: no threshold
            return y.astype(bool), names
        threshold = self.threshold
        if not (isinstance(threshold, numbers.Real) and 0 < threshold <= 1):
            raise ValueError(
                f"threshold must be a fraction in (0, 1], got {threshold!r}: beyond, "
                "every answer or none would count as a label, and nothing would "
                "be stratified."
            )
        return y >= threshold, names

    def _warn_of_rare_labels(self, members, names, grouped):
        """Warn when a label is held by fewer units than folds."""
        counts = (members > 0).sum(axis=0)
        rare = np.flatnonzero((counts > 0) & (counts < self.n_splits))
        if len(rare):
            least = rare[np.argmin(counts[rare])]
            label = f"column {least}" if names is None else repr(names[least])
            what = "groups" if grouped else "members"
            warnings.warn(
                f"The least populated label ({label}) has only "
                f"{counts[least]} {what}, which is less than "
                f"n_splits={self.n_splits}: some folds have none of it "
                f"({len(rare)} such label(s)).",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def _iter_test_indices(self, X=None, y=None, groups=None):
        n_samples = _num_samples(X)
        k = self.n_splits
        if not isinstance(k, numbers.Integral) or k < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {k!r}.")
        if k > n_samples:
            raise ValueError(
                f"Cannot have n_splits={k} greater than the number of samples "
                f"({n_samples})."
            )
        if not self.shuffle and self.random_state is not None:
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False. "
                "You should leave random_state to its default (None), or set "
                "shuffle=True."
            )
        labels, names = self._labels(y, n_samples)
        labels = labels.astype(np.int64)
        # The units dealt out: samples, or whole groups with all their labels.
        if groups is None:
            unit = np.arange(n_samples)
        else:
            groups = np.asarray(groups)
            if groups.ndim == 0 or len(groups) != n_samples:
                raise ValueError(
                    f"groups has {1 if groups.ndim == 0 else len(groups)} rows but X "
                    f"has {n_samples} samples."
                )
            # A row per sample (coordinates): samples of one row are a group.
            unit = _group_codes(groups.reshape(n_samples, -1))
        n_units = int(unit.max()) + 1
        if n_units < k:
            raise ValueError(
                f"Cannot have n_splits={k} greater than the number of groups "
                f"({n_units})."
            )
        sizes = np.bincount(unit, minlength=n_units)
        members = np.zeros((n_units, labels.shape[1]), dtype=np.int64)
        np.add.at(members, unit, labels)
        self._warn_of_rare_labels(members, names, grouped=groups is not None)
        # Without shuffling, no randomness: ties go to the first fold.
        rng = check_random_state(self.random_state) if self.shuffle else None
        wanted = np.full(k, n_samples / k)
        wanted_label = np.outer(np.full(k, 1 / k), labels.sum(axis=0))
        fold = np.full(n_units, -1)
        left = members.copy()  # labels of the units not yet assigned
        while left.any():
            counts = left.sum(axis=0).astype(float)
            counts[counts == 0] = np.inf
            label = int(np.argmin(counts))
            units = np.flatnonzero(left[:, label])
            if self.shuffle:
                units = rng.permutation(units)
            for i in units:
                lack = wanted_label[:, label]
                best = np.flatnonzero(lack == lack.max())
                if len(best) > 1:
                    best = best[wanted[best] == wanted[best].max()]
                fold[i] = f = _pick(best, rng)
                wanted[f] -= sizes[i]
                wanted_label[f] -= members[i]
                left[i] = 0
        for i in np.flatnonzero(fold < 0):  # units without any label
            best = np.flatnonzero(wanted == wanted.max())
            fold[i] = f = _pick(best, rng)
            wanted[f] -= sizes[i]
        for f in range(k):
            yield np.flatnonzero(fold[unit] == f)

    def split(self, X, y, groups=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training data (only its length is used).
        y : array-like of shape (n_samples, n_labels)
            0/1 labels, or fractions thresholded at ``threshold``.
        groups : array-like of shape (n_samples,) or (n_samples, d), default=None
            Group labels: the samples of a group go to the same fold. With
            rows (coordinates), the samples of one row are a group.

        Yields
        ------
        train : ndarray
            The training set indices for that split.
        test : ndarray
            The testing set indices for that split.
        """
        return super().split(X, y, groups)


def _group_codes(rows):
    """One code per distinct row of ``rows`` (n_samples, d), in sorted order
    of the rows; missing values (NaN, None) are one value, whatever ``d``."""
    frame = pd.DataFrame(rows)
    return frame.groupby(list(frame.columns), dropna=False).ngroup().to_numpy()


def _pick(folds, rng):
    """One of the tied ``folds``: at random, or the first without ``rng``."""
    if rng is None or len(folds) == 1:
        return folds[0]
    return folds[rng.randint(len(folds))]
