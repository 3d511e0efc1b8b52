"""Spatial splitters, fold maps and the RMSE/RPIQ metrics."""

import warnings

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import get_scorer, root_mean_squared_error
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
)
from threadpoolctl import threadpool_limits

from skestimators.datasets import make_soc
from skestimators.metrics import regression_scorers, rpiq_score, rpiq_scorer
from skestimators.model_selection import (
    BufferedKFold,
    SpatialBlockKFold,
    plot_fold_map,
)


@pytest.fixture(scope="module")
def soc():
    X, y, coords = make_soc(400, random_state=0)
    return X, np.log(y), coords


def _band_stats(X):
    """Per-band mean, spatial std and first-to-last-year change of the patches."""
    yearly = X.mean(axis=(2, 3))
    return np.concatenate(
        [
            yearly.mean(-1),
            X.std(axis=(2, 3)).mean(-1),
            yearly[..., -1] - yearly[..., 0],
        ],
        axis=1,
    )


def _uniform_coords(n=300, seed=0):
    return np.random.default_rng(seed).uniform(0, 1000, size=(n, 2))


def _check_partition(splits, n):
    tests = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tests), np.arange(n))  # each point tested once
    for train, test in splits:
        assert len(test) > 0 and len(train) > 0
        assert not np.intersect1d(train, test).size


# -- SpatialBlockKFold --------------------------------------------------------------
def test_block_kfold_partition_and_whole_blocks():
    coords = _uniform_coords()
    cv = SpatialBlockKFold(n_splits=4, block_size=200.0, random_state=0)
    splits = list(cv.split(coords, groups=coords))
    assert len(splits) == cv.get_n_splits() == 4
    _check_partition(splits, len(coords))
    for train, test in splits:
        assert len(train) + len(test) == len(coords)
    labels = cv.block_labels(coords)
    fold = np.empty(len(coords), int)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    for block in np.unique(labels):  # a block never straddles two folds
        assert len(np.unique(fold[labels == block])) == 1


def test_block_kfold_balanced_and_seeded():
    coords = _uniform_coords(1000)
    cv = SpatialBlockKFold(n_splits=5, n_blocks=10, random_state=1)
    sizes = [len(test) for _, test in cv.split(coords, groups=coords)]
    assert max(sizes) - min(sizes) <= 0.1 * np.mean(sizes)
    again = [len(t) for _, t in cv.split(coords, groups=coords)]
    assert sizes == again
    other = SpatialBlockKFold(n_splits=5, n_blocks=10, random_state=2)
    first = [t for _, t in cv.split(coords, groups=coords)]
    second = [t for _, t in other.split(coords, groups=coords)]
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))


def test_block_kfold_n_blocks_per_axis():
    coords = _uniform_coords()
    labels = SpatialBlockKFold(n_blocks=(2, 3)).block_labels(coords)
    assert len(np.unique(labels)) == 6


@pytest.mark.parametrize(
    ("cv", "groups", "match"),
    [
        (SpatialBlockKFold(block_size=10.0), None, "coordinates"),
        (SpatialBlockKFold(block_size=10.0), np.zeros(300), "shape"),
        (SpatialBlockKFold(), "coords", "exactly one"),
        (SpatialBlockKFold(block_size=1.0, n_blocks=2), "coords", "exactly one"),
        (SpatialBlockKFold(n_splits=5, n_blocks=2), "coords", "4 non-empty blocks"),
        (SpatialBlockKFold(n_splits=1, n_blocks=2), "coords", "n_splits"),
        (SpatialBlockKFold(block_size=-1.0), "coords", "positive"),
        # NumPy's broadcast, ufunc-type and "invalid dims" errors before.
        (SpatialBlockKFold(block_size=(10, 10, 10)), "coords", "pair of numbers"),
        (SpatialBlockKFold(n_blocks="4"), "coords", "pair of numbers"),
        (SpatialBlockKFold(block_size=np.inf), "coords", "positive"),
        (SpatialBlockKFold(n_blocks=10**10), "coords", "more than 2147483648"),
        (SpatialBlockKFold(block_size=1e-300), "coords", "more than 2147483648"),
        (SpatialBlockKFold(n_blocks=2), np.empty((0, 2)), "No samples"),
        (SpatialBlockKFold(n_blocks=2), [["a", "b"]] * 300, "must be numbers"),
        (
            SpatialBlockKFold(n_blocks=2, shuffle=False, random_state=0),
            "coords",
            "no effect since shuffle is False",
        ),
    ],
)
def test_block_kfold_errors(cv, groups, match):
    coords = _uniform_coords()
    groups = coords if isinstance(groups, str) else groups
    X = coords[: len(groups)] if groups is not None else coords
    with pytest.raises(ValueError, match=match):
        list(cv.split(X, groups=groups))


def test_block_labels_follow_row_major_block_order():
    # Labelled from rows of block indices (np.unique), as the flattened index
    # was, for fine grids too.
    coords = _uniform_coords()
    fine = SpatialBlockKFold(n_blocks=10**9).block_labels(coords)
    assert len(np.unique(fine)) == len(np.unique(coords, axis=0))
    coarse = SpatialBlockKFold(n_blocks=(3, 4)).block_labels(coords)
    cells = np.minimum((coords - coords.min(0)) // (np.ptp(coords, 0) / (3, 4)), (2, 3))
    expected = np.unique(cells[:, 0] * 4 + cells[:, 1], return_inverse=True)[1]
    assert np.array_equal(coarse, expected)  # labels in row-major block order


@settings(max_examples=30, deadline=None)
@given(
    coords=arrays(
        float, st.tuples(st.integers(10, 80), st.just(2)), elements=st.floats(0, 100)
    ),
    n_splits=st.integers(2, 4),
    block_size=st.floats(5.0, 60.0),
    seed=st.integers(0, 100),
)
def test_block_kfold_property_no_leakage(coords, n_splits, block_size, seed):
    cv = SpatialBlockKFold(n_splits, block_size=block_size, random_state=seed)
    try:
        splits = list(cv.split(coords, groups=coords))
    except ValueError as exc:
        assert "non-empty blocks" in str(exc)
        return
    _check_partition(splits, len(coords))


# -- BufferedKFold ------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    coords=arrays(
        float, st.tuples(st.integers(20, 80), st.just(2)), elements=st.floats(0, 100)
    ),
    buffer=st.floats(0.0, 30.0),
    spatial=st.booleans(),
)
def test_buffered_kfold_property_min_distance(coords, buffer, spatial):
    base = SpatialBlockKFold(2, n_blocks=4, random_state=0) if spatial else None
    cv = BufferedKFold(buffer, n_splits=3, cv=base, random_state=0)
    try:
        splits = list(cv.split(coords, groups=coords))
    except ValueError as exc:  # too few blocks, or a buffer eating everything
        assert "blocks" in str(exc) or "buffer" in str(exc)
        return
    tests = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tests), np.arange(len(coords)))
    for train, test in splits:
        assert not np.intersect1d(train, test).size
        assert cdist(coords[train], coords[test]).min() >= buffer


def test_buffered_kfold_keeps_base_test_sets_and_drops_near_points():
    coords = _uniform_coords()
    base = KFold(4, shuffle=True, random_state=0)
    cv = BufferedKFold(50.0, cv=base)
    assert cv.get_n_splits() == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # KFold must not be handed the groups
        pairs = list(zip(base.split(coords), cv.split(coords, groups=coords)))
    for (base_train, base_test), (train, test) in pairs:
        assert np.array_equal(base_test, test)
        dropped = np.setdiff1d(base_train, train)
        assert len(dropped) > 0
        assert (cdist(coords[dropped], coords[test]).min(axis=1) < 50.0).all()


def test_buffered_kfold_reads_an_iterator_of_folds_once():
    # get_n_splits used up a generator of folds, and split then gave none
    # (GridSearchCV: "Expected 2 splits, got 0").
    coords = _uniform_coords()
    folds = list(KFold(3, shuffle=True, random_state=0).split(coords))
    cv = BufferedKFold(20.0, cv=iter(folds))
    assert cv.get_n_splits() == 3
    tests = [test for _, test in cv.split(coords, groups=coords)]
    assert [t.tolist() for t in tests] == [t.tolist() for _, t in folds]
    assert len(list(cv.split(coords, groups=coords))) == 3  # and again


def test_buffered_kfold_errors():
    coords = _uniform_coords(50)
    with pytest.raises(ValueError, match="every training point"):
        list(BufferedKFold(5000.0, n_splits=3).split(coords, groups=coords))
    with pytest.raises(ValueError, match="non-negative"):
        list(BufferedKFold(-1.0).split(coords, groups=coords))
    with pytest.raises(ValueError, match="coordinates"):
        list(BufferedKFold(1.0).split(coords))
    # Coordinates are no group labels: GroupKFold failed with "object too
    # deep for desired array".
    from sklearn.model_selection import GroupKFold

    with pytest.raises(ValueError, match="GroupKFold expects group labels"):
        list(BufferedKFold(1.0, cv=GroupKFold(3)).split(coords, groups=coords))


@pytest.mark.parametrize(
    "base", [5, SpatialBlockKFold(5, block_size=100.0, random_state=0)]
)
def test_repeats_reshuffle_the_base_splitter_of_buffered_kfold(base):
    # The repeats reseeded BufferedKFold's own random_state, which a given
    # base splitter ignores: every repeat used the same folds, silently.
    from skestimators.model_selection._compare import reseeded_cv

    coords = _uniform_coords(200)
    cv = BufferedKFold(1.0, cv=base)
    folds = set()
    for seed in range(4):
        splitter = reseeded_cv(cv, None, False, seed, warn=True)
        test = next(splitter.split(coords, groups=coords))[1]
        folds.add(tuple(np.sort(test)))
    assert len(folds) == 4
    assert cv.cv is base  # the user's splitter is left as it was


def test_chebyshev_buffer_of_one_patch_width_leaves_no_shared_pixel():
    # Under the Euclidean distance a buffer of one patch width kept diagonal
    # neighbours whose 5x5 patches overlap (up to sqrt(2) widths apart).
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 60, size=(400, 2))  # patch centres, in pixels
    window, pixel = 5, 250.0
    coords = pixels * pixel

    def shared_pixels(cv):
        count = 0
        for train, test in cv.split(coords, groups=coords):
            offset = np.abs(pixels[train][:, None] - pixels[test][None]).max(axis=2)
            count += int((offset < window).any(axis=1).sum())
        return count

    euclidean = BufferedKFold(window * pixel, n_splits=5, random_state=0)
    assert shared_pixels(euclidean) > 0
    chebyshev = BufferedKFold(
        window * pixel, n_splits=5, random_state=0, metric="chebyshev"
    )
    assert shared_pixels(chebyshev) == 0
    with pytest.raises(ValueError, match="metric must be one of"):
        next(BufferedKFold(1.0, metric="manhattan").split(coords, groups=coords))


def test_repeats_warn_when_block_sizes_leave_every_seed_the_same_folds():
    # random_state only breaks ties between blocks of equal size: on
    # clustered points every repeat had the same folds, and repeated_cv
    # reported a spread between repeats of exactly 0 without a word.
    from skestimators.model_selection import repeated_cv

    rng = np.random.default_rng(0)
    centres = [(10, 10), (50, 50), (90, 20), (20, 80), (80, 80)]
    coords = np.vstack(
        [
            rng.normal(c, 8, size=(n, 2))
            for c, n in zip(centres, [40, 70, 100, 130, 160])
        ]
    )
    y = coords.sum(axis=1) + rng.normal(size=len(coords))
    cv = SpatialBlockKFold(3, n_blocks=3, random_state=0)
    with pytest.warns(UserWarning, match="same folds in the first two repeats"):
        repeated_cv(
            Ridge(), coords, y, cv=cv, groups=coords, n_repeats=2, random_state=0
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # uniform points: the seeds move the folds
        uniform = _uniform_coords(200)
        repeated_cv(
            Ridge(), uniform, uniform.sum(axis=1), n_repeats=2, random_state=0,
            cv=SpatialBlockKFold(3, block_size=10.0), groups=uniform,
        )  # fmt: skip


# -- through sklearn ----------------------------------------------------------------
def test_cross_val_score_and_grid_search_with_coords_as_groups(soc):
    X, y, coords = soc
    features = _band_stats(X)
    cvs = [
        SpatialBlockKFold(4, block_size=10_000.0, random_state=0),
        BufferedKFold(1000.0, cv=SpatialBlockKFold(4, block_size=10_000.0)),
    ]
    for cv in cvs:
        scores = cross_val_score(Ridge(), features, y, cv=cv, groups=coords)
        assert scores.shape == (4,) and np.isfinite(scores).all()
        search = GridSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, cv=cv)
        search.fit(features, y, groups=coords)
        assert search.best_params_["alpha"] in (0.1, 10.0)
    # The routed route: with metadata routing on, coords go through ``params``.
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(
            Ridge(), features, y, cv=cvs[0], params={"groups": coords}
        )
        GridSearchCV(Ridge(), {"alpha": [1.0]}, cv=cvs[0]).fit(
            features, y, groups=coords
        )
    plain = cross_val_score(Ridge(), features, y, cv=cvs[0], groups=coords)
    np.testing.assert_allclose(routed, plain)


def test_random_kfold_is_optimistic_on_the_simulator(soc):
    X, y, coords = soc
    features = _band_stats(X)
    model = HistGradientBoostingRegressor(max_iter=60, random_state=0)
    random_cv = KFold(5, shuffle=True, random_state=0)
    spatial_cv = SpatialBlockKFold(5, block_size=10_000.0, random_state=0)
    # One OpenMP thread: tiny fits, and no oversubscription on a busy machine.
    with threadpool_limits(1):
        random_r2 = cross_val_score(model, features, y, cv=random_cv).mean()
        spatial_r2 = cross_val_score(
            model, features, y, cv=spatial_cv, groups=coords
        ).mean()
    # About 0.74 and 0.29 with these seeds.
    assert random_r2 > 0.65
    assert random_r2 - spatial_r2 > 0.25


def test_plot_fold_map_axes_and_points():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = _uniform_coords(120)
    cv = BufferedKFold(60.0, n_splits=3, random_state=0)
    axes = plot_fold_map(cv, coords)
    assert len(axes) == 3 and len(axes[0].figure.axes) == 3
    for ax, (train, test) in zip(axes, cv.split(coords, groups=coords)):
        counts = [len(c.get_offsets()) for c in ax.collections]
        assert counts == [120 - len(train) - len(test), len(train), len(test)]
        assert counts[0] > 0  # the buffer is drawn
    plt.close("all")
    fig, grid = plt.subplots(2, 2)
    axes = plot_fold_map(SpatialBlockKFold(4, n_blocks=4), coords, ax=grid)
    assert (
        len(axes) == 4 and sum(len(a.collections[2].get_offsets()) for a in axes) == 120
    )
    with pytest.raises(ValueError, match="Axes"):
        plot_fold_map(SpatialBlockKFold(4, n_blocks=4), coords, ax=grid[0])
    plt.close("all")


class _UsersBlocks(KFold):
    """A user's splitter that reads the coordinates given as groups without
    declaring them to scikit-learn's metadata routing."""

    __module__ = "users_code"

    def split(self, X, y=None, groups=None):
        order = np.argsort(np.asarray(groups)[:, 0])
        for test in np.array_split(order, self.n_splits):
            yield np.setdiff1d(order, test), test


def test_plot_fold_map_still_gives_coordinates_to_the_users_splitters():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert len(plot_fold_map(_UsersBlocks(3), _uniform_coords(60))) == 3
    plt.close("all")


def test_plot_fold_map_gives_groups_only_to_splitters_that_take_them():
    # KFold was handed the coordinates as groups: scikit-learn's warning
    # "The groups parameter is ignored by KFold".
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = _uniform_coords(60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert len(plot_fold_map(KFold(3), coords)) == 3
    with pytest.raises(ValueError, match="ncols must be a positive integer"):
        plot_fold_map(KFold(3), coords, ncols=0)
    with pytest.raises(TypeError, match="not 5"):
        plot_fold_map(5, coords)
    plt.close("all")


# -- metrics ------------------------------------------------------------------------
def test_rmse_and_rpiq_match_hand_computation():
    y_true = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    y_pred = np.array([1.5, 2.0, 2.0, 4.0, 9.0])
    expected_rmse = np.sqrt(np.mean((y_true - y_pred) ** 2))
    assert root_mean_squared_error(y_true, y_pred) == pytest.approx(expected_rmse)
    iqr = np.percentile(y_true, 75) - np.percentile(y_true, 25)
    assert rpiq_score(y_true, y_pred) == pytest.approx(iqr / expected_rmse)
    # Unit weights change nothing; integer weights act on the RMSE.
    assert rpiq_score(y_true, y_pred, sample_weight=np.ones(5)) == pytest.approx(
        rpiq_score(y_true, y_pred)
    )
    w = np.array([1.0, 1.0, 1.0, 1.0, 3.0])
    w_rmse = np.sqrt(np.average((y_true - y_pred) ** 2, weights=w))
    assert root_mean_squared_error(y_true, y_pred, sample_weight=w) == pytest.approx(
        w_rmse
    )
    assert rpiq_score(y_true, y_true) == np.inf


def test_rpiq_multioutput():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(50, 2)) * [1.0, 5.0]
    y_pred = y_true + rng.normal(size=(50, 2))
    raw = rpiq_score(y_true, y_pred, multioutput="raw_values")
    assert raw.shape == (2,)
    assert raw[0] == pytest.approx(rpiq_score(y_true[:, 0], y_pred[:, 0]))
    assert rpiq_score(y_true, y_pred) == pytest.approx(raw.mean())
    assert rpiq_score(y_true, y_pred, multioutput=[0.0, 1.0]) == pytest.approx(raw[1])
    with pytest.raises(ValueError, match="multioutput"):
        rpiq_score(y_true, y_pred, multioutput="bogus")
    with pytest.raises(ValueError, match="one weight per output"):
        rpiq_score(y_true, y_pred, multioutput=[1.0, 1.0, 1.0])


@pytest.mark.parametrize("n", [2, 4, 5, 10, 101])
def test_rpiq_weighted_quartiles_match_numpy_for_equal_weights(n):
    rng = np.random.default_rng(n)
    y_true = rng.lognormal(size=n)
    y_pred = y_true + rng.normal(size=n)
    iqr = np.subtract(*np.quantile(y_true, [0.75, 0.25]))
    expected = iqr / root_mean_squared_error(y_true, y_pred)
    for weight in (1.0, 2.0, 0.3):
        assert rpiq_score(
            y_true, y_pred, sample_weight=np.full(n, weight)
        ) == pytest.approx(expected)


def test_rpiq_is_invariant_to_huge_weights():
    # The squares of weights of 1e200 overflowed: NaN.
    y, pred = [1.0, 2, 3, 4, 5], [1.0, 2, 3, 4, 7]
    expected = rpiq_score(y, pred)
    assert rpiq_score(y, pred, sample_weight=np.full(5, 1e200)) == pytest.approx(
        expected
    )


def test_rpiq_weighted_quartiles_are_symmetric_and_drop_zero_weights():
    rng = np.random.default_rng(0)
    y_true = rng.lognormal(size=30)
    y_pred = y_true + rng.normal(size=30)
    w = rng.uniform(0.1, 3.0, size=30)
    # Negating the target and predictions keeps the score.
    assert rpiq_score(-y_true, -y_pred, sample_weight=w) == pytest.approx(
        rpiq_score(y_true, y_pred, sample_weight=w)
    )
    # A sample of vanishing weight (here the largest) barely counts.
    y_true = np.array([1.0, 2.0, 3.0, 100.0])
    y_pred = y_true + [0.5, -0.5, 0.5, -0.5]
    w = np.array([1.0, 1.0, 1.0, 1e-9])
    assert rpiq_score(y_true, y_pred, sample_weight=w) == pytest.approx(
        rpiq_score(y_true[:3], y_pred[:3])
    )
    assert rpiq_score(y_true, y_pred, sample_weight=[1.0, 1.0, 1.0, 0.0]) == (
        pytest.approx(rpiq_score(y_true[:3], y_pred[:3]))
    )
    assert rpiq_score(-y_true, -y_pred, sample_weight=w) == pytest.approx(
        rpiq_score(y_true[:3], y_pred[:3])
    )


def test_rpiq_integer_weights_pull_the_quartiles():
    from skestimators.metrics._regression import _weighted_quantile

    y = np.array([1.0, 2.0, 3.0, 4.0])
    # Within the range, monotone in q, and drawn towards the heavy sample.
    q = np.linspace(0.0, 1.0, 11)
    heavy_top = _weighted_quantile(y, q, np.array([1.0, 1.0, 1.0, 3.0]))
    assert (heavy_top >= 1.0).all() and (heavy_top <= 4.0).all()
    assert (np.diff(heavy_top) >= 0).all()
    assert (heavy_top >= np.quantile(y, q)).all()
    assert heavy_top[5] > np.quantile(y, 0.5)
    # Weight 3 on the top sample: half of the mass, so its upper quartile.
    assert _weighted_quantile(y, 0.75, np.array([1.0, 1.0, 1.0, 3.0])) == 4.0


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        ([1.0, -1.0, 1.0, 1.0], "Negative values"),
        ([0.0, 0.0, 0.0, 0.0], "non-zero"),
        ([np.nan, 1.0, 1.0, 1.0], "NaN"),
    ],
)
def test_rpiq_sample_weight_errors(sample_weight, match):
    y = np.array([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=match):
        rpiq_score(y, y + 0.5, sample_weight=sample_weight)


def test_scorers_in_cross_validate(soc):
    X, y, coords = soc
    features = _band_stats(X)
    cv = SpatialBlockKFold(3, block_size=10_000.0, random_state=0)
    result = cross_validate(
        Ridge(), features, y, cv=cv, groups=coords, scoring=regression_scorers()
    )
    assert (result["test_neg_root_mean_squared_error"] < 0).all()
    assert (result["test_rpiq"] > 0).all()
    model = Ridge().fit(features, y)
    assert get_scorer("neg_root_mean_squared_error")(model, features, y) == (
        pytest.approx(-root_mean_squared_error(y, model.predict(features)))
    )
    assert rpiq_scorer(model, features, y) == pytest.approx(
        rpiq_score(y, model.predict(features))
    )
