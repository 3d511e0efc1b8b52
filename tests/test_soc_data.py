"""SOC simulator, patch extraction from GeoTIFFs, raster mapping, target weights."""

import os
import warnings

import numpy as np
import pytest
from scipy.stats import skew
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skestimators.datasets import (
    NodataWarning,
    extract_patches,
    make_soc,
    make_soc_rasters,
)
from skestimators.mapping import _raster, predict_raster
from skestimators.preprocessing import quantile_balanced_weights

rasterio = pytest.importorskip("rasterio", reason="needs the geo extra")
from rasterio.transform import Affine  # noqa: E402

CRS = "EPSG:25832"
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_300_000.0)


def _write(path, data, *, crs=CRS, transform=TRANSFORM, nodata=None):
    """Write ``data`` (bands, height, width) as a float32 GeoTIFF."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data.astype(np.float32))
    return path


@pytest.fixture
def stack(tmp_path):
    """Three years of a 3-band 23 x 31 raster, and the same data as an array."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 3, 23, 31)).astype(np.float32)  # (T, bands, H, W)
    paths = [_write(tmp_path / f"y{t}.tif", data[t]) for t in range(3)]
    return paths, data


def _centres(rows, cols):
    """Map coordinates of pixel centres."""
    xs = TRANSFORM.c + TRANSFORM.a * (np.asarray(cols) + 0.5)
    ys = TRANSFORM.f + TRANSFORM.e * (np.asarray(rows) + 0.5)
    return np.column_stack([xs, ys])


def _flat(X):
    return X.reshape(len(X), -1)


# -- simulator ----------------------------------------------------------------------
def test_make_soc_shapes_and_types():
    X, y, coords = make_soc(300, bands=4, window=7, n_years=3, random_state=0)
    assert X.shape == (300, 4, 7, 7, 3) and X.dtype == np.float32
    assert y.shape == (300,) and coords.shape == (300, 2)
    assert np.isfinite(X).all() and (y > 0).all()
    for seed in range(5):  # right-skewed, whatever the seed
        assert skew(make_soc(300, n_years=1, random_state=seed)[1]) > 0.5
    assert coords[:, 0].min() > 500_000 and coords[:, 1].min() > 5_000_000  # metres


def test_make_soc_deterministic_and_fast_enough_for_2000():
    a = make_soc(2000, random_state=3)
    b = make_soc(2000, random_state=3)
    c = make_soc(2000, random_state=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


def test_make_soc_is_clustered():
    _, _, coords = make_soc(600, random_state=0)
    from scipy.spatial import cKDTree

    nearest, _ = cKDTree(coords).query(coords, k=2)
    uniform = np.random.default_rng(0).uniform(coords.min(0), coords.max(0), (600, 2))
    nearest_uniform, _ = cKDTree(uniform).query(uniform, k=2)
    assert np.median(nearest[:, 1]) < 0.7 * np.median(nearest_uniform[:, 1])


def test_make_soc_takes_numpy_scalars_and_zero_spread():
    X, _, _ = make_soc(
        np.int64(20), grid_shape=np.array([60, 60]), window=np.int32(3),
        pixel_size=np.array(250.0), cluster_std=0.0, noise=np.float32(0.1),
        n_years=2, random_state=0,
    )  # fmt: skip
    assert X.shape == (20, 6, 3, 3, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 4}, "odd"),
        ({"bands": 0}, "bands"),
        ({"grid_shape": (10, 10)}, "too small"),
        ({"scattered_fraction": 1.5}, "scattered_fraction"),
        ({"n_clusters": 0}, "n_clusters"),
        # These ended in ZeroDivisionError, broadcast or unpacking errors.
        ({"n_samples": -5}, "n_samples must be a positive integer"),
        ({"n_samples": 2.5}, "n_samples must be a positive integer"),
        ({"pixel_size": 0}, "pixel_size must be a positive number"),
        ({"pixel_size": -250.0}, "pixel_size must be a positive number"),
        ({"correlation_length": 0.0}, "correlation_length must be a positive"),
        ({"cluster_std": -1.0}, "cluster_std must be a non-negative number"),
        ({"grid_shape": (20,)}, "grid_shape must be two positive integers"),
        ({"noise": -1.0}, "noise must be a non-negative number"),
        ({"bands": True}, "bands must be a positive integer"),
        ({"window": 3.0}, "window must be a positive integer"),  # failed later
        ({"n_clusters": 3.0}, "n_clusters must be a positive integer"),
    ],
)
def test_make_soc_invalid(kwargs, match):
    kwargs = {"n_samples": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_soc(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cloud_size": 0.0}, "cloud_size must be a positive number"),
        ({"pixel_size": -1.0}, "pixel_size must be a positive number"),
        ({"coords": "nan"}, "coords must be finite"),
    ],
)
def test_add_clouds_invalid(kwargs, match):
    from skestimators.datasets import add_clouds

    X, _, coords = make_soc(10, n_years=2, random_state=0)
    if kwargs.pop("coords", None) == "nan":
        coords = coords.copy()
        coords[0, 0] = np.nan
    with pytest.raises(ValueError, match=match):
        add_clouds(X, coords, 0.3, **kwargs)


def test_make_soc_rasters_hold_the_same_world(tmp_path):
    X, y, coords = make_soc(150, n_years=3, random_state=7)
    paths, oc = make_soc_rasters(tmp_path, n_years=3, random_state=7, return_oc=True)
    assert [p.name for p in paths] == [f"covariates_year{t:02d}.tif" for t in range(3)]
    with rasterio.open(paths[0]) as src:
        assert src.crs.to_epsg() == 25832 and src.count == 6
        assert src.shape == oc.shape == (200, 200)
        assert src.transform.a == 250.0 and src.transform.e == -250.0
        rows, cols = rasterio.transform.rowcol(src.transform, *coords.T)
    np.testing.assert_array_equal(extract_patches(paths, coords, 5), X)
    # y is the noise-free map plus 10% (log) noise.
    ratio = np.log(y) - np.log(oc[rows, cols])
    assert abs(ratio.mean()) < 0.05 and 0.05 < ratio.std() < 0.15


# -- extract_patches ----------------------------------------------------------------
def test_extract_patches_equals_array_slicing(stack):
    paths, data = stack
    rows = np.array([3, 10, 19, 2, 15])
    cols = np.array([3, 27, 8, 15, 15])
    patches = extract_patches(paths, _centres(rows, cols), 5)
    assert patches.shape == (5, 3, 5, 5, 3) and patches.dtype == np.float32
    for i, (r, c) in enumerate(zip(rows, cols)):
        expected = np.moveaxis(data[:, :, r - 2 : r + 3, c - 2 : c + 3], 0, -1)
        np.testing.assert_array_equal(patches[i], expected)
    # Any point inside the pixel selects that pixel; a single file gives T=1.
    inside = _centres(rows, cols) + [4.9, -4.9]
    np.testing.assert_array_equal(extract_patches(paths, inside, 5), patches)
    single = extract_patches(paths[0], _centres(rows, cols), 3)
    assert single.shape == (5, 3, 3, 3, 1)


def test_extract_patches_many_tiles_equal_one_tile(stack):
    from skestimators.datasets._rasters import _RasterStack, _read_patches

    paths, _ = stack
    rows, cols = np.meshgrid(np.arange(2, 21), np.arange(2, 29), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    with _RasterStack(paths) as raster:
        tiled = _read_patches(raster, rows, cols, 5, tile_size=4)
        whole = _read_patches(raster, rows, cols, 5, tile_size=1000)
    np.testing.assert_array_equal(tiled, whole)


def test_extract_patches_edges_and_nodata(tmp_path, stack):
    paths, data = stack
    coords = _centres([0, 10, 11], [0, 10, 30])  # two patches reach outside
    with pytest.warns(NodataWarning, match=r"2 of 3 .*\[0, 2\]"):
        masked = extract_patches(paths, coords, 3)
    assert np.isnan(masked[0, :, 0, :]).all() and not np.isnan(masked[1]).any()
    np.testing.assert_array_equal(
        masked[0, :, 1:, 1:], np.moveaxis(data[:, :, :2, :2], 0, -1)
    )
    filled, has_nodata = extract_patches(
        paths, coords, 3, nodata="fill", fill_value=-1.0, return_mask=True
    )
    np.testing.assert_array_equal(has_nodata, [True, False, True])
    assert (filled[0, :, 0, :] == -1.0).all() and not np.isnan(filled).any()
    with pytest.raises(ValueError, match=r"2 patch\(es\).*\[0, 2\]"):
        extract_patches(paths, coords, 3, nodata="raise")
    # A nodata value in one year's file masks that pixel in that year only.
    year = data[1].copy()
    year[:, 10, 10] = -9999.0
    with_nodata = [
        paths[0],
        _write(tmp_path / "nd.tif", year, nodata=-9999.0),
        paths[2],
    ]
    patches, has_nodata = extract_patches(
        with_nodata, _centres([10, 5], [11, 5]), 3, return_mask=True
    )
    np.testing.assert_array_equal(has_nodata, [True, False])
    assert np.isnan(patches[0, :, 1, 0, 1]).all()
    assert np.isnan(patches).sum() == 3  # 3 bands x 1 pixel x 1 year


def test_extract_patches_errors(tmp_path, stack):
    paths, data = stack
    coords = _centres([5], [5])
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        extract_patches([paths[0], tmp_path / "missing.tif"], coords, 3)
    with pytest.raises(ValueError, match="coords holds no points"):
        extract_patches(paths, np.empty((0, 2)), 3)
    other_crs = _write(tmp_path / "crs.tif", data[0], crs="EPSG:4326")
    with pytest.raises(ValueError, match="CRS"):
        extract_patches([paths[0], other_crs], coords, 3)
    two_bands = _write(tmp_path / "bands.tif", data[0, :2])
    with pytest.raises(ValueError, match="band count"):
        extract_patches([paths[0], two_bands], coords, 3)
    shifted = _write(
        tmp_path / "shift.tif", data[0], transform=TRANSFORM @ Affine.translation(1, 0)
    )
    with pytest.raises(ValueError, match=r"transforms .* up to 1 pixel apart"):
        extract_patches([paths[0], shifted], coords, 3)
    # Rounding in a transform (1e-9 m on a 30 m grid) was refused, with two
    # transforms that printed alike.
    rounded = _write(
        tmp_path / "round.tif",
        data[0],
        transform=TRANSFORM @ Affine.translation(1e-9, 0),
    )
    extract_patches([paths[0], rounded], coords, 3)
    with pytest.raises(ValueError, match="outside the raster"):
        extract_patches(paths, _centres([5, -1], [5, 5]), 3)
    with pytest.raises(ValueError, match="odd"):
        extract_patches(paths, coords, 4)
    with pytest.raises(ValueError, match="nodata"):
        extract_patches(paths, coords, 3, nodata="drop")
    with pytest.raises(ValueError, match="shape"):
        extract_patches(paths, coords[0], 3)
    with pytest.raises(ValueError, match="empty"):
        extract_patches([], coords, 3)


# -- predict_raster -----------------------------------------------------------------
def _model(paths, window=3):
    rng = np.random.default_rng(1)
    coords = _centres(rng.integers(2, 21, 60), rng.integers(2, 29, 60))
    X, has_nodata = extract_patches(paths, coords, window, return_mask=True)
    X = X[~has_nodata]
    y = X[:, 0].mean(axis=(1, 2, 3)) + rng.normal(scale=0.1, size=len(X))
    return make_pipeline(FunctionTransformer(_flat), Ridge()).fit(X, y)


class _Recorder:
    """Wraps an estimator and records the batch sizes ``predict`` receives."""

    def __init__(self, estimator, n_outputs=1):
        self.estimator, self.sizes, self.n_outputs = estimator, [], n_outputs

    def predict(self, X):
        self.sizes.append(len(X))
        pred = self.estimator.predict(X)
        return pred if self.n_outputs == 1 else np.column_stack([pred, -pred])


def test_predict_raster_equals_predicting_patches(tmp_path, stack):
    paths, _ = stack
    model = _model(paths)
    recorder = _Recorder(model)
    out = predict_raster(
        recorder, paths, tmp_path / "map.tif", window=3, chunk_rows=4, batch_size=50
    )
    assert max(recorder.sizes) <= 50
    with rasterio.open(out) as src, rasterio.open(paths[0]) as ref:
        assert src.crs == ref.crs and src.transform == ref.transform
        assert src.shape == ref.shape and src.count == 1 and src.dtypes == ("float32",)
        assert src.nodata == -9999.0
        prediction = src.read(1)
    rows, cols = np.indices(prediction.shape).reshape(2, -1)
    patches, has_nodata = extract_patches(
        paths, _centres(rows, cols), 3, return_mask=True
    )
    expected = np.full(len(rows), -9999.0, dtype=np.float32)
    expected[~has_nodata] = model.predict(patches[~has_nodata])
    np.testing.assert_allclose(prediction.ravel(), expected, rtol=1e-5, atol=1e-5)
    # The 1-pixel border (window 3) has no prediction, the interior does.
    assert (prediction[0] == -9999.0).all() and (
        prediction[1:-1, 1:-1] != -9999.0
    ).all()
    # Chunking does not change the map.
    again = predict_raster(model, paths, tmp_path / "b.tif", window=3, chunk_rows=100)
    with rasterio.open(again) as src:
        np.testing.assert_allclose(src.read(1), prediction, rtol=1e-5, atol=1e-6)


def test_predict_raster_stride_multioutput_and_nodata(tmp_path, stack):
    paths, data = stack
    year = data[0].copy()
    year[:, 8, 9] = np.nan  # NaN counts as nodata
    paths = [_write(tmp_path / "nan.tif", year), *paths[1:]]
    model = _model(paths)
    out = predict_raster(
        _Recorder(model, n_outputs=2), paths, tmp_path / "m.tif", window=3, stride=2
    )
    with rasterio.open(out) as src:
        assert src.shape == (12, 16) and src.count == 2
        assert src.transform == TRANSFORM @ Affine.scale(2)
        maps = src.read()
    np.testing.assert_array_equal(
        maps[0][maps[0] != -9999.0], -maps[1][maps[1] != -9999.0]
    )
    # Output pixel (4, 4) is predicted at source pixel (9, 9): next to the NaN.
    assert maps[0, 4, 4] == -9999.0 and maps[0, 4, 3] != -9999.0
    patch = extract_patches(paths, _centres([7], [7]), 3)
    assert maps[0, 3, 3] == pytest.approx(float(model.predict(patch)[0]), rel=1e-5)


def test_predict_raster_stride_that_does_not_divide_the_grid(tmp_path, stack):
    # The last output row (source rows 20 to 24 of 23) was predicted at the
    # last source row, not at the centre of its part inside the grid.
    paths, _ = stack
    model = _model(paths)
    out = predict_raster(model, paths, tmp_path / "m.tif", window=3, stride=5)
    with rasterio.open(out) as src:
        assert src.shape == (5, 7)  # ceil(23 / 5), ceil(31 / 5)
        last_row = src.read(1)[4]
    patch = extract_patches(paths, _centres([21], [17]), 3)
    assert last_row[3] == pytest.approx(float(model.predict(patch)[0]), rel=1e-5)


def test_predict_raster_maps_partly_missing_patches(tmp_path, stack):
    """A model that reads NaN as missing maps pixels next to clouds and edges."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from skestimators.preprocessing import PatchStatistics

    paths, data = stack
    year = data[1].copy()
    year[:, 5:9, 5:9] = np.nan  # a cloud over year 1
    paths = [paths[0], _write(tmp_path / "cloud.tif", year), paths[2]]
    rng = np.random.default_rng(1)
    centres = _centres(rng.integers(0, 23, 80), rng.integers(0, 31, 80))
    X, _ = extract_patches(paths, centres, 3, return_mask=True)
    y = np.nanmean(X[:, 0], axis=(1, 2, 3))
    model = make_pipeline(
        PatchStatistics(("mean",)), HistGradientBoostingRegressor(max_iter=5)
    ).fit(X, y)
    out = predict_raster(model, paths, tmp_path / "m.tif", window=3)
    with rasterio.open(out) as src:
        values = src.read(1)
    assert (values != -9999.0).all()  # edges and the cloud are mapped
    patch, _ = extract_patches(paths, _centres([6], [6]), 3, return_mask=True)
    assert values[6, 6] == pytest.approx(float(model.predict(patch)[0]), rel=1e-5)
    # A model that needs complete patches still gets nodata there.
    plain = predict_raster(_model(paths), paths, tmp_path / "p.tif", window=3)
    with rasterio.open(plain) as src:
        values = src.read(1)
    assert values[6, 6] == -9999.0 and values[0, 0] == -9999.0
    # Wrapped in a search or a target transformation, the model still reads
    # NaN as missing: the same map.
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(model, {"histgradientboostingregressor__max_iter": [5]}, cv=2)
    wrapped = TransformedTargetRegressor(
        search, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )
    wrapped.fit(X, y - y.min())
    out = predict_raster(wrapped, paths, tmp_path / "w.tif", window=3)
    with rasterio.open(out) as src:
        assert (src.read(1) != -9999.0).all()
    # So does a MAPIE conformal regressor around it (no sklearn tags; the
    # partly missing pixels were written as nodata).
    mapie_regression = pytest.importorskip("mapie.regression")
    conformal = mapie_regression.CrossConformalRegressor(
        TransformedTargetRegressor(model), confidence_level=0.9, cv=3
    ).fit_conformalize(X, y)
    out = predict_raster(
        conformal, paths, tmp_path / "c.tif", window=3, uncertainty="interval"
    )
    with rasterio.open(out) as src:
        assert (src.read() != -9999.0).all()


def test_a_gap_warning_is_given_once_per_map(tmp_path, stack):
    """A network trained on complete patches warns of gaps once per map, not
    once per chunk; maps in threads keep their own record, and predict
    outside a map warns each time."""
    import threading
    import warnings

    from skestimators import SpatioTemporalRegressor

    paths, data = stack
    rng = np.random.default_rng(1)
    centres = _centres(rng.integers(2, 21, 40), rng.integers(2, 29, 40))
    X, has_nodata = extract_patches(paths, centres, 3, return_mask=True)
    X = X[~has_nodata]
    model = SpatioTemporalRegressor(
        width=4, depth=1, head_width=8, max_epochs=1, device="cpu", random_state=0
    ).fit(X, X[:, 0].mean(axis=(1, 2, 3)))
    year = data[1].copy()
    year[:, :, 7] = np.nan  # a stripe in every chunk of rows
    gappy = [paths[0], _write(tmp_path / "stripe.tif", year), paths[2]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_raster(model, gappy, tmp_path / "m.tif", window=3, chunk_rows=4)
        threads = [
            threading.Thread(
                target=predict_raster,
                args=(model, gappy, tmp_path / f"t{i}.tif"),
                kwargs=dict(window=3, chunk_rows=4),
            )
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        patches = extract_patches(gappy, centres, 3)
        model.predict(patches)
        model.predict(patches)
    gaps = [w for w in caught if "never learned" in str(w.message)]
    assert len(gaps) == 1 + 2 + 2, [str(w.message)[:40] for w in caught]


def test_predict_raster_never_leaves_a_partial_map(tmp_path, stack):
    paths, _ = stack
    model = _model(paths)
    out = predict_raster(model, paths, tmp_path / "map.tif", window=3)
    with rasterio.open(out) as src:
        before = src.read(1)

    class FailsLater(_Recorder):
        def predict(self, X):
            if self.sizes:
                raise RuntimeError("out of memory")
            return super().predict(X)

    with pytest.raises(RuntimeError, match="out of memory"):
        predict_raster(FailsLater(model), paths, out, window=3, chunk_rows=4)
    with rasterio.open(out) as src:  # the earlier map, untouched
        np.testing.assert_array_equal(src.read(1), before)
    assert sorted(p.name for p in tmp_path.iterdir() if "map" in p.name) == ["map.tif"]


def test_predict_raster_cleans_up_after_killed_runs(tmp_path, stack):
    # A run killed mid-map left its hidden partial file for good.
    import subprocess
    import sys

    from skestimators._io import temporary_name

    paths, _ = stack
    pid = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    mine = temporary_name(tmp_path / "map.tif", ".partial")
    killed = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{pid}."))
    killed.write_bytes(b"half a map")
    predict_raster(_model(paths), paths, tmp_path / "map.tif", window=3)
    assert not killed.exists()


class _Clipped:
    """Predicts 0 for the darker half of the pixels (a model clipped at 0)."""

    def __init__(self, model):
        self.model = model

    def predict(self, X):
        pred = self.model.predict(X)
        return np.where(pred < np.median(pred), 0.0, pred)


def test_predict_raster_warns_when_a_prediction_equals_nodata(tmp_path, stack):
    # Predictions equal to nodata were silently masked in the map.
    paths, _ = stack
    model = _Clipped(_model(paths))
    with pytest.warns(UserWarning, match=r"nodata value 0.0 for \d+") as record:
        predict_raster(model, paths, tmp_path / "m.tif", window=3, nodata=0.0)
    assert record[0].filename == __file__
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_raster(model, paths, tmp_path / "n.tif", window=3)  # -9999


def test_predict_raster_refuses_a_std_on_a_transformed_target(tmp_path, stack):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import BayesianRidge

    paths, _ = stack
    X = np.random.default_rng(0).normal(size=(30, 3, 3, 3, 3))
    ttr = make_pipeline(
        FunctionTransformer(_flat),
        TransformedTargetRegressor(
            BayesianRidge(), func=np.log1p, inverse_func=np.expm1, check_inverse=False
        ),
    ).fit(X, np.abs(X[:, 0, 1, 1, 0]))
    with pytest.raises(TypeError, match="transformed target"):
        predict_raster(ttr, paths, tmp_path / "s.tif", window=3, uncertainty="std")
    assert not list(tmp_path.glob("*s.tif*"))
    bayes = make_pipeline(FunctionTransformer(_flat), BayesianRidge()).fit(
        X, X[:, 0, 1, 1, 0]
    )
    out = predict_raster(bayes, paths, tmp_path / "s.tif", window=3, uncertainty="std")
    with rasterio.open(out) as src:
        assert src.count == 2 and src.descriptions == ("prediction", "std")


def test_predict_raster_replaces_the_old_maps_gdal_sidecars(tmp_path, stack):
    # The statistics, nodata and scale that QGIS or gdalinfo -stats wrote
    # next to the old map were read with the new one (every pixel as nodata).
    paths, _ = stack
    model = _model(paths)
    out = tmp_path / "m.tif"
    stale = [tmp_path / f"m.tif{suffix}" for suffix in (".aux.xml", ".ovr", ".msk")]
    for path in stale:
        path.write_text("<PAMDataset/>")
    predict_raster(model, paths, out, window=3)
    assert out.exists() and not any(path.exists() for path in stale)
    with pytest.raises(TypeError, match=r"give float\('nan'\)"):
        predict_raster(model, paths, out, window=3, nodata=None)


@pytest.mark.filterwarnings("ignore:Patches passed to SpatioTemporalRegressor")
def test_predict_raster_std_map_does_not_depend_on_the_chunks(tmp_path, stack):
    # Monte Carlo dropout drew each row's masks by its place in its batch:
    # the std band repeated with the chunk period, and changed with
    # chunk_rows and batch_size.
    from skestimators import SpatioTemporalRegressor

    paths, _ = stack
    rng = np.random.default_rng(1)
    coords = _centres(rng.integers(2, 21, 60), rng.integers(2, 29, 60))
    X = extract_patches(paths, coords, 3)
    model = SpatioTemporalRegressor(
        dropout=0.3, max_epochs=2, device="cpu", random_state=0
    ).fit(X, X[:, 0].mean(axis=(1, 2, 3)))
    bands = []
    for name, chunks, batch in [("a", 4, 1024), ("b", 100, 50)]:
        out = predict_raster(
            model, paths, tmp_path / f"{name}.tif", window=3, uncertainty="std",
            chunk_rows=chunks, batch_size=batch,
        )  # fmt: skip
        with rasterio.open(out) as src:
            bands.append(src.read(2))
    np.testing.assert_allclose(bands[0], bands[1], rtol=1e-4)
    assert np.unique(bands[0][1:-1, 1:-1]).size > 100


def _unexpected_call(*args, **kwargs):
    raise AssertionError("called")


def test_predict_raster_all_nodata_and_errors(tmp_path, stack, monkeypatch):
    paths, _ = stack
    model = _model(paths)
    # The window is wider than the raster: no patch was worth cutting.
    monkeypatch.setattr(_raster, "_cut_patches", _unexpected_call)
    with pytest.warns(UserWarning, match=r"window=31 is wider than the rasters"):
        out = predict_raster(model, paths, tmp_path / "e.tif", window=31, nodata=-1.0)
    monkeypatch.undo()
    with rasterio.open(out) as src:
        assert (src.read(1) == -1.0).all()
    with pytest.raises(ValueError, match="odd"):
        predict_raster(model, paths, tmp_path / "x.tif", window=2)
    with pytest.raises(ValueError, match="chunk_rows"):
        predict_raster(model, paths, tmp_path / "x.tif", window=3, chunk_rows=0)
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist"):
        predict_raster(model, paths, tmp_path / "nowhere" / "x.tif", window=3)


class _Labels:
    """A classifier of string labels, or one that returns too few rows."""

    def __init__(self, kind):
        self.kind = kind

    def predict(self, X):
        if self.kind == "strings":
            return np.array(["low", "high"])[np.arange(len(X)) % 2]
        return np.zeros(len(X) - 1)


def test_predict_raster_refuses_what_a_map_cannot_hold(tmp_path, stack):
    # String labels failed with "could not convert string to float", too few
    # predictions with a reshape error.
    paths, _ = stack
    out = tmp_path / "m.tif"
    with pytest.raises(TypeError, match=r"predicted <U4 values .*'low'.*needs numbers"):
        predict_raster(_Labels("strings"), paths, out, window=3)
    with pytest.raises(ValueError, match=r"returned \d+ predictions for \d+ patches"):
        predict_raster(_Labels("short"), paths, out, window=3)
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


# -- target weights -----------------------------------------------------------------
def test_quantile_balanced_weights():
    _, y, _ = make_soc(500, random_state=0)
    for strategy in ("quantile", "uniform"):
        w = quantile_balanced_weights(y, n_bins=8, strategy=strategy)
        assert w.shape == y.shape and (w > 0).all()
        assert w.mean() == pytest.approx(1.0)
    # Quantile bins are near-equal in size, so the weights are near one ...
    w = quantile_balanced_weights(y, n_bins=8)
    np.testing.assert_allclose(w, 1.0, atol=0.05)
    # ... equal-width bins up-weight the rare high values of a skewed target,
    w = quantile_balanced_weights(y, n_bins=8, strategy="uniform")
    assert w[y > np.quantile(y, 0.95)].mean() > 3 * w[y < np.median(y)].mean()
    edges = np.linspace(y.min(), y.max(), 9)
    bins = np.clip(np.searchsorted(edges[1:-1], y, side="right"), 0, 7)
    totals = np.bincount(bins, weights=w)
    np.testing.assert_allclose(totals[totals > 0], totals[totals > 0][0])
    # ... and ties make quantile bins unequal, which the weights correct.
    tied = np.r_[np.zeros(60), np.arange(1.0, 41.0)]
    w = quantile_balanced_weights(tied, n_bins=4)  # edges merge to [0, 15.25, 40]
    low = tied < 15.25
    assert w[low].sum() == pytest.approx(w[~low].sum())
    assert w.max() == pytest.approx(2.0)


def test_quantile_balanced_weights_invalid():
    with pytest.raises(ValueError, match="n_bins"):
        quantile_balanced_weights([1.0, 2.0], n_bins=0)
    with pytest.raises(ValueError, match="strategy"):
        quantile_balanced_weights([1.0, 2.0], strategy="kmeans")
    with pytest.raises(ValueError, match="1-D"):
        quantile_balanced_weights(np.ones((3, 2)))


def test_add_clouds_blanks_the_fraction_asked_in_correlated_blobs():
    from scipy.spatial import cKDTree

    from skestimators.datasets import add_clouds

    X, _, coords = make_soc(300, n_years=3, random_state=0)
    for fraction in (0.1, 0.3, 0.6):
        cloudy = np.isnan(add_clouds(X, coords, fraction, random_state=1))
        per_year = cloudy[:, 0].mean(axis=(0, 1, 2))
        np.testing.assert_allclose(per_year, fraction, atol=0.01)
        assert (cloudy == cloudy[:, :1]).all()  # every band of a pixel alike
    # Spatially correlated: a point's nearest neighbour shares its cloud far
    # more often than chance.
    centre = np.isnan(add_clouds(X, coords, 0.3, random_state=1))[:, 0, 2, 2, 0]
    neighbour = cKDTree(coords).query(coords, k=2)[1][:, 1]
    assert centre[neighbour][centre].mean() > 0.6
    again = add_clouds(X, coords, 0.3, random_state=1)
    np.testing.assert_array_equal(np.isnan(again)[:, 0, 2, 2, 0], centre)


def test_add_clouds_ties_far_points_and_edge_cases():
    from skestimators.datasets import add_clouds

    # Patches at one place share their clouds (the same ground, the same sky).
    X2 = np.ones((200, 1, 3, 3, 2))
    coords2 = np.repeat(np.random.default_rng(0).uniform(0, 1e5, (40, 2)), 5, axis=0)
    cloudy = np.isnan(add_clouds(X2, coords2, 0.3, random_state=0))
    assert (cloudy.reshape(40, 5, -1) == cloudy.reshape(40, 5, -1)[:, :1]).all()
    # One point far away (degrees mistaken for metres, or a remote site) no
    # longer multiplies the blobs evaluated at every pixel.
    X, _, coords = make_soc(100, n_years=2, random_state=0)
    coords = coords.copy()
    coords[0] += 1e6
    far = add_clouds(X, coords, np.float64(0.3), random_state=0)
    assert 0.25 < np.isnan(far[:, 0]).mean() < 0.35
    assert np.isnan(add_clouds(X, coords, np.array(0.2), random_state=0)).any()
    with pytest.raises(ValueError, match="at least one patch"):
        add_clouds(X[:0], coords[:0], 0.3)


def test_rasters_named_out_of_time_order_warn(tmp_path):
    # sorted(glob(...)) or a shell glob put year10 before year2: the model
    # read the years shuffled, and the map was written without a word.
    from sklearn.tree import DecisionTreeRegressor

    X, y, coords = make_soc(40, n_years=12, random_state=0)
    paths = make_soc_rasters(tmp_path, n_years=12, random_state=0)
    assert [p.name for p in sorted(paths)] == [p.name for p in paths]  # padded
    unpadded = []
    for t, path in enumerate(paths):
        unpadded.append(path.rename(tmp_path / f"year{t}.tif"))
    globbed = sorted(unpadded)  # year0, year1, year10, year11, year2, ...
    with pytest.warns(UserWarning, match=r"year11\.tif' comes before .*year2\.tif"):
        extract_patches(globbed, coords, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        patches = extract_patches(unpadded, coords, 5)  # in time order
    np.testing.assert_array_equal(patches, X)
    model = DecisionTreeRegressor(max_depth=2).fit(X.reshape(len(X), -1), y)

    class Flat:
        def predict(self, patches):
            return model.predict(patches.reshape(len(patches), -1))

    with pytest.warns(UserWarning, match="in the order given"):
        predict_raster(Flat(), globbed, tmp_path / "map.tif", window=5, stride=50)


@pytest.mark.parametrize(
    "names, warns",
    [
        (["year2.tif", "year10.tif"], False),
        (["year10.tif", "year2.tif"], True),
        (["2020/cov.tif", "2019/cov.tif"], True),
        (["red.tif", "ndvi.tif"], False),  # no numbers: no time order to read
        (["y0.tif", "nd.tif"], False),
        (["s2_b4_2019.tif", "s2_b8_2019.tif"], False),
    ],
)
def test_time_order_is_read_only_from_names_alike_but_for_numbers(names, warns):
    from skestimators.datasets import _warn_time_order

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_time_order(names)
    assert bool(caught) == warns
