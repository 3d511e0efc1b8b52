"""Spin features of galaxy images and the logit adjustment of class weights."""

import numpy as np
import pytest
import torch

from skestimators import ImageClassifier, NetClassifier
from skestimators._engine._targets import class_weight_terms
from skestimators.nn import GalaxyCNN, GalaxyResNet, SpinFeatures


def _spiral(size=33, handed=1.0, arms=2, pitch=0.35):
    """A two-armed logarithmic spiral; ``handed`` -1 is its mirror image."""
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    r = np.hypot(xx, yy) + 1e-6
    phi = np.arctan2(yy, xx)
    wave = np.cos(arms * (phi - handed * np.log(r) / pitch))
    return (np.exp(-r / (size / 4)) * (1 + wave)).astype(np.float32)


def test_spin_sign_tells_the_handedness_of_a_spiral():
    spin = SpinFeatures((33, 33))
    s = torch.from_numpy(np.stack([_spiral(handed=1), _spiral(handed=-1)]))
    feats = spin(s[:, None].expand(-1, 3, -1, -1))
    signed = feats[:, : spin.n_signed]
    assert (signed[0] * signed[1] < 0).all()  # opposite winding, opposite sign
    assert torch.allclose(feats[0, spin.n_signed :], feats[1, spin.n_signed :])
    smooth = torch.from_numpy(np.exp(-np.hypot(*np.mgrid[-16:17, -16:17]) / 6.0))
    flat = spin(smooth[None, None].float())
    assert flat[:, : spin.n_signed].abs().max() < 1e-4  # no winding, no spin


def test_spin_is_rotation_invariant_and_mirror_antisymmetric():
    spin = SpinFeatures((20, 20), sigmas=(1.0,), rings=((0.1, 0.9),))
    x = torch.rand(5, 2, 20, 20)
    base = spin(x)
    for k in (1, 2, 3):
        assert torch.allclose(spin(torch.rot90(x, k, dims=(-2, -1))), base, atol=1e-5)
    mirrored = spin(torch.flip(x, dims=[-2]))
    assert torch.allclose(mirrored[:, :1], -base[:, :1], atol=1e-5)
    with pytest.raises(ValueError, match="expects images of shape"):
        spin(torch.rand(2, 2, 21, 20))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sigmas": (0.0,)}, "sigmas must be positive"),  # NaN features before
        ({"sigmas": (-1.0,)}, "sigmas must be positive"),
        ({"rings": ((0.5, 0.2),)}, "0 <= inner < outer"),  # zeros before
        ({"rings": ((-0.1, 0.2),)}, "0 <= inner < outer"),
    ],
)
def test_spin_features_refuse_bad_sigmas_and_rings(params, message):
    with pytest.raises(ValueError, match=message):
        SpinFeatures((32, 32), **params)


@pytest.mark.parametrize("cls", [GalaxyCNN, GalaxyResNet])
def test_networks_read_spin_features_when_asked(cls):
    plain = cls((3, 16, 16), 6, depth=2, constraint=None)
    spun = cls((3, 16, 16), 6, depth=2, constraint=None, spin_features=True)
    assert plain.spin is None and isinstance(spun.spin[0], SpinFeatures)
    out = spun.eval()(torch.rand(4, 3, 16, 16))
    assert out.shape == (4, 6) and torch.isfinite(out).all()


def test_image_classifier_uses_spin_features_by_default():
    rng = np.random.default_rng(0)
    X = rng.random((24, 3, 16, 16)).astype(np.float32)
    y = np.repeat([0, 1, 2], 8)
    settings = dict(
        max_epochs=1, width=4, depth=2, mirror="off", device="cpu", random_state=0
    )
    on = ImageClassifier(**settings).fit(X, y)
    off = ImageClassifier(spin_features=False, **settings).fit(X, y)
    assert on.net_.module_.spin is not None and off.net_.module_.spin is None


def test_class_weights_become_logit_offsets():
    classes = np.array([0, 1, 2])
    codes = np.array([0] * 6 + [1] * 3 + [2])
    offset, weights = class_weight_terms(classes, "balanced", codes)
    assert float(weights[codes].mean()) == pytest.approx(1.0)
    # -log of the balanced weights: log of the class frequencies, up to a constant
    expected = np.log([6, 3, 1]) - np.log([6, 3, 1])[0]
    np.testing.assert_allclose(offset - offset[0], expected, rtol=1e-6)
    binary, _ = class_weight_terms(
        np.array(["a", "b"]), {"a": 1.0, "b": 4.0}, codes % 2
    )
    np.testing.assert_allclose(binary, [np.log(1 / 4)], rtol=1e-6)
    assert class_weight_terms(classes, None, codes) == (None, None)
    # As scikit-learn: a dict naming other classes than these is refused.
    with pytest.raises(ValueError, match="are not in class_weight"):
        class_weight_terms(classes, {7: 1.0}, codes)


def test_balanced_class_weight_finds_a_rare_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)).astype(np.float32)
    y = (X[:, 0] > 1.6).astype(int)  # about 5 % positives
    settings = dict(max_epochs=30, device="cpu", random_state=0)
    plain = NetClassifier(**settings).fit(X, y)
    balanced = NetClassifier(class_weight="balanced", **settings).fit(X, y)
    recall = {
        name: (clf.predict(X)[y == 1] == 1).mean()
        for name, clf in [("plain", plain), ("balanced", balanced)]
    }
    assert recall["balanced"] > 0.9 and recall["balanced"] >= recall["plain"]
    # predict_proba is proportional to the weighted posterior
    assert balanced.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()


def test_training_loss_adjusts_logits_and_validation_loss_weighs_classes():
    from skestimators._engine._heads import HeadGroup

    codes = np.array([0, 0, 0, 1, 2])
    offset, weights = class_weight_terms(np.arange(3), "balanced", codes)
    group = HeadGroup(
        ["y"], "multiclass", None, None, None, None, torch.ones(1),
        class_weight=weights, logit_offset=offset,
    )  # fmt: skip
    logits, target = torch.zeros(5, 3), torch.from_numpy(codes)
    train = group.elementwise(logits, target, training=True)[:, 0]
    valid = group.elementwise(logits, target, training=False)[:, 0]
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(train, ce(logits + offset, target, reduction="none"))
    assert torch.allclose(valid, weights[target] * np.log(3))
