"""Target encoding for network classifiers and regressors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, column_or_1d

from ._heads import HeadGroup, _bce, multilabel_groups, regression_groups, resolve_loss
from ._validation import caller_stacklevel


def target_names(y, n_columns, default="y"):
    if isinstance(y, pd.DataFrame):
        return [str(c) for c in y.columns]
    if isinstance(y, pd.Series) and y.name is not None and n_columns == 1:
        return [str(y.name)]
    if n_columns == 1:
        return [default]
    return [f"{default}{j}" for j in range(n_columns)]


def align_targets(y, names):
    """``y`` with the columns of a DataFrame in the fitted order ``names``.

    A DataFrame whose columns are those of ``fit`` in another order is
    reordered (by position, a later ``partial_fit`` or ``score`` trained or
    scored each target against another's values); anything else is returned
    unchanged.
    """
    if not isinstance(y, pd.DataFrame) or names is None:
        return y
    columns = [str(c) for c in y.columns]
    if columns == list(names) or sorted(columns) != sorted(names):
        return y
    if len(set(columns)) != len(columns):
        return y
    return y.iloc[:, [columns.index(name) for name in names]]


class NamedTargetsScoreMixin:
    """``score`` with the columns of a DataFrame ``y`` matched by name.

    Mixed in before scikit-learn's ``ClassifierMixin`` or ``RegressorMixin``
    of an estimator that records ``target_names_`` in ``fit`` (private).
    """

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers; all labels right for multilabel ``y``) or R²
        averaged over the targets (regressors) of ``predict``.

        As scikit-learn's ``score``, except that the columns of a DataFrame
        ``y`` are matched with those of ``fit`` by name, not by position.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            True labels or values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy or R².
        """
        y = align_targets(y, getattr(self, "target_names_", None))
        return super().score(X, y, sample_weight=sample_weight)


def _column_weights(weights, names):
    if weights is None:
        return np.ones(len(names))
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(
                f"target_weights names unknown targets {unknown}; targets are {names}."
            )
        weights = np.array([float(weights.get(n, 1.0)) for n in names])
    weights = np.asarray(weights, dtype=float).ravel()
    if weights.shape != (len(names),):
        raise ValueError(
            f"target_weights has {weights.size} values for {len(names)} targets."
        )
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            "target_weights must be finite, non-negative and not all zero; got "
            f"{weights.tolist()}."
        )
    return weights


def mirrored_counts(counts, swap):
    """Counts of the classes (or positives of the label columns) as training
    sees them: with ``swap``, the permutation that relabels mirrored samples,
    half of the samples of each class (mirrored at random) train as its
    mirror image, so each class of a pair counts the mean of the two."""
    counts = np.asarray(counts, dtype=float)
    if swap is None:
        return counts
    return (counts + counts[list(swap)]) / 2


def encode_classification(
    estimator, y, *, fitting, n_samples, targets, classes=None, mirror_swap=None
):
    """Return ``(y_tensor, head_groups, n_outputs, y_strat)`` for a classifier.

    ``y`` is not None: ``BaseNet._fit`` refuses that first. ``targets`` is the
    estimator's :class:`TargetOptions`; when fitting, the fitted attributes
    ``classes_``, ``target_type_`` and ``target_names_`` are set.
    ``mirror_swap``, called once they are, returns the permutation of the
    classes (or label columns) that relabels mirrored training samples, or
    None: ``"balanced"`` weights then come from :func:`mirrored_counts`.
    """
    if not fitting:
        y = align_targets(y, getattr(estimator, "target_names_", None))
    y_in = y
    if not hasattr(y, "shape"):
        y = np.asarray(y)
    check_classification_targets(y)
    if fitting:
        y_type = type_of_target(y, input_name="y")
        estimator.target_type_ = y_type
    else:
        y_type = estimator.target_type_
    if y_type == "multiclass-multioutput":
        raise ValueError(
            f"y has {np.shape(y)[1]} columns whose labels are not all 0 and 1 "
            "(multiclass-multioutput). Give one column of classes, or one "
            "column per label holding 0 (absent) or 1 (present)."
        )
    if y_type == "multilabel-indicator":
        Y = check_array(y, dtype=np.float32, input_name="y")
        values = np.unique(Y)
        if not np.isin(values, (0.0, 1.0)).all():
            # type_of_target calls any two-valued integer matrix multilabel:
            # -1/+1 trained a 0/1 loss on -1 and predicted 0 everywhere.
            raise ValueError(
                "Multilabel y must hold 0 (absent) and 1 (present) in every "
                f"column; got the values {values.tolist()}. Recode each column "
                "(e.g. y == positive_label)."
            )
        if Y.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {Y.shape[0]}.")
        if fitting:
            # One row of labels per target, in one array: predict_proba returns
            # one array, and cross_val_predict reads classes_.shape with it (a
            # list, as forests pair with their list of probabilities, failed).
            estimator.classes_ = np.tile(np.array([0, 1]), (Y.shape[1], 1))
            estimator.target_names_ = target_names(y_in, Y.shape[1])
        names = estimator.target_names_
        if Y.shape[1] != len(names):
            raise ValueError(
                f"y has {Y.shape[1]} labels; the estimator was fitted on {len(names)}."
            )
        if isinstance(targets.class_weight, dict):
            raise ValueError(
                "class_weight as a dict weighs the classes of one target; y is "
                "multilabel. Use class_weight='balanced' (each label weighed by "
                "its frequency) or target_weights (the loss weight of each "
                "label)."
            )
        pos_weight = None
        if targets.class_weight == "balanced":
            swap = None if mirror_swap is None else mirror_swap()
            pos = mirrored_counts(Y.sum(0, dtype=np.float64), swap)
            pos_weight = torch.as_tensor(
                (Y.shape[0] - pos) / np.where(pos > 0, pos, 1.0)
            )
        groups = multilabel_groups(
            names,
            weights=_column_weights(targets.target_weights, names),
            pos_weight=pos_weight,
        )
        return torch.from_numpy(Y), groups, Y.shape[1], None

    y1 = column_or_1d(y, warn=True)
    if y1.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y1.shape[0]}.")
    if fitting:
        encoder = LabelEncoder().fit(y1 if classes is None else np.asarray(classes))
        if encoder.classes_.size < 2:
            raise ValueError(
                f"{type(estimator).__name__} needs samples of at least 2 classes in "
                "the data, but the data contain only one class: "
                f"{encoder.classes_[0]!r}."
            )
        estimator.classes_ = encoder.classes_
        estimator.target_names_ = target_names(y_in, 1)
    elif classes is not None and not np.array_equal(
        np.unique(np.asarray(classes)), estimator.classes_
    ):
        raise ValueError(
            f"classes={np.unique(np.asarray(classes)).tolist()} is not the same "
            f"as the classes of the first fit, {estimator.classes_.tolist()}."
        )
    unseen = np.setdiff1d(np.unique(y1), estimator.classes_)
    if unseen.size:
        raise ValueError(
            f"y contains labels {unseen.tolist()} not seen in the first fit."
        )
    codes = np.searchsorted(estimator.classes_, y1)
    names = estimator.target_names_
    swap = None
    if targets.class_weight == "balanced" and mirror_swap is not None:
        swap = mirror_swap()
    offset, weights = class_weight_terms(
        estimator.classes_, targets.class_weight, codes, swap=swap, warn=fitting
    )
    if estimator.classes_.size == 2:
        group = HeadGroup(
            names, "binary", None, None, slice(0, 1), _bce, torch.ones(1),
            class_weight=weights, logit_offset=offset,
        )  # fmt: skip
        return torch.from_numpy(codes.astype(np.float32)[:, None]), [group], 1, codes
    group = HeadGroup(
        names, "multiclass", None, None, None, None, torch.ones(1),
        class_weight=weights, logit_offset=offset,
    )  # fmt: skip
    return (
        torch.from_numpy(codes.astype(np.int64)),
        [group],
        estimator.classes_.size,
        codes,
    )


def class_weight_terms(classes, class_weight, codes, *, swap=None, warn=False):
    """``(offset, weights)``: the logit adjustment of ``class_weight`` and the
    class weights scaled to a mean of one over the samples (binary and
    multiclass), or ``(None, None)``.

    ``"balanced"`` weighs class ``c`` by ``n_samples / (n_classes * n_c)``,
    with the counts ``n_c`` of :func:`mirrored_counts` (``swap``: the
    relabelling of mirrored samples, or None). A class without samples (a
    batch of ``partial_fit`` given every class) gets weight one; with
    ``warn``, a warning names it.

    Weighting the loss of class ``c`` by ``w_c`` makes the best classifier
    predict ``argmax_c w_c p(c | x)``. Adding ``-log w_c`` to the logits
    inside the cross-entropy leads to the same decision rule (and to
    probabilities proportional to ``w_c p(c | x)``), but every sample keeps
    weight one: with "balanced" weights on rare classes, per-sample weights
    of 20 or more make the loss of a batch jump with the few rare samples it
    happens to hold, and the network trains worse (A. K. Menon et al.,
    "Long-tail learning via logit adjustment", ICLR 2021). For one binary
    logit the offset is ``log(w_0 / w_1)``.
    """
    if class_weight is None:
        return None, None
    # A dict may name classes that this data lack (a fold without a rare
    # class), as in scikit-learn; compute_class_weight refuses a dict that
    # leaves some classes unweighted and names others.
    if class_weight == "balanced":
        counts = mirrored_counts(np.bincount(codes, minlength=len(classes)), swap)
        absent = counts == 0
        cw = np.ones(len(classes))
        cw[~absent] = len(codes) / (len(classes) * counts[~absent])
        if warn and absent.any():
            warnings.warn(
                f"class_weight='balanced' found no samples of the classes "
                f"{classes[absent].tolist()} in y, so they get weight 1. The "
                "weights of the first fit or partial_fit call are kept by later "
                "partial_fit calls; to weigh every class by its frequency in all "
                "the training data, pass class_weight as a dict (e.g. from "
                "sklearn.utils.class_weight.compute_class_weight).",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
    else:
        cw = compute_class_weight(class_weight, classes=classes, y=classes[codes])
        if not np.isfinite(cw).all() or (cw < 0).any():
            raise ValueError(
                "class_weight must hold finite, non-negative weights; got "
                f"{dict(zip(classes.tolist(), cw.tolist()))}."
            )
    log_w = np.log(np.maximum(cw, 1e-12))
    offset = log_w[:1] - log_w[1:] if len(classes) == 2 else -log_w
    scaled = cw / max(float(cw[codes].mean()), 1e-12)
    return (
        torch.as_tensor(offset, dtype=torch.float32),
        torch.as_tensor(scaled, dtype=torch.float32),
    )


def encode_regression(estimator, y, *, fitting, n_samples, targets, sample_weight=None):
    """Return ``(y_tensor, head_groups, n_outputs, None)`` for a regressor.

    ``y`` is not None: ``BaseNet._fit`` refuses that first. When fitting, the
    fitted attributes ``n_targets_``, ``target_ndim_`` and ``target_names_``
    are set, and with ``targets.standardize`` ``target_mean_`` and
    ``target_scale_``: the network then trains on ``(y - target_mean_) /
    target_scale_`` (each column standardised on this data, weighted by
    ``sample_weight``, so that a weight of 2 counts as a repeated row and a
    weight of 0 as no row; a constant column keeps scale 1).
    """
    if not fitting:
        y = align_targets(y, getattr(estimator, "target_names_", None))
    Y = check_array(
        y,
        ensure_2d=False,
        dtype=[np.float32, np.float64],
        input_name="y",
        ensure_all_finite=True,
    )
    if Y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D, got shape {Y.shape}.")
    if Y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {Y.shape[0]}.")
    # float64 until standardised: a float32 copy first lost targets on a large
    # offset (Julian dates) and turned those beyond 3.4e38 into inf.
    Y2 = Y.reshape(n_samples, -1).astype(np.float64)
    if fitting:
        estimator.n_targets_ = Y2.shape[1]
        estimator.target_ndim_ = Y.ndim
        estimator.target_names_ = target_names(y, Y2.shape[1])
        if targets.standardize:
            w = None
            if sample_weight is not None and np.sum(sample_weight) > 0:
                w = np.asarray(sample_weight, dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):  # refused below
                mean = np.average(Y2, axis=0, weights=w)
                std = np.sqrt(np.average((Y2 - mean) ** 2, axis=0, weights=w))
            # Constant up to float64 rounding of the mean: scale 1. The test is
            # relative: targets of 1e-17 (fluxes in erg/s/cm2) are not constant.
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):
                raise ValueError(
                    "y is too large to standardise: its mean or spread overflows "
                    "float64 (values around 1e154 or more). Rescale y."
                )
            scale = np.where(std > 1e-12 * np.abs(mean), std, 1.0)
            estimator.target_mean_, estimator.target_scale_ = mean, scale
        else:  # a refit without standardisation must not keep an old one
            estimator.__dict__.pop("target_mean_", None)
            estimator.__dict__.pop("target_scale_", None)
    elif Y2.shape[1] != estimator.n_targets_:
        raise ValueError(
            f"y has {Y2.shape[1]} targets; the estimator was fitted on "
            f"{estimator.n_targets_}."
        )
    names = estimator.target_names_
    loss = resolve_loss(targets.loss, **targets.loss_params)
    groups = regression_groups(
        names, loss=loss, weights=_column_weights(targets.target_weights, names)
    )
    if targets.standardize:
        Y2 = (Y2 - estimator.target_mean_) / estimator.target_scale_
    with np.errstate(over="ignore"):  # reported below, by name
        Y2 = Y2.astype(np.float32)
    if not np.isfinite(Y2).all():
        raise ValueError(
            "y has values beyond the float32 range (about 3.4e38) that the "
            "network trains in"
            + (
                " once standardised by the fitted mean and scale: y lies far "
                "outside the range of the first fit."
                if targets.standardize
                else ": rescale y, or train with standardised targets."
            )
        )
    return torch.from_numpy(Y2), groups, Y2.shape[1], None


def to_dict_groups(groups):
    """Re-key head groups for a module returning one output per target (a dict)."""
    out = []
    for g in groups:
        if g.kind == "multiclass":
            out.append(g)
            continue
        for j, name in enumerate(g.names):
            out.append(
                HeadGroup(
                    [name],
                    g.kind,
                    name,
                    None,
                    slice(j, j + 1)
                    if g.y_cols is None
                    else slice(g.y_cols.start + j, g.y_cols.start + j + 1),
                    g.loss,
                    g.weights[j : j + 1],
                    pos_weight=None
                    if g.pos_weight is None
                    else g.pos_weight[j : j + 1],
                    # A single binary target's class weights (one name).
                    class_weight=g.class_weight,
                    logit_offset=g.logit_offset,
                )
            )
    return out
