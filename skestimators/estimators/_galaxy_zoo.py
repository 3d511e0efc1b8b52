"""GalaxyZooRegressor: galaxy images -> the 37 vote fractions of the Galaxy Zoo."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import StrOptions

from .._engine import (
    BaseNet,
    TargetOptions,
    caller_stacklevel,
    encode_regression,
    fill_doc,
)
from ..galaxy_zoo import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS, _as_targets
from ..nn import LOSS_NAMES
from ._base import MC_CONSTRAINTS, _RegressorNet, check_mc_samples
from ._image_base import IMAGE_CONSTRAINTS, ImageNetMixin, _image_doc


@fill_doc
@_image_doc
class GalaxyZooRegressor(ImageNetMixin, _RegressorNet):
    """Convolutional network predicting the 37 Galaxy Zoo vote fractions.

    ``X`` holds galaxy images as ``(n, channels, height, width)``,
    ``(n, height, width, channels)`` or ``(n, height, width)`` (one
    channel); ``uint8`` pixels are scaled to [0, 1], other dtypes are used
    as they are. ``y`` holds the answers of the Kaggle Galaxy Challenge
    (2014): a DataFrame with the columns ``Class1.1`` ... ``Class11.6`` (in
    any order) or an array of shape ``(n, 37)`` in that order. They are the
    vote fractions of the Galaxy Zoo 2 volunteers for each answer of its
    decision tree [2]_, weighted down the tree.

    The network is :class:`~skestimators.nn.GalaxyCNN` or
    :class:`~skestimators.nn.GalaxyResNet` with the Galaxy Zoo output layer
    (:class:`~skestimators.nn.GalaxyZooConstraint`), so that every
    question's predicted answers sum to the answer leading to it, and it is
    trained with the squared error of these constrained outputs (the
    challenge metric is its root), as in the winning solution of the
    challenge [1]_. The vote fractions do not change when a galaxy is
    rotated or mirrored, so training batches are augmented with all eight
    dihedral transforms plus small shifts and zooms, and ``tta`` averages
    predictions over dihedral views; [1]_ exploits the same symmetry with
    rotated and flipped views, in training and at test time.

    Parameters
    ----------
    {module_param}
    constraint : {"divisive", "softmax", "none"}, default="divisive"
        Output layer. ``"divisive"`` rectifies the outputs and normalises
        each question (the output layer of [1]_), ``"softmax"`` applies
        a softmax per question, both followed by the multiplication down the
        tree; ``"none"`` keeps raw linear outputs, which need not obey the
        tree (:func:`~skestimators.galaxy_zoo.project_galaxy_zoo` can project
        them afterwards).
    {image_params}
    {shift_tta_params}
    loss : {"mse", "l1", "huber", "composite_l1", "composite_l2"}, default="mse"
        Element-wise loss of the constrained outputs (the composite losses
        with their default ``loss_alpha=0.5`` and ``sigma=3.0``, see
        :func:`skestimators.nn.elementwise_loss`).
    mc_samples : int, default=30
        Number of Monte Carlo dropout passes behind ``predict(X,
        return_std=True)``.
    {training_params}

    Attributes
    ----------
    target_names_ : list of str
        The 37 answer columns, ``Class1.1`` ... ``Class11.6``: the columns of
        ``predict``'s output.
    n_targets_ : int
        37.
    {image_attrs}
    {fitted_attrs}

    See Also
    --------
    ImageClassifier : The same networks for class labels.
    skestimators.nn.PretrainedNet : The network of the torchvision
        architectures and feature extractors.
    skestimators.metrics.galaxy_zoo_root_mean_squared_error : The challenge
        metric.
    skestimators.metrics.neg_galaxy_zoo_root_mean_squared_error_scorer : Scorer
        for searches.
    skestimators.datasets.load_galaxy_zoo : Loads the Kaggle images.

    Notes
    -----
    ``history_`` summarises the validation metrics as ``valid_rmse`` (the
    challenge metric) and one ``valid_Q<k>_rmse`` per question (over its
    answers); the RMSE and R² of every answer are kept in ``net_.history``.

    References
    ----------
    .. [1] S. Dieleman, K. W. Willett and J. Dambre, "Rotation-invariant
       convolutional neural networks for galaxy morphology prediction",
       MNRAS 450, 1441-1459, 2015.
    .. [2] K. W. Willett et al., "Galaxy Zoo 2: detailed morphological
       classifications for 304,122 galaxies from the Sloan Digital Sky
       Survey", MNRAS 435, 2835-2860, 2013.

    Examples
    --------
    >>> from skestimators import GalaxyZooRegressor
    >>> from skestimators.datasets import make_galaxy_zoo
    >>> from skestimators.metrics import galaxy_zoo_root_mean_squared_error
    >>> X, y = make_galaxy_zoo(80, size=16, random_state=0)
    >>> reg = GalaxyZooRegressor(width=4, depth=2, head_width=16, max_epochs=2,
    ...                          device="cpu", random_state=0).fit(X, y)
    >>> y_pred = reg.predict(X)  # averaged over the 8 dihedral views
    >>> y_pred.shape
    (80, 37)
    >>> bool(abs(y_pred[:, :3].sum(1) - 1).max() < 1e-5)  # Q1 sums to 1
    True
    >>> galaxy_zoo_root_mean_squared_error(y, y_pred) < 0.3
    True
    >>> list(reg.history_.columns[:3])
    ['train_loss', 'valid_loss', 'dur']
    """

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        **IMAGE_CONSTRAINTS,
        "constraint": [StrOptions({"divisive", "softmax", "none"})],
        "loss": [StrOptions(set(LOSS_NAMES))],
        **MC_CONSTRAINTS,
    }

    def __init__(
        self,
        module="galaxycnn",
        *,
        constraint="divisive",
        width=32,
        depth=4,
        head_width=512,
        blocks=2,
        dropout=0.5,
        spin_features=False,
        pretrained_weights=None,
        freeze_epochs=0,
        feature_lr_factor="auto",
        augment=True,
        max_shift=0.05,
        zoom=(0.9, 1.1),
        tta="auto",
        layout="auto",
        loss="mse",
        mc_samples=30,
        max_epochs=30,
        batch_size=64,
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
        self.constraint = constraint
        self.width = width
        self.depth = depth
        self.head_width = head_width
        self.blocks = blocks
        self.dropout = dropout
        self.spin_features = spin_features
        self.pretrained_weights = pretrained_weights
        self.freeze_epochs = freeze_epochs
        self.feature_lr_factor = feature_lr_factor
        self.augment = augment
        self.max_shift = max_shift
        self.zoom = zoom
        self.tta = tta
        self.layout = layout
        self.loss = loss
        self.mc_samples = mc_samples

    # -- engine hooks ------------------------------------------------------------------
    @property
    def _head_constraint(self):
        return self.constraint

    def _prepare_targets(
        self, y, *, fitting, n_samples, targets, classes=None, sample_weight=None
    ):
        Y = _vote_fractions(y)  # (n, 37) in the canonical column order
        if fitting and self.constraint != "none":
            _warn_off_tree(Y, self.constraint)
        return encode_regression(
            self,
            pd.DataFrame(Y, columns=list(GALAXY_ZOO_COLUMNS)),
            fitting=fitting,
            n_samples=n_samples,
            targets=targets,
            sample_weight=sample_weight,
        )

    def _target_options(self):
        return TargetOptions(loss=self.loss)

    def _batch_transform(self):
        # Vote fractions are invariant under rotations and mirror flips.
        return self._augmentation(mirror=True)

    def _after_fit(self, net):
        super()._after_fit(net)
        history = self.history_
        columns = [f"valid_{c}_rmse" for c in GALAXY_ZOO_COLUMNS]
        if not all(c in history for c in columns):
            return
        squares = history[columns].to_numpy() ** 2
        summary = {"valid_rmse": np.sqrt(squares.mean(1))}
        for q in GALAXY_ZOO_QUESTIONS:
            summary[f"valid_{q.name}_rmse"] = np.sqrt(
                squares[:, q.start : q.stop].mean(1)
            )
        per_answer = columns + [f"valid_{c}_r2" for c in GALAXY_ZOO_COLUMNS]
        self.history_ = pd.concat(
            [
                history.drop(columns=[c for c in per_answer if c in history]),
                pd.DataFrame(summary, index=history.index),
            ],
            axis=1,
        )

    # -- public API --------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W, C) or \
(n_samples, H, W)
            Training images.
        y : DataFrame or array-like of shape (n_samples, 37)
            Vote fractions, between 0 and 1: the columns ``Class1.1`` ...
            ``Class11.6`` (any order), or an array in that order. Values
            outside [0, 1] (percentages) raise a ValueError.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.
        groups : array-like of shape (n_samples,), default=None
            Group labels for the internal validation split.

        Returns
        -------
        self : GalaxyZooRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    def predict(self, X, return_std=False):
        """Vote fractions, averaged over the ``tta`` dihedral views of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W, C) or \
(n_samples, H, W)
            Images, in the layout and shape seen in ``fit``.
        return_std : bool, default=False
            Also return the standard deviation of each vote fraction over
            ``mc_samples`` Monte Carlo dropout passes (each averaged over
            the views; batch normalisation stays in inference mode).

        Returns
        -------
        y_pred : ndarray of shape (n_samples, 37)
            Predictions in the order of ``target_names_``. With
            ``constraint="divisive"`` or ``"softmax"`` they obey the tree:
            non-negative, Q1 and Q6 sum to 1 and every other question to
            its parent answer (averaging views keeps this).
        y_std : ndarray of shape (n_samples, 37)
            Standard deviation of the dropout passes. Only returned when
            ``return_std`` is True.
        """
        views = self._tta_plan(mirror=True)  # as the training augmentation
        (y_pred,) = self._view_outputs(
            X, views, reduce=lambda outputs: [_draw_means(outputs, 1)[0]]
        )
        if not return_std:
            return y_pred.numpy()
        draws = check_mc_samples(self)
        (y_std,) = self._view_outputs(
            X,
            views,
            mc_dropout=True,
            repeat=draws,
            reduce=lambda outputs: [_draw_means(outputs, draws).std(dim=0)],
        )
        return y_pred.numpy(), y_std.numpy()

    def score(self, X, y, sample_weight=None):
        """R² of the predictions, averaged over the 37 answers.

        As scikit-learn regressors score, with the columns of a DataFrame
        ``y`` matched by name, as in ``fit`` (in any order). The Galaxy Zoo
        challenge ranked by the RMSE over the 37 answers: pass
        ``scoring=skestimators.metrics.neg_galaxy_zoo_root_mean_squared_error_scorer``
        to a search to select on it.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W, C) or \
(n_samples, H, W)
            Images.
        y : array-like of shape (n_samples, 37) or DataFrame
            True vote fractions, between 0 and 1 (as in ``fit``).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean R² over the 37 answers.
        """
        from sklearn.metrics import r2_score

        return r2_score(
            _vote_fractions(y), self.predict(X), sample_weight=sample_weight
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = False
        return tags


#: Rounding allowed beyond [0, 1] in vote fractions read as targets.
_VOTE_TOLERANCE = 1e-6


def _vote_fractions(y):
    """``y`` as a float64 array (n, 37) of vote fractions, refusing values
    outside [0, 1] (percentages, raw counts) as ``load_galaxy_zoo`` does: the
    tree-constrained output layer could never reach them."""
    Y = _as_targets(y, "y")
    outside = ((Y < -_VOTE_TOLERANCE) | (Y > 1 + _VOTE_TOLERANCE)).any(axis=1)
    if outside.any():
        advice = []
        if Y.max() > 1 + _VOTE_TOLERANCE:
            advice.append("Divide percentages by 100.")
        if Y.min() < -_VOTE_TOLERANCE:
            advice.append(
                "Clip slightly negative fractions (debiased catalogues) with "
                "np.clip(y, 0, 1)."
            )
        raise ValueError(
            f"y holds Galaxy Zoo vote fractions, which lie between 0 and 1; "
            f"{int(outside.sum())} of {len(Y)} rows have others (values from "
            f"{Y.min():g} to {Y.max():g}; e.g. rows "
            f"{np.flatnonzero(outside)[:3].tolist()}). " + " ".join(advice)
        )
    return Y


#: How far a question's answers may sum from the answer leading to it (a few
#: votes of the ~40 a galaxy gets) before targets are said to be off the tree.
_TREE_TOLERANCE = 0.05


def _warn_off_tree(Y, constraint):
    """Warn when the targets break the decision tree: a constrained output,
    whose answers always sum to their parent's, could never reach them."""
    questions = GALAXY_ZOO_QUESTIONS
    sums = np.stack([Y[:, q.start : q.stop].sum(axis=1) for q in questions], 1)
    parents = np.stack(
        [np.ones(len(Y)) if q.parent is None else Y[:, q.parent] for q in questions],
        axis=1,
    )
    off = np.abs(sums - parents) > _TREE_TOLERANCE
    if not off.any():
        return
    row, worst = np.unravel_index(np.argmax(np.abs(sums - parents)), sums.shape)
    question = questions[worst]
    leads = "1" if question.parent is None else GALAXY_ZOO_COLUMNS[question.parent]
    broken = np.flatnonzero(off.any(axis=0))
    hint = ""
    if np.allclose(sums[:, broken], 1.0, atol=_TREE_TOLERANCE):
        hint = (
            " Each of these questions' answers sums to 1: per-question "
            "fractions, as the Galaxy Zoo 2 catalogues give them. Multiply each "
            "by the fraction of the answer leading to its question (the Galaxy "
            "Challenge's targets)."
        )
    warnings.warn(
        f"y does not follow the Galaxy Zoo decision tree: in "
        f"{int(off.any(axis=1).sum())} of {len(Y)} rows the answers of "
        f"{', '.join(questions[i].name for i in broken)} do not sum to the "
        f"fraction of the answer leading to them (worst: {question.name} sums "
        f"to {sums[row, worst]:.3g} in row {row}, where {leads} is "
        f"{parents[row, worst]:.3g}). constraint={constraint!r} makes every "
        f"prediction obey the tree, so it cannot reach these targets.{hint} "
        "Use constraint='none' to fit them as they are.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )


def _draw_means(outputs, draws):
    """The view means of one batch's outputs (``draws`` passes over the
    views, views innermost), as float64 of shape ``(draws, batch, 37)``:
    reduced batch by batch, the views' outputs are not kept."""
    stacked = torch.stack([raw.reshape(raw.shape[0], -1) for raw in outputs])
    return stacked.double().reshape(draws, -1, *stacked.shape[1:]).mean(dim=1)
