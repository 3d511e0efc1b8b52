"""Uncertainty of regression predictions: MC dropout, deep ensembles, MAPIE.

The MAPIE tests use the package as a client would: MAPIE's conformal
regressors wrapped around the network regressors, a pipeline on named inputs
and the patch regressor, with the spatial splitters as calibration folds.
"""

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skestimators import (
    GalaxyZooRegressor,
    MultiInput,
    NetRegressor,
    SpatioTemporalRegressor,
)
from skestimators.datasets import make_galaxy_zoo, make_soc, make_soc_rasters
from skestimators.mapping import predict_raster
from skestimators.model_selection import SpatialBlockKFold
from skestimators.preprocessing import InputTransformer, NDStandardScaler
from skestimators.uncertainty import DeepEnsembleRegressor, calibration_block_size

mapie_regression = pytest.importorskip(
    "mapie.regression", reason="needs the uncertainty extra"
)

DROPOUT = {"width": 32, "dropout": 0.2}


@pytest.fixture(scope="module")
def tabular():
    """A noisy nonlinear problem on spatially scattered points."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 100, size=(400, 2))
    X = np.column_stack([coords / 50 - 1, rng.normal(size=(400, 3))])
    y = np.sin(2 * X[:, 0]) + X[:, 2] + rng.normal(scale=0.3, size=400)
    return X, y, coords


def _net(**params):
    params = {"max_epochs": 30, **params}
    return NetRegressor(module_params=DROPOUT, device="cpu", random_state=0, **params)


# -- MC dropout ----------------------------------------------------------------------
def test_return_std_by_mc_dropout(tabular):
    X, y, _ = tabular
    reg = _net().fit(X, y)
    y_pred, y_std = reg.predict(X[:50], return_std=True)
    assert y_pred.shape == y_std.shape == (50,)
    np.testing.assert_array_equal(y_pred, reg.predict(X[:50]))
    assert (y_std > 0).all()
    # Seeded by random_state, and the global torch stream is left alone.
    state = torch.get_rng_state()
    np.testing.assert_array_equal(y_std, reg.predict(X[:50], return_std=True)[1])
    assert torch.equal(state, torch.get_rng_state())
    # More passes: a different (but similar) estimate.
    y_std_more = reg.set_params(mc_samples=60).predict(X[:50], return_std=True)[1]
    assert not np.array_equal(y_std, y_std_more)
    assert 0.5 < np.median(y_std_more / y_std) < 2


def test_return_std_is_in_target_units_for_several_targets(tabular):
    X, y, _ = tabular
    Y = np.column_stack([y, 100 * y])
    reg = _net(max_epochs=5).fit(X, Y)
    y_pred, y_std = reg.predict(X[:20], return_std=True)
    assert y_pred.shape == y_std.shape == (20, 2)
    assert np.median(y_std[:, 1] / y_std[:, 0]) > 10  # scaled like the target


def test_return_std_without_dropout_is_a_clear_error(tabular):
    X, y, _ = tabular
    reg = NetRegressor(max_epochs=2, device="cpu", random_state=0).fit(X, y)
    reg.predict(X[:5])  # plain predictions still work
    with pytest.raises(ValueError, match="has no dropout layer with p > 0"):
        reg.predict(X[:5], return_std=True)


def test_no_dropout_error_names_the_estimators_own_parameter(tabular):
    # The hint is one the estimator accepts: NetRegressor takes no dropout=.
    X, y, _ = tabular
    reg = NetRegressor(max_epochs=1, device="cpu", random_state=0).fit(X, y)
    with pytest.raises(ValueError) as info:
        reg.predict(X[:5], return_std=True)
    assert "module_params={'dropout': 0.1}" in str(info.value)
    assert "or dropout=0.1" not in str(info.value)
    reg.set_params(module_params={"dropout": 0.1}).fit(X, y)
    assert reg.predict(X[:5], return_std=True)[1].shape == (5,)

    X, y, _ = make_soc(20, n_years=2, random_state=0)
    patches = SpatioTemporalRegressor(
        width=4, depth=1, head_width=8, dropout=0.0, max_epochs=1, device="cpu"
    ).fit(X, np.log(y))
    with pytest.raises(ValueError, match=r"\(e\.g\. dropout=0\.1\)") as info:
        patches.predict(X[:3], return_std=True)
    assert "module_params" not in str(info.value)


class _BatchNormDropout(torch.nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(input_shape[0], 16),
            torch.nn.BatchNorm1d(16),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(16, n_outputs),
        )

    def forward(self, X):
        return self.body(X)


def test_mc_dropout_keeps_batch_norm_in_inference_mode(tabular):
    X, y, _ = tabular
    reg = NetRegressor(_BatchNormDropout, max_epochs=3, device="cpu", random_state=0)
    reg.fit(X, y)
    bn = reg.net_.module_.body[1]
    before = bn.running_mean.clone(), int(bn.num_batches_tracked)
    _, y_std = reg.predict(X, return_std=True)
    assert (y_std > 0).all()
    assert torch.equal(before[0], bn.running_mean)
    assert before[1] == int(bn.num_batches_tracked)
    assert not reg.net_.module_.training and not bn.training


def test_mc_samples_is_validated(tabular):
    X, y, _ = tabular
    with pytest.raises(InvalidParameterError, match="mc_samples"):
        _net(mc_samples=1).fit(X, y)


def test_patch_and_image_regressors_return_std():
    X, y, _ = make_soc(60, n_years=2, random_state=0)
    reg = SpatioTemporalRegressor(
        width=4, depth=1, head_width=8, max_epochs=2, device="cpu", random_state=0
    ).fit(X, np.log(y))
    y_pred, y_std = reg.predict(X[:7], return_std=True)
    assert y_pred.shape == y_std.shape == (7,) and (y_std > 0).all()

    images, votes = make_galaxy_zoo(24, size=16, random_state=0)
    gz = GalaxyZooRegressor(
        width=4, depth=2, head_width=16, max_epochs=1, tta=2, mc_samples=4,
        device="cpu", random_state=0,
    ).fit(images, votes)  # fmt: skip
    y_pred, y_std = gz.predict(images[:5], return_std=True)
    assert y_pred.shape == y_std.shape == (5, 37)
    np.testing.assert_allclose(y_pred, gz.predict(images[:5]))
    assert (y_std >= 0).all() and y_std.max() > 0


# -- deep ensembles ------------------------------------------------------------------
def test_deep_ensemble_mean_and_spread(tabular):
    X, y, _ = tabular
    base = make_pipeline(
        StandardScaler(), NetRegressor(max_epochs=5, device="cpu", random_state=0)
    )
    ens = DeepEnsembleRegressor(base, n_estimators=3, random_state=0).fit(X, y)
    preds = np.stack([m.predict(X[:30]) for m in ens.estimators_])
    assert not np.allclose(preds[0], preds[1])  # the members differ
    y_pred, y_std = ens.predict(X[:30], return_std=True)
    np.testing.assert_allclose(y_pred, preds.mean(0))
    np.testing.assert_allclose(y_std, preds.std(0, ddof=1))
    np.testing.assert_allclose(ens.predict(X[:30]), y_pred)
    assert ens.n_features_in_ == X.shape[1]
    again = clone(ens).fit(X, y).predict(X[:30])
    np.testing.assert_allclose(again, y_pred)  # seeded by random_state


def test_deep_ensemble_feature_names():
    from sklearn.linear_model import SGDRegressor

    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(40, 2)), columns=["elevation", "ndvi"])
    ens = DeepEnsembleRegressor(SGDRegressor(), n_estimators=2, random_state=0)
    ens.fit(X, X["ndvi"])
    assert ens.feature_names_in_.tolist() == ["elevation", "ndvi"]
    assert not hasattr(ens.fit(X.to_numpy(), X["ndvi"]), "feature_names_in_")


def test_deep_ensemble_failed_refit_keeps_the_fitted_members():
    from sklearn.linear_model import SGDRegressor

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    ens = DeepEnsembleRegressor(SGDRegressor(), n_estimators=3, random_state=0)
    expected = ens.fit(X, y).predict(X)
    bad = y.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ens.fit(X[:, :2], bad)
    assert len(ens.estimators_) == 3 and ens.n_features_in_ == 3
    np.testing.assert_allclose(ens.predict(X), expected)


def test_deep_ensemble_needs_a_random_state():
    from sklearn.linear_model import LinearRegression

    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20.0)
    with pytest.raises(ValueError, match="needs a random_state parameter"):
        DeepEnsembleRegressor(LinearRegression()).fit(X, y)


def test_deep_ensemble_refuses_classifiers():
    # Their class labels were averaged into "predictions" (0.33, 0.67...)
    # with a standard deviation of labels; text labels failed in predict.
    from sklearn.tree import ExtraTreeClassifier

    X = np.random.default_rng(0).normal(size=(20, 2))
    for estimator in (
        ExtraTreeClassifier(),
        make_pipeline(StandardScaler(), ExtraTreeClassifier()),
    ):
        ensemble = DeepEnsembleRegressor(estimator, random_state=0)
        with pytest.raises(ValueError, match="ExtraTreeClassifier|Pipeline"):
            ensemble.fit(X, np.arange(20) % 2)
        assert not hasattr(ensemble, "estimators_")


@pytest.mark.parametrize("estimator", [object(), None, "net"])
def test_deep_ensemble_tags_of_an_invalid_estimator_before_fit(estimator):
    from sklearn.utils import get_tags

    ens = DeepEnsembleRegressor(estimator)
    assert get_tags(ens).estimator_type == "regressor"
    with pytest.raises(InvalidParameterError, match="estimator"):
        ens.fit(np.zeros((4, 2)), np.arange(4.0))


# -- MAPIE as a client ---------------------------------------------------------------
def _coverage(y, pis):
    return float(np.mean((y >= pis[:, 0, 0]) & (y <= pis[:, 1, 0])))


def test_mapie_split_conformal_around_net_regressor(tabular):
    X, y, _ = tabular
    X_fit, X_test, y_fit, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    X_train, X_cal, y_train, y_cal = train_test_split(
        X_fit, y_fit, test_size=0.4, random_state=0
    )
    mapie = mapie_regression.SplitConformalRegressor(
        _net(), confidence_level=0.9, prefit=False
    )
    mapie.fit(X_train, y_train).conformalize(X_cal, y_cal)
    y_pred, pis = mapie.predict_interval(X_test)
    assert pis.shape == (len(X_test), 2, 1)
    assert (pis[:, 0, 0] <= y_pred).all() and (y_pred <= pis[:, 1, 0]).all()
    assert 0.75 <= _coverage(y_test, pis) <= 1.0


def test_mapie_cross_conformal_with_spatial_folds(tabular):
    X, y, coords = tabular
    cv = SpatialBlockKFold(n_splits=4, block_size=25.0, random_state=0)
    mapie = mapie_regression.CrossConformalRegressor(
        _net(), confidence_level=0.9, cv=cv, method="plus"
    )
    mapie.fit_conformalize(X[:300], y[:300], groups=coords[:300])
    _, pis = mapie.predict_interval(X[300:])
    assert 0.75 <= _coverage(y[300:], pis) <= 1.0
    # The splitter needs the coordinates: MAPIE passes groups on to it.
    with pytest.raises(ValueError, match="coordinates"):
        mapie_regression.CrossConformalRegressor(_net(), cv=cv).fit_conformalize(
            X[:300], y[:300]
        )


class _TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Sequential(
            torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(16, 1),
        )  # fmt: skip

    def forward(self, place, extra):
        return self.head(torch.cat([place, extra], 1))


def test_mapie_around_a_pipeline_on_named_inputs(tabular):
    X, y, coords = tabular
    Xm = MultiInput(place=X[:, :2], extra=X[:, 2:])
    pipe = make_pipeline(
        InputTransformer({"extra": StandardScaler()}),
        NetRegressor(_TwoInputs(), max_epochs=20, device="cpu", random_state=0),
    )
    cv = SpatialBlockKFold(n_splits=3, block_size=25.0, random_state=0)
    mapie = mapie_regression.CrossConformalRegressor(
        pipe, confidence_level=0.9, cv=cv
    ).fit_conformalize(Xm[:300], y[:300], groups=coords[:300])
    y_pred, pis = mapie.predict_interval(Xm[300:])
    assert y_pred.shape == (100,) and pis.shape == (100, 2, 1)
    assert 0.7 <= _coverage(y[300:], pis) <= 1.0
    # A pipeline passes return_std on to the network (MC dropout).
    _, y_std = clone(pipe).fit(Xm[:300], y[:300]).predict(Xm[300:], return_std=True)
    assert y_std.shape == (100,) and (y_std > 0).all()


def test_mapie_around_the_patch_regressor(tmp_path):
    X, soc, coords = make_soc(120, n_years=2, random_state=0)
    y = np.log(soc)
    pipe = make_pipeline(
        NDStandardScaler(per="channel", channel_axis=1),
        SpatioTemporalRegressor(
            width=4, depth=1, head_width=8, max_epochs=3, device="cpu",
            random_state=0,
        ),
    )  # fmt: skip
    cv = SpatialBlockKFold(n_splits=3, block_size=12_500.0, random_state=0)
    mapie = mapie_regression.CrossConformalRegressor(
        pipe, confidence_level=[0.5, 0.9], cv=cv
    ).fit_conformalize(X[:90], y[:90], groups=coords[:90])
    y_pred, pis = mapie.predict_interval(X[90:])
    assert y_pred.shape == (30,) and pis.shape == (30, 2, 2)
    widths = pis[:, 1] - pis[:, 0]
    assert (widths[:, 1] >= widths[:, 0]).all()  # 90 % contains 50 %

    # The map and its uncertainty as extra bands.
    rasters = make_soc_rasters(tmp_path, n_years=2, grid_shape=(12, 12), random_state=0)
    plain = predict_raster(pipe.fit(X, y), rasters, tmp_path / "soc.tif", window=5)
    with_std = predict_raster(
        pipe, rasters, tmp_path / "std.tif", window=5, uncertainty="std"
    )
    interval = predict_raster(
        mapie, rasters, tmp_path / "pi.tif", window=5, uncertainty="interval"
    )
    with rasterio.open(plain) as a, rasterio.open(with_std) as b:
        assert (a.count, b.count) == (1, 2)
        assert b.descriptions == ("prediction", "std")
        np.testing.assert_array_equal(a.read(1), b.read(1))
        std, valid = b.read(2), a.read(1) != a.nodata
        assert (
            valid.any() and (std[valid] > 0).all() and (std[~valid] == b.nodata).all()
        )
    with rasterio.open(interval) as c:
        assert c.count == 5
        assert c.descriptions == ("prediction", "lower", "upper", "lower", "upper")
        pred, lo50, hi50, lo90, hi90 = c.read()
        ok = pred != c.nodata
        assert (lo90[ok] <= lo50[ok]).all() and (lo50[ok] <= pred[ok]).all()
        assert (pred[ok] <= hi50[ok]).all() and (hi50[ok] <= hi90[ok]).all()


def test_predict_raster_checks_uncertainty(tmp_path):
    from sklearn.dummy import DummyRegressor

    rasters = make_soc_rasters(tmp_path, n_years=1, grid_shape=(8, 8), random_state=0)
    model = DummyRegressor().fit(np.zeros((3, 6 * 25)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match='uncertainty must be None, "std"'):
        predict_raster(model, rasters, tmp_path / "a.tif", window=5, uncertainty="x")
    with pytest.raises(TypeError, match="needs an estimator with predict_interval"):
        predict_raster(
            model, rasters, tmp_path / "b.tif", window=5, uncertainty="interval"
        )


# -- spatial calibration folds -------------------------------------------------------
def test_calibration_block_size_matches_the_prediction_distances():
    X, soc, coords = make_soc(300, n_years=1, random_state=0)
    sizes = [2_500.0, 5_000.0, 10_000.0, 20_000.0]
    east = coords[:, 0] > np.quantile(coords[:, 0], 0.7)
    gap = calibration_block_size(
        coords[~east], coords[east], block_sizes=sizes, random_state=0
    )
    near = calibration_block_size(
        coords[~east], coords[~east][:40] + 50.0, block_sizes=sizes, random_state=0
    )
    assert gap in sizes and near in sizes
    assert near < gap  # predictions next to samples: small calibration blocks
    with pytest.raises(ValueError, match="at least one candidate"):
        calibration_block_size(coords, coords, block_sizes=[])
    # An array of candidates works like a list.
    assert (
        calibration_block_size(
            coords[~east], coords[east], block_sizes=np.array(sizes), random_state=0
        )
        == gap
    )
    with pytest.raises(ValueError, match="at least one candidate"):
        calibration_block_size(coords, coords, block_sizes=np.array([]))
    for wrong in ([np.inf], [0.0], [5_000.0, np.nan]):
        with pytest.raises(ValueError, match="finite and positive"):
            calibration_block_size(coords, coords, block_sizes=wrong)


def test_calibration_block_size_matches_the_whole_distribution():
    """A map of which a share lies far from every sample gets blocks that
    hold samples out that far, and a warning for what lies beyond them."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 100, size=(300, 2))
    near = coords[:60] + 0.5
    far = rng.uniform(200, 300, size=(40, 2))
    sizes = [5.0, 10.0, 25.0]
    assert calibration_block_size(coords, near, block_sizes=sizes, random_state=0) == 5
    with pytest.warns(UserWarning, match=r"40% of prediction_coords lie farther"):
        mixed = calibration_block_size(
            coords, np.vstack([near, far]), block_sizes=sizes, random_state=0
        )
    assert mixed == 25.0  # a median (of near points) chose 5.0
    # One isolated sample does not silence the warning.
    lonely = np.vstack([coords, [[2000.0, 2000.0]]])
    with pytest.warns(UserWarning, match=r"40% of prediction_coords"):
        calibration_block_size(
            lonely, np.vstack([near, far]), block_sizes=sizes, random_state=0
        )


def test_calibration_block_size_splits_every_candidate_alike(monkeypatch):
    """A RandomState instance gives every candidate the same seed."""
    from skestimators.uncertainty import _distances

    seeds = []

    class Spy(SpatialBlockKFold):
        def __init__(self, *args, random_state=None, **kwargs):
            seeds.append(random_state)
            super().__init__(*args, random_state=random_state, **kwargs)

    monkeypatch.setattr(_distances, "SpatialBlockKFold", Spy)
    coords = np.random.default_rng(0).uniform(0, 100, size=(300, 2))
    state = np.random.RandomState(0)
    calibration_block_size(
        coords, coords[:50] + 0.5, block_sizes=[5.0, 10.0, 25.0], random_state=state
    )
    # One integer for all: a shared RandomState instance would draw anew
    # for each candidate.
    assert len(seeds) == 3 and len(set(seeds)) == 1
    assert isinstance(seeds[0], (int, np.integer))


def test_calibration_block_size_skips_candidates_too_large_for_the_folds():
    _, _, coords = make_soc(300, n_years=1, random_state=0)
    extent = float(np.ptp(coords, axis=0).max())
    sizes = [2_500.0, 5_000.0]
    chosen = calibration_block_size(
        coords, coords[:40] + 50.0, block_sizes=sizes, random_state=0
    )
    # One block holds all samples: no 5 folds; it is skipped, not fatal.
    assert (
        calibration_block_size(
            coords, coords[:40] + 50.0, block_sizes=[*sizes, 2 * extent], random_state=0
        )
        == chosen
    )
    with pytest.raises(ValueError, match=r"None of the block_sizes \[.*\] splits"):
        calibration_block_size(coords, coords, block_sizes=[2 * extent, 3 * extent])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prediction_coords": np.zeros((3, 3))}, r"prediction_coords must .* \(n_"),
        ({"prediction_coords": np.zeros(3)}, "prediction_coords must be an array"),
        ({"prediction_coords": np.zeros((0, 2))}, "at least one point"),
        ({"prediction_coords": [[0.0, np.nan]]}, "prediction_coords contains NaN"),
        ({"coords": np.full((10, 2), np.inf)}, "coords contains NaN or infinite"),
        ({"n_splits": 1}, "n_splits must be an integer >= 2"),
    ],
)
def test_calibration_block_size_validates_its_inputs(kwargs, match):
    coords = np.random.default_rng(0).uniform(0, 100, size=(50, 2))
    params = {"coords": coords, "prediction_coords": coords[:5], **kwargs}
    with pytest.raises(ValueError, match=match):
        calibration_block_size(**params, block_sizes=[10.0])


def test_soc_recipe_gives_std_on_the_transformed_scale():
    from skestimators.recipes import soc_pipeline

    X, soc, _ = make_soc(60, n_years=2, random_state=0)
    model = soc_pipeline(random_state=0, device="cpu").set_params(
        regressor__spatiotemporalregressor__width=4,
        regressor__spatiotemporalregressor__depth=1,
        regressor__spatiotemporalregressor__head_width=8,
        regressor__spatiotemporalregressor__max_epochs=2,
    )
    model.fit(X, soc)
    y_pred, y_std = model.regressor_.predict(X[:6], return_std=True)
    assert y_pred.shape == y_std.shape == (6,) and (y_std > 0).all()


def test_deep_ensemble_routes_metadata_to_its_members():
    import sklearn
    from sklearn.linear_model import SGDRegressor
    from sklearn.model_selection import cross_validate

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=60)
    weights = np.r_[np.zeros(30), np.ones(30)]
    with sklearn.config_context(enable_metadata_routing=True):
        member = SGDRegressor(max_iter=5, tol=None).set_fit_request(sample_weight=True)
        ens = DeepEnsembleRegressor(member, n_estimators=2, random_state=0)
        ens.set_score_request(sample_weight=True)  # its own score, weighted too
        cross_validate(ens, X, y, params={"sample_weight": weights}, cv=3)
        ens.fit(X, y, sample_weight=weights)
        unweighted = clone(ens).fit(X, y)
    # The weights reached the members: zero-weight rows changed the fit.
    assert not np.allclose(ens.predict(X), unweighted.predict(X))
    # Its own requests are routed too: a pipeline asks it for the spread.
    with sklearn.config_context(enable_metadata_routing=True):
        last = DeepEnsembleRegressor(SGDRegressor(), n_estimators=2, random_state=0)
        pipe = make_pipeline(
            StandardScaler(), last.set_predict_request(return_std=True)
        )
        mean, std = pipe.fit(X, y).predict(X, return_std=True)
    assert mean.shape == std.shape == (60,)
