"""Ready-made pipelines for soil organic carbon (SOC) from multi-year patches."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import get_config
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.metadata_routing import process_routing
from sklearn.utils.validation import check_is_fitted

from ..estimators import SpatioTemporalRegressor
from ..exceptions import NonFinitePredictionError
from ..preprocessing import NDStandardScaler, PatchStatistics

__all__ = ["soc_baseline_pipeline", "soc_pipeline"]

ARCHITECTURES = ("cnn_lstm", "pooled")
INPUTS = ("statistics", "patches")
TARGET_TRANSFORMS = ("log_zscore", "log", "zscore", None)
BASELINES = ("hist_gradient_boosting", "random_forest")

# The centre pixel and the patch mean and spread of every band and year: what
# the recipe's network reads (inputs="statistics").
RECIPE_STATISTICS = ("centre", "mean", "std")
# Networks and training, chosen on worlds other than the benchmark's
# (make_soc(random_state=1) and (random_state=2)) under spatial CV; see
# benchmarks/soc.py for the comparison. The LSTM reads the years in both
# directions, as in the CNN-LSTM soil-carbon model of soc_pipeline's
# References (it also helped on both tuning worlds). On raw patches, two
# pooled conv blocks downsample 4x, as that model's CNN does.
_NETWORK = {
    "statistics": dict(width=32, depth=1, head_width=32, dropout=0.2),
    "patches": dict(width=32, depth=2, head_width=64, dropout=0.2),
}
_POOLING = "concat"
_TRAINING = dict(max_epochs=100, batch_size=32, lr=1e-3, patience=10)


def _log1p(y):
    """``log(1 + y)`` of the targets, refusing values where it is undefined.

    Without the check a target at or below -1 (a change of carbon stock, an
    anomaly) became NaN or -inf, and the error spoke of NaN in ``y``.
    """
    y = np.asarray(y)
    if y.size and np.nanmin(y) <= -1:
        raise ValueError(
            f"target_transform='log' needs targets above -1; the smallest is "
            f"{np.nanmin(y):g}. Use target_transform='zscore' or None for "
            "targets that can be negative."
        )
    return np.log1p(y)


def _expm1(z):
    """``exp(z) - 1``, the inverse of :func:`_log1p` (overflow is left to
    :class:`_CheckedTargetRegressor` to name)."""
    with np.errstate(over="ignore"):
        return np.expm1(z)


class _CheckedTargetRegressor(TransformedTargetRegressor):
    """A TransformedTargetRegressor whose predictions are checked after the
    back-transform.

    The network's own check sees its outputs on the transformed scale: an
    input in other units (reflectance stored as integers, say) gives large
    but finite log values, which ``expm1`` turns into infinity, 1e198 or -1.
    Predictions that are not finite after the back-transform raise
    :class:`~skestimators.exceptions.NonFinitePredictionError`. Predictions
    whose transformed value lies farther outside the transformed training
    targets than their range is wide warn. ``return_std=True`` is refused
    with what to use instead.
    """

    def fit(self, X, y, **fit_params):
        super().fit(X, y, **fit_params)
        y = np.asarray(y, dtype=float)
        self.target_ndim_ = y.ndim
        trained = self.transformer_.transform(y.reshape(len(y), -1))
        self.transformed_range_ = (float(np.min(trained)), float(np.max(trained)))
        return self

    def predict(self, X, **predict_params):
        check_is_fitted(self)
        if predict_params.get("return_std"):
            raise ValueError(
                "return_std=True has no answer in the units of y here: a spread "
                "of the network's predictions on the transformed (log) scale is "
                "no single spread of the back-transformed ones. Ask the network "
                "for it on the transformed scale, "
                "model.regressor_.predict(X, return_std=True); or wrap the whole "
                "model in a DeepEnsembleRegressor or a conformal regressor "
                "(MAPIE), whose spread or intervals are in the units of y."
            )
        if get_config()["enable_metadata_routing"]:
            routed = process_routing(self, "predict", **predict_params)
            predict_params = routed.regressor.predict
        # As TransformedTargetRegressor.predict, keeping the network's output.
        raw = np.asarray(self.regressor_.predict(X, **predict_params))
        raw = raw.reshape(len(raw), -1)  # one column per target
        pred = self.transformer_.inverse_transform(raw)
        if self.target_ndim_ == 1 and pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        finite = np.isfinite(pred).reshape(len(pred), -1).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise NonFinitePredictionError(
                f"{len(rows)} of {len(pred)} predictions are not finite after the "
                f"target's back-transform (first row {rows[0]}): the network "
                "predicts values on the transformed scale far beyond the training "
                "targets. Are the inputs in the units and scale of the training "
                "inputs?",
                rows=rows,
            )
        self._warn_far_outside(raw, pred)
        return pred

    def _warn_far_outside(self, raw, pred):
        low, high = self.transformed_range_
        width = high - low
        if not width > 0:  # a single training target value
            return
        far = ((raw < low - width) | (raw > high + width)).any(axis=1)
        if far.any():
            first = int(np.flatnonzero(far)[0])
            warnings.warn(
                f"{int(far.sum())} of {len(far)} predictions lie farther outside "
                "the training targets than their range is wide, on the scale the "
                f"network is trained on (first row {first}: "
                f"{np.ravel(pred[first])[0]:.4g}). Are the inputs in the units "
                "and scale of the training inputs?",
                UserWarning,
                stacklevel=3,
            )


def _target_transformer(target_transform):
    if target_transform not in TARGET_TRANSFORMS:
        raise ValueError(
            f"target_transform must be one of {TARGET_TRANSFORMS}, got "
            f"{target_transform!r}."
        )
    steps = []
    if target_transform in ("log", "log_zscore"):
        steps.append(FunctionTransformer(_log1p, _expm1))
    if target_transform in ("zscore", "log_zscore"):
        steps.append(StandardScaler())
    if not steps:
        return None
    # Targets, not features: arrays whatever the global transform_output, as
    # TransformedTargetRegressor does for its own transformer.
    return make_pipeline(*steps).set_output(transform="default")


def soc_pipeline(
    module="cnn_lstm",
    *,
    inputs="statistics",
    target_transform="log_zscore",
    random_state=None,
    device="auto",
    verbose=0,
):
    """An unfitted CNN-LSTM model of soil organic carbon from multi-year patches.

    A CNN-LSTM set-up for mapping soil organic carbon from multi-year
    satellite and environmental covariates [1]_, as one scikit-learn
    estimator refitted as a whole in every cross-validation fold:

    1. ``inputs="statistics"`` (the default) summarises every band and year
       of the patch by its centre pixel, mean and standard deviation
       (:class:`~skestimators.preprocessing.PatchStatistics` with
       ``flatten=False``), keeping the years
       as a sequence; ``inputs="patches"`` keeps the raw patches;
    2. every channel is standardised (one mean and standard deviation per
       channel, over samples, pixels and years:
       :class:`~skestimators.preprocessing.NDStandardScaler`);
    3. a :class:`~skestimators.SpatioTemporalRegressor` encodes each year and
       reads the years with a bidirectional LSTM (``"cnn_lstm"``) or
       concatenates them (``"pooled"``, ``pooling="concat"``);
    4. the target is trained on a log scale and standardised, and
       back-transformed at prediction
       (:class:`~sklearn.compose.TransformedTargetRegressor`).

    Parameters
    ----------
    module : {"cnn_lstm", "pooled"}, default="cnn_lstm"
        The network (see :class:`~skestimators.SpatioTemporalRegressor`).
    inputs : {"statistics", "patches"}, default="statistics"
        What the network reads. Summaries generalise better to new places on
        the simulated data (fewer spatial patterns to overfit, see
        ``benchmarks/soc.py``) and train several times faster;
        ``"patches"`` is the CNN-LSTM of [1]_ on the raw patches (3x3
        convolutions and max-pooling, channels ``(32, 64)``).
    target_transform : {"log_zscore", "log", "zscore"} or None, \
default="log_zscore"
        Target transform, for the right-skewed distribution of soil organic
        carbon [1]_: ``log1p``, z-score, both (log first),
        or none (the pipeline is then returned without the wrapper).
    random_state : int, RandomState instance or None, default=None
        Seeds the network.
    device : str, default="auto"
        Device of the network.
    verbose : int, default=0
        Progress bar when positive.

    Returns
    -------
    model : TransformedTargetRegressor or Pipeline
        ``TransformedTargetRegressor(regressor=Pipeline([..., ndstandardscaler,
        spatiotemporalregressor]))``. It takes patches ``(n, bands, height,
        width, years)`` either way. Tune the network through
        ``regressor__spatiotemporalregressor__<param>`` (``loss``,
        ``validation_cv``...), and pass fit parameters the same way
        (``fit(X, y, spatiotemporalregressor__sample_weight=w)``). Its
        predictions are checked after the back-transform: non-finite ones
        raise :class:`~skestimators.exceptions.NonFinitePredictionError`,
        and ones far outside the training targets warn.

    See Also
    --------
    soc_baseline_pipeline : The tree-ensemble baseline on patch statistics.
    skestimators.mapping.predict_raster : Map a fitted model over rasters.

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023): CNN-LSTM
       architecture, log and z-score target transforms, composite losses,
       distance-based validation, RPIQ.

    Examples
    --------
    >>> from skestimators.datasets import make_soc
    >>> from skestimators.recipes import soc_pipeline
    >>> X, y, coords = make_soc(80, n_years=3, random_state=0)
    >>> model = soc_pipeline(random_state=0, device="cpu")
    >>> [name for name, _ in model.regressor.steps]
    ['patchstatistics', 'ndstandardscaler', 'spatiotemporalregressor']
    >>> model = model.set_params(regressor__spatiotemporalregressor__max_epochs=2)
    >>> bool((model.fit(X, y).predict(X[:5]) > 0).all())
    True
    """
    if module not in ARCHITECTURES:
        raise ValueError(f"module must be one of {ARCHITECTURES}, got {module!r}.")
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}.")
    transformer = _target_transformer(target_transform)
    net = SpatioTemporalRegressor(
        module,
        **_NETWORK[inputs],
        bidirectional=True,
        pooling=_POOLING,
        **_TRAINING,
        random_state=random_state,
        device=device,
        verbose=verbose,
    )
    steps = [NDStandardScaler(per="channel", channel_axis=1), net]
    if inputs == "statistics":
        steps.insert(0, PatchStatistics(RECIPE_STATISTICS, flatten=False))
    pipe = make_pipeline(*steps)
    if transformer is None:
        return pipe
    return _CheckedTargetRegressor(pipe, transformer=transformer)


def soc_baseline_pipeline(
    model="hist_gradient_boosting", *, target_transform="log", random_state=None
):
    """The non-neural peer: tree ensemble on per-band, per-year patch statistics.

    Parameters
    ----------
    model : {"hist_gradient_boosting", "random_forest"}, \
default="hist_gradient_boosting"
        The regressor on
        :class:`~skestimators.preprocessing.PatchStatistics` (mean, std, 10th and 90th
        percentile of every band and year).
    target_transform : {"log_zscore", "log", "zscore"} or None, default="log"
        As in :func:`soc_pipeline` (trees do not need the z-score).
    random_state : int, RandomState instance or None, default=None
        Seeds the ensemble.

    Returns
    -------
    model : TransformedTargetRegressor or Pipeline
        ``PatchStatistics`` then the ensemble, in the target transform.

    See Also
    --------
    soc_pipeline : The CNN-LSTM.

    Examples
    --------
    >>> from skestimators.datasets import make_soc
    >>> from skestimators.recipes import soc_baseline_pipeline
    >>> X, y, coords = make_soc(80, n_years=3, random_state=0)
    >>> soc_baseline_pipeline(random_state=0).fit(X, y).predict(X[:2]).shape
    (2,)
    """
    if model not in BASELINES:
        raise ValueError(f"model must be one of {BASELINES}, got {model!r}.")
    if model == "random_forest":
        regressor = RandomForestRegressor(
            300, min_samples_leaf=2, max_features=0.33, random_state=random_state
        )
    else:
        regressor = HistGradientBoostingRegressor(random_state=random_state)
    transformer = _target_transformer(target_transform)
    pipe = make_pipeline(PatchStatistics(), regressor)
    if transformer is None:
        return pipe
    return TransformedTargetRegressor(pipe, transformer=transformer)
