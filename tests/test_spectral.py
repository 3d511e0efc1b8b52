"""Behaviour of the spectral transformers."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.signal import savgol_filter
from sklearn.preprocessing import StandardScaler

from skestimators import MultiInput
from skestimators.datasets import make_exoplanet
from skestimators.preprocessing import (
    ChannelSelector,
    NDStandardScaler,
    PhysicsFeatures,
    SpectralFeatures,
    SpectrumNormalizer,
    SystemReference,
)
from skestimators.preprocessing._physics import AUX_COLUMNS


@pytest.fixture(scope="module")
def simulated():
    return make_exoplanet(60, noise=0.0, random_state=0)


@pytest.fixture(scope="module")
def spectra(simulated):
    return simulated[0]["spectra"]


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def spectra_sets():
    """(n, L, 2) arrays of distinct integers: no spectrum has a zero scale."""
    shape = st.tuples(st.integers(1, 5), st.integers(3, 12), st.just(2))
    return arrays(np.float64, shape, elements=st.integers(-1000, 1000), unique=True)


# -- SpectrumNormalizer ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["standard", "minmax", "median"])
def test_normalizer_touches_only_its_channel(spectra, method):
    out = SpectrumNormalizer(channel=1, method=method).fit_transform(spectra)
    np.testing.assert_array_equal(out[:, :, [0, 2]], spectra[:, :, [0, 2]])
    depth = out[:, :, 1]
    if method == "standard":
        np.testing.assert_allclose(depth.mean(axis=1), 0, atol=1e-8)
        np.testing.assert_allclose(depth.std(axis=1), 1)
    elif method == "minmax":
        np.testing.assert_allclose(depth.min(axis=1), 0, atol=1e-8)
        np.testing.assert_allclose(depth.max(axis=1), 1)
    else:
        np.testing.assert_allclose(np.median(depth, axis=1), 0, atol=1e-8)


def test_normalizer_scales_the_uncertainty_with_the_depth(spectra):
    out = SpectrumNormalizer(channel=1, uncertainty_channel=2).fit_transform(spectra)
    scale = spectra[:, :, 1].std(axis=1, keepdims=True)
    np.testing.assert_allclose(out[:, :, 2], spectra[:, :, 2] / scale)


def test_normalizer_channels_none_and_2d(spectra):
    every = SpectrumNormalizer(channel=None).fit_transform(spectra)
    np.testing.assert_allclose(every.std(axis=1), 1)
    flat = SpectrumNormalizer().fit_transform(spectra[:, :, 1])
    np.testing.assert_allclose(flat, every[:, :, 1])


@settings(max_examples=30, deadline=None)
@given(
    X=spectra_sets(),
    a=st.floats(1e-3, 1e3),
    b=st.floats(-1e3, 1e3),
    method=st.sampled_from(["standard", "minmax", "median"]),
)
def test_normalizer_is_invariant_to_offset_and_scale(X, a, b, method):
    normalizer = SpectrumNormalizer(channel=None, method=method).fit(X)
    np.testing.assert_allclose(
        normalizer.transform(a * X + b), normalizer.transform(X), atol=1e-6
    )


def test_normalizer_maps_constant_spectra_to_zero():
    X = np.full((3, 5), 7.0)
    np.testing.assert_array_equal(SpectrumNormalizer().fit_transform(X), 0.0)


@pytest.mark.parametrize(
    "params, X, match",
    [
        ({"channel": 3}, np.ones((2, 4, 3)), "out of range for spectra with 3"),
        ({"channel": [1, 1]}, np.ones((2, 4, 3)), "repeats a channel"),
        (
            {"channel": [0, 1], "uncertainty_channel": 2},
            np.ones((2, 4, 3)),
            "single channel",
        ),
        ({"uncertainty_channel": 2}, np.ones((2, 4)), "needs 3-D spectra"),
        ({}, np.ones((2, 4, 3, 1)), "got a 4-D array"),
        ({}, np.ones(4), "Expected 2D array"),
        ({}, np.array([[1.0, np.nan]]), "NaN"),
        ({}, np.array([[1.0, np.inf]]), "infinity"),
        ({}, np.ones((2, 3), dtype=complex), "Complex data not supported"),
        ({}, np.array([["a", "b"]], dtype=object), "could not convert"),
    ],
)
def test_normalizer_rejects_bad_input(params, X, match):
    with pytest.raises(ValueError, match=match):
        SpectrumNormalizer(**params).fit(X)


def test_shapes_are_checked_at_transform(spectra):
    normalizer = SpectrumNormalizer().fit(spectra)
    with pytest.raises(ValueError, match=r"shape \(52, 2\), but .* \(52, 3\)"):
        normalizer.transform(spectra[:, :, :2])
    with pytest.raises(ValueError, match="52 features"):
        normalizer.transform(spectra[:, :40])
    with pytest.raises(ValueError, match=r"shape \(52,\), but"):
        normalizer.transform(spectra[:, :, 1])
    with pytest.raises(
        AttributeError, match="no attribute 'get_feature_names_out'"
    ) as info:
        normalizer.get_feature_names_out()  # so that set_output leaves 3-D as it is
    assert "no feature names" in str(info.value.__cause__)


# -- ChannelSelector ------------------------------------------------------------------
def test_channel_selector(spectra):
    depth = ChannelSelector(channels=1).fit(spectra)
    np.testing.assert_array_equal(depth.transform(spectra), spectra[:, :, 1])
    assert depth.get_feature_names_out()[:2].tolist() == ["c1_x0", "c1_x1"]
    pair = ChannelSelector(channels=[-1, 0]).fit_transform(spectra)
    np.testing.assert_array_equal(pair, spectra[:, :, [2, 0]])
    flat = ChannelSelector(channels=0).fit_transform(spectra[:, :, 1])
    np.testing.assert_array_equal(flat, spectra[:, :, 1])
    with pytest.raises(ValueError, match="out of range"):
        ChannelSelector(channels=1).fit(spectra[:, :, 1])
    with pytest.raises(AttributeError, match="no attribute") as info:
        ChannelSelector(channels=[0]).fit(spectra).get_feature_names_out()
    assert "no feature names" in str(info.value.__cause__)


# -- SpectralFeatures -----------------------------------------------------------------
def test_spectral_features_blocks(spectra):
    features = SpectralFeatures().fit(spectra)
    out = features.transform(spectra)
    wl, depth, unc = np.moveaxis(spectra, -1, 0)
    n, L = depth.shape
    assert out.shape == (n, 4 * L)
    blocks = out.reshape(n, 4, L)
    np.testing.assert_array_equal(blocks[:, 0], depth)
    np.testing.assert_allclose(blocks[:, 1], np.gradient(depth, axis=1))
    np.testing.assert_allclose(blocks[:, 2], depth / wl)
    np.testing.assert_allclose(blocks[:, 3], depth / unc)
    names = features.get_feature_names_out()
    assert len(names) == out.shape[1]
    assert [names[0], names[L], names[2 * L], names[3 * L]] == [
        "depth_x0",
        "gradient_x0",
        "ratio_x0",
        "snr_x0",
    ]
    nd = SpectralFeatures(flatten=False).fit_transform(spectra)
    np.testing.assert_array_equal(np.moveaxis(nd, -1, 1), blocks)


def test_spectral_features_smoothing_and_derivatives(spectra):
    depth = spectra[:, :, 1]
    smooth = SpectralFeatures(
        gradients=False, ratios=False, snr=False, smooth=7, derivative=1
    ).fit_transform(spectra)
    np.testing.assert_allclose(smooth, savgol_filter(depth, 7, 2, deriv=1, axis=1))
    second = SpectralFeatures(
        gradients=False, ratios=False, snr=False, derivative=2
    ).fit_transform(depth)
    np.testing.assert_allclose(second, np.gradient(np.gradient(depth, axis=1), axis=1))


def test_spectral_features_keep_dataframe_names():
    X = pd.DataFrame(np.arange(6.0).reshape(2, 3), columns=["a", "b", "c"])
    features = SpectralFeatures(include_depth=False, ratios=False, snr=False).fit(X)
    assert features.get_feature_names_out().tolist() == [
        "gradient_a",
        "gradient_b",
        "gradient_c",
    ]


@pytest.mark.parametrize(
    "params, X, match",
    [
        (
            {"include_depth": False, "gradients": False, "ratios": False, "snr": False},
            np.ones((2, 5, 3)),
            "switched off",
        ),
        ({}, np.ones((2, 5)), "set ratios=False and snr=False"),
        ({"uncertainty_channel": 3}, np.ones((2, 5, 3)), "uncertainty_channel=3"),
        ({"smooth": 7}, np.ones((2, 5, 3)), "longer than the 5 wavelengths"),
        ({"smooth": 3, "polyorder": 3}, np.ones((2, 5, 3)), "polyorder < smooth"),
        ({"smooth": 5, "derivative": 2, "polyorder": 1}, np.ones((2, 5, 3)), "<="),
    ],
)
def test_spectral_features_reject_bad_settings(params, X, match):
    with pytest.raises(ValueError, match=match):
        SpectralFeatures(**params).fit(X)


def test_spectral_features_need_positive_uncertainty_and_wavelength(spectra):
    bad = spectra.copy()
    bad[0, 3, 2] = 0.0
    with pytest.raises(ValueError, match="strictly positive uncertainties"):
        SpectralFeatures().fit(spectra).transform(bad)
    bad[0, 3, 0] = 0.0
    with pytest.raises(ValueError, match="non-zero wavelengths"):
        SpectralFeatures(snr=False).fit(bad).transform(bad)


# -- NDStandardScaler -----------------------------------------------------------------
def test_nd_scaler_per_channel(spectra):
    scaler = NDStandardScaler().fit(spectra)
    np.testing.assert_allclose(scaler.mean_, spectra.mean(axis=(0, 1)))
    out = scaler.transform(spectra)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=(0, 1)), 1)


def test_nd_scaler_on_images():
    rng = np.random.default_rng(0)
    images = rng.normal([1.0, 5.0, -3.0], [1.0, 2.0, 0.5], size=(20, 4, 4, 3))
    images = np.moveaxis(images, -1, 1)  # (n, C, H, W)
    scaler = NDStandardScaler(channel_axis=1).fit(images)
    assert scaler.mean_.shape == (3,)
    np.testing.assert_allclose(
        scaler.transform(images).std(axis=(0, 2, 3)), 1, rtol=1e-12
    )
    with pytest.raises(ValueError, match="channel_axis=0"):
        NDStandardScaler(channel_axis=0).fit(images)


def test_nd_scaler_per_feature_matches_standard_scaler(spectra):
    flat = spectra.reshape(len(spectra), -1)[:, 1:]  # wavelength is constant
    X = flat.reshape(len(spectra), 31, 5)
    out = NDStandardScaler(per="feature").fit_transform(X)
    np.testing.assert_allclose(
        out.reshape(len(X), -1), StandardScaler().fit_transform(flat)
    )


def test_nd_scaler_takes_a_grid_constant_up_to_rounding_for_a_constant():
    # The real exoplanet spectra share one wavelength grid up to rounding
    # (relative spread 8e-15): each bin was divided by that spread, and the
    # wavelengths came out as +-1 noise; StandardScaler gives ~1e-14.
    rng = np.random.RandomState(0)
    grid = np.linspace(0.5, 7.5, 52)
    X = np.stack([np.tile(grid, (300, 1)), rng.normal(size=(300, 52))], axis=-1)
    X[:, :, 0] *= 1 + rng.choice([-1, 0, 1], size=(300, 1)) * np.finfo(float).eps
    assert X[:, :, 0].std(axis=0).max() > 0
    out = NDStandardScaler(per="feature").fit_transform(X)
    reference = StandardScaler().fit_transform(X.reshape(300, -1)).reshape(X.shape)
    assert np.abs(out[:, :, 0]).max() < 1e-12
    np.testing.assert_allclose(out, reference, atol=1e-12)


def test_nd_scaler_2d_is_one_channel():
    X = np.array([[0.0, 2.0], [4.0, 6.0]])
    scaler = NDStandardScaler().fit(X)
    assert scaler.mean_.tolist() == [3.0]
    assert scaler.get_feature_names_out().tolist() == ["x0", "x1"]


@settings(max_examples=30, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(2, 6), st.integers(1, 4), st.integers(1, 3)),
        elements=finite,
    ),
    per=st.sampled_from(["channel", "feature"]),
    with_mean=st.booleans(),
)
def test_nd_scaler_round_trips(X, per, with_mean):
    scaler = NDStandardScaler(per=per, with_mean=with_mean).fit(X)
    np.testing.assert_allclose(
        scaler.inverse_transform(scaler.transform(X)), X, atol=1e-9
    )


def test_nd_scaler_keeps_float32(spectra):
    X = spectra.astype(np.float32)
    assert NDStandardScaler().fit_transform(X).dtype == np.float32
    # Fitted on float64, float32 data came back as float64.
    scaler = NDStandardScaler().fit(spectra)
    assert scaler.transform(X).dtype == np.float32
    assert scaler.inverse_transform(X).dtype == np.float32


# -- PhysicsFeatures ------------------------------------------------------------------
def _planet(depth=1e-3, n_wavelengths=52):
    wavelength = np.geomspace(7.28, 0.55, n_wavelengths)
    spectra = np.stack(
        [wavelength, np.full(n_wavelengths, depth), np.full(n_wavelengths, 1e-6)],
        axis=-1,
    )[None]
    aux = pd.DataFrame([[2e30, 7e8, 5800.0, 6e25, 1.5e10]], columns=AUX_COLUMNS)
    return MultiInput(spectra=spectra, aux=aux)


def test_physics_features_formulas():
    features = PhysicsFeatures(log=False).fit(_planet())
    out = dict(zip(features.get_feature_names_out(), features.transform(_planet())[0]))
    radius = 7e8 * np.sqrt(1e-3)
    assert out["planet_radius"] == pytest.approx(radius)
    temperature = 5800 * np.sqrt(7e8 / 3e10)
    assert out["equilibrium_temperature"] == pytest.approx(temperature)
    gravity = 6.674e-11 * 6e25 / radius**2
    assert out["surface_gravity"] == pytest.approx(gravity)
    height = 1.380649e-23 * temperature / (2.3 * 1.66053906660e-27 * gravity)  # mu in u
    assert out["scale_height"] == pytest.approx(height)
    assert out["expected_amplitude"] == pytest.approx(2 * radius * height / 7e8**2)
    assert out["observed_amplitude"] == pytest.approx(0, abs=1e-15)
    assert out["band_2.7um_contrast"] == pytest.approx(0, abs=1e-9)


def test_physics_features_see_water_and_clouds(simulated):
    X, y = simulated
    features = PhysicsFeatures().set_output(transform="pandas").fit(X)
    table = features.transform(X)
    assert table.shape == (60, 11) and np.isfinite(table.to_numpy()).all()
    water = table.filter(like="band_").mean(axis=1)
    assert water[y["water"].to_numpy() == 1].mean() > water[y["water"] == 0].mean()
    ratio = table["log10_amplitude_ratio"].to_numpy()
    assert ratio[y["cloud"] == 1].mean() < ratio[y["cloud"] == 0].mean()


def test_physics_features_inputs():
    X = _planet()
    renamed = {"s": X["spectra"], "a": X["aux"].to_numpy()}
    features = PhysicsFeatures("s", aux_key="a").fit(renamed)
    np.testing.assert_allclose(
        features.transform(renamed), PhysicsFeatures().fit(X).transform(X)
    )
    with pytest.raises(TypeError, match="expects a MultiInput"):
        PhysicsFeatures().fit(X["spectra"])
    with pytest.raises(ValueError, match="needs an input named 'spectrum'"):
        PhysicsFeatures("spectrum").fit(X)
    with pytest.raises(ValueError, match="lacks the columns"):
        PhysicsFeatures().fit(
            MultiInput(spectra=X["spectra"], aux=X["aux"].iloc[:, 1:])
        )
    with pytest.raises(ValueError, match="raw transit depths"):
        PhysicsFeatures().fit(_planet(depth=-1e-3))
    with pytest.raises(ValueError, match="must be 3-D"):
        PhysicsFeatures().fit(MultiInput(spectra=X["spectra"][:, :, 1], aux=X["aux"]))
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        PhysicsFeatures().fit(X).transform(_planet(n_wavelengths=40))
    with pytest.raises(ValueError, match="Band 9 um"):
        PhysicsFeatures(bands=(9.0,)).fit(X).transform(X)
    # A negative centre gave an all-NaN contrast column, zero an error at
    # transform only.
    for bands in [(-1.4,), (0.0,), (1.4, float("nan"))]:
        with pytest.raises(ValueError, match="bands must hold .* positive"):
            PhysicsFeatures(bands=bands).fit(X)


# -- SystemReference ------------------------------------------------------------------
def _systems(sizes=(6, 4), random_state=0):
    """Planets of ``len(sizes)`` systems, ``sizes[i]`` planets each."""
    X, _ = make_exoplanet(sum(sizes), random_state=random_state)
    aux = np.repeat(X["aux"].to_numpy()[: len(sizes)], sizes, axis=0)
    return MultiInput(spectra=X["spectra"], aux=pd.DataFrame(aux, columns=AUX_COLUMNS))


@pytest.mark.parametrize("dtype", [np.float32, "csv"])
def test_systems_match_after_float32_or_a_csv(dtype, tmp_path):
    # Values near a rounding boundary (1.000005, 999999.97) rounded apart once
    # they went through float32: about 4 % of random rows lost their system.
    from skestimators.preprocessing._system_reference import (
        group_systems,
        match_systems,
    )

    aux = np.exp(np.random.default_rng(0).uniform(0, 5, size=(2000, 5)))
    aux[:2] = [[1.000005, 999999.97, 9.9999997, 0.3, 1.0]] * 2
    if dtype == "csv":
        path = tmp_path / "aux.csv"
        np.savetxt(path, aux, fmt="%.6g", delimiter=",")
        copy = np.loadtxt(path, delimiter=",")
    else:
        copy = aux.astype(dtype)
    np.testing.assert_array_equal(match_systems(copy, aux), np.r_[0, 0, 2:2000])
    first, inverse = group_systems(np.vstack([aux, copy]))
    assert len(first) == 1999
    np.testing.assert_array_equal(inverse[:2000], inverse[2000:])
    # Different values stay apart.
    assert (match_systems(aux * (1 + 3e-5), aux) == -1).all()


def test_system_reference_residuals():
    X = _systems()
    reference = SystemReference().fit(X)
    # The 4-planet system is below min_planets=5.
    assert reference.n_planets_.tolist() == [6]
    out = reference.transform(X)
    depth, sigma = X["spectra"][:, :, 1], X["spectra"][:, :, 2]
    first = slice(0, 6)
    expected = (depth[first] - depth[first].mean(0)) / sigma[first].mean(0)
    np.testing.assert_allclose(out[first, :-1], expected)
    assert (out[first, -1] == 6).all()
    # The 4-planet system has no reference: zeros and a count of 0.
    assert (out[6:] == 0).all()
    both = SystemReference(min_planets=4).fit(X).transform(X)
    assert sorted(set(both[:, -1])) == [4, 6]
    # Residuals sum to zero over the planets of a system.
    np.testing.assert_allclose(both[6:, :-1].sum(0), 0, atol=1e-9)
    names = reference.get_feature_names_out()
    assert names[0] == "residual0" and names[-1] == "n_reference_planets"
    assert len(names) == out.shape[1] == 53


def test_system_reference_per_class_and_centred():
    X = _systems((12, 4))
    depth, sigma = X["spectra"][:, :, 1], X["spectra"][:, :, 2]
    y = np.array([0, 1] * 8)
    reference = SystemReference(per_class=True, min_planets=3).fit(X, y)
    # The 4-planet system has only 2 planets of each class: no reference.
    assert reference.classes_.tolist() == [0, 1]
    assert reference.reference_.shape == (1, 2, 52)
    out = reference.transform(X)
    assert out.shape == (16, 2 * 52 + 1) and (out[12:] == 0).all()
    for k in (0, 1):
        rows = np.arange(12)[y[:12] == k]
        expected = (depth[:12] - depth[rows].mean(0)) / sigma[rows].mean(0)
        np.testing.assert_allclose(out[:12, k * 52 : (k + 1) * 52], expected)
    assert (out[:12, -1] == 12).all()
    names = reference.get_feature_names_out()
    assert names[52] == "residual0_class1" and len(names) == out.shape[1]
    # Several targets: one reference per combination of their classes.
    Y = np.column_stack([y, np.arange(16) % 4 < 2])
    combined = SystemReference(per_class=True, min_planets=3).fit(X, Y)
    assert combined.classes_.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    # Text labels in a DataFrame (object columns) too.
    labels = pd.DataFrame({"water": np.where(y, "wet", "dry"), "cloud": Y[:, 1]})
    named = SystemReference(per_class=True, min_planets=3).fit(X, labels)
    assert named.classes_.tolist() == [
        ["dry", 0],
        ["dry", 1],
        ["wet", 0],
        ["wet", 1],
    ]
    np.testing.assert_allclose(named.transform(X), combined.transform(X))
    # centre removes each residual block's mean over the wavelengths.
    centred = SystemReference(per_class=True, centre=True, min_planets=3)
    blocks = centred.fit(X, y).transform(X)[:12, :-1].reshape(12, 2, 52)
    np.testing.assert_allclose(blocks.mean(axis=2), 0, atol=1e-9)
    plain = out[:12, :-1].reshape(12, 2, 52)
    np.testing.assert_allclose(blocks, plain - plain.mean(axis=2, keepdims=True))
    # Planets of systems without a reference only: zeros, not an error.
    np.testing.assert_array_equal(reference.transform(X[12:]), 0)
    with pytest.raises(ValueError, match=r"per_class=True\) needs the targets"):
        SystemReference(per_class=True).fit(X)
    with pytest.raises(ValueError, match="one row per planet"):
        SystemReference(per_class=True).fit(X, y[:5])


def test_system_reference_unseen_system_and_order():
    X = _systems((5, 5))
    reference = SystemReference().fit(X[:5])
    out = reference.transform(X)
    assert (out[5:] == 0).all() and (out[:5, -1] == 5).all()
    # Auxiliary values that went through float32 (or a CSV) still match,
    # also near a rounding boundary of their digits.
    rounded = MultiInput(spectra=X["spectra"], aux=X["aux"].astype("float32"))
    np.testing.assert_allclose(reference.transform(rounded), out)
    aux = X["aux"].to_numpy().copy()
    aux[:, 3] = 1.000005 * 10 ** np.floor(np.log10(aux[:, 3]))
    boundary = MultiInput(spectra=X["spectra"], aux=aux)
    fitted = SystemReference().fit(boundary[:5])
    expected = fitted.transform(boundary)
    assert (expected[:5, -1] == 5).all()
    rounded = MultiInput(spectra=X["spectra"], aux=aux.astype(np.float32))
    np.testing.assert_allclose(fitted.transform(rounded), expected)
    perm = np.random.default_rng(0).permutation(10)
    np.testing.assert_array_equal(reference.transform(X[perm]), out[perm])


def test_system_reference_inputs():
    X = _systems((5,))
    renamed = {"s": X["spectra"], "a": X["aux"].to_numpy()}
    np.testing.assert_allclose(
        SystemReference("s", aux_key="a").fit(renamed).transform(renamed),
        SystemReference().fit(X).transform(X),
    )
    with pytest.raises(TypeError, match="SystemReference expects a MultiInput"):
        SystemReference().fit(X["spectra"])
    bad = X["spectra"].copy()
    bad[0, 3, 2] = 0.0
    with pytest.raises(ValueError, match="uncertainty\\) must be strictly positive"):
        SystemReference().fit(MultiInput(spectra=bad, aux=X["aux"]))
    with pytest.raises(ValueError, match="uncertainty_channel=3 need at least 4"):
        SystemReference(uncertainty_channel=3).fit(X)
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        SystemReference().fit(X).transform(
            MultiInput(spectra=X["spectra"][:, :40], aux=X["aux"])
        )
    with pytest.raises(ValueError, match="has 5 samples but"):
        SystemReference().fit({"spectra": X["spectra"], "aux": X["aux"][:4]})
    # Each of these gave all-zero features without a word.
    with pytest.raises(ValueError, match="needs class labels; y is continuous"):
        SystemReference(per_class=True).fit(X, np.linspace(0, 1, 5))
    with pytest.warns(UserWarning, match="system has 9 planets .* largest has 5"):
        SystemReference(min_planets=9).fit(X)
    # Depths in ppm: a planet larger than its star, for both transformers.
    ppm = X["spectra"].copy()
    ppm[:, :, 1:] *= 1e6
    for transformer in (SystemReference(), PhysicsFeatures()):
        with pytest.raises(ValueError, match="transit depths above 1 .*ppm / 1e6"):
            transformer.fit(MultiInput(spectra=ppm, aux=X["aux"]))


def test_system_reference_finds_clouds_on_real_planets():
    """On the bundled planets, siblings make clouds plain to gradient boosting."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from skestimators.datasets import load_exoplanet
    from skestimators.recipes import exoplanet_features

    X, y = load_exoplanet()
    cloud = y["cloud"].to_numpy()
    train, test = np.arange(0, 2400, 2), np.arange(1, 2400, 2)
    features = exoplanet_features().fit(X[train])
    reference = SystemReference().fit(X[train])
    errors = {}
    for name, extra in (("alone", False), ("with siblings", True)):
        Z = features.transform(X)
        if extra:
            Z = np.hstack([Z, reference.transform(X)[:, :-1]])
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
        model.fit(Z[train], cloud[train])
        errors[name] = np.mean(model.predict(Z[test]) != cloud[test])
    assert errors["with siblings"] < 0.01 < errors["alone"]


def test_channel_selector_list_of_channels_under_pandas_output(spectra):
    # A list of channels gives a 3-D output, also of 2-D input: set_output
    # leaves it as it is (it asked for the names and failed).
    depth = spectra[:, :, 1]
    selector = ChannelSelector([0]).set_output(transform="pandas")
    assert selector.fit_transform(depth).shape == (len(depth), depth.shape[1], 1)
    with pytest.raises(AttributeError, match="get_feature_names_out"):
        selector.get_feature_names_out()
    one = ChannelSelector(0).set_output(transform="pandas").fit_transform(depth)
    assert one.shape == depth.shape and one.columns[0] == "x0"


# -- spectra given as a researcher might get them wrong --------------------------------
def _physics_fitted():
    X, _ = make_exoplanet(40, random_state=0)
    return PhysicsFeatures().fit(X), X


def test_physics_refuses_bins_in_the_other_wavelength_order():
    # Spectra sorted by increasing wavelength were scored silently wrong by a
    # model fitted on the challenge's decreasing grid (probabilities moved by
    # up to 0.99): the network reads the bins by position.
    features, X = _physics_fitted()
    assert features.wavelength_order_ in (-1, 1)
    flipped = MultiInput(spectra=X["spectra"][:, ::-1], aux=X["aux"])
    with pytest.raises(ValueError, match=r"Reverse the bins \(spectra\[:, ::-1\]\)"):
        features.transform(flipped)
    features.transform(X)  # the training order passes


def test_physics_refuses_wavelengths_in_other_units():
    features, X = _physics_fitted()
    spectra = X["spectra"].copy()
    spectra[:, :, 0] *= 1000  # nanometres
    with pytest.raises(ValueError, match="nanometres for micrometres"):
        features.transform(MultiInput(spectra=spectra, aux=X["aux"]))


def test_float16_spectra_are_computed_in_full_precision():
    X, _ = make_exoplanet(30, random_state=0)
    spectra = X["spectra"][:, :, 1:]  # depth and uncertainty
    half = spectra.astype(np.float16)
    normalizer = SpectrumNormalizer(channel=0, uncertainty_channel=1).fit(spectra)
    with pytest.warns(UserWarning, match="float16 spectra"):
        out = normalizer.transform(half)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, normalizer.transform(half.astype(np.float64)))


def test_nan_spectra_are_named_by_sample():
    X, _ = make_exoplanet(10, random_state=0)
    spectra = X["spectra"].copy()
    spectra[3, 5, 1] = np.nan
    normalizer = SpectrumNormalizer(channel=1, uncertainty_channel=2).fit(X["spectra"])
    with pytest.raises(ValueError, match=r"first: sample 3"):
        normalizer.transform(spectra)


@pytest.mark.parametrize(
    "transformer",
    [SpectrumNormalizer(), ChannelSelector(1), SpectralFeatures(), NDStandardScaler()],
)
def test_no_spectra_get_scikit_learns_message(transformer):
    # The check for non-finite values failed first, with NumPy's "cannot
    # reshape array of size 0".
    S = np.random.RandomState(0).random_sample((10, 52, 3)) + 0.1
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        transformer.fit(S[:0])
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        transformer.fit(S).transform(S[:0])


def test_set_output_is_offered_whatever_the_output_shape():
    # Once fitted on 3-D spectra (or holding an ImagePreprocessor), a
    # Pipeline's set_output failed: "set_output is not available".
    from sklearn.pipeline import make_pipeline

    from skestimators.preprocessing import ImagePreprocessor

    X, _ = make_exoplanet(20, random_state=0)
    pipe = make_pipeline(SpectrumNormalizer(), NDStandardScaler()).fit(X["spectra"])
    before = pipe.transform(X["spectra"])
    assert pipe.set_output(transform="pandas") is pipe
    np.testing.assert_array_equal(pipe.transform(X["spectra"]), before)  # 3-D: array
    flat = X["spectra"][:, :, 1]
    frame = NDStandardScaler().fit(flat).set_output(transform="pandas").transform(flat)
    assert isinstance(frame, pd.DataFrame) and frame.shape == flat.shape
    images = make_pipeline(ImagePreprocessor(), NDStandardScaler())
    assert images.set_output(transform="pandas") is images
    with pytest.raises(ValueError, match="transform must be None"):
        SpectrumNormalizer().fit(X["spectra"]).set_output(transform="arrow")


def test_physics_warns_of_auxiliary_values_in_other_units():
    # Semi-major axes in astronomical units (for metres) brought the water
    # accuracy to chance, without a word.
    import warnings

    features, X = _physics_fitted()
    assert features.aux_range_.shape == (len(AUX_COLUMNS), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features.transform(X)
    # Planets of unseen systems, in the same units: no warning (one of five
    # folds by system warned of "other units", a planet 62 times heavier
    # than any in fit).
    from sklearn.model_selection import GroupKFold

    from skestimators.datasets import load_exoplanet

    real, _ = load_exoplanet()
    systems = pd.factorize(real["aux"].round(3).apply(tuple, axis=1))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for train, test in GroupKFold(5).split(real["aux"], groups=systems):
            PhysicsFeatures().fit(real[train]).transform(real[test])
    aux = X["aux"].copy()
    aux["semi_major_axis_m"] /= 1.496e11
    with pytest.warns(UserWarning, match=r"semi_major_axis_m = .*other units\?"):
        features.transform(MultiInput(spectra=X["spectra"], aux=aux))
