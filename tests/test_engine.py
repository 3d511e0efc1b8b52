"""Behaviour of the training engine behind NetClassifier / NetRegressor."""

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from joblib import Parallel, delayed
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_regression
from sklearn.model_selection import GroupKFold, PredefinedSplit
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback
from torch import nn

from skestimators import MultiInput, NetClassifier, NetRegressor, load, save
from skestimators._engine._config import validation_indices
from skestimators._engine._device import resolve_device

from .conftest import FAST


class TwoHeads(nn.Module):
    """Two named inputs, one named output per target."""

    def __init__(self, input_shape, n_outputs, width=16):
        super().__init__()
        n_spec = int(np.prod(input_shape["spectra"]))
        self.spec = nn.Sequential(nn.Flatten(), nn.Linear(n_spec, width), nn.ReLU())
        self.aux = nn.Sequential(nn.Linear(input_shape["aux"][0], width), nn.ReLU())
        self.water = nn.Linear(2 * width, 1)
        self.cloud = nn.Linear(2 * width, 1)

    def forward(self, spectra, aux):
        h = torch.cat([self.spec(spectra), self.aux(aux)], 1)
        return {"water": self.water(h), "cloud": self.cloud(h)}


class ThreadProbe(nn.Module):
    seen = []

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.lin = nn.Linear(input_shape[0], n_outputs)

    def forward(self, X):
        ThreadProbe.seen.append(torch.get_num_threads())
        return self.lin(X)


def test_binary_multiclass_multilabel_shapes(blobs):
    X, y = blobs
    labels = np.array(["a", "b", "c"])[y]
    clf = NetClassifier(**FAST).fit(X, labels)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert clf.predict_proba(X).shape == (300, 3)
    assert clf.score(X, labels) > 0.8
    binary = NetClassifier(**FAST).fit(X, y == 1)
    assert binary.predict(X).dtype == bool and binary.predict_proba(X).shape == (300, 2)
    Y = np.column_stack([y == 0, y == 2]).astype(int)
    multi = NetClassifier(**FAST).fit(X, Y)
    assert multi.predict(X).shape == (300, 2)
    assert [c.tolist() for c in multi.classes_] == [[0, 1], [0, 1]]
    assert set(np.unique(multi.predict(X))) <= {0, 1}


def test_named_inputs_and_named_heads(two_inputs):
    spectra, aux, Y = two_inputs
    X = MultiInput(spectra=spectra, aux=aux)
    y = pd.DataFrame(Y, columns=["water", "cloud"])
    clf = NetClassifier(
        TwoHeads,
        max_epochs=8,
        lr=0.01,
        device="cpu",
        random_state=0,
        target_weights={"water": 2.0},
    )
    clf.fit(X, y)
    assert clf.input_shape_ == {"spectra": (12, 3), "aux": (4,)}
    assert clf.predict_proba(X).shape == (240, 2)
    for col in ("valid_water_accuracy", "valid_cloud_roc_auc", "valid_loss"):
        assert col in clf.history_
    assert (clf.predict(X) == Y).mean() > 0.75


def test_default_mlp_on_named_inputs(two_inputs):
    spectra, aux, Y = two_inputs
    clf = NetClassifier(**FAST).fit(MultiInput(spectra=spectra, aux=aux), Y[:, 1])
    assert clf.score(MultiInput(aux=aux, spectra=spectra), Y[:, 1]) > 0.8


def test_module_output_mismatch_is_clear(two_inputs):
    spectra, aux, Y = two_inputs
    with pytest.raises(ValueError, match="forward returned outputs"):
        NetClassifier(TwoHeads, **FAST).fit(
            MultiInput(spectra=spectra, aux=aux), Y[:, 0]
        )
    with pytest.raises(ValueError, match="failed on a batch"):
        NetRegressor(nn.Linear(3, 1), **FAST).fit(np.zeros((20, 5)), np.zeros(20))


def test_groups_reach_internal_split_not_forward(blobs):
    X, y = blobs
    groups = np.repeat(np.arange(30), 10)
    clf = NetClassifier(ThreadProbe, **FAST).fit(X, y, groups=groups)
    assert clf.n_iter_ == FAST["max_epochs"]
    est = NetClassifier(validation_fraction=0.2)
    train, valid = validation_indices(est, 300, y, groups, seed=0)
    assert not set(groups[train]) & set(groups[valid])
    est = NetClassifier(validation_cv=GroupKFold(5))
    train, valid = validation_indices(est, 300, y, groups, seed=0)
    assert len(valid) == 60 and not set(groups[train]) & set(groups[valid])


@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_groups_of_another_length_are_refused(blobs, validation_fraction):
    # Without an internal split the misaligned groups were silently ignored.
    X, y = blobs
    clf = NetClassifier(**{**FAST, "validation_fraction": validation_fraction})
    with pytest.raises(ValueError, match="groups has 10 row.* X has 300 samples"):
        clf.fit(X, y, groups=np.arange(10))
    with pytest.raises(ValueError, match="groups has 1 row"):
        clf.fit(X, y, groups=np.array(3))


class _NoWeights(nn.Module):
    def forward(self, x):
        return x[:, :1] * 0


def test_a_module_without_parameters_is_refused_by_name():
    # torch's "optimizer got an empty parameter list" named no module.
    X = np.random.RandomState(0).normal(size=(40, 4))
    with pytest.raises(ValueError, match="_NoWeights has no parameters to train"):
        NetRegressor(_NoWeights(), **FAST).fit(X, X[:, 0])


@pytest.mark.parametrize(
    "params", [{"width": 0}, {"depth": -1}, {"dropout": 1.0}, {"dropout": -0.1}]
)
def test_mlp_refuses_degenerate_sizes(params):
    # width=0 trained a constant, depth=-1 a linear model, without a word.
    from skestimators.nn import MLP

    with pytest.raises(ValueError, match="width must be at least 1|dropout must be"):
        MLP((4,), 1, **params)


def test_batch_norm_on_batches_of_one_names_batch_size():
    # torch's "Expected more than 1 value per channel when training".
    X = np.random.RandomState(0).normal(size=(20, 3))
    reg = NetRegressor(module_params={"batch_norm": True}, **{**FAST, "batch_size": 1})
    with pytest.raises(ValueError, match=r"batch_size=1\): use batch_size >= 2"):
        reg.fit(X, X[:, 0])
    assert not hasattr(reg, "net_")


def test_early_stopping_restores_best_weights(blobs):
    X, y = blobs
    fold = np.where(np.arange(300) < 60, 0, -1)
    clf = NetClassifier(
        max_epochs=60,
        lr=0.05,
        patience=3,
        device="cpu",
        random_state=0,
        validation_cv=PredefinedSplit(fold),
    ).fit(X, y)
    assert clf.n_iter_ < 60
    proba = clf.predict_proba(X[:60])
    loss = -np.log(proba[np.arange(60), y[:60]]).mean()
    assert loss == pytest.approx(clf.history_["valid_loss"].min(), rel=1e-4)
    assert clf.best_epoch_ == clf.history_["valid_loss"].idxmin()


def test_best_epoch_is_the_epoch_whose_weights_are_kept():
    # With a tol that an improvement can miss, early stopping keeps an earlier
    # epoch than the lowest validation loss; best_epoch_ named the latter.
    X, y = make_regression(200, 6, noise=5, random_state=0)
    reg = NetRegressor(
        max_epochs=12, batch_size=32, device="cpu", random_state=0, tol=0.3,
        patience=3,
    ).fit(X, y / 100)  # fmt: skip
    kept = dict(reg.net_.callbacks_)["early_stopping"].best_epoch_
    assert kept != reg.history_["valid_loss"].idxmin()
    assert reg.best_epoch_ == kept
    # Refitted, or continued, without a validation split, it kept the best
    # epoch of the fit before, though the weights are the last epoch's.
    for warm_start in (True, False):
        reg.set_params(validation_fraction=0.1, early_stopping=True).fit(X, y / 100)
        reg.set_params(
            validation_fraction=None, early_stopping=False, warm_start=warm_start
        )
        assert not hasattr(reg.fit(X, y / 100), "best_epoch_")


def test_scheduler_clipping_and_weights(blobs):
    X, y = blobs
    clf = NetClassifier(
        **{**FAST, "max_epochs": 4}, lr_scheduler="cosine", gradient_clip=0.5
    ).fit(X, y)
    lrs = clf.history_["event_lr"].to_numpy()
    assert lrs[0] > lrs[-1]
    w = np.where(y == 2, 20.0, 1.0)
    plain = NetClassifier(**FAST).fit(X, y)
    weighted = NetClassifier(**FAST).fit(X, y, sample_weight=w)
    assert (weighted.predict(X) == 2).sum() > (plain.predict(X) == 2).sum()
    balanced = NetClassifier(**FAST, class_weight="balanced").fit(
        X[:200], (y[:200] == 0)
    )
    assert balanced.predict(X).mean() > 0.1


def test_partial_fit_and_warm_start(blobs):
    X, y = blobs
    clf = NetClassifier(**FAST)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 2 and clf.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not seen"):
        clf.partial_fit(X, y + 5)
    warm = NetClassifier(**FAST, warm_start=True).fit(X, y)
    before = warm.predict_proba(X)
    warm.fit(X, y)
    assert not np.allclose(before, warm.predict_proba(X))


def test_balanced_class_weight_in_partial_fit_batches_missing_a_class(blobs):
    # compute_class_weight("balanced") refused a batch without one of the
    # classes with a raw "classes should have valid labels that are in y".
    from skestimators._engine._targets import class_weight_terms

    X, y = blobs
    clf = NetClassifier(**{**FAST, "max_epochs": 1}, class_weight="balanced")
    with pytest.warns(UserWarning, match=r"no samples of the classes \[2\]") as w:
        clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert w[0].filename == __file__
    clf.partial_fit(X[y != 0], y[y != 0])
    assert clf.n_iter_ == 2 and clf.predict_proba(X[:3]).shape == (3, 3)
    codes = np.array([0, 0, 0, 1])
    offset, weights = class_weight_terms(np.arange(3), "balanced", codes)
    np.testing.assert_allclose(weights, [2 / 3, 2, 1.5])  # mean 1 on the samples
    assert float(offset[2]) == 0.0  # weight 1: no adjustment
    # mirrored pairs count the mean of the pair (here classes 1 and 2)
    offset, _ = class_weight_terms(np.arange(3), "balanced", codes, swap=(0, 2, 1))
    np.testing.assert_allclose(offset.numpy(), np.log([3 * 3 / 4, 1.5 / 4, 1.5 / 4]))


def test_warm_start_reads_the_current_training_parameters(blobs):
    # A continuing fit kept the optimizer, batch size and clipping of the
    # first fit: set_params(lr=..., gradient_clip=...), the advice of a
    # TrainingDivergedError, was silently ignored.
    X, y = blobs
    warm = NetClassifier(**FAST, warm_start=True).fit(X, y)
    warm.set_params(lr=0.5, batch_size=50, gradient_clip=0.1, weight_decay=0.3)
    warm.fit(X, y)
    net = warm.net_
    assert [g["lr"] for g in net.optimizer_.param_groups] == [0.5]
    assert [g["weight_decay"] for g in net.optimizer_.param_groups] == [0.3]
    assert (net.batch_size, net.gradient_clip) == (50, 0.1)
    scheduled = NetClassifier(**FAST, warm_start=True, lr_scheduler="cosine")
    scheduled.fit(X, y).set_params(lr=0.5)
    with pytest.warns(UserWarning, match="schedule"):
        scheduled.fit(X, y)


def _summed():
    """32 samples of 3 normal features and their sum."""
    X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return X, X.sum(axis=1)


def test_partial_fit_continues_an_epoch_schedule_without_repeating_a_step():
    X, y = _summed()
    reg = NetRegressor(
        lr=1e-2,
        lr_scheduler="step",
        lr_scheduler_params={"step_size": 1, "gamma": 0.5},
        max_epochs=3,
        validation_fraction=None,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert reg.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-2 / 8)
    reg.partial_fit(X, y)
    reg.partial_fit(X, y)
    assert reg.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-2 / 32)


@pytest.mark.parametrize("schedule", ["step", "plateau"])
@pytest.mark.parametrize("copy_", ["pickle", "deepcopy"])
def test_a_schedule_continues_after_pickle_without_decaying_twice(schedule, copy_):
    # skorch pickles the optimizer apart from the callbacks: the unpickled
    # schedule drives a twin of it and is rebound, not replayed (a replay
    # would cut the already cut rate again).
    import copy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype("float32")
    y = X.sum(axis=1)
    params = {
        "step": {"step_size": 1, "gamma": 0.5},
        "plateau": {"patience": 0, "threshold": 0.5},
    }[schedule]
    reg = NetRegressor(
        lr=1e-2,
        lr_scheduler=schedule,
        lr_scheduler_params=params,
        max_epochs=3,
        validation_fraction=0.2 if schedule == "plateau" else None,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert reg.net_.optimizer_.param_groups[0]["lr"] < 1e-2
    twin = pickle.loads(pickle.dumps(reg)) if copy_ == "pickle" else copy.deepcopy(reg)
    for est in (reg, twin):
        est.partial_fit(X, y)
    lr = twin.net_.optimizer_.param_groups[0]["lr"]
    assert lr == pytest.approx(reg.net_.optimizer_.param_groups[0]["lr"])
    np.testing.assert_allclose(twin.predict(X), reg.predict(X), rtol=1e-6)


def test_one_cycle_resumes_at_its_batch_and_refuses_to_run_past_its_end():
    # skorch would resume a batch-stepped schedule at the epoch count, and
    # torch raises its own ValueError once the cycle is spent.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    params = dict(
        lr_scheduler="onecycle",
        lr_scheduler_params={"total_steps": 12},
        max_epochs=3,
        batch_size=16,
        validation_fraction=None,
        device="cpu",
        random_state=0,
    )
    expected = []  # the rate after each step of the same schedule in torch
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-2, total_steps=12
    )
    for _ in range(11):
        optimizer.step()
        schedule.step()
        expected.append(optimizer.param_groups[0]["lr"])
    clf = NetClassifier(**params).fit(X[:32], y[:32])  # 3 epochs of 2 batches

    def rate():
        return clf.net_.optimizer_.param_groups[0]["lr"]

    assert rate() == pytest.approx(expected[5])
    clf.partial_fit(X, y)  # 4 batches: steps 7 to 10
    assert rate() == pytest.approx(expected[9])
    clf.partial_fit(X, y)  # one step to the end, then the final rate holds
    assert rate() == pytest.approx(expected[10])
    weights = [p.detach().clone() for p in clf.net_.module_.parameters()]
    with pytest.raises(ValueError, match="OneCycleLR has run all its 12 steps"):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 5
    for before, after in zip(weights, clf.net_.module_.parameters()):
        assert torch.equal(before, after)
    assert clf.predict(X).shape == (64,)


def test_cosine_schedule_restarts_after_its_cycle(tmp_path):
    # A warm start after a full cosine trained its first epoch at rate 0,
    # then rose back along the cosine (torch's schedule is periodic).
    X, y = _summed()
    reg = NetRegressor(
        lr=1e-2,
        lr_scheduler="cosine",
        max_epochs=3,
        validation_fraction=None,
        warm_start=True,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert reg.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.0)
    reg.fit(X, y)  # three more epochs: a new cycle from lr
    cycle = [1e-2, 7.5e-3, 2.5e-3]
    np.testing.assert_allclose(reg.history_["event_lr"], cycle * 2)
    reg.partial_fit(X, y)
    assert reg.history_["event_lr"].iloc[-1] == pytest.approx(1e-2)
    # Replayed from a safe file (the optimizer back at lr) to the same point
    # of the current cycle.
    loaded = load(save(reg, tmp_path / "m.skops", format="safe"))
    for model in (reg, loaded):
        model.partial_fit(X, y)
        assert model.history_["event_lr"].iloc[-1] == pytest.approx(7.5e-3)
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X), rtol=1e-6)
    # A shorter T_max restarts within one fit; torch's own class given as
    # lr_scheduler is left as in torch (periodic).
    rates = {}
    for schedule in ("cosine", torch.optim.lr_scheduler.CosineAnnealingLR):
        model = NetRegressor(
            lr=1e-2,
            lr_scheduler=schedule,
            lr_scheduler_params={"T_max": 2},
            max_epochs=4,
            validation_fraction=None,
            device="cpu",
            random_state=0,
        ).fit(X, y)
        rates[schedule] = model.history_["event_lr"].tolist()
    np.testing.assert_allclose(rates["cosine"], [1e-2, 5e-3] * 2)
    np.testing.assert_allclose(
        rates[torch.optim.lr_scheduler.CosineAnnealingLR], [1e-2, 5e-3, 0, 5e-3]
    )


def test_reproducible_and_global_rng_untouched(blobs):
    X, y = blobs
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = NetClassifier(**FAST, module_params={"dropout": 0.2}).fit(X, y).predict_proba(X)
    b = NetClassifier(**FAST, module_params={"dropout": 0.2}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])


def test_device_resolution():
    assert resolve_device("auto").type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    # torch's own message listed some twenty backends.
    for name in ("warp-drive", "gpu", "CPU"):
        with pytest.raises(ValueError, match="is not a device: give 'cpu'"):
            resolve_device(name)
    # Passed, then failed in fit: "Expected a cuda device, but got: meta".
    for other in ("meta", "xla"):
        with pytest.raises(ValueError, match=f"not on '{other}' devices"):
            resolve_device(other)


def test_data_stays_on_the_host_off_cuda():
    # Every non-CPU device asked CUDA for its free memory (an MPS fit failed).
    from skestimators._engine._batching import TensorData
    from skestimators._engine._placement import _place

    data = TensorData(torch.zeros(4, 2), torch.zeros(4))
    assert _place(data, torch.device("mps")) is data


def test_pickle_of_gpu_model_loads_quietly_on_cpu(blobs):
    X, y = blobs
    clf = NetClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    # What a model trained on a GPU carries: its net remembers device="cuda".
    clf.net_.device = "cuda"
    blob = pickle.dumps(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = pickle.loads(blob)
    if not torch.cuda.is_available():
        assert loaded.device_.type == "cpu"
        np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-6)


def test_pickle_with_gpu_tensors_outside_the_network_loads_on_cpu(blobs, monkeypatch):
    # skorch maps only its module_/optimizer_/criterion_ to the CPU; the module
    # and criterion given, the class weights of the heads and a scheduler's
    # optimizer were plain-pickled GPU tensors, and loading failed on a
    # machine without CUDA. Every storage is tagged as torch tags GPU ones.
    import torch.serialization

    X, y = blobs
    clf = NetClassifier(**FAST, class_weight="balanced", lr_scheduler="cosine").fit(
        X, y
    )
    expected = clf.predict_proba(X)
    clf.net_.device = "cuda"
    clf.net_.amp_dtype = torch.float16  # as fitted with amp="fp16" on a GPU
    clf.net_.grad_scaler_ = torch.amp.GradScaler("cuda", enabled=False)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        blob = pickle.dumps(clf)
    if torch.cuda.is_available():
        return  # the tags are true there
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = pickle.loads(blob)
    assert loaded.device_.type == "cpu"
    assert loaded.net_.amp_dtype is None and loaded.net_.grad_scaler_ is None
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-6)
    loaded.partial_fit(X, y)  # trains on, on the CPU


def test_bf16_autocast_on_cpu(blobs, monkeypatch):
    from skestimators._engine import _device

    X, y = blobs
    monkeypatch.setattr(_device, "_cpu_has_bfloat16", lambda: True)
    clf = NetClassifier(**FAST, amp="bf16").fit(X, y)
    assert clf.net_.amp_dtype == torch.bfloat16
    assert np.isfinite(clf.predict_proba(X)).all()
    # Without bfloat16 instructions, oneDNN raised a raw error on LSTMs.
    monkeypatch.setattr(_device, "_cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="runs bfloat16 natively"):
        clf = NetClassifier(**{**FAST, "max_epochs": 1}, amp="bf16").fit(X, y)
    assert clf.net_.amp_dtype is None
    with pytest.warns(UserWarning, match="fp16"):
        NetClassifier(**{**FAST, "max_epochs": 1}, amp="fp16").fit(X, y)


def _fit_and_report(X, y):
    ThreadProbe.seen.clear()
    NetClassifier(ThreadProbe, **FAST, validation_fraction=None).fit(X, y)
    return max(ThreadProbe.seen)


def test_threads_follow_the_load_of_the_machine(blobs, monkeypatch):
    """Other processes busy on the cores: the fit uses the cores left free."""
    from skestimators._engine import _device

    X, y = blobs
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_device, "_explicit_budget", lambda: None)
    monkeypatch.setattr(_device, "_cores", lambda: 4)
    before = torch.get_num_threads()
    monkeypatch.setattr(_device, "busy_cores", lambda: 3)
    assert _device.thread_budget() == 1
    assert _fit_and_report(X, y) == 1
    assert torch.get_num_threads() == before  # restored: no global change
    monkeypatch.setattr(_device, "busy_cores", lambda: 9)
    assert _device.thread_budget() == 1  # never fewer than one
    monkeypatch.setattr(_device, "busy_cores", lambda: 0)
    assert _device.thread_budget() is None  # idle machine: torch's default


def test_threads_adapt_when_the_load_changes_during_a_fit(blobs, monkeypatch):
    from skestimators._engine import _device

    X, y = blobs
    monkeypatch.setattr(_device, "_explicit_budget", lambda: None)
    monkeypatch.setattr(_device, "_cores", lambda: 2)
    calls = []

    def busy():  # quiet when the fit starts, busy from the second epoch on
        calls.append(1)
        return 0 if len(calls) <= 2 else 1

    monkeypatch.setattr(_device, "busy_cores", busy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ThreadProbe.seen.clear()
        NetClassifier(
            ThreadProbe, **{**FAST, "max_epochs": 3}, validation_fraction=None
        ).fit(X, y)
        assert ThreadProbe.seen[0] == 2 and ThreadProbe.seen[-1] == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_load_readings_are_reused_briefly(monkeypatch):
    """A predict on a GPU must not spend milliseconds sampling the load."""
    from skestimators._engine import _device

    calls = []
    monkeypatch.setattr(_device, "_running_elsewhere", lambda: calls.append(1) or 2)
    monkeypatch.setattr(_device, "_BUSY", {"at": -float("inf"), "value": None})
    assert _device.busy_cores() == 2 and len(calls) == 3
    assert _device.busy_cores() == 2 and len(calls) == 3  # reused
    monkeypatch.setattr(_device, "BUSY_CORES_TTL", 0.0)
    assert _device.busy_cores() == 2 and len(calls) == 6  # stale: sampled again


def test_openmp_limits_are_read_live(monkeypatch):
    """The OpenMP runtimes are found once; their limits are read each call."""
    from threadpoolctl import threadpool_limits

    from skestimators._engine import _device

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)  # a limit of 1 is a limit
    before = _device._openmp_thread_limits()
    assert before, "torch's OpenMP runtime was not found"
    with threadpool_limits(3, user_api="openmp"):
        assert set(_device._openmp_thread_limits()) == {3}
    assert _device._openmp_thread_limits() == before
    with threadpool_limits(1, user_api="openmp"):
        assert _device._explicit_budget() == 1


def test_threads_set_by_the_package_are_not_a_user_limit(monkeypatch):
    """torch's OpenMP runtime reports the count the package set as its limit:
    that must not read as the user's, or a fit slowed by a busy machine
    would never take the cores back."""
    from threadpoolctl import threadpool_limits

    from skestimators._engine import _device

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cores = 8
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert _device._openmp_thread_limits(), "torch's OpenMP runtime was not found"
    before = torch.get_num_threads()
    with threadpool_limits(cores, user_api="openmp"):  # no user limit
        torch.set_num_threads(cores)
        try:
            with _device.torch_threads(1):
                assert torch.get_num_threads() == 1
                assert _device._explicit_budget() is None
            assert _device._DEFAULT["ours"] is None
        finally:
            torch.set_num_threads(before)


def test_running_elsewhere_reads_the_machine():
    from skestimators._engine import _device

    value = _device._running_elsewhere()
    assert value is None or value >= 0
    assert _device.busy_cores() is None or _device.busy_cores() >= 0


def test_threads_follow_worker_budget(blobs, monkeypatch):
    X, y = blobs
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    assert _fit_and_report(X, y) == 1
    assert torch.get_num_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    seen = Parallel(n_jobs=2, backend="loky")(
        delayed(_fit_and_report)(X, y) for _ in range(2)
    )
    import os

    assert max(seen) <= max(1, (os.cpu_count() or 1) // 2)


def test_progress_bar(blobs, capsys):
    X, y = blobs
    NetClassifier(**{**FAST, "max_epochs": 2}, verbose=1).fit(X, y)
    assert "epoch" in capsys.readouterr().err


def test_transformed_target_regressor():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.exp(X[:, 0] + 0.1 * rng.normal(size=300))
    model = TransformedTargetRegressor(
        NetRegressor(**{**FAST, "max_epochs": 30}), func=np.log, inverse_func=np.exp
    ).fit(X, y)
    assert model.predict(X).shape == (300,) and model.score(X, y) > 0.5
    two = NetRegressor(**FAST, loss="l1").fit(X, np.column_stack([y, -y]))
    assert two.predict(X).shape == (300, 2)


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (np.full((20, 3), np.nan), np.zeros(20), ValueError, "NaN"),
        (np.full((20, 3), np.inf), np.zeros(20), ValueError, "infinity"),
        (
            np.array([["a", "b"]] * 20, dtype=object),
            np.zeros(20),
            ValueError,
            "could not convert",
        ),
        (np.ones((20, 3)) * 1j, np.zeros(20), ValueError, "Complex"),
        (np.zeros((0, 3)), np.zeros(0), ValueError, "0 sample"),
        (np.zeros((20, 3)), np.zeros(19), ValueError, "samples"),
        (
            sp.csr_matrix(np.full((20, 3), np.nan)),
            np.zeros(20),
            ValueError,
            "NaN",
        ),
        (np.zeros((20, 3)), np.full(20, np.nan), ValueError, "NaN"),
    ],
)
def test_bad_input_fit(X, y, error, match):
    with pytest.raises(error, match=match):
        NetRegressor(**FAST).fit(X, y)


def test_bad_input_predict(two_inputs):
    spectra, aux, Y = two_inputs
    reg = NetRegressor(**FAST).fit(spectra, Y[:, 0])
    with pytest.raises(ValueError, match="features"):
        reg.predict(spectra[:, :10])
    with pytest.raises(ValueError, match="sample shape"):
        reg.predict(spectra[:, :, :2])
    with pytest.raises(ValueError, match="single array"):
        reg.predict(MultiInput(spectra=spectra))
    aux_df = pd.DataFrame(aux, columns=list("abcd"))
    multi = NetRegressor(**FAST).fit(MultiInput(spectra=spectra, aux=aux_df), Y[:, 0])
    with pytest.raises(ValueError, match="missing the named input"):
        multi.predict(MultiInput(spectra=spectra))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['d'\]"):
        multi.predict(MultiInput(spectra=spectra, aux=aux_df[["a", "b", "c"]]))
    with pytest.raises(ValueError, match="NaN"):
        multi.predict(MultiInput(spectra=np.full_like(spectra, np.nan), aux=aux_df))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NetRegressor().predict(spectra)


def test_validation_cv_with_shuffling_and_spatial_splitters(blobs):
    from sklearn.model_selection import KFold

    from skestimators.model_selection import SpatialBlockKFold

    X, y = blobs
    coords = np.random.RandomState(0).uniform(0, 1000, size=(300, 2))
    clf = NetClassifier(**FAST, validation_cv=KFold(5, shuffle=True)).fit(X, y)
    assert "valid_loss" in clf.history_
    spatial = NetClassifier(**FAST, validation_cv=SpatialBlockKFold(5, n_blocks=4))
    spatial.fit(X, y, groups=coords)
    assert "valid_loss" in spatial.history_
    with pytest.raises(ValueError, match="spatial splitter as validation_cv"):
        NetClassifier(**FAST).fit(X, y, groups=coords)


def test_auto_epoch_budget_counts_optimizer_steps(blobs):
    from dataclasses import replace

    from skestimators._engine._config import epoch_budget

    config = NetClassifier(batch_size=32)._engine_config()
    assert config.max_epochs == "auto"
    small = epoch_budget(config, 128)  # 4 batches: 500 epochs, 50 of patience
    assert (small.max_epochs, small.patience) == (500, 50)
    large = epoch_budget(config, 3200)  # 100 batches: the former budget
    assert (large.max_epochs, large.patience) == (20, 10)
    assert epoch_budget(config, 1).max_epochs == 1000
    fixed = replace(config, max_epochs=7)
    assert epoch_budget(fixed, 128) is fixed
    X, y = blobs
    clf = NetClassifier(batch_size=256, tol=1.0, device="cpu", random_state=0)
    clf.fit(X, y)
    # 270 training samples in 2 batches: up to 1,000 epochs, early stopping
    # waiting 100 of them (tol=1.0: no epoch after the first improves).
    assert clf.net_.max_epochs == 1000
    assert dict(clf.net_.callbacks_)["early_stopping"].patience == 100
    assert clf.n_iter_ == 101


def test_regression_targets_are_standardised_and_predicted_in_their_units():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = 5000 + 800 * X[:, 0]
    params = {**FAST, "max_epochs": 30, "lr": 0.01}
    reg = NetRegressor(**params).fit(X, y)
    np.testing.assert_allclose(reg.target_mean_, [y.mean()], rtol=1e-5)
    np.testing.assert_allclose(reg.target_scale_, [y.std()], rtol=1e-4)
    assert reg.score(X, y) > 0.9
    # Same fit on standardised targets: the same network, in other units.
    unit = NetRegressor(**params).fit(X, (y - y.mean()) / y.std())
    np.testing.assert_allclose(
        reg.predict(X), unit.predict(X) * y.std() + y.mean(), rtol=1e-4
    )
    huber = NetRegressor(**{**params, "max_epochs": 1}, loss="huber").fit(X, y)
    assert not hasattr(huber, "target_mean_") and not hasattr(huber, "target_scale_")
    # A refit without standardisation drops the old statistics.
    reg.set_params(loss="huber", max_epochs=1).fit(X, y)
    assert not hasattr(reg, "target_scale_")
    two = NetRegressor(**{**params, "max_epochs": 1}).fit(X, np.c_[y, 0 * y + 3])
    np.testing.assert_allclose(two.target_scale_, [y.std(), 1.0], rtol=1e-4)


# -- the scikit-learn contract, found by an independent review ------------------------
@pytest.mark.parametrize(
    "labels, message",
    [
        ((-1, 1), r"must hold 0 \(absent\) and 1 .*\[-1.0, 1.0\]"),
        ((1, 2), r"must hold 0 \(absent\) and 1 .*\[1.0, 2.0\]"),
        (("no", "yes"), "multiclass-multioutput"),
        (((0, 1), (0, 2)), "multiclass-multioutput"),
    ],
)
def test_multilabel_y_must_be_zero_one(blobs, labels, message):
    # type_of_target calls any two-valued integer matrix multilabel: -1/+1
    # trained a 0/1 loss on -1 and predicted 0 everywhere; string or mixed
    # columns got "y should be a 1d array".
    X, _ = blobs
    codes = np.random.RandomState(0).randint(0, 2, (len(X), 2))
    if isinstance(labels[0], tuple):
        y = np.column_stack(
            [np.asarray(lab)[codes[:, j]] for j, lab in enumerate(labels)]
        )
    else:
        y = np.asarray(labels)[codes]
    with pytest.raises(ValueError, match=message):
        NetClassifier(**FAST).fit(X, y)


def test_cross_val_predict_gives_multilabel_probabilities(blobs):
    # classes_ was a list (the forests' convention) beside one probability
    # array (the MLP's): cross_val_predict(method="predict_proba") failed.
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    from skestimators.ensemble import SoftVotingClassifier

    X, y = blobs
    Y = np.column_stack([y == 0, y == 1, y == 2]).astype(int)
    net = NetClassifier(**{**FAST, "max_epochs": 2})
    proba = cross_val_predict(net, X, Y, cv=3, method="predict_proba")
    assert proba.shape == (len(X), 3) and ((proba >= 0) & (proba <= 1)).all()
    assert net.fit(X, Y).classes_.shape == (3, 2)
    vote = SoftVotingClassifier([("net", net), ("knn", KNeighborsClassifier())])
    proba = cross_val_predict(vote, X, Y, cv=3, method="predict_proba")
    assert proba.shape == (len(X), 3)


def test_target_standardisation_weighs_the_samples():
    # Rows of weight 0 set the mean and scale of the targets all the same.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.where(np.arange(60) < 30, 1000.0, 1.0) + X[:, 0]
    w = np.where(np.arange(60) < 30, 0.0, 2.0)
    reg = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(reg.target_mean_, [np.average(y, weights=w)])
    std = np.sqrt(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
    np.testing.assert_allclose(reg.target_scale_, [std], rtol=1e-6)


def test_multiclass_probabilities_sum_to_one_in_float64(blobs):
    X, y = blobs
    proba = NetClassifier(**{**FAST, "max_epochs": 1}).fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=0, atol=1e-12)


def test_class_weight_dicts_follow_scikit_learn(blobs):
    X, y = blobs
    kwargs = {**FAST, "max_epochs": 1}
    # A class absent from this data (a fold without a rare class) is allowed.
    NetClassifier(**kwargs, class_weight={0: 1.0, 1: 2.0, 2: 1.0, 3: 5.0}).fit(X, y)
    with pytest.raises(ValueError, match="not in class_weight"):
        NetClassifier(**kwargs, class_weight={0: 1.0, 7: 2.0}).fit(X, y)
    # With multilabel y a dict was silently ignored.
    Y = np.column_stack([y == 0, y == 1]).astype(int)
    with pytest.raises(ValueError, match="y is multilabel"):
        NetClassifier(**kwargs, class_weight={0: 1.0, 1: 100.0}).fit(X, Y)


def test_continuing_fits_check_what_they_apply_and_warn_of_the_rest(blobs):
    X, y = blobs
    clf = NetClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    # Other classes than the first fit's were silently ignored.
    with pytest.raises(ValueError, match="not the same as the classes of the first"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    clf.partial_fit(X, y, classes=[2, 1, 0])
    # batch_size=0 ended in a ZeroDivisionError.
    with pytest.raises(ValueError, match="batch_size"):
        clf.set_params(batch_size=0).partial_fit(X, y)
    clf.set_params(batch_size=32, optimizer="sgd")
    with pytest.warns(UserWarning, match=r"\['optimizer'\] changed since"):
        clf.partial_fit(X, y)
    assert type(clf.net_.optimizer_).__name__ == "Adam"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X, y)  # said once


def test_validation_cv_takes_an_integer_or_folds(blobs):
    X, y = blobs
    clf = NetClassifier(**{**FAST, "max_epochs": 1}, validation_cv=3).fit(X, y)
    assert "valid_loss" in clf.history_.columns
    folds = [(np.arange(100, 300), np.arange(100))]
    clf = NetClassifier(**{**FAST, "max_epochs": 1}, validation_cv=folds).fit(X, y)
    assert "valid_loss" in clf.history_.columns


class Keep(Callback):
    """Keeps a reference to the network it trains."""

    def on_train_begin(self, net, **kwargs):
        self.net = net


def test_pickle_of_a_net_whose_callback_holds_it(blobs):
    # Pickling the callbacks apart (to map their tensors) recursed without end
    # when a callback kept a reference to the network.
    X, y = blobs
    keep = Keep()
    clf = NetClassifier(**{**FAST, "max_epochs": 1}, callbacks=[keep]).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.callbacks[0] is dict(loaded.net_.callbacks_)["Keep"]


def test_unchanged_array_parameters_do_not_warn_after_a_model_file(tmp_path):
    # Equal arrays rebuilt by a model file compared unequal: partial_fit said
    # target_weights had changed.
    from skestimators import load, save

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    Y = rng.normal(size=(60, 2))
    reg = NetRegressor(**{**FAST, "max_epochs": 1}, target_weights=np.ones(2))
    loaded = load(save(reg.fit(X, Y), tmp_path / "reg.skops"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.partial_fit(X, Y)


def test_bf16_model_unpickled_on_a_cpu_without_bf16_runs_in_float32(blobs, monkeypatch):
    from skestimators._engine import _device, _skorch

    X, y = blobs
    monkeypatch.setattr(_device, "_cpu_has_bfloat16", lambda: True)
    clf = NetClassifier(**{**FAST, "max_epochs": 1}, amp="bf16").fit(X, y)
    blob = pickle.dumps(clf)
    monkeypatch.setattr(_skorch, "_cpu_has_bfloat16", lambda: False)
    assert pickle.loads(blob).net_.amp_dtype is None


# -- what the engine refuses or fixes, found by a review of bad inputs ------------
@pytest.mark.parametrize(
    "transform",
    [
        lambda y: y * 1e-13,  # a tiny scale: was taken as constant (R² -1e23)
        lambda y: 1e-17 * (3 + y),  # fluxes in erg/s/cm²
        lambda y: 2451545 + 0.05 * y,  # Julian dates: float32 lost the spread
    ],
    ids=["tiny", "flux", "offset"],
)
def test_regression_targets_of_any_scale_train(transform):
    X, base = make_regression(200, 4, noise=1.0, random_state=0)
    base = base / base.std()
    reference = NetRegressor(max_epochs=30, device="cpu", random_state=0).fit(X, base)
    y = transform(base)
    reg = NetRegressor(max_epochs=30, device="cpu", random_state=0).fit(X, y)
    assert reg.target_scale_[0] == pytest.approx(np.std(transform(base) - 0), rel=1e-6)
    assert reg.score(X, y) == pytest.approx(reference.score(X, base), abs=1e-3)


def test_targets_beyond_float32_are_refused_by_name():
    X, y = make_regression(50, 3, random_state=0)
    reg = NetRegressor(max_epochs=2, device="cpu", random_state=0)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        reg.set_params(loss="mae").fit(X, y * 1e38)


class _Reduced(torch.nn.Module):
    def forward(self, pred, target):
        return ((pred - target) ** 2).mean()


def _broadcasting(pred, target):
    return (pred.reshape(-1) - target) ** 2


@pytest.mark.parametrize("loss", [_Reduced(), _broadcasting], ids=["mean", "broadcast"])
def test_a_loss_must_return_one_value_per_sample(loss):
    # A reduced loss weighed the batch by the mean sample weight, a
    # broadcasting one trained on an (n, n) matrix: silently.
    X, y = make_regression(60, 3, random_state=0)
    reg = NetRegressor(max_epochs=2, device="cpu", random_state=0, loss=loss)
    with pytest.raises(ValueError, match="one value per sample and column"):
        reg.fit(X, y)


def test_a_loss_class_is_refused_naming_the_instance_to_pass():
    # Called with (pred, target), the class built a module: a raw torch error
    # ("Boolean value of Tensor ... ambiguous") or a prediction tensor printed.
    X, y = make_regression(60, 3, random_state=0)
    reg = NetRegressor(max_epochs=2, device="cpu", loss=torch.nn.MSELoss)
    with pytest.raises(ValueError, match=r"MSELoss\(reduction='none'\)"):
        reg.fit(X, y)


class _Logits(torch.nn.Module):
    """A classifier of a fixed width, returning ``dtype`` outputs."""

    def __init__(self, input_shape, n_outputs, width=3, dtype=None, rows=0):
        super().__init__()
        self.lin = torch.nn.Linear(int(np.prod(input_shape)), width)
        self.dtype, self.rows = dtype, rows

    def forward(self, x):
        out = self.lin(x.flatten(1))
        if not self.training and self.rows and len(x) > 2:
            out = out[: -self.rows]  # a row dropped when predicting only
        return out if self.dtype is None else out.to(self.dtype)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"width": 2}, ValueError, r"shape \(2, 2\) .* must be \(2, 3\)"),
        ({"width": 5}, ValueError, r"shape \(2, 5\) .* must be \(2, 3\)"),
        ({"dtype": torch.int64}, TypeError, "torch.int64 outputs"),
        ({"dtype": torch.complex64}, TypeError, "real floating-point"),
    ],
)
def test_module_outputs_are_checked_before_training(params, error, message):
    # Too few logits: torch's "Target 2 is out of bounds"; too many: trained,
    # predict_proba of 5 columns and predict out of range.
    X = np.random.RandomState(0).normal(size=(60, 4))
    y = np.arange(60) % 3
    clf = NetClassifier(
        _Logits, module_params=params, max_epochs=2, device="cpu", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's complex cast
        with pytest.raises(error, match=message):
            clf.fit(X, y)


def test_predictions_must_keep_one_row_per_sample():
    X = np.random.RandomState(0).normal(size=(60, 4))
    y = np.arange(60) % 3
    clf = NetClassifier(
        _Logits, module_params={"rows": 1}, max_epochs=2, device="cpu",
        random_state=0, validation_fraction=None,
    ).fit(X, y)  # fmt: skip
    with pytest.raises(ValueError, match="one row per sample"):
        clf.predict(X)


class _NaNInEval(torch.nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(int(np.prod(input_shape)), n_outputs)

    def forward(self, x):
        out = self.lin(x.flatten(1))
        return out if self.training else out * float("nan")


def test_a_validation_loss_never_finite_is_named():
    # pandas' "Encountered all NA values" ended the fit.
    X, y = make_regression(60, 3, random_state=0)
    reg = NetRegressor(_NaNInEval, max_epochs=2, device="cpu", random_state=0)
    with pytest.raises(ValueError, match="validation loss was not finite in any"):
        reg.fit(X, y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"class_weight": {0: -1.0, 1: 1.0}}, "class_weight must hold finite"),
        ({"class_weight": {0: np.nan, 1: 1.0}}, "class_weight must hold finite"),
    ],
)
def test_class_weights_must_be_finite_and_non_negative(params, message):
    # A negative weight was clipped to 1e-12 (the model then predicted one
    # class only), NaN ended as "training diverged".
    X = np.random.RandomState(0).normal(size=(40, 3))
    clf = NetClassifier(max_epochs=2, device="cpu", random_state=0, **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, np.arange(40) % 2)


@pytest.mark.parametrize("weights", [{"a": np.nan}, [np.inf, 1.0]])
def test_target_weights_must_be_finite(weights):
    X, y = make_regression(40, 3, n_targets=2, random_state=0)
    y = pd.DataFrame(y, columns=["a", "b"])
    reg = NetRegressor(max_epochs=2, device="cpu", target_weights=weights)
    with pytest.raises(ValueError, match="target_weights must be finite"):
        reg.fit(X, y)


def test_warm_start_keeps_the_validation_split(monkeypatch):
    # The seed mixed for new batches at each continued fit also drew a new
    # validation split: rows trained on became validation rows.
    from skestimators._engine import _base

    seen = []
    original = _base.validation_indices

    def record(*args, **kwargs):
        train, valid = original(*args, **kwargs)
        seen.append(np.sort(valid))
        return train, valid

    monkeypatch.setattr(_base, "validation_indices", record)
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(
        max_epochs=2, warm_start=True, validation_fraction=0.25, device="cpu",
        random_state=0,
    )  # fmt: skip
    for _ in range(3):
        reg.fit(X, y)
    assert all(np.array_equal(seen[0], valid) for valid in seen[1:])


def test_targets_whose_spread_overflows_are_refused():
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(max_epochs=2, device="cpu")
    with pytest.raises(ValueError, match="too large to standardise"):
        reg.fit(X, y * 1e160)


class _DropoutSpy(nn.Module):
    """Records, at every forward pass, whether the fitted estimator's own
    network has its dropout on (``shared`` is set after fit)."""

    shared = None
    seen = []

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = nn.Linear(input_shape[0], n_outputs)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        if _DropoutSpy.shared is not None:
            _DropoutSpy.seen.append(_DropoutSpy.shared.drop.training)
        return self.linear(self.drop(x))


def test_mc_dropout_leaves_the_shared_network_in_evaluation_mode():
    # Monte Carlo dropout switched the fitted network's dropout on: a plain
    # predict in another thread meanwhile predicted with dropout (off by 3.35).
    import threading

    X = np.random.RandomState(0).normal(size=(200, 4))
    y = X[:, 0] + X[:, 1]
    reg = NetRegressor(_DropoutSpy, **FAST).fit(X, y)
    _DropoutSpy.shared, _DropoutSpy.seen = reg.net_.module_, []
    try:
        reg.predict(X, return_std=True)
        assert _DropoutSpy.seen and not any(_DropoutSpy.seen)
    finally:
        _DropoutSpy.shared = None
    # Concurrent seeded runs repeat (they shared torch's global generator).
    expected = reg.predict(X, return_std=True)[1]
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(reg.predict(X, return_std=True)[1])
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results:
        np.testing.assert_array_equal(result, expected)


class _WeightSpy(_DropoutSpy):
    """Records where the weights it predicts with are stored."""

    seen = []

    def forward(self, x):
        dropped = self.drop(x)  # kept units are scaled: a dropping pass changes x
        on = not torch.equal(dropped, x)
        _WeightSpy.seen.append((self.linear.weight.data_ptr(), on))
        return self.linear(dropped)


def test_mc_dropout_shares_the_weights_of_the_fitted_network():
    # The network with dropout on was a deep copy: a second copy of every
    # weight, twice the network's memory on a GPU.
    X = np.random.RandomState(0).normal(size=(200, 4))
    reg = NetRegressor(_WeightSpy, **FAST).fit(X, X[:, 0])
    _WeightSpy.seen = []
    reg.predict(X, return_std=True)
    weights = reg.net_.module_.linear.weight.data_ptr()
    assert {ptr for ptr, _ in _WeightSpy.seen} == {weights}
    assert {on for _, on in _WeightSpy.seen} == {False, True}  # plain, then MC
    assert not reg.net_.module_.drop.training


class _ChannelDropoutCNN(nn.Module):
    """A small CNN that drops whole channels (``Dropout2d``)."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], 4, 3, padding=1)
        self.drop = nn.Dropout2d(0.3)
        self.head = nn.Linear(4 * input_shape[1] * input_shape[2], n_outputs)

    def forward(self, x):
        return self.head(self.drop(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("layout", ["units", "channels"])
def test_mc_dropout_draws_do_not_depend_on_the_batches(layout):
    # Masks came from the global stream, row by row: a row's standard
    # deviation changed with its position in its batch, with batch_size and
    # with the chunks of a map (its uncertainty band repeated with the chunk
    # period on a constant raster).
    rng = np.random.RandomState(0)
    if layout == "units":
        X = rng.normal(size=(1500, 4)).astype(np.float32)
        reg = NetRegressor(module_params={"dropout": 0.3}, **FAST)
    else:
        X = rng.normal(size=(1500, 2, 4, 4)).astype(np.float32)
        reg = NetRegressor(_ChannelDropoutCNN, **FAST)
    X[1] = X[0]
    reg.fit(X, X.reshape(len(X), -1)[:, 0])
    _, std = reg.predict(X, return_std=True)  # batches of 1024 rows and the rest
    _, part = reg.predict(X[1000:1030], return_std=True)  # across both
    np.testing.assert_allclose(part, std[1000:1030], rtol=1e-5)
    assert std[0] == std[1] and np.unique(std).size > 1000
    _, again = reg.predict(X, return_std=True)
    np.testing.assert_array_equal(again, std)


class _SpatialDropout1d(nn.Dropout2d):
    """Drops whole features of (N, T, F) sequences, with a forward of its own."""

    def forward(self, x):
        return (
            super()
            .forward(x.permute(0, 2, 1).unsqueeze(-1))
            .squeeze(-1)
            .permute(0, 2, 1)
        )


def test_mc_dropout_draws_a_mask_per_call_and_keeps_a_layers_own_forward():
    # A layer called twice in one forward reused its mask (units kept with
    # probability 1 - p instead of (1 - p)^2: the mean of the draws doubled);
    # a subclass's own forward was replaced (time steps dropped, not features).
    from skestimators._engine._mc_dropout import shared_mask_dropout

    drop, spatial = nn.Dropout(0.5), _SpatialDropout1d(0.5)
    torch.manual_seed(0)
    passes = shared_mask_dropout([drop, spatial], seed=0)
    x = torch.ones(3, 4000)
    passes.start(0)
    twice = drop(drop(x))
    assert (twice == twice[0]).all()  # shared by the rows
    assert 0.23 < (twice[0] > 0).float().mean() < 0.27
    passes.start(0)  # the same pass, on another batch: the same masks
    assert torch.equal(drop(drop(x)), twice)
    passes.start(1)
    assert not torch.equal(drop(drop(x)), twice)
    out = spatial(torch.ones(2, 50, 8))
    assert spatial.training  # left to torch, in training mode
    assert ((out == 0).all(dim=1) | (out != 0).all(dim=1)).all()  # whole features


@pytest.mark.parametrize("mc_samples", [1, 0, 2.5])
def test_mc_samples_set_after_fit_is_checked(mc_samples):
    # set_params skips the checks: 1 gave a NaN standard deviation, 0 a scalar.
    X = np.random.RandomState(0).normal(size=(60, 4))
    reg = NetRegressor(module_params={"dropout": 0.2}, **FAST).fit(X, X[:, 0])
    reg.set_params(mc_samples=mc_samples)
    with pytest.raises(ValueError, match="mc_samples must be an integer >= 2"):
        reg.predict(X, return_std=True)


@pytest.mark.parametrize("Estimator", [NetRegressor, NetClassifier])
def test_y_columns_are_matched_by_name_in_score_and_partial_fit(Estimator):
    # Compared by position: R² 0.999 became -563,799 for swapped columns, and
    # a partial_fit on them trained each target on the other's values.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    if Estimator is NetRegressor:
        y = pd.DataFrame({"a": X[:, 0] * 10, "b": X[:, 1] * 0.1 + 100})
    else:
        y = pd.DataFrame({"a": (X[:, 0] > 0), "b": (X[:, 1] > 1)}).astype(int)
    est = Estimator(**{**FAST, "max_epochs": 20}).fit(X, y)
    swapped = y[["b", "a"]]
    assert est.score(X, swapped) == pytest.approx(est.score(X, y))
    before = est.score(X, y)
    est.partial_fit(X, swapped)
    assert est.score(X, y) > before - 0.05


def test_validation_batches_follow_the_prediction_rule():
    # Validation passes used at least 256 samples whatever batch_size.
    sizes = []

    class Record(nn.Module):
        def __init__(self, input_shape, n_outputs):
            super().__init__()
            self.linear = nn.Linear(int(np.prod(input_shape)), n_outputs)

        def forward(self, x):
            if not self.training:
                sizes.append(len(x))
            return self.linear(x.flatten(1))

    X = np.random.RandomState(0).normal(size=(300, 3, 64, 64)).astype(np.float32)
    params = {**FAST, "batch_size": 8, "max_epochs": 1, "validation_fraction": 0.5}
    NetRegressor(Record, **params).fit(X, X[:, 0, 0, 0])
    assert max(sizes) == 85  # 2**20 // (3 * 64 * 64), not 256 (150 held out)


def test_prediction_batches_of_large_samples_follow_batch_size():
    # A floor of 256 samples per pass: lowering batch_size (score
    # --batch-size) could not lower the memory of a pass on large images.
    from skestimators._engine._batching import TensorData
    from skestimators._engine._placement import _predict_batch_size

    def size(shape, batch_size):
        return _predict_batch_size(batch_size, TensorData(torch.zeros(2, *shape)))

    assert size((52, 3), 64) == 1024  # small samples: large passes
    assert size((3, 512, 512), 4) == 4  # large ones: as asked
    assert size((3, 64, 64), 8) == 85  # up to 2**20 input values
    for bad in (None, 0, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive"):
            size((4,), bad)


class _FailOnce(Callback):
    def __init__(self):
        self.armed = False

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.armed:
            self.armed = False
            raise RuntimeError("boom")


def test_a_retry_after_a_failed_continuing_fit_applies_the_new_lr(blobs):
    # The failure rolled the optimizer back to the old rate but not net.lr:
    # the retry saw "lr unchanged" and trained at the old rate silently.
    X, y = blobs
    fail = _FailOnce()
    clf = NetClassifier(**{**FAST, "callbacks": [("fail", fail)]}).fit(X, y)
    clf.set_params(lr=0.5)
    fail.armed = True
    with pytest.raises(RuntimeError, match="boom"):
        clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    rates = {group["lr"] for group in clf.net_.optimizer_.param_groups}
    assert rates == {0.5} and clf.net_.lr == 0.5


def test_a_new_lr_keeps_the_ratios_of_the_parameter_groups():
    # Every group got the new lr: a backbone trained at a tenth of it (its
    # feature_lr_factor) was trained at the full rate after a warm start.
    from types import SimpleNamespace

    from skestimators._engine._continuing import continue_with

    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [a], "lr": 0.01}, {"params": [b]}], lr=0.1)
    net = SimpleNamespace(
        optimizer_=optimizer, lr=0.1, batch_size=8, gradient_clip=None
    )
    config = SimpleNamespace(
        lr=0.2, batch_size=8, gradient_clip=None, weight_decay=0.0, lr_scheduler=None
    )
    config.params = {"lr": 0.2}
    continue_with(net, config)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.02, 0.2])


class _StopMidEpoch(Callback):
    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == 3:
            raise KeyboardInterrupt  # skorch's way for a callback to stop


def test_a_callback_stopping_mid_epoch_leaves_only_complete_epochs(blobs, tmp_path):
    # The epoch cut short stayed in history_ as a row of NaN and in n_iter_,
    # and the checkpoint was not marked finished.
    X, y = blobs
    clf = NetClassifier(
        **{**FAST, "callbacks": [("stop", _StopMidEpoch())], "checkpoint": tmp_path}
    ).fit(X, y)
    assert clf.n_iter_ == 2 and clf.history_["train_loss"].notna().all()
    again = NetClassifier(
        **{**FAST, "callbacks": [("stop", _StopMidEpoch())], "checkpoint": tmp_path}
    ).fit(X, y)  # the finished checkpoint is loaded, not trained on
    assert again.n_iter_ == 2


def test_a_validation_split_added_to_a_continuing_fit_warns(blobs):
    # The network built without a split has no early stopping: the continued
    # fit computed valid_loss but never stopped, without a word.
    X, y = blobs
    clf = NetClassifier(**{**FAST, "validation_fraction": None, "warm_start": True})
    clf.fit(X, y)
    clf.set_params(validation_fraction=0.2)
    with pytest.warns(UserWarning, match="built without a validation split"):
        clf.fit(X, y)


def test_seeded_blocks_restore_every_cuda_device(monkeypatch):
    """torch.manual_seed reseeds every GPU: a seeded fit or Monte Carlo run
    forks them all, not only the one it runs on."""
    from skestimators._engine._device import rng_devices

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert rng_devices(torch.device("cuda:1")) == [0, 1, 2]
    assert rng_devices(torch.device("cpu")) == []
    # fit and Monte Carlo dropout fork what rng_devices names.
    from skestimators._engine import _base, _inference

    asked = []

    def spy(device):
        asked.append(device.type)
        return []

    monkeypatch.setattr(_base, "rng_devices", spy)
    monkeypatch.setattr(_inference, "rng_devices", spy)
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    reg = NetRegressor(**FAST, module_params={"dropout": 0.2}).fit(X, X[:, 0])
    reg.predict(X, return_std=True)
    assert asked == ["cpu", "cpu"]


class _Log(nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = nn.Linear(input_shape[0], n_outputs)

    def forward(self, x):
        return torch.log(self.linear(x))  # NaN wherever the linear output < 0


class _Detached(_Log):
    def forward(self, x):
        return self.linear(x).detach()


def test_networks_with_nothing_to_train_are_refused_by_name():
    # torch's "element 0 of tensors does not require grad" named nothing.
    from skestimators.nn import MLP

    X = np.random.RandomState(0).normal(size=(40, 4))
    frozen = MLP((4,), 1, width=8, depth=1)
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)  # a frozen backbone, the head forgotten
    with pytest.raises(ValueError, match="Every parameter of the module MLP is frozen"):
        NetRegressor(frozen, **FAST).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="output carries no gradient"):
        NetRegressor(_Detached, **FAST).fit(X, X[:, 0])


def test_a_loss_not_finite_before_any_update_is_not_called_a_divergence():
    # The advice was a lower learning rate or clipping, which cannot help.
    from skestimators.exceptions import TrainingDivergedError

    X = np.random.RandomState(0).normal(size=(40, 4))
    reg = NetRegressor(_Log, **{**FAST, "lr": 1e-6})
    with pytest.raises(TrainingDivergedError, match="first training batch, before any"):
        reg.fit(X, X[:, 0])
    assert not hasattr(reg, "net_")


def test_optimizer_settings_go_in_a_partial_and_weight_decay_only_when_set(blobs):
    # weight_decay=0.0 was always passed: Rprop failed with a raw TypeError,
    # and momentum could not be set at all.
    from functools import partial

    X, y = blobs
    clf = NetClassifier(**FAST, optimizer=torch.optim.Rprop).fit(X, y)
    assert "weight_decay" not in clf.net_.optimizer_.defaults
    sgd = partial(torch.optim.SGD, momentum=0.9, nesterov=True)
    clf = NetClassifier(**FAST, optimizer=sgd, weight_decay=1e-4).fit(X, y)
    group = clf.net_.optimizer_.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.9,
        True,
        1e-4,
    )
    assert group["lr"] == FAST["lr"]
    for optimizer, weight_decay, match in [
        (torch.optim.Rprop, 0.1, "Rprop has none. Set weight_decay=0"),
        (torch.optim.LBFGS, 0.0, "LBFGS re-evaluates the loss"),
        (partial(torch.optim.SGD, lr=0.1), 0.0, r"sets \['lr'\]"),
        (partial(torch.optim.SGD, momentun=0.9), 0.0, r"no argument \['momentun'\]"),
        (partial(torch.optim.SGD, weight_decay=0.1), 0.1, "weight_decay is set twice"),
        (partial(len, 3), 0.0, "a functools.partial of one"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            NetClassifier(**FAST, optimizer=optimizer, weight_decay=weight_decay).fit(
                X, y
            )


@pytest.mark.parametrize(
    "key, match",
    [
        ("module__hidden", r"module_params=\{'hidden': \.\.\.\}"),
        ("optimizer__momentum", r"partial\(torch.optim.SGD, momentum=\.\.\.\)"),
        ("lr_scheduler__T_max", r"lr_scheduler_params=\{'T_max': \.\.\.\}"),
    ],
)
def test_skorch_style_nested_parameters_say_where_the_setting_goes(key, match):
    # scikit-learn's error was "'NoneType' object has no attribute 'set_params'".
    from sklearn.model_selection import GridSearchCV

    with pytest.raises(ValueError, match=match):
        NetClassifier(lr_scheduler="cosine").set_params(**{key: 4})
    X, y = make_regression(40, 4, random_state=0)
    with pytest.raises(ValueError, match=match):
        GridSearchCV(
            NetRegressor(**FAST, lr_scheduler="cosine"), {key: [4, 8]}, cv=2
        ).fit(X, y)
    # Plain parameters and a Pipeline's nested ones are set as before.
    pipe = make_pipeline(NetRegressor()).set_params(netregressor__lr=0.5)
    assert pipe[-1].lr == 0.5


def test_a_double_precision_module_is_told_to_use_float32():
    # torch's "mat1 and mat2 must have the same dtype" did not say that the
    # engine feeds float32 batches.
    from skestimators.nn import MLP

    X = np.random.RandomState(0).normal(size=(40, 4))
    module = MLP((4,), 1, width=8, depth=1).double()
    with pytest.raises(ValueError, match=r"are torch.float64.*module.float\(\)"):
        NetRegressor(module, **FAST).fit(X, X[:, 0])


class _Keywords(nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.lin = nn.Linear(sum(s[0] for s in input_shape.values()), n_outputs)

    def forward(self, **inputs):
        return self.lin(torch.cat([inputs[k] for k in sorted(inputs)], 1))


def test_named_inputs_keyed_by_numbers_predict_as_they_fit():
    # Fit named them "0" and "1" (forward's keywords); predict looked the
    # numbers up among those names: "X is missing the named input(s)".
    rng = np.random.RandomState(0)
    X = {0: rng.normal(size=(60, 3)), 1: rng.normal(size=(60, 2))}
    reg = NetRegressor(module=_Keywords, max_epochs=1, device="cpu", random_state=0)
    reg.fit(X, X[0][:, 0])
    assert reg.predict(X).shape == (60,)
    with pytest.raises(ValueError, match="equal as text"):
        reg.predict({0: X[0], "0": X[0], 1: X[1]})


class _CausalMask(nn.Module):
    """A constant ``-inf`` mask buffer, as a causal attention mask has."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.lin = nn.Linear(input_shape[0], n_outputs)
        self.register_buffer("mask", torch.triu(torch.full((2, 2), float("-inf")), 1))

    def forward(self, x):
        return self.lin(x) * torch.softmax(self.mask, -1)[1, 1] * 2


def test_batch_statistics_overflowing_is_a_divergence():
    # Only the parameters were checked: a running variance of infinity (a
    # column in cgs units, 1e33) left finite losses and constant predictions.
    from skestimators.exceptions import TrainingDivergedError
    from skestimators.nn import MLP

    rng = np.random.RandomState(0)
    X = rng.rand(200, 3).astype(np.float32)
    X[:, 0] *= 1e33
    reg = NetRegressor(
        MLP, module_params=dict(width=8, depth=1, batch_norm=True),
        max_epochs=2, device="cpu", random_state=0,
    )  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        reg.fit(X, X[:, 1] * 2 + X[:, 2])


def test_a_constant_infinite_buffer_is_no_divergence(tmp_path):
    # Every fit of such a module raised "the weights became non-finite in the
    # last update", and no checkpoint was written: the buffers were read too.
    X, y = make_regression(100, 4, random_state=0)
    reg = NetRegressor(
        module=_CausalMask, max_epochs=2, device="cpu", random_state=0,
        checkpoint=str(tmp_path / "ck"),
    ).fit(X, y / 100)  # fmt: skip
    assert reg.n_iter_ == 2
    assert torch.load(tmp_path / "ck" / "checkpoint.pt", weights_only=True)["done"]


def test_a_classifier_that_learned_nothing_warns():
    # Inputs in physical units (1e28) gave a loss of 1e27 nats from the first
    # batch on, so the blow-up check (against the first batch) saw nothing:
    # the classifier predicted worse than chance without a word.
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning

    X, y = make_classification(200, 5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="learned nothing"):
        NetClassifier(max_epochs=2, device="cpu", random_state=0).fit(X * 1e28, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        NetClassifier(max_epochs=2, device="cpu", random_state=0).fit(X, y)
