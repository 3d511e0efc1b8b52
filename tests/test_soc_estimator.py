"""SpatioTemporalRegressor, the SOC recipes, target transforms and repeated_cv."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GroupKFold, KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from skestimators import MultiInput, NetRegressor, SpatioTemporalRegressor
from skestimators.datasets import (
    NodataWarning,
    add_clouds,
    extract_patches,
    make_soc,
    make_soc_rasters,
)
from skestimators.mapping import predict_raster
from skestimators.metrics import regression_scorers
from skestimators.model_selection import (
    BufferedKFold,
    SpatialBlockKFold,
    compare_variants,
    repeated_cv,
)
from skestimators.nn import CNNLSTM, PooledCNN
from skestimators.preprocessing import PatchStatistics, quantile_balanced_weights
from skestimators.recipes import soc_baseline_pipeline, soc_pipeline

TINY = dict(
    width=4, depth=1, head_width=8, max_epochs=3, batch_size=16, lr=0.01,
    validation_fraction=None, device="cpu", random_state=0,
)  # fmt: skip
NET = "regressor__spatiotemporalregressor__"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny CPU models run faster on one thread, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def soc():
    X, y, coords = make_soc(96, n_years=3, random_state=0)
    return X, y, coords


def _log_zscore(regressor):
    return TransformedTargetRegressor(
        regressor,
        transformer=make_pipeline(
            FunctionTransformer(np.log1p, np.expm1), StandardScaler()
        ),
    )


def tiny_recipe(module="cnn_lstm"):
    model = soc_pipeline(module, random_state=0, device="cpu")
    return model.set_params(**{NET + k: v for k, v in TINY.items()})


# -- shapes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"bidirectional": True, "lstm_layers": 2},
        {"module": "pooled"},
        {"module": "pooled", "pooling": "concat", "width": 4, "depth": 2},
    ],
)
def test_shapes_and_fitted_attributes(soc, params):
    X, y, _ = soc
    reg = SpatioTemporalRegressor(**{**TINY, **params}).fit(X, y)
    assert reg.predict(X[:5]).shape == (5,)
    assert reg.n_features_in_ == 6 and reg.input_shape_ == (6, 5, 5, 3)
    assert len(reg.history_) == 3 and np.isfinite(reg.history_["train_loss"]).all()
    two = SpatioTemporalRegressor(**{**TINY, **params}).fit(X, np.c_[y, np.log(y)])
    assert two.predict(X[:5]).shape == (5, 2)


def test_architecture_builds_cnn_lstm_or_pooled_cnn(soc):
    X, y, _ = soc
    lstm = SpatioTemporalRegressor(**TINY, bidirectional=True).fit(X[:32], y[:32])
    module = lstm.net_.module_
    assert type(module).__name__ == "CNNLSTM" and module.lstm.bidirectional
    # 4 channels x 2 x 2 pixels after pooling, plus the available fraction.
    assert module.lstm.hidden_size == 8 and module.encoder.n_features == 4 * 2 * 2 + 1
    pooled = SpatioTemporalRegressor("pooled", **TINY).fit(X[:32], y[:32])
    assert type(pooled.net_.module_).__name__ == "PooledCNN"


# -- 5-D validation --------------------------------------------------------------------
def test_rejects_inputs_that_are_not_5d(soc):
    X, y, _ = soc
    reg = SpatioTemporalRegressor(**TINY)
    with pytest.raises(ValueError, match=r"reshape explicitly: X.reshape\(96, 450, 1"):
        reg.fit(X.reshape(len(X), -1), y)
    with pytest.raises(ValueError, match=r"\(n_samples, bands, height, width, years\)"):
        reg.fit(X[..., 0], y)
    with pytest.raises(ValueError, match="not named inputs"):
        reg.fit(MultiInput(patches=X), y)
    with pytest.raises(ValueError, match="requires y"):
        reg.fit(X, None)
    reg.fit(X, y)
    with pytest.raises(ValueError, match="got an array of shape"):
        reg.predict(X.reshape(len(X), -1))
    with pytest.raises(ValueError, match="fitted on sample shape"):
        reg.predict(X[:, :, 1:4, 1:4])
    with pytest.raises(ValueError, match="infinity"):
        reg.predict(np.where(X > 2.5, np.inf, X))


# -- incomplete series (NaN: clouds, stripes, missing acquisitions) -------------------
# The cloudy points hold one with no data at all: fitting or predicting it warns.
UNOBSERVED = "ignore:.*no observed value:skestimators.datasets.NodataWarning"


@pytest.fixture(scope="module")
def cloudy(soc):
    X, y, coords = soc
    Xc = add_clouds(X, coords, 0.3, random_state=0)
    Xc[0] = np.nan  # one point with no data at all
    Xc[1, :, :, :, 0] = np.nan  # one with its first year missing
    Xc[2, 1:3] = np.nan  # two bands missing (a sensor stripe)
    return Xc, y


@pytest.mark.parametrize("module", ["cnn_lstm", "pooled"])
def test_missing_values_train_and_predict(cloudy, module):
    X, y = cloudy
    reg = SpatioTemporalRegressor(**{**TINY, "module": module})
    unobserved = np.isnan(X).reshape(len(X), -1).all(axis=1)
    assert unobserved[0] and unobserved.sum() < 5  # point 0, and a few clouded
    message = rf"{unobserved.sum()} of {len(X)} patch.*indices \[0, "
    with pytest.warns(NodataWarning, match=message) as rec:
        reg.fit(X, y)
    assert rec[0].filename == __file__  # points at the call, not the package
    assert reg.__sklearn_tags__().input_tags.allow_nan
    with pytest.warns(NodataWarning, match="no observed value") as rec:
        pred = reg.predict(X)
    assert rec[0].filename == __file__
    assert np.isfinite(pred).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NodataWarning)
        reg.predict(X[~unobserved])  # the others do not warn
    # The availability band is read: blanking a year changes the prediction.
    i = next(i for i in range(3, len(X)) if not np.isnan(X[i, ..., :-1]).all())
    blanked = X[i : i + 1].copy()
    blanked[..., -1] = np.nan  # earlier years still observed
    assert reg.predict(blanked)[0] != pytest.approx(pred[i])


def test_gaps_a_model_never_trained_on_are_warned_of(soc, cloudy):
    # A model trained on complete patches mapped gappy ones without a word.
    X, y, _ = soc
    Xc, _ = cloudy
    gappy = np.isnan(Xc).reshape(len(Xc), -1).any(axis=1)
    reg = SpatioTemporalRegressor(**TINY).fit(X, y)
    assert reg.missing_fraction_ == 0.0
    assert gappy[1:].any()
    with pytest.warns(UserWarning, match="missing values .*never learned"):
        reg.predict(Xc[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.predict(X)  # complete patches: no warning
        seen = ~np.isnan(Xc).reshape(len(Xc), -1).all(axis=1)  # no NodataWarning
        trained = SpatioTemporalRegressor(**TINY).fit(Xc[seen], y[seen])
        assert trained.missing_fraction_ == pytest.approx(np.isnan(Xc[seen]).mean())
        trained.predict(Xc[seen])  # gaps it was trained on: no warning


def test_memory_mapped_patches_without_data_are_named_in_fit(cloudy, tmp_path):
    # The scan of a memory map read the file but never warned.
    X, y = cloudy
    np.save(tmp_path / "patches.npy", X)
    mapped = np.load(tmp_path / "patches.npy", mmap_mode="r")
    with pytest.warns(NodataWarning, match=r"patch.*indices \[0, "):
        reg = SpatioTemporalRegressor(**TINY).fit(mapped, y)
    assert reg.missing_fraction_ == pytest.approx(np.isnan(X).mean())


def test_gaps_are_named_in_every_prediction_batch(soc, tmp_path):
    # Prediction counts gaps batch by batch: patches past the first batch (of
    # 1024 here) are named by their own index, in memory and memory-mapped.
    X, y, _ = soc
    reg = SpatioTemporalRegressor(**TINY).fit(X, y)
    big = np.concatenate([X] * 12)  # 1152 patches: two batches
    big[[5, 1100]] = np.nan
    big[1030, 0, 0, 0, 0] = np.nan  # one gap, in the second batch
    np.save(tmp_path / "big.npy", big)
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    for patches in (big, mapped):
        with pytest.warns(NodataWarning, match=r"2 of 1152 .*\[5, 1100\]") as rec:
            pred = reg.predict(patches)
        never = [w for w in rec if "never learned" in str(w.message)]
        assert len(never) <= 1  # once per map (none if already given)
        assert np.isfinite(pred).all()
        np.testing.assert_allclose(pred[1000], reg.predict(X[1000 % len(X)][None])[0])
    # Only the second batch has a gap: the count is still of every patch. A
    # prediction with its standard deviation (a second, Monte Carlo pass over
    # the same patches) warns once.
    late = np.concatenate([X] * 12)
    late[1100] = np.nan
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        reg.predict(late, return_std=True)
    nodata = [str(w.message) for w in rec if w.category is NodataWarning]
    assert len(nodata) == 1 and "1 of 1152 patch(es)" in nodata[0], nodata
    assert "[1100]" in nodata[0]


def test_integer_memory_maps_have_no_missing_values(soc, tmp_path):
    X, y, _ = soc
    np.save(tmp_path / "counts.npy", (X * 100).clip(0).astype(np.uint16))
    mapped = np.load(tmp_path / "counts.npy", mmap_mode="r")
    assert SpatioTemporalRegressor(**TINY).fit(mapped, y).missing_fraction_ == 0.0


@pytest.mark.filterwarnings(UNOBSERVED)
@pytest.mark.parametrize("inputs", ["statistics", "patches"])
def test_recipe_trains_on_incomplete_series(cloudy, inputs):
    X, y = cloudy
    model = soc_pipeline(random_state=0, device="cpu", inputs=inputs)
    model.set_params(**{NET + k: v for k, v in TINY.items()}).fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    baseline = soc_baseline_pipeline("hist_gradient_boosting", random_state=0).fit(X, y)
    assert np.isfinite(baseline.predict(X)).all()


def test_missing_values_need_a_builtin_network(cloudy):
    X, y = cloudy

    class Custom(torch.nn.Module):
        def __init__(self, input_shape, n_outputs):
            super().__init__()
            self.lin = torch.nn.Linear(int(np.prod(input_shape)), n_outputs)

        def forward(self, x):
            return self.lin(x.flatten(1))

    reg = SpatioTemporalRegressor(**{**TINY, "module": Custom})
    assert not reg.__sklearn_tags__().input_tags.allow_nan
    # The message said this estimator "does not accept missing values".
    with pytest.raises(ValueError, match="built-in networks .* read NaN as missing"):
        reg.fit(X, y)
    finite = np.nan_to_num(X)
    reg.fit(finite, y)
    with pytest.raises(ValueError, match="contains NaN"):
        reg.predict(X)


@pytest.mark.filterwarnings(UNOBSERVED)
@pytest.mark.parametrize("module", [CNNLSTM, PooledCNN])
def test_built_in_network_classes_read_missing_values(cloudy, module):
    # Only the names were taken to read NaN: the classes themselves, which do,
    # were refused.
    X, y = cloudy
    reg = SpatioTemporalRegressor(**{**TINY, "module": module}).fit(X, y)
    assert reg.__sklearn_tags__().input_tags.allow_nan
    assert np.isfinite(reg.predict(X)).all()


class _Forwarding(CNNLSTM):
    """A subclass passing its keywords on to the built-in network."""

    def __init__(self, *args, extra=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra = extra


class _Narrow(CNNLSTM):
    """Takes the width only; its other settings are its own."""

    def __init__(self, input_shape, n_outputs, width=8):
        super().__init__(input_shape, n_outputs, width=width, depth=1)


class _Chained(_Narrow):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


def test_network_parameters_follow_a_chain_of_keyword_subclasses(soc):
    # The parameters of CNNLSTM itself were passed through _Chained's
    # **kwargs to _Narrow, which does not take them (TypeError: depth).
    X, y, _ = soc
    reg = SpatioTemporalRegressor(_Chained, **{**TINY, "max_epochs": 1})
    assert isinstance(reg.fit(X[:20], y[:20]).net_.module_, _Chained)


@pytest.mark.parametrize(
    ("module", "name", "extra"),
    [
        (CNNLSTM, "cnn_lstm", {"bidirectional": True, "lstm_layers": 2}),
        (PooledCNN, "pooled", {"pooling": "concat"}),
        (_Forwarding, "cnn_lstm", {"bidirectional": True}),
    ],
)
def test_built_in_network_classes_take_the_network_parameters(soc, module, name, extra):
    # A class was built with input_shape and n_outputs only: width, depth,
    # dropout ... were ignored without a word (the default network trained).
    X, y, _ = soc
    settings = {**TINY, "max_epochs": 1, "dropout": 0.0, **extra}
    by_class = SpatioTemporalRegressor(module, **settings).fit(X[:40], y[:40])
    by_name = SpatioTemporalRegressor(name, **settings).fit(X[:40], y[:40])
    built, named = by_class.net_.module_, by_name.net_.module_
    assert repr(built).split("(", 1)[1] == repr(named).split("(", 1)[1]
    np.testing.assert_allclose(by_class.predict(X[:5]), by_name.predict(X[:5]))


def test_custom_module_leaves_no_missing_fraction_of_an_earlier_fit(cloudy):
    class Flat(torch.nn.Module):
        def __init__(self, input_shape, n_outputs):
            super().__init__()
            self.out = torch.nn.Linear(int(np.prod(input_shape)), n_outputs)

        def forward(self, X):
            return self.out(X.flatten(1))

    X, y = cloudy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = SpatioTemporalRegressor(**TINY).fit(X, y)
    assert reg.missing_fraction_ > 0
    reg.set_params(module=Flat).fit(np.nan_to_num(X), y)
    assert not hasattr(reg, "missing_fraction_")


def test_valid_statistic_is_the_share_of_observed_pixels():
    X = np.ones((2, 1, 3, 3, 2))
    X[0, 0, 0, :, 0] = np.nan  # 3 of 9 pixels missing in year 0
    X[1, 0, :, :, 1] = np.nan
    X[1, 0, 1, 1, 1] = 1.0  # one pixel seen: its std is 0, a value
    out = PatchStatistics(("valid", "std")).fit_transform(X)
    np.testing.assert_allclose(out[:, :2], [[6 / 9, 1], [1, 1 / 9]])
    np.testing.assert_allclose(out[:, 2:], 0)
    complete = PatchStatistics(("valid",)).fit_transform(np.ones((2, 1, 3, 3, 2)))
    np.testing.assert_array_equal(complete, 1)


@pytest.mark.filterwarnings(UNOBSERVED)
@pytest.mark.parametrize("on_device", [False, True])
def test_infinity_is_refused_even_where_nan_is_missing(cloudy, monkeypatch, on_device):
    X, y = cloudy
    bad = X.copy()
    bad[5, 0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        SpatioTemporalRegressor(**TINY).fit(bad, y)
    reg = SpatioTemporalRegressor(**TINY).fit(X, y)
    expected = reg.predict(X)
    if on_device:  # checked as on a GPU: NaN passes, infinity is refused
        monkeypatch.setattr(
            "skestimators._engine._inference._checks_on_device", lambda device: True
        )
    np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"infinity .*first at row 5"):
        reg.predict(bad)


@pytest.mark.filterwarnings(UNOBSERVED)
def test_statistics_and_scaling_leave_missing_pixels_out(cloudy):
    from skestimators.preprocessing import NDStandardScaler

    X, _ = cloudy
    stats = PatchStatistics(("mean", "std", "p90", "centre")).fit(X)
    out = stats.transform(X)
    assert np.isnan(out[0]).all()  # no data at all: every statistic missing
    pixels = X[:, :, :, :, :].reshape(len(X), X.shape[1], -1, X.shape[-1])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(pixels, axis=2).reshape(len(X), -1)
    n_mean = X.shape[1] * X.shape[-1]
    np.testing.assert_allclose(out[:, :n_mean], expected, rtol=1e-5)
    scaler = NDStandardScaler(channel_axis=1).fit(X)
    assert np.isfinite(scaler.mean_).all() and np.isfinite(scaler.scale_).all()
    scaled = scaler.transform(X)
    np.testing.assert_array_equal(np.isnan(scaled), np.isnan(X))


def test_parameters_are_validated(soc):
    X, y, _ = soc
    with pytest.raises(ValueError, match="'module' parameter"):
        SpatioTemporalRegressor("transformer").fit(X, y)
    with pytest.raises(ValueError, match="depth"):
        SpatioTemporalRegressor(**{**TINY, "depth": 0}).fit(X, y)


# -- losses ----------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["composite_l1", "composite_l2", "l1", "huber"])
def test_losses_train(soc, loss):
    X, y, _ = soc
    reg = SpatioTemporalRegressor(**TINY, loss=loss).fit(X, np.log(y))
    assert np.isfinite(reg.history_["train_loss"]).all()
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize(
    ("composite", "plain"), [("composite_l1", "l1"), ("composite_l2", "mse")]
)
def test_composite_loss_parameters_reach_the_loss(soc, composite, plain):
    X, y = soc[0], np.log(soc[1])
    # loss_alpha=1 drops the chi² term: the very same training as the plain loss.
    same = SpatioTemporalRegressor(**TINY, loss=composite, loss_alpha=1.0).fit(X, y)
    base = SpatioTemporalRegressor(**TINY, loss=plain).fit(X, y)
    np.testing.assert_allclose(same.history_["train_loss"], base.history_["train_loss"])
    other = SpatioTemporalRegressor(**TINY, loss=composite, loss_alpha=0.2, sigma=0.5)
    assert not np.allclose(
        other.fit(X, y).history_["train_loss"], base.history_["train_loss"]
    )


# -- target transforms and sample weights ----------------------------------------------
@pytest.mark.parametrize("estimator", ["patches", "net"])
def test_transformed_target_regressor_with_sample_weight(soc, estimator):
    X, y, _ = soc
    if estimator == "net":
        X = X.reshape(len(X), -1)
        reg = NetRegressor(
            max_epochs=3, lr=0.01, validation_fraction=None, device="cpu",
            random_state=0, module_params={"width": 8},
        )  # fmt: skip
    else:
        reg = SpatioTemporalRegressor(**TINY)
    model = _log_zscore(reg).fit(X, y)
    # The network learned the standardised log target, predict() undoes it.
    inner = model.regressor_.predict(X)
    np.testing.assert_allclose(
        model.predict(X), model.transformer_.inverse_transform(inner[:, None]).ravel()
    )
    assert (model.predict(X) > 0).all()
    # sample_weight reaches the network: ones change nothing, other weights do.
    ones = _log_zscore(reg).fit(X, y, sample_weight=np.ones(len(y))).predict(X)
    np.testing.assert_allclose(ones, model.predict(X), rtol=1e-6)
    weights = quantile_balanced_weights(np.log(y), 4, strategy="uniform")
    assert weights.std() > 0.1
    weighted = _log_zscore(reg).fit(X, y, sample_weight=weights).predict(X)
    assert not np.allclose(weighted, model.predict(X))


def test_recipe_routes_fit_params_to_the_network(soc):
    X, y, _ = soc
    weights = quantile_balanced_weights(np.log(y), 4, strategy="uniform")
    model = tiny_recipe()
    plain = model.fit(X, y).predict(X)
    with_weights = model.fit(
        X, y, spatiotemporalregressor__sample_weight=weights
    ).predict(X)
    assert not np.allclose(plain, with_weights)
    stats, scaler, net = model.regressor_
    assert isinstance(stats, PatchStatistics) and not stats.flatten
    assert scaler.mean_.shape == (18,)  # centre, mean, std of 6 bands
    assert net.input_shape_ == (18, 1, 1, 3)  # the years stay a sequence
    patches = soc_pipeline(inputs="patches", device="cpu")
    patches.set_params(**{NET + k: v for k, v in TINY.items()}).fit(X, y)
    assert patches.regressor_[-1].input_shape_ == (6, 5, 5, 3)
    assert patches.regressor_[0].mean_.shape == (6,)  # one mean per band
    with pytest.raises(ValueError, match="inputs"):
        soc_pipeline(inputs="pixels")


@pytest.mark.parametrize("transform", ["log", "zscore", None])
def test_recipe_target_transforms(soc, transform):
    X, y, _ = soc
    model = soc_pipeline("pooled", target_transform=transform, device="cpu")
    prefix = "" if transform is None else "regressor__"
    model.set_params(
        **{f"{prefix}spatiotemporalregressor__{k}": v for k, v in TINY.items()}
    )
    assert model.fit(X, y).predict(X[:3]).shape == (3,)
    assert isinstance(model, Pipeline) == (transform is None)
    with pytest.raises(ValueError, match="target_transform"):
        soc_pipeline(target_transform="sqrt")
    with pytest.raises(ValueError, match="module must be one of"):
        soc_pipeline("transformer")


# -- spatial validation split ----------------------------------------------------------
def test_spatial_validation_split_through_groups(soc):
    X, y, coords = soc
    # shuffle=False: a shuffling splitter is reseeded from random_state in fit,
    # and the validation set checked below would not be the one recomputed here.
    reg = SpatioTemporalRegressor(
        **TINY, validation_cv=SpatialBlockKFold(4, n_blocks=4, shuffle=False)
    )
    with pytest.raises(ValueError, match="need the sample coordinates"):
        reg.fit(X, y)
    reg.fit(X, np.log(y), groups=coords)
    assert {"valid_loss", "valid_rmse", "valid_r2"} <= set(reg.history_.columns)
    # The validation set is the first test fold of the splitter: whole blocks.
    _, valid = next(reg.validation_cv.split(X, groups=coords))
    labels = reg.validation_cv.block_labels(coords)
    assert not set(labels[valid]) & set(np.delete(labels, valid))
    # Through the recipe and cross_validate: coordinates for the outer folds and
    # for the inner validation split of every fold.
    model = tiny_recipe().set_params(**{NET + "validation_cv": reg.validation_cv})
    scores = cross_validate(
        model, X, y, cv=SpatialBlockKFold(3, n_blocks=3), groups=coords,
        params={"spatiotemporalregressor__groups": coords}, error_score="raise",
    )  # fmt: skip
    assert np.isfinite(scores["test_score"]).all()


@pytest.mark.parametrize(
    "cv",
    [
        SpatialBlockKFold(4, n_blocks=4),
        BufferedKFold(1000.0, n_splits=4, random_state=0),
        BufferedKFold(1000.0, n_splits=4),
    ],
)
def test_shuffled_spatial_validation_cv(soc, cv):
    X, y, coords = soc
    reg = SpatioTemporalRegressor(**TINY, validation_cv=cv)
    first = reg.fit(X, np.log(y), groups=coords).history_["valid_loss"]
    assert "valid_r2" in reg.history_
    # The splitter is reseeded from random_state: the same split every time.
    again = reg.fit(X, np.log(y), groups=coords).history_["valid_loss"]
    np.testing.assert_array_equal(first, again)


# -- repeated_cv -----------------------------------------------------------------------
def _seed_scorer(estimator, X, y):
    return float(estimator.get_params()["random_state"])


def test_repeated_cv_tidy_output(soc):
    X, y, coords = soc
    scoring = {**regression_scorers(), "seed": _seed_scorer}
    scores, summary = repeated_cv(
        DecisionTreeRegressor(max_depth=3), X.reshape(len(X), -1), y,
        cv=SpatialBlockKFold(3, n_blocks=4), groups=coords, n_repeats=3,
        scoring=scoring, random_state=0,
    )  # fmt: skip
    assert list(scores.columns) == ["repeat", "fold", "metric", "value", "fit_time"]
    assert len(scores) == 3 * 3 * 5
    assert list(summary.index) == [
        "r2",
        "neg_root_mean_squared_error",
        "neg_mean_absolute_error",
        "rpiq",
        "seed",
    ]
    seeds = scores[scores["metric"] == "seed"].groupby("repeat")["value"]
    assert (seeds.nunique() == 1).all() and seeds.first().nunique() == 3
    r2 = scores.loc[scores["metric"] == "r2", "value"]
    assert summary.loc["r2", "mean"] == pytest.approx(r2.mean())
    assert summary.loc["r2", "std"] == pytest.approx(r2.std(ddof=0))
    per_repeat = scores[scores["metric"] == "r2"].groupby("repeat")["value"].mean()
    assert summary.loc["r2", "repeat_std"] == pytest.approx(per_repeat.std())
    # The same seeds and folds as compare_variants.
    compared = compare_variants(
        {"tree": DecisionTreeRegressor(max_depth=3)}, X.reshape(len(X), -1), y,
        cv=SpatialBlockKFold(3, n_blocks=4), groups=coords, n_repeats=3,
        scoring={"seed": _seed_scorer, "r2": "r2"}, random_state=0,
    )  # fmt: skip
    np.testing.assert_allclose(
        compared.loc[compared["metric"] == "r2", "value"], r2.to_numpy()
    )


class _FailsOnSeed(DecisionTreeRegressor):
    """Fails to fit with one random_state (one repeat's seed)."""

    def __init__(self, *, bad_seed=None, random_state=None):
        super().__init__(max_depth=3, random_state=random_state)
        self.bad_seed = bad_seed

    def fit(self, X, y, sample_weight=None):
        if self.random_state == self.bad_seed:
            raise ValueError("diverged")
        return super().fit(X, y, sample_weight=sample_weight)


def test_repeated_cv_failed_fits_score_error_score(soc):
    X, y, coords = soc
    X = X.reshape(len(X), -1)
    # The first repeat's seed, drawn as repeated_cv draws it.
    first_seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    model = _FailsOnSeed(bad_seed=first_seed)
    with pytest.warns(FitFailedWarning, match="diverged"):
        scores, summary = repeated_cv(
            model, X, y, cv=KFold(2, shuffle=True), n_repeats=2, scoring="r2",
            random_state=0,
        )  # fmt: skip
    assert scores.loc[scores["repeat"] == 0, "value"].isna().all()
    assert scores.loc[scores["repeat"] == 1, "value"].notna().all()
    # A failed fit does not drop out of the statistics.
    assert summary.loc["r2"].isna().all()
    with pytest.raises(ValueError, match="diverged"):
        repeated_cv(
            model, X, y, cv=KFold(2, shuffle=True), n_repeats=2, scoring="r2",
            random_state=0, error_score="raise",
        )  # fmt: skip


def test_repeated_cv_reseeds_nested_estimators_and_passes_params(soc):
    X, y, coords = soc
    weights = np.r_[np.ones(48), np.full(48, 2.0)]

    def weight_sum(estimator, X, y):
        return float(estimator.regressor_.fitted_weight_sum_)

    class Recorder(DecisionTreeRegressor):
        def fit(self, X, y, sample_weight=None):
            self.fitted_weight_sum_ = float(np.sum(sample_weight))
            return super().fit(X, y, sample_weight=sample_weight)

    model = TransformedTargetRegressor(Recorder(), func=np.log, inverse_func=np.exp)
    with pytest.warns(UserWarning, match="KFold cannot be reshuffled"):
        scores, summary = repeated_cv(
            model, X.reshape(len(X), -1), y, cv=KFold(2), n_repeats=2,
            scoring={"w": weight_sum}, params={"sample_weight": weights},
        )  # fmt: skip
    # KFold(2) without shuffling: train halves are the weighted and unweighted ones.
    assert sorted(scores["value"].unique()) == [48.0, 96.0]
    one, summary = repeated_cv(
        tiny_recipe(), X, y, cv=GroupKFold(2), groups=coords[:, 0] > np.median(
            coords[:, 0]), n_repeats=1, scoring="r2",
    )  # fmt: skip
    assert len(one) == 2 and np.isnan(summary.loc["r2", "repeat_std"])
    with pytest.raises(ValueError, match="n_repeats"):
        repeated_cv(model, X, y, n_repeats=0)


# -- baselines and mapping -------------------------------------------------------------
def test_patch_statistics():
    X = np.arange(2 * 1 * 3 * 3 * 2, dtype=float).reshape(2, 1, 3, 3, 2)
    stats = PatchStatistics(("mean", "centre", "p50", "max")).fit(X)
    out = stats.transform(X)
    pixels = X.reshape(2, 1, 9, 2)
    np.testing.assert_allclose(out[:, :2], pixels.mean(axis=2)[:, 0])
    np.testing.assert_allclose(out[:, 2:4], X[:, 0, 1, 1, :])
    np.testing.assert_allclose(out[:, 4:6], np.median(pixels, axis=2)[:, 0])
    np.testing.assert_allclose(out[:, 6:], pixels.max(axis=2)[:, 0])
    assert stats.get_feature_names_out()[2] == "band0_year0_centre"
    seq = PatchStatistics(("mean", "centre", "p50", "max"), flatten=False).fit(X)
    assert seq.transform(X).shape == (2, 4, 1, 1, 2)
    np.testing.assert_allclose(seq.transform(X).reshape(2, -1), out)
    # Its 5-D output has no columns: no names, and set_output leaves it as it is
    # (it tried to wrap it in a DataFrame: "Must pass 2-d input").
    with pytest.raises(AttributeError, match="get_feature_names_out"):
        seq.get_feature_names_out()
    pandas = PatchStatistics(("mean",), flatten=False).set_output(transform="pandas")
    assert pandas.fit_transform(X).shape == (2, 1, 1, 1, 2)
    table = PatchStatistics(("mean",)).set_output(transform="pandas").fit_transform(X)
    assert table.columns.tolist() == ["band0_year0_mean", "band0_year1_mean"]
    with pytest.raises(ValueError, match="statistics"):
        PatchStatistics(("mode",)).fit(X)
    with pytest.raises(ValueError, match=r"names \['mean'\] more than once"):
        PatchStatistics(("mean", "std", "mean")).fit(X)
    # One percentile written twice; a centre pixel of an even patch.
    with pytest.raises(ValueError, match=r"\['p05', 'p5'\] more than once"):
        PatchStatistics(("p5", "p05")).fit(X)
    with pytest.raises(ValueError, match="odd height and width"):
        PatchStatistics(("centre",)).fit(X[:, :, :2, :2])
    assert PatchStatistics(("mean",)).fit_transform(X[:, :, :2, :2]).shape == (2, 2)
    with pytest.raises(ValueError, match="patches of shape"):
        PatchStatistics().fit(X[..., 0])
    with pytest.raises(ValueError, match="fitted on"):
        stats.transform(X[:, :, :2])


def test_predict_raster_with_the_fitted_recipe(tmp_path):
    import rasterio
    from rasterio.transform import Affine

    X, y, coords = make_soc(80, n_years=2, random_state=3)
    paths = make_soc_rasters(tmp_path / "cov", n_years=2, random_state=3)
    model = tiny_recipe().fit(extract_patches(paths, coords, window=5), y)
    out = predict_raster(model, paths, tmp_path / "soc.tif", window=5, stride=10)
    with rasterio.open(paths[0]) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.crs.to_epsg() == 25832
        assert dst.transform == src.transform @ Affine.scale(10)
        assert dst.shape == (20, 20) and dst.nodata == -9999.0
        values = dst.read(1)
        # Output pixel (row 7, col 5) is predicted from source pixel (75, 55).
        centre = src.transform @ (55.5, 75.5)
    assert (values > 0).all() and np.isfinite(values).all()
    patch = extract_patches(paths, [centre], window=5)
    assert values[7, 5] == pytest.approx(float(model.predict(patch)[0]), rel=1e-5)


def test_baseline_pipeline(soc):
    X, y, _ = soc
    for name in ("hist_gradient_boosting", "random_forest"):
        model = soc_baseline_pipeline(name, random_state=0)
        assert model.fit(X, y).predict(X[:3]).shape == (3,)
    with pytest.raises(ValueError, match="model"):
        soc_baseline_pipeline("svm")


def test_log_target_refuses_targets_at_or_below_minus_one(soc, tmp_path):
    # log1p made them NaN or -inf, and the error spoke of NaN in y.
    from skestimators import load, save

    X, y, _ = soc
    y_change = np.array(y, dtype=float)
    y_change[3] = -2.0
    for model in (soc_pipeline(device="cpu"), soc_baseline_pipeline()):
        with pytest.raises(ValueError, match="above -1; the smallest is -2"):
            model.fit(X, y_change)
    # The checked log is trusted by the safe format.
    model = soc_baseline_pipeline(random_state=0).fit(X[:60], y[:60])
    path = save(model, tmp_path / "soc.skops")
    assert path.suffix == ".skops"
    np.testing.assert_array_equal(load(path).predict(X[:5]), model.predict(X[:5]))


@pytest.mark.filterwarnings("error::UserWarning")
def test_statistics_recipe_under_pandas_output(soc):
    # A global transform_output="pandas" made PatchStatistics(flatten=False)
    # wrap its 5-D patches in a DataFrame: the recipe failed to fit.
    from sklearn import config_context

    X, y = soc[:2]
    with config_context(transform_output="pandas"):
        model = tiny_recipe().fit(X[:40], y[:40])
        assert model.predict(X[:5]).shape == (5,)
    assert model.predict(X[:5]).shape == (5,)


def test_recipe_predictions_are_checked_in_the_units_of_y(soc, tmp_path):
    # Inputs in other units gave large but finite log predictions, which the
    # back-transform turned into infinity or 1e198 g/kg without a word: the
    # network's check only sees the transformed scale.
    from skestimators import load, save
    from skestimators.exceptions import NonFinitePredictionError

    X, y, _ = soc
    model = tiny_recipe().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(X[:20])  # in range: no warning
    with pytest.warns(UserWarning, match="farther outside the training targets"):
        model.predict(X[:20] * 1e4)  # predictions of about -1 g/kg
    path = save(model, tmp_path / "soc.skops")
    assert path.suffix == ".skops"  # the safe format trusts the inverse
    for fitted in (model, load(path)):
        # A network output of 1e4 standard deviations: exp overflows.
        network = fitted.regressor_
        raw = network.predict(X[:20])
        raw[[4, 7]] = 1e4
        network.predict = lambda X, **params: raw[: len(X)]
        with pytest.raises(NonFinitePredictionError, match="back-transform") as info:
            fitted.predict(X[:20])
        np.testing.assert_array_equal(info.value.rows, [4, 7])


def test_recipe_refuses_return_std_saying_what_to_use(soc):
    X, y, _ = soc
    model = tiny_recipe().fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"regressor_\.predict\(X, return_std=True\)"):
        model.predict(X[:5], return_std=True)


def test_patches_of_another_shape_are_named_as_such(soc):
    # scikit-learn's check spoke of "5 features" for 5 of 6 bands, and of
    # nothing more for swapped axes.
    X, y, _ = soc
    reg = SpatioTemporalRegressor(**TINY).fit(X, np.log(y))
    shapes = r"sample shape \(5, 5, 5, 3\).*\(6, 5, 5, 3\)"
    with pytest.raises(ValueError, match=shapes):
        reg.predict(X[:3, :5])
    with pytest.raises(ValueError, match="axes swapped"):
        reg.predict(np.moveaxis(X[:3], 1, 3))


def test_spatial_validation_without_coordinates_says_where_they_go(soc):
    # The splitter's advice (cross_val_score(..., groups=coords)) is for the
    # outer folds; the network's validation split takes them in fit.
    X, y, coords = soc
    model = tiny_recipe().set_params(
        **{NET + "validation_cv": SpatialBlockKFold(4, block_size=5_000)}
    )
    with pytest.raises(ValueError, match=r"fit\(X, y, <step>__groups=coords\)"):
        model.fit(X, y)
    model.fit(X, y, spatiotemporalregressor__groups=coords)
