"""SpatioTemporalRegressor: multi-year raster patches -> a continuous target."""

from __future__ import annotations

import inspect
import numbers
import warnings

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from .._engine import (
    BaseNet,
    LazyRows,
    TargetOptions,
    caller_stacklevel,
    check_memmap,
    fill_doc,
    instantiate_module,
)
from .._multiinput import as_mapping
from .._once import first_time
from ..nn import CNNLSTM, PooledCNN
from ._base import LOSS_CONSTRAINTS, MC_CONSTRAINTS, _RegressorNet

_SHAPE = "(n_samples, bands, height, width, years)"


def _arguments(cls):
    """The names ``cls(...)`` takes, ``"**"`` for any keyword."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [("**" if p.kind is p.VAR_KEYWORD else p.name) for p in parameters]


#: The estimator's parameters that configure the built-in networks.
_NETWORK = (
    "width",
    "depth",
    "head_width",
    "lstm_layers",
    "bidirectional",
    "pooling",
    "dropout",
)


@fill_doc
class SpatioTemporalRegressor(_RegressorNet):
    """CNN-LSTM regressor for patches of multi-year rasters (e.g. soil carbon).

    ``X`` holds one patch per sample, of shape ``(n, bands, height, width,
    years)``: the covariate rasters of each year cut around the sample's
    location (see :func:`~skestimators.datasets.extract_patches`). A small
    2-D CNN, shared across years, encodes each year's patch; with
    ``module="cnn_lstm"`` an LSTM reads the sequence of yearly codes
    and its final state, fused with the last year's code, goes through a
    dense head (:class:`~skestimators.nn.CNNLSTM`, the architecture of a
    CNN-LSTM model of soil organic carbon in Bavaria [1]_: the CNN captures
    the spatial context of each sample, the LSTM the years of land-surface
    dynamics). ``module="pooled"`` pools the
    yearly codes instead (:class:`~skestimators.nn.PooledCNN`), the
    recurrence-free model to compare with.

    Scale the bands before the network (for instance with
    :class:`~skestimators.preprocessing.NDStandardScaler` ``(per="channel",
    channel_axis=1)``) and train on log or standardised targets with
    :class:`~sklearn.compose.TransformedTargetRegressor`;
    :func:`skestimators.recipes.soc_pipeline` does both.

    Real yearly stacks have gaps (clouds, sensor stripes, a missing
    acquisition): mark them NaN, as
    :func:`~skestimators.datasets.extract_patches` does. The built-in
    networks read NaN as missing, in training and prediction: missing values
    become 0 beside an availability band (the fraction of bands present at
    each pixel), and each year's code carries the fraction of its patch that
    is available, so the LSTM learns how far to trust each year. The
    scaler and :class:`~skestimators.preprocessing.PatchStatistics` leave
    missing pixels out of their statistics. On statistics (the recipe's
    ``inputs="statistics"``) the availability band counts the statistics
    present, not the pixels behind them: a year seen through one pixel looks
    complete unless the statistics include ``"valid"``, the share of
    observed pixels. A patch with nothing observed still gets a (finite)
    prediction, with a ``NodataWarning`` naming it (memory-mapped input: in
    ``fit`` only, whose scan reads the file);
    :func:`~skestimators.mapping.predict_raster` maps such pixels as nodata.
    Patches with gaps given to a model trained on complete patches only get
    a warning: its network never learned to read gaps. A custom ``module``
    gets finite inputs only (NaN is refused), unless it is a
    :class:`~skestimators.nn.CNNLSTM` or :class:`~skestimators.nn.PooledCNN`,
    or a subclass. Infinity is always refused.

    Parameters
    ----------
    module : {"cnn_lstm", "pooled"} or torch.nn.Module class, default="cnn_lstm"
        The network. ``"cnn_lstm"``: LSTM over the years; ``"pooled"``: the
        yearly codes are averaged (``pooling="mean"``) or concatenated
        (``pooling="concat"``). A ``torch.nn.Module`` class is built with
        ``input_shape`` and ``n_outputs`` when its constructor takes them;
        :class:`~skestimators.nn.CNNLSTM`, :class:`~skestimators.nn.PooledCNN`
        and their subclasses also get the network parameters below (``width``
        to ``dropout``) that their constructor takes, other classes none of
        them.
    width : int, default=32
        Output channels of the first conv block (3x3 convolution, ReLU, 2x2
        max-pooling while the patch is at least 2 pixels wide); each further
        block doubles them.
    depth : int, default=2
        Number of conv blocks.
    head_width : int, default=64
        LSTM hidden size and width of the dense head (``"pooled"``: the
        width of the dense head).
    lstm_layers : int, default=1
        Stacked LSTM layers (``"cnn_lstm"`` only).
    bidirectional : bool, default=False
        Read the years in both directions (``"cnn_lstm"`` only).
    pooling : {"mean", "concat"}, default="mean"
        How ``"pooled"`` combines the yearly codes (ignored by ``"cnn_lstm"``).
    dropout : float, default=0.2
        Dropout in the head and between stacked LSTM layers.
    {training_params}
    loss : {"mse", "l1", "huber", "composite_l1", "composite_l2"} or callable, \
default="mse"
        Element-wise loss ``(pred, target) -> tensor``; the composite losses
        add a chi²-scaled term, as in [1]_ (see
        :func:`skestimators.nn.elementwise_loss`).
    loss_alpha : float, default=0.5
        Composite losses: weight of the L1/L2 term (the chi² term gets
        ``1 - loss_alpha``).
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
    missing_fraction_ : float
        Share of the training patches' values that were missing (NaN); 0:
        trained on complete patches. Set by the built-in networks only.
    {fitted_attrs}

    See Also
    --------
    skestimators.recipes.soc_pipeline : Band scaling, log-standardised target
        and this regressor.
    skestimators.datasets.make_soc : Simulated patches and soil carbon.
    skestimators.model_selection.SpatialBlockKFold : Spatial cross-validation
        (also usable as ``validation_cv`` with coordinates as ``groups``).

    Notes
    -----
    ``X`` must be 5-D. A table of per-location covariates ``(n, F)`` is
    rejected rather than silently read as ``F`` bands of a 1x1 patch and a
    single year; reshape it explicitly (``X.reshape(n, F, 1, 1, 1)``) if that
    is what you mean. ``n_features_in_`` is the number of bands.

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023): CNN-LSTM
       architecture, composite L1/L2 + chi-squared losses.

    Examples
    --------
    >>> from skestimators import SpatioTemporalRegressor
    >>> from skestimators.datasets import make_soc
    >>> X, y, coords = make_soc(60, n_years=3, random_state=0)
    >>> X.shape
    (60, 6, 5, 5, 3)
    >>> reg = SpatioTemporalRegressor(width=4, depth=1, head_width=8, max_epochs=2,
    ...                               device="cpu", random_state=0).fit(X, y)
    >>> reg.predict(X[:4]).shape
    (4,)
    >>> reg.n_features_in_, reg.input_shape_
    (6, (6, 5, 5, 3))
    """

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        "module": [StrOptions({"cnn_lstm", "pooled"}), type],
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "head_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "lstm_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions({"mean", "concat"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        **LOSS_CONSTRAINTS,
        "target_weights": [None, dict, "array-like"],
        **MC_CONSTRAINTS,
    }

    def __init__(
        self,
        module="cnn_lstm",
        *,
        width=32,
        depth=2,
        head_width=64,
        lstm_layers=1,
        bidirectional=False,
        pooling="mean",
        dropout=0.2,
        max_epochs=100,
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
        self.width = width
        self.depth = depth
        self.head_width = head_width
        self.lstm_layers = lstm_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.loss = loss
        self.loss_alpha = loss_alpha
        self.sigma = sigma
        self.target_weights = target_weights
        self.mc_samples = mc_samples

    # -- input -------------------------------------------------------------------------
    def _validate_patches(self, X, finite=True):
        """``X`` as a float array of 5-D patches, with a clear error otherwise."""
        name = type(self).__name__
        if as_mapping(X) is not None:
            raise ValueError(
                f"{name} takes one array of patches {_SHAPE}, not named inputs "
                "(a MultiInput or dict)."
            )
        lazy = isinstance(X, np.memmap)
        # NaN/inf, and the gaps: here in fit, batch by batch when predicting
        # (``_prediction_gaps``).
        gaps = _Gaps() if self._handles_missing() and finite is not False else None
        if lazy:  # out of core: checked in chunks, read batch by batch
            inspect = None if gaps is None or X.ndim != 5 else gaps.add
            X = check_memmap("X", X, reshape_1d=False, scan=finite, inspect=inspect)
            if inspect is not None and finite and X.dtype.kind != "f":
                gaps.n_rows, gaps.n_values = len(X), X.size  # integers: no NaN
        else:
            try:
                X = check_array(
                    X,
                    dtype=[np.float32, np.float64],
                    allow_nd=True,
                    ensure_2d=False,
                    ensure_all_finite=finite,
                    input_name="X",
                    estimator=self,
                )
            except ValueError as exc:
                if "NaN" not in str(exc) or self._handles_missing():
                    raise
                raise ValueError(
                    f"{name} got NaN (missing pixels) in X. The built-in networks "
                    "(module='cnn_lstm' or 'pooled') read NaN as missing; a custom "
                    "module gets finite inputs only: impute the gaps, or use a "
                    "built-in network."
                ) from None
        if X.ndim != 5:
            hint = (
                f" For one pixel and one year per sample, reshape explicitly: "
                f"X.reshape({X.shape[0]}, {X.shape[1]}, 1, 1, 1)."
                if X.ndim == 2
                else ""
            )
            raise ValueError(
                f"{name} expects patches of shape {_SHAPE} (see "
                f"skestimators.datasets.extract_patches); got an array of shape "
                f"{X.shape}.{hint}"
            )
        if gaps is not None and not lazy:
            gaps.add(0, X)
        if gaps is not None and gaps.n_rows:  # a memory map scanned (in fit)
            gaps.warn_unobserved(name)
        return (LazyRows(X) if lazy else X), gaps

    def _prepare_X(self, X, *, reset, finite=True):
        X, gaps = self._validate_patches(X, finite=finite)
        if gaps is not None and gaps.n_rows:  # fitting (a memory map: scanned)
            seen = 0.0 if reset else getattr(self, "missing_fraction_", 0.0) or 0.0
            self.missing_fraction_ = max(seen, gaps.fraction)
        elif reset and gaps is None:  # a custom module: not set, not left over
            self.__dict__.pop("missing_fraction_", None)
        return X

    def _prediction_gaps(self):
        if not self._handles_missing():
            return None
        return _Gaps()

    def _report_gaps(self, gaps, n_rows):
        """Warn of the gaps met in a prediction of ``n_rows`` patches (only
        those with NaN were tallied): patches with no observed value, and any
        gap at all when the network was trained on complete patches."""
        gaps.n_rows = n_rows
        name = type(self).__name__
        gaps.warn_unobserved(name)
        if getattr(self, "missing_fraction_", None) == 0 and gaps.gappy:
            message = (
                f"Patches passed to {name} have missing values (NaN), but it "
                "was trained on complete patches only: its network never "
                "learned to read gaps, and its predictions there are "
                "extrapolations. Train it on data with gaps like these to map "
                "them."
            )
            if first_time(message):  # once per map, not per chunk
                warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # 5-D patches only: fit refuses a table.
        tags.input_tags.two_d_array = False
        return tags

    def _handles_missing(self):
        # The built-in networks read NaN as missing (an availability band),
        # named or given as their class.
        module = self.module
        if isinstance(module, str):
            return True
        return isinstance(module, type) and issubclass(module, (CNNLSTM, PooledCNN))

    def _target_options(self):
        return TargetOptions(
            target_weights=self.target_weights,
            loss=self.loss,
            loss_params={"loss_alpha": self.loss_alpha, "sigma": self.sigma},
        )

    # -- network -----------------------------------------------------------------------
    def _make_module(self, input_shape, n_outputs):
        if not isinstance(self.module, str):
            # The built-in classes (and their subclasses) get the network
            # parameters their constructor takes; other classes, none.
            params = None
            if self._handles_missing():
                accepted = set()
                for cls in self.module.__mro__:  # **kwargs passed up the chain
                    if "__init__" in vars(cls):
                        names = _arguments(cls)
                        accepted.update(names)
                        if "**" not in names:
                            break
                params = {k: getattr(self, k) for k in _NETWORK if k in accepted}
            return instantiate_module(self.module, params, input_shape, n_outputs, None)
        if self.module == "cnn_lstm":
            return CNNLSTM(
                input_shape,
                n_outputs,
                width=self.width,
                depth=self.depth,
                head_width=self.head_width,
                lstm_layers=self.lstm_layers,
                bidirectional=self.bidirectional,
                dropout=self.dropout,
            )
        return PooledCNN(
            input_shape,
            n_outputs,
            width=self.width,
            depth=self.depth,
            head_width=self.head_width,
            pooling=self.pooling,
            dropout=self.dropout,
        )

    # -- public API --------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, bands, height, width, years)
            Training patches.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights (e.g.
            :func:`~skestimators.preprocessing.quantile_balanced_weights`).
        groups : array-like of shape (n_samples,) or (n_samples, 2), default=None
            Group labels, or coordinates for a spatial ``validation_cv``, for
            the internal validation split; never passed to the network.

        Returns
        -------
        self : SpatioTemporalRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    def predict(self, X, return_std=False):
        """Predicted targets, and optionally their standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, bands, height, width, years)
            Patches of the shape seen in ``fit``.
        return_std : bool, default=False
            Also return the standard deviation of each prediction over
            ``mc_samples`` Monte Carlo dropout passes (the head's dropout
            active, batch normalisation in inference mode).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions, with the dimensionality of ``y`` at fit.
        y_std : ndarray of the shape of ``y_pred``
            Standard deviation of the dropout passes, in the units of ``y``.
            Only returned when ``return_std`` is True.
        """
        return super().predict(X, return_std=return_std)


class _Gaps:
    """Missing values of patches, gathered chunk by chunk (one pass)."""

    def __init__(self):
        self.n_rows = self.n_missing = self.n_values = self.gappy = 0
        self.empty = []

    def add(self, start, chunk):
        chunk = np.asarray(chunk)
        if chunk.dtype.kind != "f":
            total = 0.0  # integers: no NaN
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                total = chunk.sum(dtype=np.float64)
        if np.isfinite(total):
            # no NaN: a sum is a third of the time of a per-value count
            self.n_rows += len(chunk)
            self.n_values += chunk.size
            return
        missing = np.isnan(chunk).reshape(len(chunk), -1)
        per_row = missing.sum(axis=1)
        self.n_rows += len(chunk)
        self.n_missing += int(per_row.sum())
        self.n_values += missing.size
        self.gappy += int(np.count_nonzero(per_row))
        full = per_row == missing.shape[1]
        self.empty.extend((start + np.flatnonzero(full)).tolist())

    @property
    def fraction(self):
        """Share of missing values."""
        return self.n_missing / self.n_values if self.n_values else 0.0

    def warn_unobserved(self, name):
        """Warn of patches with no observed value at all (every entry NaN)."""
        from ..datasets import NodataWarning

        empty = self.empty
        if not empty:
            return
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        warnings.warn(
            f"{len(empty)} of {self.n_rows} patch(es) passed to {name} have no "
            f"observed value in any band, pixel or year (indices [{shown}]): "
            "what the network returns for them comes from the training data "
            "alone, not from the patch. predict_raster writes nodata there.",
            NodataWarning,
            stacklevel=caller_stacklevel(),
        )
