"""Galaxy networks, the Galaxy Zoo constraint layer and image augmentation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skestimators.galaxy_zoo import (
    GALAXY_ZOO_ANSWERS,
    GALAXY_ZOO_COLUMNS,
    GALAXY_ZOO_QUESTIONS,
    project_galaxy_zoo,
)
from skestimators.nn import (
    GalaxyCNN,
    GalaxyResNet,
    GalaxyZooConstraint,
    dihedral_transform,
    dihedral_views,
    random_affine,
    random_dihedral,
)


def tree_violation(y: torch.Tensor) -> float:
    y = y.detach()
    worst = 0.0
    for q in GALAXY_ZOO_QUESTIONS:
        parent = 1.0 if q.parent is None else y[:, q.parent]
        total = y[:, q.start : q.stop].sum(1)
        worst = max(worst, float((total - parent).abs().max()))
    return worst


def test_tree_definition():
    assert len(GALAXY_ZOO_COLUMNS) == 37 == len(GALAXY_ZOO_ANSWERS)
    assert GALAXY_ZOO_COLUMNS[:4] == ("Class1.1", "Class1.2", "Class1.3", "Class2.1")
    assert GALAXY_ZOO_COLUMNS[-1] == "Class11.6"
    parents = {
        q.name: None if q.parent is None else GALAXY_ZOO_COLUMNS[q.parent]
        for q in GALAXY_ZOO_QUESTIONS
    }
    assert parents == {
        "Q1": None, "Q2": "Class1.2", "Q3": "Class2.2", "Q4": "Class2.2",
        "Q5": "Class2.2", "Q6": None, "Q7": "Class1.1", "Q8": "Class6.1",
        "Q9": "Class2.1", "Q10": "Class4.1", "Q11": "Class4.1",
    }  # fmt: skip
    for i, q in enumerate(GALAXY_ZOO_QUESTIONS):  # parents come first
        assert q.parent is None or q.parent < q.start
        assert all(c.startswith(f"Class{i + 1}.") for c in q.columns)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, (4, 37), elements=st.floats(-30, 30, width=32)),
    st.sampled_from(["divisive", "softmax"]),
)
def test_constraint_obeys_tree(raw, mode):
    out = GalaxyZooConstraint(mode)(torch.from_numpy(raw))
    assert out.shape == (4, 37) and bool((out >= 0).all())
    assert tree_violation(out) < 1e-5


def test_constraint_modes_and_gradients():
    x = torch.randn(8, 37)
    assert torch.equal(GalaxyZooConstraint("none")(x), x)
    x[:, 3:5] = -1.0  # a question whose raw outputs are all negative
    x.requires_grad_(True)
    out = GalaxyZooConstraint("divisive")(x)
    torch.testing.assert_close(out[:, 3], out[:, 1] / 2)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # same projection as the NumPy post-processing, for positive outputs
    positive = torch.rand(8, 37) + 0.1
    expected = project_galaxy_zoo(positive.numpy())
    out = GalaxyZooConstraint("divisive")(positive).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="37 outputs"):
        GalaxyZooConstraint()(torch.zeros(2, 36))
    with pytest.raises(ValueError, match="mode must be one of"):
        GalaxyZooConstraint("sigmoid")


@pytest.mark.parametrize("mode", ["divisive", "softmax"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_constraint_is_finite_in_half_precision(mode, dtype):
    # In half precision a group's sum of large outputs overflowed to inf
    # (the divisive group became all zeros, breaking the tree) and an inf
    # output, what a float16 layer gives past 65504, became NaN.
    gen = torch.Generator().manual_seed(0)
    large = torch.randn(6, 37, generator=gen) * 3e4
    large[0] = torch.finfo(dtype).max  # every group overflows its sum
    large[1, ::3] = float("inf")
    large[2, ::2] = -float("inf")
    large[3, 1:3] = float("inf")  # two answers of Q1 tie at infinity
    out = GalaxyZooConstraint(mode)(large.to(dtype))
    assert out.dtype == dtype
    assert bool(torch.isfinite(out).all()) and bool((out >= 0).all())
    assert tree_violation(out.float()) < 2e-2
    torch.testing.assert_close(out[3, 1:3].float(), torch.full((2,), 0.5))


def test_constraint_is_finite_under_autocast():
    gen = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(4, 37)
    with torch.no_grad():  # outputs of -4e38 to 4e38: some overflow bfloat16
        layer.weight.copy_(torch.randn(37, 4, generator=gen).sign())
    x = torch.full((8, 4), 1e38)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        for mode in ("divisive", "softmax"):
            raw = layer(x)
            assert not bool(torch.isfinite(raw).all())  # overflowed to inf
            out = GalaxyZooConstraint(mode)(raw)
            assert bool(torch.isfinite(out).all())
            assert tree_violation(out.float()) < 2e-2


@pytest.mark.parametrize("network", [GalaxyCNN, GalaxyResNet])
def test_networks(network):
    small = {"width": 4, "depth": 4 if network is GalaxyCNN else 2}
    x = torch.rand(3, 3, 32, 32)
    net = network(input_shape=(3, 32, 32), **small).eval()
    out = net(x)
    assert out.shape == (3, 37) and tree_violation(out) < 1e-5
    assert net.constraint.mode == "divisive"
    soft = network(input_shape=(3, 32, 32), constraint="softmax", **small).eval()
    assert tree_violation(soft(x)) < 1e-5
    raw = network(input_shape=(3, 32, 32), constraint=None, **small).eval()
    assert isinstance(raw.constraint, torch.nn.Identity)
    classifier = network(input_shape=(1, 32, 32), n_outputs=6, **small).eval()
    assert classifier(torch.rand(2, 1, 32, 32)).shape == (2, 6)
    assert isinstance(classifier.constraint, torch.nn.Identity)
    with pytest.raises(ValueError, match="constraint=None"):
        network(input_shape=(3, 32, 32), n_outputs=6, constraint="divisive")
    with pytest.raises(ValueError, match="constraint must be"):
        network(input_shape=(3, 32, 32), constraint="relu")
    with pytest.raises(ValueError, match="too small"):
        network(input_shape=(3, 3, 3), **small)
    with pytest.raises(ValueError, match="input_shape must be"):
        network(input_shape=(32, 32), **small)
    with pytest.raises(ValueError, match="expects images"):
        net(torch.rand(3, 1, 32, 32))


def test_default_networks_on_kaggle_sized_images():
    x = torch.rand(2, 3, 69, 69)
    for network in (GalaxyCNN(), GalaxyResNet(blocks=1)):
        assert network.eval()(x).shape == (2, 37)


def test_cnn_pools_globally_with_or_without_a_dense_layer():
    x = torch.rand(2, 3, 40, 40)
    pooled = GalaxyCNN(input_shape=(3, 40, 40), n_outputs=6, width=4, head_width=None)
    linear = [m for m in pooled.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(32, 6)]
    dense = GalaxyCNN(input_shape=(3, 40, 40), n_outputs=6, width=4, head_width=8)
    linear = [m for m in dense.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(32, 8), (8, 6)]
    # global pooling: the weights do not depend on the image size
    other = GalaxyCNN(input_shape=(3, 64, 64), n_outputs=6, width=4, head_width=8)
    assert sum(p.numel() for p in other.parameters()) == sum(
        p.numel() for p in dense.parameters()
    )
    assert pooled.eval()(x).shape == (2, 6)
    # the input standardisation is the identity until set, then (x - mean) / std
    net = GalaxyCNN(input_shape=(3, 40, 40), n_outputs=6, width=4).eval()
    before = net(x)
    net.standardize.set([0.5, 0.5, 0.5], [2.0, 2.0, 2.0])
    torch.testing.assert_close(net.standardize(x), (x - 0.5) / 2)
    assert not torch.allclose(net(x), before)
    with pytest.raises(ValueError, match="finite"):
        net.standardize.set([np.nan, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="head_width must be None or >= 1"):
        GalaxyCNN(head_width=0)


def test_cnn_learns_a_batch():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32)
    target = GalaxyZooConstraint("softmax")(torch.randn(16, 37))
    net = GalaxyCNN(input_shape=(3, 32, 32), width=4, depth=4, head_width=32, dropout=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --- augmentation --------------------------------------------------------------


def test_dihedral_group():
    x = torch.rand(2, 3, 6, 6)
    views = dihedral_views(x)
    assert len(views) == 8 and torch.equal(views[0][0], x)
    assert [mirrored for _, mirrored in views] == [False, True] * 4
    flat = {tuple(view.flatten().tolist()) for view, _ in views}
    assert len(flat) == 8  # eight distinct transforms
    torch.testing.assert_close(views[1][0], torch.flip(x, dims=(-1,)))
    torch.testing.assert_close(views[2][0], torch.rot90(x, 2, dims=(-2, -1)))
    for view, _ in views:  # the same 8 images, whatever the starting view
        again = {tuple(v.flatten().tolist()) for v, _ in dihedral_views(view)}
        assert again == flat
    assert dihedral_views(x, 1)[0][0] is not x


def test_dihedral_non_square_and_errors():
    x = torch.rand(2, 1, 4, 6)
    assert all(v.shape == x.shape for v, _ in dihedral_views(x, 4))
    with pytest.raises(ValueError, match="needs square images"):
        dihedral_views(x, 5)
    with pytest.raises(ValueError, match="n_views must be between 1 and 8"):
        dihedral_views(x, 9)
    with pytest.raises(ValueError, match="k must be an integer"):
        dihedral_transform(x, 8)
    with pytest.raises(ValueError, match="Expected a tensor of images"):
        dihedral_views(torch.rand(4, 4))
    out, mirrored = random_dihedral(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and mirrored.shape == (2,)


def test_random_dihedral_flags_mirrors():
    x = torch.rand(64, 2, 5, 5)
    out, mirrored = random_dihedral(x, generator=torch.Generator().manual_seed(1))
    assert 0 < int(mirrored.sum()) < 64
    views = dihedral_views(x)
    for i in range(len(x)):
        matches = [m for v, m in views if torch.equal(v[i], out[i])]
        assert matches == [bool(mirrored[i])]
    again, _ = random_dihedral(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_random_affine():
    x = torch.zeros(4, 1, 21, 21)
    x[:, :, 10, 10] = 1.0
    same = random_affine(x, max_shift=0, zoom=(1, 1))
    torch.testing.assert_close(same, x)
    g = torch.Generator().manual_seed(0)
    moved = random_affine(x, max_shift=0.2, padding_mode="zeros", generator=g)
    assert moved.shape == x.shape
    rows = (moved.sum(dim=(1, 3)) * torch.arange(21.0)).sum(1) / moved.sum(
        dim=(1, 2, 3)
    )
    assert (rows - 10).abs().max() > 0.5  # the point moved
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = random_affine(x, max_rotation=180, generator=g1)
    torch.testing.assert_close(a, random_affine(x, max_rotation=180, generator=g2))
    assert random_affine(x.to(torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="zoom must be a range"):
        random_affine(x, zoom=(1.2, 0.8))
    with pytest.raises(ValueError, match="non-negative"):
        random_affine(x, max_shift=-0.1)


def test_random_affine_rotates_non_square_images_without_shearing():
    # affine_grid's -1..1 coordinates differ in pixels along the two axes of
    # a non-square image: an unscaled rotation there sheared a disc into an
    # ellipse (16 px wide -> 46 px).
    height, width = 32, 96
    rows = torch.arange(height) - (height - 1) / 2
    cols = torch.arange(width) - (width - 1) / 2
    disc = ((rows[:, None] ** 2 + cols[None, :] ** 2) <= 64).float()[None, None]
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        out = random_affine(
            disc, max_shift=0, zoom=(1, 1), max_rotation=90, generator=g
        )
        inside = out[0, 0] > 0.5
        assert abs(int(inside.any(0).sum()) - 16) <= 1
        assert abs(int(inside.any(1).sum()) - 16) <= 1
