"""Soft voting over classifiers, for single-label and multilabel targets."""

from __future__ import annotations

import numpy as np
from scipy.sparse import issparse
from sklearn.base import ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from .._engine import NamedTargetsScoreMixin, openmp_threads, target_names

__all__ = ["SoftVotingClassifier"]


class SoftVotingClassifier(NamedTargetsScoreMixin, ClassifierMixin, _BaseComposition):
    """Average the predicted probabilities of several classifiers.

    Like :class:`sklearn.ensemble.VotingClassifier` with ``voting="soft"``,
    and also for multilabel targets (``y`` of shape ``(n_samples, n_labels)``
    of 0/1, such as water and cloud of an exoplanet), which scikit-learn's
    voting classifier rejects. ``X`` is handed to every member untouched, so
    members may be pipelines taking a :class:`~skestimators.MultiInput`, and
    networks may vote with gradient boosting.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The members, each with ``fit`` and ``predict_proba``. Each is cloned
        and fitted on the same ``X, y``; a member set to ``"drop"`` is left
        out.
    weights : array-like of shape (n_estimators,) or None, default=None
        Weight of each member's probabilities; None weighs them equally.

    Attributes
    ----------
    estimators_ : list of estimator
        The fitted members, in the order of ``estimators``.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name (``"drop"`` for the members left out).
    classes_ : ndarray of shape (n_classes,) or (n_labels, 2)
        Class labels; for multilabel ``y``, one row ``[0, 1]`` per label.
    target_names_ : list of str
        Names of the targets: the columns of a DataFrame ``y`` (``water``,
        ``cloud``), else ``y0``, ``y1``, ... (``y`` for one target).
    target_type_ : str
        ``"binary"``, ``"multiclass"`` or ``"multilabel-indicator"``.
    n_features_in_ : int
        Number of features seen by the first member during ``fit`` (only
        when it defines it).
    feature_names_in_ : ndarray of str
        Feature names seen by the first member during ``fit`` (only when it
        defines them).

    See Also
    --------
    sklearn.ensemble.VotingClassifier : Single-label voting.
    skestimators.recipes.exoplanet_pipeline : ``variant="blend"`` uses this.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skestimators.ensemble import SoftVotingClassifier
    >>> X, y = make_multilabel_classification(60, n_classes=2, random_state=0)
    >>> vote = SoftVotingClassifier(
    ...     [("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ...      ("knn", KNeighborsClassifier())]
    ... ).fit(X, y)
    >>> vote.predict_proba(X).shape, vote.predict(X).shape
    ((60, 2), (60, 2))
    """

    _parameter_constraints: dict = {
        "estimators": [list],
        "weights": ["array-like", None],
    }

    def __init__(self, estimators, *, weights=None):
        self.estimators = estimators
        self.weights = weights

    # -- parameters (nested like sklearn's own ensembles) -----------------------------
    def get_params(self, deep=True):
        """Parameters of this ensemble and, with ``deep``, of its members."""
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters of this ensemble or, as ``<name>__<param>``, of members."""
        self._set_params("estimators", **params)
        return self

    # -- fitting -----------------------------------------------------------------------
    def _check_members(self):
        """The active ``(name, estimator)`` pairs, once they and ``weights``
        are checked."""
        if not isinstance(self.estimators, list) or not self.estimators:
            raise ValueError(
                "estimators must be a non-empty list of (name, estimator) pairs."
            )
        try:
            names, members = zip(*self.estimators)
        except (TypeError, ValueError):
            raise ValueError(
                "estimators must be a list of (name, estimator) pairs."
            ) from None
        self._validate_names(names)
        active = [(n, m) for n, m in self.estimators if not _dropped(m)]
        if not active:
            raise ValueError("All estimators are 'drop'; at least one must vote.")
        for name, member in active:
            if not hasattr(member, "predict_proba"):
                raise TypeError(
                    f"Estimator {name!r} ({type(member).__name__}) has no "
                    "predict_proba; soft voting needs probabilities."
                )
        self._voting_weights([_dropped(m) for m in members])  # read at prediction
        return active

    def _voting_weights(self, dropped):
        """``weights`` of the members that vote (``dropped``: one flag per
        member), checked; None for equal weights. Read at every prediction,
        as scikit-learn's voting reads them: ``set_params(weights=...)``
        after ``fit`` reweighs the fitted members."""
        if self.weights is None:
            return None
        weights = np.asarray(self.weights, dtype=float)
        if weights.shape != (len(dropped),):
            raise ValueError(
                f"weights has shape {weights.shape}, but there are "
                f"{len(dropped)} estimators."
            )
        valid = np.all(np.isfinite(weights)) and (weights >= 0).all()
        weights = weights[~np.asarray(dropped, dtype=bool)]
        if not valid or weights.sum() <= 0:
            raise ValueError(
                "weights must be finite, non-negative and not all zero (over "
                f"the estimators that are not 'drop'), got {self.weights!r}."
            )
        return weights

    def fit(self, X, y, sample_weight=None):
        """Fit a clone of every member on ``X, y``.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs, passed to every member as they are.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 matrix of labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every member's ``fit`` when given.

        Returns
        -------
        self : SoftVotingClassifier
            Fitted ensemble.
        """
        self._validate_params()
        active = self._check_members()
        if y is None:
            raise ValueError(
                "SoftVotingClassifier requires y to be passed, but the target y is "
                "None."
            )
        if issparse(y):  # a sparse label matrix, as scikit-learn's binarizers give
            y = y_arr = y.toarray()  # members too: not every one takes it sparse
        else:
            y_arr = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        check_classification_targets(y_arr)
        target = type_of_target(y_arr, input_name="y")
        if target not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"Unknown label type: {target!r}. SoftVotingClassifier needs class "
                "labels or a 0/1 label matrix."
            )
        if target == "multilabel-indicator" and not np.isin(y_arr, (0, 1)).all():
            raise ValueError(
                "SoftVotingClassifier needs a multilabel y as a 0/1 label matrix "
                "(1 = the label applies); got the values "
                f"{np.unique(y_arr).tolist()}. Map them to 0 and 1."
            )
        if target != "multilabel-indicator" and np.unique(y_arr).size == 1:
            raise ValueError(
                "SoftVotingClassifier needs samples of at least two classes in y; "
                f"got one class: {np.unique(y_arr)[0]!r}."
            )
        with openmp_threads():  # boosting members: no spinning on busy cores
            self.estimators_ = [
                clone(m).fit(X, y, **_weight_kwargs(name, m, sample_weight))
                for name, m in active
            ]
        fitted = iter(self.estimators_)
        self.named_estimators_ = Bunch(
            **{n: "drop" if _dropped(m) else next(fitted) for n, m in self.estimators}
        )
        self.target_type_ = target
        self.target_names_ = target_names(y, y_arr.shape[1] if y_arr.ndim == 2 else 1)
        if self._multilabel:
            self.classes_ = np.tile(np.array([0, 1]), (y_arr.shape[1], 1))
        else:
            self.classes_ = np.unique(y_arr)
        return self

    # -- prediction --------------------------------------------------------------------
    @property
    def _multilabel(self):
        return self.target_type_ == "multilabel-indicator"

    def _member_proba(self, member, X):
        proba = member.predict_proba(X)
        if self._multilabel:
            if isinstance(proba, list):  # MultiOutputClassifier, trees, kNN
                classes = getattr(member, "classes_", None)
                return np.column_stack(
                    [
                        _positive(p, None if classes is None else classes[j])
                        for j, p in enumerate(proba)
                    ]
                )
            return np.asarray(proba, dtype=float)
        classes = member.classes_
        if isinstance(proba, list):
            # A multi-output member (MultiOutputClassifier) fitted on one
            # column of y: one array of probabilities in a list.
            if len(proba) != 1:
                raise ValueError(
                    f"Member {type(member).__name__} returned probabilities for "
                    f"{len(proba)} targets; y has one column of classes."
                )
            proba, classes = proba[0], classes[0]
        # Align the member's columns with the ensemble's classes.
        proba = np.asarray(proba, dtype=float)
        out = np.zeros((proba.shape[0], len(self.classes_)))
        index = np.searchsorted(self.classes_, classes)
        out[:, index] = proba
        return out

    def predict_proba(self, X):
        """Weighted average of the members' probabilities.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
            Class probabilities, or the probability of each label.
        """
        check_is_fitted(self, "estimators_")
        with openmp_threads():
            probas = [self._member_proba(m, X) for m in self.estimators_]
        dropped = [_dropped(m) for m in self.named_estimators_.values()]
        weights = self._voting_weights(dropped)
        return np.average(np.stack(probas), axis=0, weights=weights)

    def predict(self, X):
        """Most probable class, or each label with probability above one half.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predicted classes, or a 0/1 label matrix.
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def n_features_in_(self):
        """Number of features seen by the first member during ``fit``."""
        try:
            check_is_fitted(self, "estimators_")
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute."
            ) from exc
        return self.estimators_[0].n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features seen by the first member during ``fit``."""
        try:
            check_is_fitted(self, "estimators_")
            return self.estimators_[0].feature_names_in_
        except (NotFittedError, AttributeError) as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no feature_names_in_ attribute."
            ) from exc

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            members = [get_tags(m) for _, m in self.estimators if not _dropped(m)]
        except (AttributeError, TypeError, ValueError):  # invalid: fit says so
            return tags
        tags.input_tags.allow_nan = all(t.input_tags.allow_nan for t in members)
        tags.input_tags.sparse = all(t.input_tags.sparse for t in members)
        tags.classifier_tags.multi_label = all(
            t.classifier_tags is not None and t.classifier_tags.multi_label
            for t in members
        )
        return tags


def _weight_kwargs(name, member, sample_weight):
    """``sample_weight`` as ``member.fit`` takes it (a Pipeline: its last step)."""
    if sample_weight is None:
        return {}
    if isinstance(member, Pipeline):
        step, last = member.steps[-1]
        if has_fit_parameter(last, "sample_weight"):
            return {f"{step}__sample_weight": sample_weight}
    elif has_fit_parameter(member, "sample_weight"):
        return {"sample_weight": sample_weight}
    raise TypeError(
        f"Estimator {name!r} ({type(member).__name__}) does not accept "
        "sample_weight in fit; drop it from the ensemble or fit without weights."
    )


def _dropped(member) -> bool:
    return isinstance(member, str) and member == "drop"


def _positive(proba, classes):
    """P(label = 1) from one label's ``(n, n_classes)`` probabilities.

    A member fitted on a label that was constant in its training data
    returns one column, for that single class: P(1) is then 1 or 0.
    """
    proba = np.asarray(proba, dtype=float).reshape(len(proba), -1)
    if classes is None:
        classes = np.arange(proba.shape[1])
    hit = np.flatnonzero(np.asarray(classes) == 1)
    return proba[:, hit[0]] if hit.size else np.zeros(len(proba))
