"""Private bases of the network classifiers and regressors.

They hold what every classifier (class labels, multilabel targets, class
weights, probabilities) or regressor (one or several targets, the loss) does
on top of the engine's :class:`~skestimators._engine.BaseNet`; the public
estimators add only their own parameters and network.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._engine import (
    BaseNet,
    NamedTargetsScoreMixin,
    encode_classification,
    encode_regression,
)
from ..nn import LOSS_NAMES

#: Constraints of the regression loss parameters (one registry of names).
LOSS_CONSTRAINTS = {
    "loss": [StrOptions(set(LOSS_NAMES)), callable],
    "loss_alpha": [Interval(numbers.Real, 0, 1, closed="both")],
    "sigma": [Interval(numbers.Real, 0, None, closed="neither")],
}
#: Constraint of the number of Monte Carlo dropout passes of ``return_std``.
MC_CONSTRAINTS = {"mc_samples": [Interval(numbers.Integral, 2, None, closed="left")]}


def check_mc_samples(estimator):
    """``mc_samples``, checked when it is used: set after fit, it skipped the
    parameter checks (1 draw gave a NaN standard deviation, 0 a scalar)."""
    value = estimator.mc_samples
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 2:
        raise ValueError(
            "mc_samples must be an integer >= 2 (a standard deviation needs two "
            f"Monte Carlo dropout passes), got {value!r}."
        )
    return int(value)


def _stack_named(raw, names):
    """A ``dict`` output (one entry per target) as one tensor, columns in ``names``."""
    if not isinstance(raw, dict):
        return raw
    return torch.cat([raw[n].reshape(len(raw[n]), -1) for n in names], 1)


class _ClassifierNet(NamedTargetsScoreMixin, ClassifierMixin, BaseNet):
    """Classification targets and probabilities (private base)."""

    # -- engine hooks ------------------------------------------------------------------
    def _prepare_targets(
        self, y, *, fitting, n_samples, targets, classes=None, sample_weight=None
    ):
        return encode_classification(
            self,
            y,
            fitting=fitting,
            n_samples=n_samples,
            targets=targets,
            classes=classes,
            mirror_swap=self._training_swap,
        )

    def _training_swap(self):
        """The permutation of the classes (or label columns) that relabels
        training samples augmented as their mirror image, or None (image
        classifiers override it)."""
        return None

    # -- public API --------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), DataFrame or MultiInput
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.
        groups : array-like of shape (n_samples,), default=None
            Group labels for the internal validation split (whole groups are
            held out); never passed to the module.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Targets.
        classes : array-like, default=None
            All the classes, required on the first call when a batch may miss
            some of them.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if not hasattr(self, "net_"):
            self._validate_params()
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
            Probabilities of each class, or of the positive class of each label.
        """
        return self._proba(self._forward(X))

    def _proba(self, raw):
        """Probabilities from the raw network output (logits)."""
        # In float64: float32 rows summed to 1 only within ~1e-7, which
        # numpy's choice(p=...) and log_loss refuse or warn about.
        raw = _stack_named(raw, self.target_names_).double()
        if self.target_type_ == "multilabel-indicator":
            return torch.sigmoid(raw).numpy()
        if self.classes_.size == 2:
            p = torch.sigmoid(raw.reshape(-1)).numpy()
            return np.column_stack([1 - p, p])
        return torch.softmax(raw, 1).numpy()

    def predict(self, X):
        """Predicted classes (or 0/1 label matrix for multilabel targets).

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predictions.
        """
        proba = self.predict_proba(X)
        if self.target_type_ == "multilabel-indicator":
            return (proba > 0.5).astype(int)
        return self.classes_[proba.argmax(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags


class _RegressorNet(NamedTargetsScoreMixin, RegressorMixin, BaseNet):
    """Regression targets and predictions (private base)."""

    def _prepare_targets(
        self, y, *, fitting, n_samples, targets, classes=None, sample_weight=None
    ):
        return encode_regression(
            self,
            y,
            fitting=fitting,
            n_samples=n_samples,
            targets=targets,
            sample_weight=sample_weight,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), DataFrame or MultiInput
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.
        groups : array-like of shape (n_samples,), default=None
            Group labels for the internal validation split; never passed to
            the module.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if not hasattr(self, "net_"):
            self._validate_params()
        return self._fit(X, y, sample_weight, partial=True)

    def predict(self, X, return_std=False):
        """Predicted targets, and optionally their standard deviation.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        return_std : bool, default=False
            Also return the standard deviation of each prediction, estimated
            by Monte Carlo dropout: the spread of ``mc_samples`` passes of
            the network with its dropout layers active (batch normalisation
            stays in inference mode). The network needs dropout.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions (dropout inactive), with the dimensionality of ``y``
            at fit.
        y_std : ndarray of the shape of ``y_pred``
            Standard deviation of the dropout passes, in the units of ``y``.
            Only returned when ``return_std`` is True.
        """
        Xv = self._validated_inputs(X)
        y_pred = self._target_values(self._forward_views(Xv, [None])[0])
        if not return_std:
            return y_pred
        draws = self._forward_views(
            Xv, [None] * check_mc_samples(self), mc_dropout=True, inspect=False
        )
        y_std = np.std([self._target_values(raw) for raw in draws], axis=0, ddof=1)
        return y_pred, y_std

    def _target_values(self, raw):
        """Predictions in the units and dimensionality of ``y`` from raw output."""
        raw = _stack_named(raw, self.target_names_)
        out = raw.reshape(raw.shape[0], -1).numpy().astype(np.float64)
        if "target_scale_" in self.__dict__:  # trained on standardised targets
            out = out * self.target_scale_ + self.target_mean_
        return out.ravel() if self.target_ndim_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
