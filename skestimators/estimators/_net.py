"""Generic network estimators for any user ``torch.nn.Module``."""

from __future__ import annotations

import torch
from sklearn.utils._param_validation import StrOptions

from .._engine import BaseNet, TargetOptions, fill_doc, instantiate_module
from ..nn import MLP
from ._base import LOSS_CONSTRAINTS, MC_CONSTRAINTS, _ClassifierNet, _RegressorNet

_MODULE = [None, StrOptions({"mlp"}), type, torch.nn.Module]


def _build(module, module_params, input_shape, n_outputs):
    """The network of the generic estimators: ``"mlp"``/None is the MLP."""
    module = MLP if module in (None, "mlp") else module
    return instantiate_module(module, module_params, input_shape, n_outputs, MLP)


@fill_doc
class NetClassifier(_ClassifierNet):
    """Classifier wrapping any ``torch.nn.Module``: binary, multiclass or multilabel.

    The network receives ``X`` as one tensor (arrays and DataFrames of any
    number of dimensions) or, for a :class:`~skestimators.MultiInput`, one
    keyword argument per named input. It returns logits: one column for binary
    targets, one per class for multiclass targets, one per label for multilabel
    targets (``y`` a 0/1 matrix), or a ``dict`` with one logit tensor per label
    named like the columns of ``y``.

    Parameters
    ----------
    module : "mlp", torch.nn.Module class or instance, default=None
        The network. A class is instantiated in ``fit`` with ``module_params``
        plus, when its constructor accepts them, ``input_shape`` (the shape of
        one sample, or a dict of shapes per named input) and ``n_outputs``.
        An instance is deep-copied (its initial weights are reused at every
        fit). None or ``"mlp"`` uses :class:`~skestimators.nn.MLP` (one
        hidden layer of 64 units; set ``width`` and ``depth`` through
        ``module_params``).
    module_params : dict or None, default=None
        Keyword arguments of the module class (tune them as
        ``module_params={...}`` in a search).
    {training_params}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss (binary and multiclass: as a
        logit adjustment, ``-log`` of each class's weight added to its logit
        inside the training loss, which leads to the decision rule of the
        weighted loss with every sample at weight one, while the validation
        loss weighs each sample by its class; multilabel with
        ``"balanced"``: positive-class weight per label). ``partial_fit``
        keeps the weights of its first call; there, a class of ``classes``
        without samples gets weight one, with a warning.
    target_weights : dict, array-like or None, default=None
        Multilabel only: loss weight of each label (by name or position).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or (n_labels, 2)
        Class labels; for multilabel targets one row ``[0, 1]`` per label
        (an array, which ``cross_val_predict(method="predict_proba")`` reads
        along with the single probability array).
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

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        max_epochs="auto",
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
        super().__init__(
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            lr_scheduler=lr_scheduler,
            lr_scheduler_params=lr_scheduler_params,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            validation_cv=validation_cv,
            patience=patience,
            tol=tol,
            gradient_clip=gradient_clip,
            device=device,
            amp=amp,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            checkpoint=checkpoint,
        )
        self.module = module
        self.module_params = module_params
        self.class_weight = class_weight
        self.target_weights = target_weights

    def _make_module(self, input_shape, n_outputs):
        return _build(self.module, self.module_params, input_shape, n_outputs)

    def _target_options(self):
        return TargetOptions(
            class_weight=self.class_weight, target_weights=self.target_weights
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # batches are made dense one at a time
        tags.input_tags.three_d_array = True  # N-D X: the default MLP flattens it
        return tags


@fill_doc
class NetRegressor(_RegressorNet):
    """Regressor wrapping any ``torch.nn.Module``, for one or several targets.

    The network returns ``(n_samples, n_targets)`` values (or ``(n_samples,)``
    for one target), or a ``dict`` with one output per target named like the
    columns of ``y``.

    With the losses ``"mse"`` and ``"l1"`` the network trains on targets
    standardised per column (zero mean and unit variance on the training
    data of the first ``fit`` or ``partial_fit``) and predictions are
    returned in the original units, so targets of any scale (a log
    concentration near 6, a price in the thousands) need no preparation;
    ``train_loss``, ``valid_loss`` and ``valid_<target>_rmse`` of
    ``history_`` are in standardised units. The other losses have
    parameters in target units (``sigma``, the Huber threshold) and train
    on the targets as given. Use
    :class:`~sklearn.compose.TransformedTargetRegressor` to train on log
    targets.

    Parameters
    ----------
    module : "mlp", torch.nn.Module class or instance, default=None
        The network. A class is instantiated in ``fit`` with ``module_params``
        plus, when its constructor accepts them, ``input_shape`` and
        ``n_outputs`` (the number of targets). None or ``"mlp"`` uses
        :class:`~skestimators.nn.MLP`.
    module_params : dict or None, default=None
        Keyword arguments of the module class.
    {training_params}
    loss : {"mse", "l1", "huber", "composite_l1", "composite_l2"} or callable, \
default="mse"
        Element-wise loss ``(pred, target) -> tensor``; the composite losses
        add a chi²-scaled term (see :func:`skestimators.nn.elementwise_loss`).
    loss_alpha : float, default=0.5
        Composite losses: weight of the L1/L2 term (the chi² term gets
        ``1 - loss_alpha``), as ``--loss_alpha`` of the CNN-LSTM soil
        organic carbon model (see :class:`~skestimators.nn.CompositeLoss`).
    sigma : float, default=3.0
        Composite losses: error scale of the chi² term ``(error / sigma)**2``.
    target_weights : dict, array-like or None, default=None
        Loss weight of each target (by name or position).
    mc_samples : int, default=30
        Number of Monte Carlo dropout passes behind ``predict(X,
        return_std=True)`` (the network needs dropout).

    Attributes
    ----------
    n_targets_ : int
        Number of targets.
    target_names_ : list of str
        Names of the targets (columns of a DataFrame ``y``).
    target_mean_ : ndarray of shape (n_targets,)
        Mean subtracted from each target for training. Only with the losses
        trained on standardised targets (``"mse"``, ``"l1"``).
    target_scale_ : ndarray of shape (n_targets,)
        Standard deviation each target is divided by for training (1 for a
        constant target). Only with the losses trained on standardised
        targets.
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
        **LOSS_CONSTRAINTS,
        "target_weights": [None, dict, "array-like"],
        **MC_CONSTRAINTS,
    }

    def __init__(
        self,
        module=None,
        *,
        module_params=None,
        max_epochs="auto",
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
        mc_samples=30,
    ):
        super().__init__(
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            lr_scheduler=lr_scheduler,
            lr_scheduler_params=lr_scheduler_params,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            validation_cv=validation_cv,
            patience=patience,
            tol=tol,
            gradient_clip=gradient_clip,
            device=device,
            amp=amp,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            checkpoint=checkpoint,
        )
        self.module = module
        self.module_params = module_params
        self.loss = loss
        self.loss_alpha = loss_alpha
        self.sigma = sigma
        self.target_weights = target_weights
        self.mc_samples = mc_samples

    def _make_module(self, input_shape, n_outputs):
        return _build(self.module, self.module_params, input_shape, n_outputs)

    def _target_options(self):
        return TargetOptions(
            target_weights=self.target_weights,
            loss=self.loss,
            loss_params={"loss_alpha": self.loss_alpha, "sigma": self.sigma},
            standardize=isinstance(self.loss, str) and self.loss in ("mse", "l1"),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # batches are made dense one at a time
        tags.input_tags.three_d_array = True  # N-D X: the default MLP flattens it
        return tags
