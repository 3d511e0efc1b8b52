"""SpectraAuxClassifier: spectrum + auxiliary parameters -> several binary targets."""

from __future__ import annotations

import numbers

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._engine import BaseNet, TargetOptions, fill_doc
from ..nn import BRANCHES, SpectraAuxNet
from ._base import _ClassifierNet


@fill_doc
class SpectraAuxClassifier(_ClassifierNet):
    """Two-input network (spectrum, auxiliary table) with one sigmoid head per target.

    Built for exoplanet transmission spectra (water and cloud detection, a
    task of a CNES challenge on the automatic analysis of spectra [1]_):
    ``X`` is a :class:`~skestimators.MultiInput` with a ``spectra`` input of shape
    ``(n, n_wavelengths, n_channels)`` (or engineered features
    ``(n, n_features)`` for the dense branch) and an ``aux`` input of shape
    ``(n, n_aux)``; ``y`` holds any number of binary targets as columns
    (``water``, ``cloud``). Each input has its own branch; the branches are
    merged and every target gets its own logit, loss weight and validation
    metrics (``history_["valid_water_accuracy"]``, ...). The inputs must be
    near unit scale: the raw ones of
    :func:`~skestimators.datasets.load_exoplanet` (masses in kg, about 1e30)
    teach it nothing, which it warns of;
    :func:`~skestimators.recipes.exoplanet_pipeline` prepares them.

    Parameters
    ----------
    module : {"conv1d", "attention", "lstm", "dense"} or tuple, default="conv1d"
        Spectrum branch: ``"conv1d"`` Conv1d blocks with max pooling (one
        block is the plain 1-D CNN baseline), ``"attention"`` convolution
        whose channels are gated by the auxiliary features (the star and
        orbit weight the spectral patterns), ``"lstm"`` a bidirectional LSTM
        along wavelength, ``"dense"`` dense layers on flattened, typically
        engineered, features (depth and its gradient). A tuple such as
        ``("attention", "dense")`` runs branches side by side.
    width : int, default=64
        Channels, hidden units or first-layer units of the branch.
    depth : int, default=2
        Conv blocks, LSTM layers or dense layers.
    dropout : float, default=0.2
        Dropout in the branch and after the merge.
    aux_width : int, default=32
        Units of the first layer of the auxiliary branch; each further layer
        halves them.
    aux_depth : int, default=2
        Layers of the auxiliary branch (0: the raw auxiliary values join the
        spectrum features).
    merge : {"concat", "gated"}, default="concat"
        How the branches are merged.
    head_width : int, default=64
        Width of the shared layer before the heads.
    positions : int, default=0
        Attention branch only: besides the mean and maximum over wavelength
        (global pooling), keep the gated channels averaged over
        this many wavelength bins, so the position of absorption bands counts.
    spectra_key : str, default="spectra"
        Name of the spectrum input.
    aux_key : str, default="aux"
        Name of the auxiliary input.
    target_weights : dict, array-like or None, default=None
        Loss weight of each target (by name or position).
    {training_params}
    class_weight : "balanced" or None, default=None
        ``"balanced"`` weighs the positive class of each target by its rarity.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels, 2) or (2,)
        One row ``[0, 1]`` per target (an array, which
        ``cross_val_predict(method="predict_proba")`` reads along with the
        single probability array); for a single 1-D binary target, the two
        labels.
    target_names_ : list of str
        Target names (columns of ``y``).
    {fitted_attrs}

    See Also
    --------
    skestimators.recipes.exoplanet_pipeline : Preprocessing plus this classifier.

    References
    ----------
    .. [1] R. Tavenard, "Home assignment (2026)", Deep Learning course,
       EDHEC, 2026; data from a CNES challenge on the automatic analysis of
       spectra, licence CC BY-NC-SA (see :ref:`data_credits`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skestimators import MultiInput, SpectraAuxClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = MultiInput(spectra=rng.rand(64, 52, 3), aux=rng.rand(64, 5))
    >>> y = pd.DataFrame({"water": rng.randint(0, 2, 64),
    ...                    "cloud": rng.randint(0, 2, 64)})
    >>> clf = SpectraAuxClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape, clf.target_names_
    ((64, 2), ['water', 'cloud'])
    """

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        "module": [StrOptions(set(BRANCHES)), tuple, list],
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "aux_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "aux_depth": [Interval(numbers.Integral, 0, None, closed="left")],
        "merge": [StrOptions({"concat", "gated"})],
        "head_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "target_weights": [None, dict, "array-like"],
        "positions": [Interval(numbers.Integral, 0, None, closed="left")],
        "spectra_key": [str],
        "aux_key": [str],
        "class_weight": [None, StrOptions({"balanced"})],
    }

    def __init__(
        self,
        module="conv1d",
        *,
        width=64,
        depth=2,
        dropout=0.2,
        aux_width=32,
        aux_depth=2,
        merge="concat",
        head_width=64,
        positions=0,
        spectra_key="spectra",
        aux_key="aux",
        target_weights=None,
        max_epochs=60,
        batch_size=64,
        lr=0.002,
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
        self.width = width
        self.depth = depth
        self.dropout = dropout
        self.aux_width = aux_width
        self.aux_depth = aux_depth
        self.merge = merge
        self.head_width = head_width
        self.positions = positions
        self.spectra_key = spectra_key
        self.aux_key = aux_key
        self.target_weights = target_weights
        self.class_weight = class_weight

    def _make_module(self, input_shape, n_outputs):
        if not isinstance(input_shape, dict):
            raise ValueError(
                "SpectraAuxClassifier needs named inputs: X must be a MultiInput "
                f"with {self.spectra_key!r} and {self.aux_key!r}."
            )
        return SpectraAuxNet(
            input_shape,
            self.target_names_,
            module=self.module,
            width=self.width,
            depth=self.depth,
            dropout=self.dropout,
            aux_width=self.aux_width,
            aux_depth=self.aux_depth,
            merge=self.merge,
            head_width=self.head_width,
            positions=self.positions,
            spectra_key=self.spectra_key,
            aux_key=self.aux_key,
        )

    def _target_options(self):
        return TargetOptions(
            class_weight=self.class_weight, target_weights=self.target_weights
        )

    def _prepare_targets(
        self, y, *, fitting, n_samples, targets, classes=None, sample_weight=None
    ):
        out = super()._prepare_targets(
            y, fitting=fitting, n_samples=n_samples, targets=targets, classes=classes
        )
        if not out[0].dtype.is_floating_point:
            raise ValueError(
                "SpectraAuxClassifier predicts binary targets (one column of 0/1 "
                f"per target); y has {len(self.classes_)} classes. Encode each "
                "class as its own 0/1 column."
            )
        return out

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the network.

        Parameters
        ----------
        X : MultiInput
            Inputs ``spectra`` and ``aux`` (names set by ``spectra_key`` and
            ``aux_key``).
        y : DataFrame or array-like of shape (n_samples, n_targets)
            Binary targets, one per column (a 1-D binary target also works).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights.
        groups : array-like of shape (n_samples,), default=None
            Group labels for the internal validation split.

        Returns
        -------
        self : SpectraAuxClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        # X is a MultiInput of two named inputs, never one 2-D array: sklearn's
        # data checks do not apply; tests/test_spectra_aux.py runs their
        # equivalents on MultiInput data.
        tags.input_tags.two_d_array = False
        return tags
