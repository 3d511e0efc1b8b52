"""Composite losses and the CNN-LSTM / pooled-CNN modules for soil organic carbon."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from skestimators.datasets import make_soc
from skestimators.nn import CNNLSTM, LOSS_NAMES, CompositeLoss, PooledCNN, get_loss


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny CPU models run faster on one thread, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


Y_PRED = torch.tensor([[1.0], [3.0], [-2.0], [0.5]])
Y_TRUE = torch.tensor([[0.0], [1.0], [1.0], [0.5]])
ERRORS = np.array([1.0, 2.0, -3.0, 0.0])


# -- losses -------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["l1", "l2"])
@pytest.mark.parametrize(("alpha", "sigma"), [(0.5, 3.0), (0.2, 1.5), (1.0, 2.0)])
def test_composite_loss_matches_hand_computation(base, alpha, sigma):
    plain = np.abs(ERRORS) if base == "l1" else ERRORS**2
    elementwise = alpha * plain + (1 - alpha) * (ERRORS / sigma) ** 2
    loss = CompositeLoss(base=base, alpha=alpha, sigma=sigma)
    assert float(loss(Y_PRED, Y_TRUE)) == pytest.approx(elementwise.mean())
    none = CompositeLoss(base=base, alpha=alpha, sigma=sigma, reduction="none")
    np.testing.assert_allclose(none(Y_PRED, Y_TRUE).numpy().ravel(), elementwise)
    total = CompositeLoss(base=base, alpha=alpha, sigma=sigma, reduction="sum")
    assert float(total(Y_PRED, Y_TRUE)) == pytest.approx(elementwise.sum())
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    assert float(loss(Y_PRED, Y_TRUE, weights)) == pytest.approx(
        np.average(elementwise, weights=weights.numpy())
    )
    np.testing.assert_allclose(
        none(Y_PRED, Y_TRUE, weights).numpy().ravel(), elementwise * weights.numpy()
    )


def test_composite_l2_is_a_rescaled_mse():
    loss = CompositeLoss(base="l2", alpha=0.5, sigma=3.0)
    mse = F.mse_loss(Y_PRED, Y_TRUE)
    assert float(loss(Y_PRED, Y_TRUE)) == pytest.approx(float(mse) * (0.5 + 0.5 / 9))


def test_get_loss_names():
    assert set(LOSS_NAMES) >= {"mse", "l1", "composite_l1", "composite_l2"}
    mse = get_loss("mse", loss_alpha=0.3, sigma=0.1)  # alpha/sigma are ignored
    get_loss("mse", loss_alpha=1.5, sigma=-1.0)  # so not checked ("must be positive")
    assert float(mse(Y_PRED, Y_TRUE)) == pytest.approx(
        float(F.mse_loss(Y_PRED, Y_TRUE))
    )
    l1 = get_loss("l1")
    assert float(l1(Y_PRED, Y_TRUE)) == pytest.approx(float(F.l1_loss(Y_PRED, Y_TRUE)))
    composite = get_loss("composite_l1", 0.25, 2.0, reduction="none")
    assert (composite.base, composite.alpha, composite.sigma) == ("l1", 0.25, 2.0)
    assert composite(Y_PRED, Y_TRUE).shape == Y_PRED.shape
    with pytest.raises(ValueError, match="Unknown loss"):
        get_loss("huberish")


def test_loss_shapes_and_validation():
    loss = CompositeLoss()
    # (n,) targets against (n, 1) predictions are reshaped, not broadcast.
    assert float(loss(Y_PRED, Y_TRUE.ravel())) == pytest.approx(
        float(loss(Y_PRED, Y_TRUE))
    )
    with pytest.raises(ValueError, match="shape"):
        loss(Y_PRED, torch.zeros(3))
    with pytest.raises(ValueError, match="sample_weight"):
        loss(Y_PRED, Y_TRUE, torch.ones(3))
    for kwargs, match in [
        ({"base": "l3"}, "base"),
        ({"alpha": 1.5}, "alpha"),
        ({"sigma": 0.0}, "sigma"),
        ({"reduction": "max"}, "reduction"),
    ]:
        with pytest.raises(ValueError, match=match):
            CompositeLoss(**kwargs)


@pytest.mark.parametrize("name", ["mse", "l1", "huber", "composite_l1"])
def test_elementwise_losses_align_targets_alike_and_refuse_transposes(name):
    # The plain losses broadcast (n,) against (n, 1) into an (n, n) loss, the
    # composite ones reshaped it; a transposed target was silently scrambled.
    from skestimators.nn import elementwise_loss

    loss = elementwise_loss(name)
    pred, target = torch.randn(6, 1), torch.randn(6, 1)
    torch.testing.assert_close(loss(pred, target.ravel()), loss(pred, target))
    pred2 = torch.randn(6, 2)
    with pytest.raises(ValueError, match="shape"):
        loss(pred2, torch.randn(2, 6))


def test_weighted_mean_loss_refuses_weights_summing_to_zero():
    with pytest.raises(ValueError, match="sums to 0"):
        CompositeLoss()(Y_PRED, Y_TRUE, torch.zeros(len(Y_PRED)))


def test_loss_backward():
    pred = Y_PRED.clone().requires_grad_(True)
    get_loss("composite_l1")(pred, Y_TRUE).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


# -- modules ------------------------------------------------------------------------
@pytest.mark.parametrize("window", [1, 3, 5, 9])
@pytest.mark.parametrize(
    "module",
    [
        lambda shape: CNNLSTM(shape, 2, width=4, depth=2, head_width=6),
        lambda shape: CNNLSTM(
            shape, 2, width=4, depth=1, lstm_layers=2, bidirectional=True
        ),
        lambda shape: PooledCNN(shape, 2, width=4, depth=2, head_width=6),
        lambda shape: PooledCNN(shape, 2, width=4, depth=2, pooling="concat"),
    ],
)
def test_forward_shape_and_backward(module, window):
    torch.manual_seed(0)
    net = module((3, window, window, 4))
    x = torch.randn(5, 3, window, window, 4)
    out = net(x)
    assert out.shape == (5, 2)
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_year_order_matters_to_lstm_not_to_mean_pooling():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, 6)
    reversed_years = x.flip(-1)
    lstm = CNNLSTM((3, 5, 5, 6), width=4, depth=2, head_width=8).eval()
    pooled = PooledCNN((3, 5, 5, 6), width=4, depth=2).eval()
    with torch.no_grad():
        assert not torch.allclose(lstm(x), lstm(reversed_years))
        torch.testing.assert_close(pooled(x), pooled(reversed_years))


def test_module_input_validation():
    net = CNNLSTM((3, 5, 5, 4))
    with pytest.raises(ValueError, match="bands, height, width"):
        net(torch.zeros(2, 4, 5, 5, 4))
    with pytest.raises(ValueError, match="input_shape"):
        CNNLSTM((3, 5, 5))
    with pytest.raises(ValueError, match="pooling"):
        PooledCNN((3, 5, 5, 4), pooling="max")
    with pytest.raises(ValueError, match="years"):
        PooledCNN((3, 5, 5, 4), pooling="concat")(torch.zeros(2, 3, 5, 5, 3))


def test_cnn_lstm_learns_on_the_simulator():
    X, y, _ = make_soc(128, n_years=4, random_state=0)
    x = torch.from_numpy(X)
    target = torch.from_numpy((np.log(y) - np.log(y).mean()) / np.log(y).std())
    target = target.float()[:, None]
    torch.manual_seed(0)
    net = CNNLSTM(X.shape[1:], width=8, depth=2, head_width=16, dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = get_loss("composite_l2", 0.5, 3.0)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = loss_fn(net(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_one_loss_registry_behind_every_regressor():
    # Every regressor's loss parameter accepts exactly the registry's names,
    # and documents every canonical one.
    from skestimators import GalaxyZooRegressor, NetRegressor, SpatioTemporalRegressor
    from skestimators.nn._loss_registry import LOSSES

    for estimator in (NetRegressor, SpatioTemporalRegressor, GalaxyZooRegressor):
        options = estimator._parameter_constraints["loss"][0].options
        assert options == set(LOSS_NAMES), estimator.__name__
        documented = estimator.__doc__.split("loss :")[1].split("\n")[0]
        assert all(f'"{name}"' in documented for name in LOSSES), estimator.__name__
