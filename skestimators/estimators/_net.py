"""Generic network estimators for any user ``torch.nn.Module``."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._engine import BaseNet, TargetOptions, fill_doc
from .._engine._targets import (
    class_weight_samples,
    encode_classification,
    encode_regression,
)
from ..nn import LOSS_NAMES, MLP

_MODULE = [None, type, torch.nn.Module]


def _stack_named(raw, names):
    """A ``dict`` output (one entry per target) as one tensor, columns in ``names``."""
    if not isinstance(raw, dict):
        return raw
    return torch.cat([raw[n].reshape(len(raw[n]), -1) for n in names], 1)


@fill_doc(max_epochs=20, batch_size=32, lr=0.001)
class NetClassifier(ClassifierMixin, BaseNet):
    """Classifier wrapping any ``torch.nn.Module``: binary, multiclass or multilabel.

    The network receives ``X`` as one tensor (arrays and DataFrames of any
    number of dimensions) or, for a :class:`~skestimators.MultiInput`, one
    keyword argument per named input. It returns logits: one column for binary
    targets, one per class for multiclass targets, one per label for multilabel
    targets (``y`` a 0/1 matrix), or a ``dict`` with one logit tensor per label
    named like the columns of ``y``.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. A class is instantiated in ``fit`` with ``module_params``
        plus, when its constructor accepts them, ``input_shape`` (the shape of
        one sample, or a dict of shapes per named input) and ``n_outputs``.
        An instance is deep-copied (its initial weights are reused at every
        fit). None uses :class:`~skestimators.nn.MLP`.
    module_params : dict or None, default=None
        Keyword arguments of the module class (tune them as
        ``module_params={{...}}`` in a search).
    {training_params}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss (binary and multiclass: per
        sample; multilabel with ``"balanced"``: positive-class weight per label).
    target_weights : dict, array-like or None, default=None
        Multilabel only: loss weight of each label (by name or position).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels; for multilabel targets one ``array([0, 1])`` per label,
        as in :class:`~sklearn.ensemble.RandomForestClassifier`.
    target_names_ : list of str
        Names of the targets (columns of a DataFrame ``y``).
    {fitted_attrs}

    See Also
    --------
    NetRegressor : The same for continuous targets.
    SpectraAuxClassifier : A ready-made two-input network for spectra.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skestimators import NetClassifier
    >>> X, y = make_classification(200, 10, random_state=0)
    >>> clf = NetClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    >>> list(clf.history_.columns[:2])
    ['train_loss', 'valid_loss']
    """

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        "module": _MODULE,
        "module_params": [None, dict],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "target_weights": [None, dict, "array-like"],
    }
    _default_module = MLP

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        max_epochs=20,
        batch_size=32,
        lr=0.001,
        optimizer="adam",
        weight_decay=0.0,
        lr_scheduler=None,
        lr_scheduler_params=None,
        early_stopping=True,
        validation_fraction=0.1,
        validation_cv=None,
        patience=10,
        tol=1e-4,
        gradient_clip=None,
        device="auto",
        amp=None,
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
        checkpoint=None,
        class_weight=None,
        target_weights=None,
    ):
        self.module = module
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_scheduler = lr_scheduler
        self.lr_scheduler_params = lr_scheduler_params
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_cv = validation_cv
        self.patience = patience
        self.tol = tol
        self.gradient_clip = gradient_clip
        self.device = device
        self.amp = amp
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.class_weight = class_weight
        self.target_weights = target_weights

    # -- engine hooks ------------------------------------------------------------------
    def _prepare_targets(self, y, *, fitting, n_samples, targets, classes=None):
        return encode_classification(
            self,
            y,
            fitting=fitting,
            n_samples=n_samples,
            targets=targets,
            classes=classes,
        )

    def _target_options(self):
        return TargetOptions(
            class_weight=self.class_weight, target_weights=self.target_weights
        )

    def _class_sample_weights(self, y_strat, weights, targets):
        return class_weight_samples(
            self.classes_, targets.class_weight, y_strat, weights
        )

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
        self : NetClassifier
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
        self : NetClassifier
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
        raw = _stack_named(raw, self.target_names_)
        if self.target_type_ == "multilabel-indicator":
            return torch.sigmoid(raw).numpy().astype(np.float64)
        if self.classes_.size == 2:
            p = torch.sigmoid(raw.reshape(-1)).numpy().astype(np.float64)
            return np.column_stack([1 - p, p])
        return torch.softmax(raw, 1).numpy().astype(np.float64)

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


@fill_doc(max_epochs=20, batch_size=32, lr=0.001)
class NetRegressor(RegressorMixin, BaseNet):
    """Regressor wrapping any ``torch.nn.Module``, for one or several targets.

    The network returns ``(n_samples, n_targets)`` values (or ``(n_samples,)``
    for one target), or a ``dict`` with one output per target named like the
    columns of ``y``. Use :class:`~sklearn.compose.TransformedTargetRegressor`
    to train on log or standardised targets.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. A class is instantiated in ``fit`` with ``module_params``
        plus, when its constructor accepts them, ``input_shape`` and
        ``n_outputs`` (the number of targets). None uses
        :class:`~skestimators.nn.MLP`.
    module_params : dict or None, default=None
        Keyword arguments of the module class.
    {training_params}
    loss : {{"mse", "l1", "huber", "composite_l1", "composite_l2"}} or callable, \
default="mse"
        Element-wise loss ``(pred, target) -> tensor``; the composite losses
        add a chi²-scaled term (see :func:`skestimators.nn.elementwise_loss`).
    loss_alpha : float, default=0.5
        Composite losses: weight of the L1/L2 term (the chi² term gets
        ``1 - loss_alpha``), as in the soil-carbon seed.
    sigma : float, default=3.0
        Composite losses: error scale of the chi² term ``(error / sigma)**2``.
    target_weights : dict, array-like or None, default=None
        Loss weight of each target (by name or position).

    Attributes
    ----------
    n_targets_ : int
        Number of targets.
    target_names_ : list of str
        Names of the targets (columns of a DataFrame ``y``).
    {fitted_attrs}

    See Also
    --------
    NetClassifier : The same for class labels.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> X, y = make_regression(200, 5, random_state=0)
    >>> reg = NetRegressor(max_epochs=3, random_state=0).fit(X, y / 100)
    >>> reg.predict(X[:4]).shape
    (4,)
    """

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        "module": _MODULE,
        "module_params": [None, dict],
        "loss": [
            StrOptions(set(LOSS_NAMES)),
            callable,
        ],
        "loss_alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "sigma": [Interval(numbers.Real, 0, None, closed="neither")],
        "target_weights": [None, dict, "array-like"],
    }
    _default_module = MLP

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        max_epochs=20,
        batch_size=32,
        lr=0.001,
        optimizer="adam",
        weight_decay=0.0,
        lr_scheduler=None,
        lr_scheduler_params=None,
        early_stopping=True,
        validation_fraction=0.1,
        validation_cv=None,
        patience=10,
        tol=1e-4,
        gradient_clip=None,
        device="auto",
        amp=None,
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
        checkpoint=None,
        loss="mse",
        loss_alpha=0.5,
        sigma=3.0,
        target_weights=None,
    ):
        self.module = module
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_scheduler = lr_scheduler
        self.lr_scheduler_params = lr_scheduler_params
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_cv = validation_cv
        self.patience = patience
        self.tol = tol
        self.gradient_clip = gradient_clip
        self.device = device
        self.amp = amp
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.loss = loss
        self.loss_alpha = loss_alpha
        self.sigma = sigma
        self.target_weights = target_weights

    def _prepare_targets(self, y, *, fitting, n_samples, targets, classes=None):
        return encode_regression(
            self, y, fitting=fitting, n_samples=n_samples, targets=targets
        )

    def _target_options(self):
        return TargetOptions(
            target_weights=self.target_weights,
            loss=self.loss,
            loss_params={"loss_alpha": self.loss_alpha, "sigma": self.sigma},
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
        self : NetRegressor
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
        self : NetRegressor
            The updated estimator.
        """
        if not hasattr(self, "net_"):
            self._validate_params()
        return self._fit(X, y, sample_weight, partial=True)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions, with the dimensionality of ``y`` at fit.
        """
        raw = _stack_named(self._forward(X), self.target_names_)
        out = raw.reshape(raw.shape[0], -1).numpy().astype(np.float64)
        return out.ravel() if self.target_ndim_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
