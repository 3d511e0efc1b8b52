"""Training that goes wrong stops at the bad batch and says so; nothing is lost."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skestimators import NetClassifier, NetRegressor
from skestimators._engine import Callback
from skestimators._engine._heads import head_metrics, multilabel_groups
from skestimators.exceptions import TrainingDivergedError

from .conftest import FAST


class PoisonAt(Callback):
    """Set a weight to inf after batch ``batch`` of epoch ``epoch``: the next
    batch's loss is not finite."""

    def __init__(self, epoch, batch=2):
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, net, training=False, **kwargs):
        if not training or len(net.history) != self.epoch:
            return
        if len(net.history[-1]["batches"]) == self.batch:
            with torch.no_grad():
                next(net.module_.parameters()).fill_(float("inf"))


def _params(**overrides):
    return {**FAST, **overrides}


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(300, 6, noise=1.0, random_state=0)
    return X.astype(np.float32), y / 100


def test_huge_learning_rate_without_validation_raises_clearly(blobs):
    X, y = blobs
    clf = NetClassifier(**_params(lr=1e6, optimizer="sgd", validation_fraction=None))
    with pytest.raises(TrainingDivergedError) as info:
        clf.fit(X, y)
    message = str(info.value)
    assert f"epoch {info.value.epoch}, batch {info.value.batch}" in message
    assert "lr=1e+06" in message and "gradient_clip=1.0" in message
    assert "left unfitted" in message
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_divergence_with_validation_restores_best_weights(regression):
    X, y = regression
    reg = NetRegressor(**_params(max_epochs=10, callbacks=[PoisonAt(4)]))
    with pytest.warns(ConvergenceWarning, match="at epoch 4, batch 3") as record:
        reg.fit(X, y)
    assert "were restored" in str(record[0].message)
    assert record[0].filename == __file__  # points at the user's fit
    assert reg.n_iter_ == 3  # the diverged epoch is not in the history
    assert np.isfinite(reg.history_.to_numpy()).all()
    pred = reg.predict(X)
    assert np.isfinite(pred).all()
    reference = NetRegressor(**_params(max_epochs=3)).fit(X, y)
    np.testing.assert_allclose(pred, reference.predict(X), rtol=1e-5, atol=1e-6)


def test_divergence_in_partial_fit_keeps_the_previous_state(regression):
    X, y = regression
    reg = NetRegressor(**_params(max_epochs=3, validation_fraction=None)).fit(X, y)
    before = reg.predict(X)
    # partial_fit reuses the fitted net and its callbacks: poison via the net.
    reg.net_.callbacks_.append(("poison", PoisonAt(4, batch=1)))
    with pytest.raises(TrainingDivergedError, match="keeps its state"):
        reg.partial_fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)
    assert reg.n_iter_ == 3 and len(reg.net_.history) == 3


@pytest.mark.parametrize("schedule", ["step", "onecycle"])
def test_divergence_in_a_continuing_fit_rewinds_the_schedule(regression, schedule):
    # The schedule continues across calls: after a rolled-back call it goes
    # on from where the estimator was, not from the epochs that diverged.
    X, y = regression
    params = _params(
        max_epochs=3,
        validation_fraction=None,
        warm_start=True,
        lr_scheduler=schedule,
        lr_scheduler_params=(
            {"step_size": 2} if schedule == "step" else {"total_steps": 1000}
        ),
    )
    reg = NetRegressor(**params).fit(X, y)
    reference = NetRegressor(**params).fit(X, y)
    reg.net_.callbacks_.append(("poison", PoisonAt(5, batch=2)))
    with pytest.raises(TrainingDivergedError, match="keeps its state"):
        reg.fit(X, y)  # epoch 4 completes (and steps the schedule), 5 diverges
    reg.net_.callbacks_.pop()
    assert reg.n_iter_ == 3
    reg.set_params(max_epochs=2).fit(X, y)
    reference.set_params(max_epochs=2).fit(X, y)
    rates = [r.net_.optimizer_.param_groups[0]["lr"] for r in (reg, reference)]
    assert rates[0] == pytest.approx(rates[1], rel=1e-12)
    np.testing.assert_allclose(reg.predict(X), reference.predict(X), rtol=1e-5)


def test_validation_metrics_of_nan_outputs_are_nan_not_errors():
    groups = multilabel_groups(["water", "cloud"], weights=[1.0, 1.0])
    y_pred = torch.tensor([[np.nan, 0.1], [0.2, -0.3], [0.5, 0.1]])
    y_true = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    scores = head_metrics(groups, y_pred, y_true)
    assert np.isnan(scores["valid_water_roc_auc"])
    assert np.isnan(scores["valid_water_accuracy"])
    assert scores["valid_cloud_roc_auc"] == 1.0


def test_nan_validation_loss_counts_as_no_improvement(regression):
    X, y = regression

    class PoisonValidation(Callback):
        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            if not training and len(net.history) >= 2:
                batch[0].fill_(float("nan"))  # this epoch's validation inputs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = NetRegressor(
            **_params(max_epochs=30, patience=3, callbacks=[PoisonValidation()])
        ).fit(X, y)
    assert np.isnan(reg.history_["valid_loss"].iloc[1:]).all()
    assert reg.n_iter_ == 4  # epoch 1 is best; three NaN epochs end training
    assert reg.best_epoch_ == 1
    assert np.isfinite(reg.predict(X)).all()


def test_losses_checked_in_groups_name_the_first_non_finite_batch():
    # On a GPU the losses are read every few batches; the error still names
    # the first batch whose loss was not finite.
    from skestimators._engine._skorch import NonFiniteLoss, _check_losses

    losses = [torch.tensor(1.0)] * 40 + [torch.tensor(float("nan"))] * 5
    assert _check_losses(losses[:32], 0, epoch=3) == 32
    with pytest.raises(NonFiniteLoss) as info:
        _check_losses(losses, 32, epoch=3)
    assert (info.value.epoch, info.value.batch) == (3, 41)
    assert np.isnan(info.value.value)


def test_divergence_in_the_first_epoch_with_the_defaults(regression):
    # No epoch done: early stopping's on_train_end read the empty history and
    # a raw skorch IndexError replaced TrainingDivergedError.
    X, y = regression
    reg = NetRegressor(**_params(callbacks=[PoisonAt(1)]))
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 3.*left unfitted"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)
    # Early stopping already on: the advice to turn it on did not fit.
    reg = NetRegressor(**_params(callbacks=[PoisonAt(1)], early_stopping=True))
    with pytest.raises(TrainingDivergedError, match="in the first epoch, before") as e:
        reg.fit(X, y)
    assert "early_stopping=True to fall back" not in str(e.value)


class _Spiky(torch.nn.Module):
    """A linear model whose output overflows on demand (one bad batch)."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(input_shape[0], n_outputs)
        self.spike = False

    def forward(self, x):
        out = self.linear(x)
        return out * float("inf") if self.spike else out


class SpikeOnce(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_begin(self, net, training=False, **kwargs):
        net.module_.spike = training and len(net.history) == self.epoch
        if net.module_.spike:
            self.epoch = None  # once


def test_restored_best_epoch_trains_on(regression):
    # The optimizer stepped on the diverged batch: Adam's moments were NaN
    # after the best weights were restored, so training could not continue.
    X, y = regression
    reg = NetRegressor(_Spiky, **_params(max_epochs=6, callbacks=[SpikeOnce(3)]))
    with pytest.warns(ConvergenceWarning, match="fresh optimizer state"):
        reg.fit(X, y)
    state = reg.net_.optimizer_.state_dict()["state"]
    assert all(
        bool(torch.isfinite(v).all())
        for s in state.values()
        for v in s.values()
        if torch.is_tensor(v)
    )
    reg.partial_fit(X, y)  # raised TrainingDivergedError
    assert np.isfinite(reg.predict(X)).all()


class _SqrtAtZero(torch.nn.Module):
    """A finite loss whose gradient is infinite: sqrt'(0)."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(input_shape[0], n_outputs)
        self.offset = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.linear(x) + torch.sqrt(self.offset)


def test_non_finite_weights_after_the_last_step(regression):
    # The loss of every batch was finite, the last update was not: fit
    # returned NaN weights without a word.
    X, y = regression
    reg = NetRegressor(
        _SqrtAtZero,
        **_params(max_epochs=1, batch_size=len(X), validation_fraction=None),
    )
    with pytest.raises(TrainingDivergedError, match="weights became non-finite"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_values_beyond_float32_are_refused_in_fit(regression):
    # Finite in float64, infinite in the float32 tensors: it surfaced as a
    # diverged training (or a raw IndexError).
    X, y = regression
    X = X.astype(np.float64)
    X[5, 2] = 1e39
    with pytest.raises(ValueError, match="too large for float32.*row 5"):
        NetRegressor(**FAST).fit(X, y)


@pytest.mark.parametrize("Estimator", [NetRegressor, NetClassifier])
def test_training_that_blows_up_but_stays_finite_warns(regression, blobs, Estimator):
    # Adam with lr=1e3 throws the weights far away without overflowing: the
    # fit ended silently with a loss 1e11 times the untrained network's.
    X, y = regression if Estimator is NetRegressor else blobs
    est = Estimator(**_params(lr=1e3))
    with pytest.warns(ConvergenceWarning, match="diverged without overflowing") as w:
        est.fit(X, y)
    message = str(w[0].message)
    assert "times the untrained network's" in message and "lr=1000" in message


def test_training_that_converges_does_not_warn_of_a_blow_up(regression):
    X, y = regression
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = NetRegressor(**_params()).fit(X, y)
    # What the check reads is kept beside the history, not in one row of it
    # (skorch's PrintLog table shifted its columns after that row).
    assert reg.net_.first_batch_loss_ > 0
    assert all("first_batch" not in key for row in reg.net_.history for key in row)


def test_uneven_sample_weights_are_not_taken_for_a_blow_up():
    # Two samples carrying 99 % of the weight: a first batch of light samples
    # had a loss 100 times smaller than the epoch's, and the fit "diverged".
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = rng.integers(0, 10, 200)
    w = np.full(200, 0.01)
    w[rng.choice(200, 2, replace=False)] = 100.0
    for seed in range(3):
        clf = NetClassifier(
            max_epochs=2, batch_size=32, lr=1e-3, device="cpu", random_state=seed,
            early_stopping=False, validation_fraction=None,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            clf.fit(X, y, sample_weight=w)


def test_a_continued_fit_that_blows_up_warns(regression):
    X, y = regression
    reg = NetRegressor(**_params(max_epochs=2)).fit(X, y)
    reg.set_params(lr=1e3)
    with pytest.warns(ConvergenceWarning, match="diverged without overflowing"):
        for _ in range(3):
            reg.partial_fit(X, y)
