"""GalaxyZooRegressor and ImageClassifier: image input, the tree, TTA, chirality."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

import skestimators
from skestimators import GalaxyZooRegressor, ImageClassifier, MultiInput
from skestimators.datasets import make_galaxy_classes, make_galaxy_zoo
from skestimators.estimators import _pixel_scale
from skestimators.galaxy_zoo import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS
from skestimators.nn import dihedral_transform
from skestimators.nn._image_augment import ImageBatchAugment

TINY = {
    "width": 4, "depth": 2, "head_width": 16, "max_epochs": 2, "batch_size": 32,
    "lr": 0.01, "device": "cpu", "random_state": 0,
}  # fmt: skip


@pytest.fixture(scope="module")
def zoo():
    X, y = make_galaxy_zoo(96, size=16, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def classes():
    X, y = make_galaxy_classes(160, size=16, random_state=1)
    return X, y


@pytest.fixture(scope="module")
def fitted_zoo(zoo):
    X, y = zoo
    return GalaxyZooRegressor(**TINY).fit(X, y)


def symmetric_images(n=3, size=16, channels=3):
    """Images invariant under every rotation and flip (a function of the folded
    distances to the edges, symmetric in its two arguments)."""
    i = np.arange(size)
    d = np.minimum(i, size - 1 - i).astype(np.float32)
    base = (d[:, None] * d[None, :] + d[:, None] + d[None, :]) / (size**2 / 2)
    scale = np.linspace(0.5, 1.0, n * channels, dtype=np.float32)
    return (scale.reshape(n, channels, 1, 1) * base).astype(np.float32)


def views(X, k):
    return dihedral_transform(torch.from_numpy(X), k)[0].numpy()


def tree_violation(y):
    worst = 0.0
    for q in GALAXY_ZOO_QUESTIONS:
        parent = 1.0 if q.parent is None else y[:, q.parent]
        worst = max(worst, np.abs(y[:, q.start : q.stop].sum(1) - parent).max())
    return worst


class _WholeNetwork(torch.nn.Module):
    """A whole network of the user's (its constructor takes ``n_outputs``)."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(int(np.prod(input_shape)), n_outputs)

    def forward(self, x):
        return self.linear(x.flatten(1))


# -- GalaxyZooRegressor ----------------------------------------------------------------
def test_regressor_layouts_and_uint8(zoo):
    X, y = zoo
    X8 = np.round(X * 255).astype(np.uint8)
    first = GalaxyZooRegressor(**TINY).fit(X8.astype(np.float32) / 255, y)
    last = GalaxyZooRegressor(**TINY).fit(X8.transpose(0, 2, 3, 1), y)
    assert (first.layout_, last.layout_) == ("channels_first", "channels_last")
    assert first.input_shape_ == last.input_shape_ == (3, 16, 16)
    pred = last.predict(X8[:5].transpose(0, 2, 3, 1))
    assert pred.shape == (5, 37) and pred.dtype == np.float64
    # uint8 channels last is the same data as [0, 1] floats channels first
    np.testing.assert_allclose(pred, first.predict(X8[:5] / np.float32(255)), atol=1e-6)
    assert first.target_names_ == list(GALAXY_ZOO_COLUMNS) and first.n_targets_ == 37
    # one-channel images as (n, height, width)
    gray = GalaxyZooRegressor(**TINY).fit(X[:, 0], y.to_numpy())
    assert gray.input_shape_ == (1, 16, 16) and gray.predict(X[:2, 0]).shape == (2, 37)


def test_regressor_y_columns_by_name(zoo):
    X, y = zoo
    shuffled = y[list(GALAXY_ZOO_COLUMNS)[::-1]]
    a = GalaxyZooRegressor(**TINY).fit(X, y).predict(X[:4])
    b = GalaxyZooRegressor(**TINY).fit(X, shuffled).predict(X[:4])
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="37 Galaxy Zoo columns"):
        GalaxyZooRegressor(**TINY).fit(X, y.rename(columns={"Class1.1": "smooth"}))
    with pytest.raises(ValueError, match=r"shape \(n_samples, 37\)"):
        GalaxyZooRegressor(**TINY).fit(X, y.to_numpy()[:, :36])


@pytest.mark.parametrize("constraint", ["divisive", "softmax"])
@pytest.mark.parametrize("module", ["galaxycnn", "resnet"])
def test_predictions_obey_the_tree(zoo, constraint, module):
    X, y = zoo
    reg = GalaxyZooRegressor(module, constraint=constraint, tta=4, **TINY).fit(X, y)
    pred = reg.predict(X)
    assert (pred >= 0).all() and tree_violation(pred) < 1e-5


@pytest.mark.parametrize("constraint", ["divisive", "softmax"])
def test_a_whole_network_of_the_users_gets_the_constraint(zoo, constraint):
    # The constraint was ignored for a module class taking n_outputs: answers
    # summed to 0.94 off their parent, outputs went negative.
    X, y = zoo
    reg = GalaxyZooRegressor(_WholeNetwork, constraint=constraint, **TINY).fit(X, y)
    pred = reg.predict(X)
    assert (pred >= 0).all() and tree_violation(pred) < 1e-5
    raw = GalaxyZooRegressor(_WholeNetwork, constraint="none", **TINY).fit(X, y)
    assert isinstance(raw.net_.module_, _WholeNetwork)


def test_a_network_class_with_its_own_constraint_is_not_wrapped_again(zoo):
    # GalaxyCNN given as a class builds its own output layer: a second one
    # (softmax of divisive fractions) capped every Q1 answer at 0.58.
    from skestimators.nn import GalaxyCNN

    X, y = zoo
    reg = GalaxyZooRegressor(GalaxyCNN, constraint="softmax", **TINY).fit(X, y)
    assert isinstance(reg.net_.module_, GalaxyCNN)


def test_score_matches_y_columns_by_name(fitted_zoo, zoo):
    # The inherited R² compared columns by position: y with its columns in
    # another order (accepted by fit) got another score.
    X, y = zoo
    shuffled = y[list(GALAXY_ZOO_COLUMNS)[::-1]]
    expected = r2_score(y.to_numpy(), fitted_zoo.predict(X))
    assert fitted_zoo.score(X, shuffled) == pytest.approx(expected)
    assert fitted_zoo.score(X, y) == pytest.approx(expected)


def test_multilabel_stratified_kfold_as_validation_cv(zoo):
    # Regressors gave the splitter no y: "stratifies on y: pass y".
    from skestimators.model_selection import MultilabelStratifiedKFold

    X, y = zoo
    cv = MultilabelStratifiedKFold(4, shuffle=True, random_state=0)
    reg = GalaxyZooRegressor(**{**TINY, "validation_cv": cv}).fit(X, y)
    assert reg.history_["valid_loss"].notna().all()


def test_history_summarises_the_answers(fitted_zoo):
    history = fitted_zoo.history_
    questions = [f"valid_{q.name}_rmse" for q in GALAXY_ZOO_QUESTIONS]
    assert {"train_loss", "valid_loss", "valid_rmse", *questions} <= set(history)
    assert not any(c.startswith("valid_Class") for c in history)
    # the challenge metric is the root of the validation MSE
    np.testing.assert_allclose(
        history["valid_rmse"], np.sqrt(history["valid_loss"]), rtol=1e-4
    )
    assert "valid_Class1.1_r2" in fitted_zoo.net_.history[-1]


def test_tta_averages_dihedral_views(fitted_zoo, zoo):
    X, _ = zoo
    reg = pickle.loads(pickle.dumps(fitted_zoo))  # a copy: set_params below
    single = [reg.set_params(tta=1).predict(views(X[:6], k)) for k in range(8)]
    for n_views in (2, 8):
        tta = reg.set_params(tta=n_views).predict(X[:6])
        np.testing.assert_allclose(tta, np.mean(single[:n_views], axis=0), atol=1e-6)
    assert not np.allclose(reg.set_params(tta=8).predict(X[:6]), single[0], atol=1e-4)
    # a galaxy that every rotation and flip leaves unchanged: TTA changes nothing
    sym = symmetric_images()
    np.testing.assert_allclose(
        reg.set_params(tta=8).predict(sym),
        reg.set_params(tta=1).predict(sym),
        rtol=1e-6,
        atol=1e-7,
    )


def test_tta_needs_square_images_for_quarter_turns(zoo):
    X, y = zoo
    rect = X[:, :, :, :12]
    reg = GalaxyZooRegressor(**TINY).fit(rect, y)
    assert reg.set_params(tta=4).predict(rect[:2]).shape == (2, 37)
    with pytest.raises(ValueError, match="need square images"):
        reg.set_params(tta=8).predict(rect[:2])
    # "auto" takes the views that keep the shape: the four of tta=4
    np.testing.assert_array_equal(
        reg.set_params(tta="auto").predict(rect[:2]),
        reg.set_params(tta=4).predict(rect[:2]),
    )


def test_auto_tta_averages_the_views_training_draws(
    classes, fitted_zoo, zoo, monkeypatch
):
    # ImageClassifier's default: with integer class codes and no chirality
    # pair, training rotates only, and prediction averages the 4 rotations;
    # a named pair adds mirror flips: all 8 views; no augmentation: none.
    X, y = classes
    codes = np.unique(y, return_inverse=True)[1]
    with pytest.warns(UserWarning, match="chirality_pairs"):
        clf = ImageClassifier(**TINY).fit(X, codes)
    assert clf.tta == "auto"
    p = {n: clf.set_params(tta=n).predict_proba(X[:6]) for n in (1, 4, "auto")}
    np.testing.assert_allclose(p["auto"], p[4], atol=1e-7)
    assert not np.allclose(p["auto"], p[1], atol=1e-4)
    names = np.unique(y).tolist()
    pair = [(names.index("clockwise_spiral"), names.index("anticlockwise_spiral"))]
    paired = ImageClassifier(chirality_pairs=pair, **TINY).fit(X, codes)
    np.testing.assert_allclose(
        paired.predict_proba(X[:6]),
        paired.set_params(tta=8).predict_proba(X[:6]),
        atol=1e-7,
    )
    plain = ImageClassifier(augment=False, **TINY).fit(X, codes)
    np.testing.assert_array_equal(
        plain.predict_proba(X[:6]), plain.set_params(tta=1).predict_proba(X[:6])
    )
    # GalaxyZooRegressor trains on all 8 views of square images
    Xz, _ = zoo
    reg = pickle.loads(pickle.dumps(fitted_zoo))
    np.testing.assert_allclose(
        reg.set_params(tta="auto").predict(Xz[:6]),
        reg.set_params(tta=8).predict(Xz[:6]),
        atol=1e-7,
    )
    # batches of 4 images: the Monte Carlo draws are reduced batch by batch
    monkeypatch.setattr(
        "skestimators._engine._inference._predict_batch_size", lambda size, data: 4
    )
    mean, std = reg.set_params(tta="auto", mc_samples=3).predict(
        Xz[:6], return_std=True
    )
    assert mean.shape == std.shape == (6, 37) and np.all(std > 0)
    # the std over the 3 draws of their 8-view means
    outputs = reg._view_outputs(Xz[:6], list(range(8)), mc_dropout=True, repeat=3)
    draws = [np.mean([o.numpy() for o, _ in outputs[i : i + 8]], 0) for i in (0, 8, 16)]
    np.testing.assert_allclose(std, np.std(draws, axis=0, ddof=1), rtol=1e-5, atol=1e-7)


def test_auto_tta_is_fixed_by_fit(classes, tmp_path):
    # What the network was trained with decides how it predicts: changing the
    # augmentation parameters of a fitted model (set_params) changes neither
    # the views "auto" averages nor how mirrored views are relabelled, in
    # memory, after a safe model file or after partial_fit; refitting does.
    X, y = classes
    clf = ImageClassifier(**TINY).fit(X, y)  # named chirality pair: all 8 views
    expected = clf.predict_proba(X[:6])
    np.testing.assert_allclose(
        clf.set_params(tta=8).predict_proba(X[:6]), expected, atol=1e-7
    )
    clf.set_params(tta="auto", augment=False, mirror="off")
    np.testing.assert_array_equal(clf.predict_proba(X[:6]), expected)
    path = tmp_path / "clf.skops"
    skestimators.save(clf, path)
    loaded = skestimators.load(path)
    assert loaded.net_.batch_transform.swap == clf.net_.batch_transform.swap
    np.testing.assert_allclose(loaded.predict_proba(X[:6]), expected, atol=1e-6)
    with pytest.warns(UserWarning, match=r"\['augment', 'mirror'\] changed since"):
        clf.partial_fit(X, y)  # continues the network as it was built
    assert clf.net_.batch_transform.mirror
    np.testing.assert_allclose(
        clf.predict_proba(X[:6]), clf.set_params(tta=8).predict_proba(X[:6]), atol=1e-7
    )
    clf.set_params(tta="auto").fit(X, y)
    np.testing.assert_array_equal(
        clf.predict_proba(X[:6]), clf.set_params(tta=1).predict_proba(X[:6])
    )


def test_pickle_round_trip(fitted_zoo, zoo, classes):
    X, _ = zoo
    reg = clone(fitted_zoo).set_params(tta=2)
    assert "net_" not in vars(reg)
    reg = pickle.loads(pickle.dumps(fitted_zoo)).set_params(tta=2)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X[:4]), reg.predict(X[:4]))
    Xc, yc = classes
    clf = ImageClassifier(tta=2, **TINY).fit(Xc, yc)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(
        again.predict_proba(Xc[:4]), clf.predict_proba(Xc[:4])
    )
    assert isinstance(again.net_.batch_transform, ImageBatchAugment)


def test_bad_input_errors(fitted_zoo, zoo):
    X, y = zoo
    reg = GalaxyZooRegressor(**TINY)
    with pytest.raises(ValueError, match=r"expects images.*shape \(96, 768\)"):
        reg.fit(X.reshape(len(X), -1), y)
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        fitted_zoo.predict(bad[:2])
    with pytest.raises(ValueError, match=r"1 channel\(s\).*fitted on images with 3"):
        fitted_zoo.predict(X[:2, :1])
    with pytest.raises(ValueError, match="12x12 pixels.*16x16"):
        fitted_zoo.predict(X[:2, :, :12, :12])
    with pytest.raises(ValueError, match="numeric"):
        reg.fit(X.astype(str), y)
    with pytest.raises(ValueError, match="empty dimension"):
        reg.fit(X[:, :0], y)
    with pytest.raises(ValueError, match="not named inputs"):
        reg.fit(MultiInput(images=X), y)
    with pytest.raises(ValueError, match="too small for depth=5"):
        GalaxyZooRegressor(**{**TINY, "depth": 5}).fit(X, y)
    # depth sizes the package's networks, not a whole network of the user's
    whole = GalaxyZooRegressor(_WholeNetwork, **{**TINY, "depth": 5}).fit(X, y)
    assert isinstance(whole.net_.module_[0], _WholeNetwork)  # then the constraint
    with pytest.raises(ValueError, match="zoom must be a range"):
        GalaxyZooRegressor(zoom=(1.2, 0.8), **TINY).fit(X, y)
    with pytest.raises(ValueError, match="constraint"):
        GalaxyZooRegressor(constraint="tree", **TINY).fit(X, y)


def test_regressor_refuses_vote_fractions_outside_0_1(fitted_zoo, zoo):
    # Percentages trained without a word, towards targets the tree-constrained
    # output layer can never reach (load_galaxy_zoo refuses them).
    X, y = zoo
    with pytest.raises(ValueError, match=r"between 0 and 1; 96 of 96 rows .* by 100"):
        GalaxyZooRegressor(**TINY).fit(X, y * 100)
    bad = y.to_numpy().copy()
    bad[3, 5] = -0.01
    with pytest.raises(ValueError, match=r"1 of 96 rows .*-0\.01 to .*rows \[3\]"):
        GalaxyZooRegressor(**TINY).fit(X, bad)
    # Slightly negative fractions are clipped, not percentages.
    with pytest.raises(ValueError, match=r"np\.clip\(y, 0, 1\)") as info:
        GalaxyZooRegressor(**TINY).fit(X, bad)
    assert "by 100" not in str(info.value)
    with pytest.raises(ValueError, match="between 0 and 1"):
        pickle.loads(pickle.dumps(fitted_zoo)).partial_fit(X, y * 100)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fitted_zoo.score(X, y * 100)
    # rounding beyond 0 and 1 by less than 1e-6 is accepted
    assert np.isfinite(fitted_zoo.score(X, y + 5e-7))
    assert np.isfinite(fitted_zoo.score(X, y - 5e-7))


def _on_disk(tmp_path, name, array):
    np.save(tmp_path / f"{name}.npy", array)
    return np.load(tmp_path / f"{name}.npy", mmap_mode="r")


def test_prediction_refuses_images_on_another_pixel_scale(
    fitted_zoo, zoo, tmp_path, monkeypatch
):
    # uint8 pixels are scaled to [0, 1], floats are not: the same pixels fitted
    # as uint8 and predicted as 0-255 floats (or the reverse) were standardised
    # with the statistics of the other scale, giving garbage without a word.
    Xc, yc = make_galaxy_classes(40, size=16, random_state=0)
    X8 = np.round(Xc * 255).astype(np.uint8)
    params = {**TINY, "max_epochs": 1, "tta": 1, "chirality_pairs": None}
    clf = ImageClassifier(**params).fit(X8, yc)
    proba = clf.predict_proba(X8[:4])
    # floats in [0, 1] are on the scale of the (scaled) training pixels
    np.testing.assert_allclose(clf.predict_proba(X8[:4] / np.float32(255)), proba)
    fitted_uint8 = r"fitted on uint8 images, scaled to \[0, 1\], but these float32"
    with pytest.raises(
        ValueError, match=rf"{fitted_uint8} images reach {X8[:4].max()}: pass"
    ):
        clf.predict(X8[:4].astype(np.float32))
    # images on disk are sampled (here 4 of 40), not read whole
    monkeypatch.setattr(_pixel_scale, "_SCALE_SAMPLE_BYTES", 4 * X8[0].size * 4)
    with pytest.raises(ValueError, match=fitted_uint8):
        clf.predict_proba(_on_disk(tmp_path, "floats", X8.astype(np.float32)))
    with pytest.raises(ValueError, match=fitted_uint8):
        pickle.loads(pickle.dumps(clf)).partial_fit(X8.astype(np.float32), yc)
    # Fitted on floats in [0, 1]: 0-255 floats are the other scale (every
    # real galaxy was predicted a merger), brighter images in [0, 1] are not.
    X, _ = zoo
    with pytest.raises(ValueError, match=r"pixels in \[0, .*\], but these .* reach"):
        fitted_zoo.predict(X[:2] * 255)
    assert fitted_zoo.predict(np.clip(X[:2] * 1.5, 0, 1.5)).shape[0] == 2
    # fitted on 0-255 floats (here from disk): uint8 images are refused
    wide = ImageClassifier(**params).fit(
        _on_disk(tmp_path, "train", X8.astype(np.float32)), yc
    )
    assert wide.predict(X8[:4].astype(np.float64)).shape == (4,)
    fitted_wide = f"float32 images whose pixels reach {X8.max()}, but these are uint8"
    with pytest.raises(ValueError, match=fitted_wide):
        wide.predict(X8[:4])
    with pytest.raises(ValueError, match=fitted_wide):
        wide.predict(_on_disk(tmp_path, "uint8", X8))
    assert wide.input_dtype_ == "float32" and wide.input_max_ == X8.max()
    assert clf.input_dtype_ == "uint8" and 0.5 < clf.input_max_ <= 1.0
    # a model fitted before the scale was recorded predicts as it did
    old = pickle.loads(pickle.dumps(clf))
    del old.input_dtype_, old.input_max_
    assert old.predict(X8[:4].astype(np.float32)).shape == (4,)
    # the safe format keeps the scale (plain str and float attributes)
    path = skestimators.save(clf, tmp_path / "clf.skops", format="safe")
    loaded = skestimators.load(path)
    assert (loaded.input_dtype_, loaded.input_max_) == ("uint8", clf.input_max_)
    np.testing.assert_array_equal(loaded.predict_proba(X8[:4]), proba)
    with pytest.raises(ValueError, match=fitted_uint8):
        loaded.predict(X8[:4].astype(np.float32))


# -- ImageClassifier -------------------------------------------------------------------
def test_classifier_fit_predict(classes):
    X, y = classes
    clf = ImageClassifier(tta=2, **TINY).fit(np.round(X * 255).astype(np.uint8), y)
    proba = clf.predict_proba(np.round(X[:5] * 255).astype(np.uint8))
    assert proba.shape == (5, len(clf.classes_))
    np.testing.assert_allclose(proba.sum(1), 1)
    assert set(clf.predict(np.round(X * 255).astype(np.uint8))) <= set(clf.classes_)
    res = ImageClassifier("resnet", **TINY).fit(X.transpose(0, 2, 3, 1), y)
    assert res.layout_ == "channels_last" and res.predict(
        X[:3].transpose(0, 2, 3, 1)
    ).shape == (3,)


def _identify(out, x):
    """Which dihedral view ``k`` of ``x`` the image ``out`` is."""
    matches = [
        k for k in range(8) if torch.equal(dihedral_transform(x[None], k)[0][0], out)
    ]
    return matches[0]


@pytest.mark.parametrize("mirror", ["swap", "off", "on"])
def test_chirality_of_the_batch_transform(classes, mirror):
    X, y = classes
    clf = ImageClassifier(mirror=mirror, max_shift=0, zoom=(1, 1), **TINY).fit(X, y)
    transform = clf.net_.batch_transform
    names = clf.classes_.tolist()
    cw, acw = names.index("clockwise_spiral"), names.index("anticlockwise_spiral")
    other = names.index("elliptical")
    # an asymmetric image, so that each of the eight views is distinct
    x = torch.arange(3 * 16 * 16, dtype=torch.float32).reshape(3, 16, 16) % 7.3
    batch = x.expand(64, 3, 16, 16).clone()
    codes = torch.tensor([cw, acw, other, cw] * 16)
    out, (labels, w) = transform(batch, (codes, None), torch.Generator().manual_seed(0))
    assert w is None and torch.equal(
        batch, x.expand(64, 3, 16, 16)
    )  # no in-place edits
    ks = torch.tensor([_identify(o, x) for o in out])
    mirrored = ks % 2 == 1
    if mirror == "off":
        assert not mirrored.any() and len(set(ks.tolist())) == 4
        assert torch.equal(labels, codes)
        return
    assert 0 < int(mirrored.sum()) < 64
    swapped = codes.clone()
    if mirror == "swap":  # a mirrored clockwise spiral is trained as anticlockwise
        swapped[mirrored & (codes == cw)] = acw
        swapped[mirrored & (codes == acw)] = cw
    assert torch.equal(labels, swapped)


def test_batch_augment_binary_and_multilabel_targets():
    g = torch.Generator().manual_seed(3)
    X = torch.rand(40, 1, 8, 8)
    augment = ImageBatchAugment(swap=(1, 0))
    y = torch.randint(2, (40, 1), generator=g).float()
    mirrored = torch.rand(40, generator=g) > 0.5
    out = augment.swap_labels(y, mirrored)
    assert out.dtype == y.dtype
    torch.testing.assert_close(out[mirrored], 1 - y[mirrored])
    torch.testing.assert_close(out[~mirrored], y[~mirrored])
    Y = torch.rand(40, 3, generator=g)
    columns = ImageBatchAugment(swap=(0, 2, 1), target="columns")
    out = columns.swap_labels(Y, mirrored)
    torch.testing.assert_close(out[mirrored], Y[mirrored][:, [0, 2, 1]])
    torch.testing.assert_close(out[~mirrored], Y[~mirrored])
    # A permutation that is not its own inverse: column c moves to swap[c],
    # as class c becomes swap[c] (the columns got the inverse permutation).
    cycle = (1, 2, 0)
    one_hot = torch.eye(3)
    every = torch.ones(3, dtype=torch.bool)
    by_class = ImageBatchAugment(swap=cycle).swap_labels(torch.arange(3), every)
    by_columns = ImageBatchAugment(swap=cycle, target="columns")
    out = by_columns.swap_labels(one_hot, every)
    assert out.argmax(1).tolist() == by_class.tolist() == list(cycle)
    X_aug, (y_aug, _) = augment(X, (y, None), g)
    assert X_aug.shape == X.shape and y_aug.shape == y.shape
    assert pickle.loads(pickle.dumps(augment)).swap == (1, 0)
    with pytest.raises(ValueError, match="permutation"):
        ImageBatchAugment(swap=(0, 0))


def test_classifier_tta_swaps_mirrored_views_back(classes):
    X, y = classes
    clf = ImageClassifier(**TINY).fit(X, y)
    names = clf.classes_.tolist()
    cw, acw = names.index("clockwise_spiral"), names.index("anticlockwise_spiral")
    perm = np.arange(len(names))
    perm[[cw, acw]] = acw, cw
    p0 = clf.set_params(tta=1).predict_proba(X[:6])
    p_mirror = clf.predict_proba(views(X[:6], 1))
    np.testing.assert_allclose(
        clf.set_params(tta=2).predict_proba(X[:6]),
        (p0 + p_mirror[:, perm]) / 2,
        atol=1e-6,
    )
    # a mirror-symmetric galaxy has no handedness: equal odds for both windings
    sym = symmetric_images()
    proba = clf.set_params(tta=8).predict_proba(sym)
    np.testing.assert_allclose(proba[:, cw], proba[:, acw], rtol=1e-6)
    # fitted with mirror="on", mirrored views are averaged as they are:
    # symmetric input, no change
    clf.set_params(mirror="on", tta="auto").fit(X, y)
    np.testing.assert_allclose(
        clf.set_params(tta=8).predict_proba(sym),
        clf.set_params(tta=1).predict_proba(sym),
        rtol=1e-6,
        atol=1e-7,
    )
    # fitted with mirror="off", rotations only
    clf.set_params(mirror="off", tta="auto").fit(X, y)
    p0 = clf.set_params(tta=1).predict_proba(X[:6])
    rot = clf.set_params(tta=1).predict_proba(views(X[:6], 2))
    np.testing.assert_allclose(
        clf.set_params(tta=2).predict_proba(X[:6]), (p0 + rot) / 2, atol=1e-6
    )
    with pytest.raises(ValueError, match="only 4 rotations"):
        clf.set_params(tta=8).predict_proba(X[:2])


def test_chirality_pair_errors(classes):
    X, y = classes
    no_acw = y != "anticlockwise_spiral"
    with pytest.raises(ValueError, match="its mirror image 'anticlockwise_spiral'"):
        ImageClassifier(**TINY).fit(X[no_acw], y[no_acw])
    # A fold of a cross-validation is the likely cause, not partial_fit.
    with pytest.raises(ValueError, match="cross-validation fold without it"):
        ImageClassifier(**TINY).fit(X[no_acw], y[no_acw])
    # without swapping, or without the pair, one-handed data is fine
    ImageClassifier(mirror="off", **TINY).fit(X[no_acw], y[no_acw])
    ImageClassifier(chirality_pairs=None, **TINY).fit(X[no_acw], y[no_acw])
    with pytest.raises(ValueError, match="pairs of distinct labels"):
        ImageClassifier(
            chirality_pairs=("clockwise_spiral", "anticlockwise_spiral"), **TINY
        ).fit(X, y)


def test_class_weight(classes):
    X, y = classes
    y = np.where(y == "elliptical", "elliptical", "other")  # imbalanced binary
    assert (y == "elliptical").mean() < 0.5
    settings = {**TINY, "max_epochs": 4, "augment": False}
    plain = ImageClassifier(**settings).fit(X, y)
    heavy = ImageClassifier(class_weight={"elliptical": 50.0}, **settings).fit(X, y)
    balanced = ImageClassifier(class_weight="balanced", **settings).fit(X, y)
    share = {
        name: (clf.predict(X) == "elliptical").mean()
        for name, clf in [("plain", plain), ("heavy", heavy), ("balanced", balanced)]
    }
    assert share["heavy"] > 0.9 and share["heavy"] > share["plain"]
    assert not np.allclose(plain.predict_proba(X), balanced.predict_proba(X))


def test_balanced_class_weight_counts_mirrored_pairs_as_trained():
    # With mirror="swap" half the images of a chiral class train as its
    # partner: both classes of a pair are equally frequent in training, and
    # so equally weighted (raw counts made the rarer spiral win everywhere).
    rng = np.random.default_rng(0)
    y = np.array(["elliptical"] * 20 + ["anticlockwise_spiral"] * 18)
    y = np.concatenate([y, ["clockwise_spiral"] * 2])
    X = rng.random((len(y), 1, 8, 8)).astype(np.float32)
    tiny = {**TINY, "depth": 1, "head_width": 8, "max_epochs": 1}

    def offsets(**kwargs):
        clf = ImageClassifier(class_weight="balanced", **tiny, **kwargs).fit(X, y)
        offset = clf.net_.head_groups[0].logit_offset.numpy()
        return dict(zip(clf.classes_.tolist(), offset))

    swap = offsets()
    assert swap["clockwise_spiral"] == pytest.approx(swap["anticlockwise_spiral"])
    # -log of the balanced weights: log((18 + 2) / 2 / 20) apart from elliptical
    gap = swap["clockwise_spiral"] - swap["elliptical"]
    assert gap == pytest.approx(np.log(10 / 20), rel=1e-5)
    for kwargs in ({"mirror": "off"}, {"augment": False}):  # no relabelling
        raw = offsets(**kwargs)
        gap = raw["clockwise_spiral"] - raw["anticlockwise_spiral"]
        assert gap == pytest.approx(np.log(2 / 18), rel=1e-5)
    # multilabel: the positives of the two columns of a pair are averaged
    Y = np.column_stack([y == "clockwise_spiral", y == "anticlockwise_spiral"])
    pairs = {"chirality_pairs": [("y0", "y1")]}
    ml = ImageClassifier(class_weight="balanced", **tiny, **pairs).fit(X, Y)
    pos_weight = ml.net_.head_groups[0].pos_weight.numpy()
    np.testing.assert_allclose(pos_weight, [(40 - 10) / 10] * 2, rtol=1e-6)
    ml = ImageClassifier(class_weight="balanced", mirror="off", **tiny, **pairs)
    pos_weight = ml.fit(X, Y).net_.head_groups[0].pos_weight.numpy()
    np.testing.assert_allclose(pos_weight, [38 / 2, 22 / 18], rtol=1e-6)


def test_balanced_partial_fit_tolerates_batches_without_a_class(classes):
    X, y = classes
    tiny = {**TINY, "depth": 1, "head_width": 8, "class_weight": "balanced"}
    clf = ImageClassifier(**tiny)
    no_edge = y != "edge_on"
    with pytest.warns(UserWarning, match=r"no samples of the classes \['edge_on'\]"):
        clf.partial_fit(X[no_edge], y[no_edge], classes=np.unique(y))
    names = clf.classes_.tolist()
    first = clf.net_.head_groups[0].logit_offset.clone()
    assert first[names.index("edge_on")] == 0  # weight 1: no adjustment
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        no_merger = y != "merger"
        clf.partial_fit(X[no_merger], y[no_merger])  # weights of the first call
    assert clf.n_iter_ == 2 and torch.equal(clf.net_.head_groups[0].logit_offset, first)


def test_partial_fit_and_multilabel_chirality(classes):
    X, y = classes
    clf = ImageClassifier(**TINY)
    clf.partial_fit(X[:80], y[:80], classes=sorted(set(y)))
    clf.partial_fit(X[80:], y[80:])
    assert clf.n_iter_ == 2 and clf.predict(X[:3]).shape == (3,)
    # multilabel targets: the chirality pair names label columns, swapped together
    Y = np.column_stack([y == "clockwise_spiral", y == "anticlockwise_spiral"])
    Y = np.column_stack([Y, y == "edge_on"]).astype(int)
    ml = ImageClassifier(chirality_pairs=[("y0", "y1")], tta=2, **TINY).fit(X, Y)
    assert ml.net_.batch_transform.swap == (1, 0, 2)
    assert ml.net_.batch_transform.target == "columns"
    assert ml.predict_proba(X[:4]).shape == (4, 3) and ml.predict(X[:4]).shape == (4, 3)


def test_mirroring_that_cannot_relabel_warns_and_uses_rotations_only(classes, tmp_path):
    X, y = classes
    codes = np.unique(y, return_inverse=True)[1]  # integer classes, as in catalogues
    names = np.unique(y).tolist()
    cw, acw = names.index("clockwise_spiral"), names.index("anticlockwise_spiral")
    with pytest.warns(UserWarning, match=r"chirality_pairs=\[\(1, 2\)\]"):
        clf = ImageClassifier(**TINY).fit(X, codes)
    transform = clf.net_.batch_transform
    assert transform.mirror is False and transform.swap is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is fit's, not load's
        loaded = skestimators.load(skestimators.save(clf, tmp_path / "m.skops"))
    assert loaded.net_.batch_transform.mirror is False
    # prediction averages rotations only: no mirrored view is scored
    assert clf._tta_plan(False)((1, 3, 16, 16)) == [0, 2, 4, 6]  # tta="auto"
    assert clf.set_params(tta=4)._tta_plan(False) == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="only 4 rotations"):
        clf.set_params(tta=8).predict_proba(X[:2])
    # the pair named by its class codes: mirrored samples are relabelled
    paired = ImageClassifier(chirality_pairs=[(cw, acw)], **TINY).fit(X, codes)
    swap = list(range(len(names)))
    swap[cw], swap[acw] = acw, cw
    assert paired.net_.batch_transform.mirror is True
    assert paired.net_.batch_transform.swap == tuple(swap)
    # declared free of chiral classes, or without augmentation: no warning

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        free = ImageClassifier(chirality_pairs=None, **TINY).fit(X, codes)
        ImageClassifier(augment=False, **TINY).fit(X, codes)
    assert free.net_.batch_transform.mirror is True


def test_networks_standardise_channels_as_the_training_images(classes):
    X, y = classes
    X = X.copy()
    X[:, 1] = 5.0 + 3.0 * X[:, 1]  # a channel far from the others
    for module in ("galaxycnn", "resnet"):
        clf = ImageClassifier(module=module, blocks=1, **TINY).fit(X, y)
        norm = clf.net_.module_.standardize
        np.testing.assert_allclose(
            norm.mean.ravel().numpy(), X.mean(axis=(0, 2, 3)), rtol=1e-4
        )
        np.testing.assert_allclose(
            norm.std.ravel().numpy(), X.std(axis=(0, 2, 3)), rtol=1e-3
        )
        # the statistics are saved with the weights
        state = clf.net_.module_.state_dict()
        assert "standardize.mean" in state and "standardize.std" in state


def test_classifier_trains_on_every_image_unless_asked_to_hold_some_out(classes):
    # The cosine schedule sets the length of training: by default no image
    # is held out for early stopping; the former behaviour is one setting.
    X, y = classes
    params = dict(TINY, batch_size=16)
    clf = ImageClassifier(**params).fit(X, y)
    assert clf.net_.history[-1, "train_batch_count"] == len(X) // 16
    assert "valid_loss" not in clf.history_.columns
    held = ImageClassifier(**params, validation_fraction=0.1, early_stopping=True)
    held.fit(X, y)
    assert held.net_.history[-1, "train_batch_count"] == (len(X) - 16) // 16
    assert "valid_loss" in held.history_.columns
    assert "early_stopping : bool, default=False" in ImageClassifier.__doc__
    assert "validation_fraction : float or None, default=None" in (
        ImageClassifier.__doc__
    )
    assert "early_stopping : bool, default=True" in GalaxyZooRegressor.__doc__


def test_partial_fit_calls_draw_new_batches_and_augmentations(monkeypatch):
    # With an int random_state every call was reseeded alike: the same batch
    # order, rotations and dropout, call after call.
    rng = np.random.default_rng(0)
    X = rng.random((16, 1, 8, 8)).astype(np.float32)
    y = rng.choice(["cw", "acw", "e"], 16)
    seen = []
    original = ImageBatchAugment.__call__

    def spy(self, X, yw, generator=None):
        out = original(self, X, yw, generator)
        seen[-1].append(out[0].sum(dim=(1, 2, 3)).clone())
        return out

    monkeypatch.setattr(ImageBatchAugment, "__call__", spy)
    clf = ImageClassifier(
        chirality_pairs=[("cw", "acw")], width=4, depth=1, batch_size=8,
        device="cpu", random_state=0,
    )  # fmt: skip
    for _ in range(2):
        seen.append([])
        clf.partial_fit(X, y, classes=["acw", "cw", "e"])
    assert not all(torch.equal(a, b) for a, b in zip(*seen))
    # ... reproducibly.
    again = clone(clf)
    seen.clear()
    for _ in range(2):
        seen.append([])
        again.partial_fit(X, y, classes=["acw", "cw", "e"])
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("tta", [0, 9, 2.5, "eight"])
def test_tta_set_after_fit_is_checked(tta):
    X, y = make_galaxy_classes(24, size=16, random_state=0)
    clf = ImageClassifier(**TINY, chirality_pairs=None).fit(X, y)
    with pytest.raises(ValueError, match="tta must be 'auto' or an int from 1 to 8"):
        clf.set_params(tta=tta).predict(X[:2])


def test_chirality_pairs_of_integer_labels_and_columns():
    import pandas as pd

    X = np.random.default_rng(0).random((24, 1, 16, 16)).astype(np.float32)
    # A flat pair of integers: TypeError "object of type 'int' has no len()".
    with pytest.raises(ValueError, match="must be a sequence of pairs"):
        ImageClassifier(**TINY, chirality_pairs=(1, 2)).fit(X, np.arange(24) % 3)
    # A pair as a NumPy array (a row of a 2-D array of pairs) is a pair.
    clf = ImageClassifier(**TINY, chirality_pairs=[np.array([1, 2])])
    assert clf.fit(X, np.arange(24) % 3)._mirror_plan()[1] == (0, 2, 1)
    # Multilabel columns 0, 1, 2 of a DataFrame: the pair (0, 1) matched
    # nothing (columns are named "0", "1"), so no mirror flips, with a warning.
    y = pd.DataFrame(np.random.default_rng(1).integers(0, 2, (24, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = ImageClassifier(**TINY, chirality_pairs=[(0, 1)]).fit(X, y)
    assert clf._mirror_plan()[0]


def test_no_pair_warning_points_at_the_callers_line():
    X = np.random.default_rng(0).random((24, 1, 16, 16)).astype(np.float32)
    with pytest.warns(UserWarning, match="mirror='swap' but none") as record:
        ImageClassifier(**TINY).fit(X, np.arange(24) % 3)
    assert record[0].filename == __file__


def test_targets_off_the_tree_are_named_for_a_constrained_output(zoo):
    # Per-question fractions (each question summing to 1, as the Galaxy Zoo 2
    # catalogues give them) trained without a word towards targets that the
    # constrained output can never reach.
    X, y = zoo
    per_question = y.to_numpy().copy()
    for q in GALAXY_ZOO_QUESTIONS:
        block = per_question[:, q.start : q.stop]
        total = block.sum(axis=1, keepdims=True)
        per_question[:, q.start : q.stop] = np.divide(
            block, total, out=np.full_like(block, 1 / block.shape[1]), where=total > 0
        )
    with pytest.warns(
        UserWarning, match=r"decision tree: in \d+ of 96 rows .* Q2"
    ) as w:
        GalaxyZooRegressor(**TINY).fit(X, per_question)
    assert "per-question fractions" in str(w[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # As they are, without the constraint; and targets on the tree.
        GalaxyZooRegressor(**TINY, constraint="none").fit(X, per_question)
        GalaxyZooRegressor(**TINY).fit(X, y)


def test_nan_pixels_are_named_at_fit(classes):
    # scikit-learn's message at fit suggested HistGradientBoosting.
    X, y = classes
    X = X.copy()
    X[5, 0, 3, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"NaN in 1 image\(s\) \(first at row 5\)"
    ) as info:
        ImageClassifier(**TINY).fit(X, y)
    assert "HistGradientBoosting" not in str(info.value)
    X[5, 0, 3, 3] = np.inf
    with pytest.raises(ValueError, match="infinite values in 1 image"):
        GalaxyZooRegressor(**TINY).fit(X, np.full((len(X), 37), 0.0))


def test_images_in_the_other_layout_or_alone_are_recognised(fitted_zoo, zoo):
    # They were told of "16 channel(s)" or "1 channel(s)".
    X = zoo[0]
    with pytest.raises(ValueError, match=r"channels-last images: pass X.transpose"):
        fitted_zoo.predict(np.moveaxis(X[:4], 1, -1))
    with pytest.raises(ValueError, match=r"single image as X\[None\]"):
        fitted_zoo.predict(X[0])
    last = GalaxyZooRegressor(**TINY, layout="channels_last").fit(
        np.moveaxis(X, 1, -1), zoo[1]
    )
    with pytest.raises(ValueError, match=r"channels-first images: pass X.transpose"):
        last.predict(X[:4])


def test_file_names_in_place_of_images_name_the_loader():
    # sklearn's "dtype='numeric' is not compatible with arrays of
    # bytes/strings" gave no hint of how to read the images.
    from skestimators import ImageClassifier

    paths = [f"images/{i}.jpg" for i in range(4)]
    for X in (paths, np.array(paths)):
        with pytest.raises(ValueError, match="load_image_folder"):
            ImageClassifier(max_epochs=1, device="cpu").fit(X, [0, 1, 0, 1])
