"""Checkpoints: atomic writes every epoch, resume after a crash, refusals."""

import enum
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification, make_regression

from skestimators import (
    GalaxyZooRegressor,
    ImageClassifier,
    MultiInput,
    NetClassifier,
    NetRegressor,
    SpatioTemporalRegressor,
    SpectraAuxClassifier,
)
from skestimators._engine import Callback
from skestimators._engine._checkpoint import CheckpointStore
from skestimators.exceptions import CheckpointError, CheckpointWarning

pytestmark = pytest.mark.xdist_group("checkpoint")

# A Pipeline inside TransformedTargetRegressor, with dropout, early stopping on a
# validation split and a cosine schedule: every random stream and every piece
# of state a resumed run must restore.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, torch
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import make_regression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skestimators import NetRegressor
    from skestimators._engine import Callback

    torch.set_num_threads(1)
    checkpoint, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class KillMidEpoch(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            epoch, batches = len(net.history), len(net.history[-1]["batches"])
            if training and epoch == kill_at and batches == 4:
                os.kill(os.getpid(), signal.SIGKILL)

    X, y = make_regression(600, 10, noise=5.0, random_state=0)
    net = NetRegressor(
        max_epochs=12, batch_size=32, lr=0.003, lr_scheduler="cosine",
        module_params={"width": 32, "depth": 2, "dropout": 0.2},
        random_state=0, device="cpu",
        checkpoint=None if checkpoint == "-" else checkpoint,
        callbacks=[KillMidEpoch()] if kill_at else None,
    )
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), net), transformer=StandardScaler()
    ).fit(X, np.exp(y / 200))
    fitted = model.regressor_[-1]
    torch.save(fitted.net_.module_.state_dict(), out + ".pt")
    fitted.history_.drop(columns="dur").to_pickle(out + ".pkl")
    """
)


def _run(tmp_path, checkpoint, out, kill_at=0):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            str(script),
            str(checkpoint),
            str(tmp_path / out),
            str(kill_at),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = _run(tmp_path, ckpt, "killed", kill_at=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = torch.load(ckpt / "checkpoint.pt", weights_only=True)
    # Epoch 4's write runs in the background; it may have been cut short.
    assert state["epoch"] in (3, 4) and not state["done"]

    resumed = _run(tmp_path, ckpt, "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert not list(ckpt.glob(".*.tmp"))  # no half-written file left behind
    straight = _run(tmp_path, "-", "straight")
    assert straight.returncode == 0, straight.stderr

    history = pd.read_pickle(tmp_path / "resumed.pkl")
    reference = pd.read_pickle(tmp_path / "straight.pkl")
    assert len(reference) > 5
    pd.testing.assert_frame_equal(history, reference, check_exact=True)
    assert _same_state(
        torch.load(tmp_path / "resumed.pt"), torch.load(tmp_path / "straight.pt")
    )


class CrashAt(Callback):
    """Raise in the middle of an epoch, as a crash would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            raise RuntimeError("simulated crash")


def _data(kind):
    rng = np.random.RandomState(0)
    if kind == "classifier":
        return make_classification(160, 6, random_state=0)
    if kind == "regressor":
        X, y = make_regression(160, 6, random_state=0)
        return X, y / 100
    if kind == "spectra":
        X = MultiInput(spectra=rng.rand(160, 12, 3), aux=rng.rand(160, 4))
        y = pd.DataFrame(
            {"water": rng.randint(0, 2, 160), "cloud": rng.randint(0, 2, 160)}
        )
        return X, y
    if kind == "images":
        return rng.rand(96, 3, 16, 16).astype(np.float32), rng.randint(0, 3, 96)
    if kind == "galaxy":
        from skestimators.datasets import make_galaxy_zoo

        return make_galaxy_zoo(96, size=16, random_state=0)
    if kind == "patches":
        X = rng.rand(120, 3, 2, 5, 5).astype(np.float32)
        return X, X.mean(axis=(1, 2, 3, 4))
    raise ValueError(kind)


SMALL = dict(max_epochs=4, batch_size=16, device="cpu", random_state=0)
IMAGE = dict(SMALL, width=4, depth=1, head_width=8)
CASES = [
    ("classifier", NetClassifier(**SMALL)),
    ("regressor", NetRegressor(**SMALL, lr_scheduler="onecycle")),
    ("spectra", SpectraAuxClassifier(**SMALL, width=8, lr_scheduler="plateau")),
    ("images", ImageClassifier(**IMAGE, chirality_pairs=None)),
    ("galaxy", GalaxyZooRegressor(**IMAGE)),
    ("patches", SpatioTemporalRegressor(**SMALL, width=4, depth=1, head_width=8)),
]


@pytest.mark.parametrize(
    "kind, estimator", CASES, ids=[type(e).__name__ for _, e in CASES]
)
def test_every_estimator_resumes_where_it_crashed(kind, estimator, tmp_path):
    X, y = _data(kind)
    crashing = estimator.set_params(
        checkpoint=tmp_path / "ckpt", callbacks=[CrashAt(3)]
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(X, y)
    assert (
        torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    )
    resumed = estimator.set_params(callbacks=None).fit(X, y)
    straight = estimator.set_params(checkpoint=None).fit(X, y)
    pd.testing.assert_frame_equal(
        resumed.history_.drop(columns="dur"), straight.history_.drop(columns="dur")
    )
    assert _same_state(
        resumed.net_.module_.state_dict(), straight.net_.module_.state_dict()
    )


def test_finished_checkpoint_is_loaded_not_retrained(tmp_path):
    X, y = _data("regressor")
    first = NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    seen = []

    class Count(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(len(net.history))

    again = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[Count()]).fit(X, y)
    assert seen == []  # no epoch trained again
    np.testing.assert_array_equal(again.predict(X), first.predict(X))
    pd.testing.assert_frame_equal(again.history_, first.history_)


def test_checkpoint_of_other_configuration_or_data_is_refused(tmp_path):
    X, y = _data("regressor")
    NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    with pytest.raises(CheckpointError, match=r"lr=0.01 \(checkpoint: 0.001\)"):
        NetRegressor(**SMALL, lr=0.01, checkpoint=tmp_path).fit(X, y)
    longer = NetRegressor(**SMALL | {"max_epochs": 8}, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match="fit with max_epochs=4 .* warm_start"):
        longer.fit(X, y)
    # The advice works: the run read back, then four more epochs.
    longer.set_params(max_epochs=4).fit(X, y)
    longer.set_params(warm_start=True).fit(X, y)
    assert longer.n_iter_ == 8
    with pytest.raises(CheckpointError, match=r"other training data \(X differ"):
        NetRegressor(**SMALL, checkpoint=tmp_path).fit(X + 1, y)
    with pytest.raises(CheckpointError, match="written by NetRegressor, not"):
        NetClassifier(**SMALL, checkpoint=tmp_path).fit(X, y > 0)
    # What only watches a fit does not count as configuration.
    NetRegressor(**SMALL, verbose=0, callbacks=[], checkpoint=tmp_path).fit(X, y)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    X, y = _data("regressor")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)


def test_second_fit_on_a_locked_directory_fails_at_once(tmp_path):
    X, y = _data("regressor")
    holder = CheckpointStore(tmp_path, "NetRegressor", {}, {}).acquire()
    try:
        with pytest.raises(CheckpointError, match=rf"pid {os.getpid()}, started"):
            NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    finally:
        holder.release()
    NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)  # free again


def test_full_disk_warns_keeps_previous_checkpoint_and_trains_on(tmp_path, monkeypatch):
    X, y = _data("regressor")
    from skestimators._engine import _checkpoint

    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= 3:  # the disk fills up from the third write on
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(_checkpoint.os, "fsync", fsync)
    with pytest.warns(CheckpointWarning, match="No space left on device"):
        reg = NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    assert reg.n_iter_ == SMALL["max_epochs"]
    monkeypatch.undo()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2  # the last good one, whole
    assert not list(tmp_path.glob(".*.tmp"))


def test_fitted_estimator_with_checkpoint_pickles_and_partial_fits(tmp_path):
    import pickle

    X, y = _data("regressor")
    reg = NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)
    names = [name for name, _ in reg.net_.callbacks_]
    assert "checkpoint" not in names and "resume" not in names
    copy = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(copy.predict(X), reg.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.partial_fit(X, y)  # no checkpoint written, no lock taken
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 4


class NumpyMetric(Callback):
    """Records NumPy values, as user code often does (np.mean)."""

    def __init__(self):
        self.best = np.float64(np.inf)

    def on_epoch_end(self, net, **kwargs):
        net.history.record("spread", np.mean([1.0, 2.0]))
        self.best = np.minimum(self.best, np.float32(net.history[-1, "train_loss"]))

    def state_dict(self):
        return {"best": self.best, "seen": np.arange(3)}

    def load_state_dict(self, state):
        self.best = state["best"]


def test_numpy_values_in_history_and_callback_state_resume(tmp_path):
    # torch.load(weights_only=True) refused the NumPy scalars: the resume
    # failed and every epoch done was lost.
    X, y = _data("regressor")
    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(
            **SMALL, checkpoint=tmp_path, callbacks=[NumpyMetric(), CrashAt(3)]
        ).fit(X, y)
    resumed = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[NumpyMetric()])
    assert resumed.fit(X, y).history_["spread"].tolist() == [1.5] * 4


class Unstorable(Callback):
    def state_dict(self):
        return {"when": object()}

    def load_state_dict(self, state):
        pass


def test_a_state_that_cannot_be_resumed_is_refused_at_the_first_epoch(tmp_path):
    X, y = _data("regressor")
    reg = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[Unstorable()])
    with pytest.raises(CheckpointError, match="cannot be stored safely"):
        reg.fit(X, y)


class Phase(enum.IntEnum):
    MAIN = 1


class LaterUnstorable(Callback):
    """Records a value torch.load(weights_only=True) refuses, from epoch 3."""

    def __init__(self, value):
        self.value = value

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) >= 3:
            net.history.record("when", self.value)


# An IntEnum member is an int to isinstance, not to weights_only.
@pytest.mark.parametrize("value", [object(), Phase.MAIN], ids=["object", "IntEnum"])
def test_a_state_that_cannot_be_resumed_is_refused_at_its_epoch(tmp_path, value):
    # Only the first state was read back: from epoch 3 on every checkpoint was
    # written unresumable, and a crash lost all the epochs done.
    X, y = _data("regressor")
    reg = NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[LaterUnstorable(value)])
    with pytest.raises(CheckpointError, match="state of epoch 3 cannot be stored"):
        reg.fit(X, y)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2


class Counter(Callback):
    """A skorch-style callback: its state is set up in on_train_begin."""

    def on_train_begin(self, net, **kwargs):
        self.count_ = 0
        self.seen_ = []

    def on_epoch_end(self, net, **kwargs):
        self.count_ += 1
        self.seen_.append(self.count_)
        net.history.record("count", self.count_)

    def state_dict(self):
        return {"count_": self.count_}

    def load_state_dict(self, state):
        self.count_ = state["count_"]


def test_user_callback_state_survives_its_own_on_train_begin(tmp_path):
    # The state was restored before the callback's on_train_begin reset it:
    # the resumed run counted 1, 2, 3, 4 again.
    X, y = _data("regressor")
    params = dict(SMALL, max_epochs=6)
    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(
            **params, checkpoint=tmp_path, callbacks=[Counter(), CrashAt(4)]
        ).fit(X, y)
    counter = Counter()
    resumed = NetRegressor(**params, checkpoint=tmp_path, callbacks=[counter])
    assert resumed.fit(X, y).history_["count"].tolist() == [1, 2, 3, 4, 5, 6]
    # A complete checkpoint trains no epoch: the state is restored all the same,
    # and the final checkpoint keeps it.
    again = NetRegressor(**params, checkpoint=tmp_path, callbacks=[Counter()])
    assert dict(again.fit(X, y).net_.callbacks_)["Counter"].count_ == 6
    stored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert stored["callbacks"]["Counter"] == {"count_": 6}


class Wider(torch.nn.Module):
    def __init__(self, input_shape, n_outputs, hidden=8):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(int(np.prod(input_shape)), hidden)
        )
        self.head = torch.nn.Linear(hidden, n_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def test_a_checkpoint_of_changed_module_code_is_a_checkpoint_error(
    tmp_path, monkeypatch
):
    # The class is fingerprinted by its name: after its code changed, the
    # resume failed with torch's raw "Error(s) in loading state_dict".
    X, y = _data("regressor")
    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(Wider, **SMALL, checkpoint=tmp_path, callbacks=[CrashAt(3)]).fit(
            X, y
        )

    def changed_init(self, input_shape, n_outputs, hidden=8):
        torch.nn.Module.__init__(self)
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(int(np.prod(input_shape)), hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
        )
        self.head = torch.nn.Linear(hidden, n_outputs)

    monkeypatch.setattr(Wider, "__init__", changed_init)
    with pytest.raises(CheckpointError, match="does not fit this network.*delete"):
        NetRegressor(Wider, **SMALL, checkpoint=tmp_path).fit(X, y)


def _scaled_l1(y_pred, y_true, scale=1.0):
    return scale * torch.nn.functional.l1_loss(y_pred, y_true)


def test_fingerprints_tell_partials_lambdas_and_modules_apart():
    # They were reduced to "partial", "<lambda>" and the module's repr, so a
    # checkpoint of another loss or other initial weights was resumed.
    import functools

    from skestimators._engine._fingerprint import config_fingerprint

    def fingerprint(value):
        return config_fingerprint({"loss": value})["loss"]

    assert fingerprint(functools.partial(_scaled_l1, scale=1.0)) != fingerprint(
        functools.partial(_scaled_l1, scale=1000.0)
    )
    assert fingerprint(functools.partial(_scaled_l1, scale=2.0)) == fingerprint(
        functools.partial(_scaled_l1, scale=2.0)
    )
    assert fingerprint(lambda a, b: a - b) != fingerprint(lambda a, b: b - a)
    factor = 3.0
    assert fingerprint(lambda a: a * factor) == fingerprint(lambda a: a * factor)
    torch.manual_seed(0)
    first, second = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    assert fingerprint(first) != fingerprint(second)
    assert fingerprint(first) == fingerprint(first)
    assert " at 0x" not in fingerprint(object())


def test_a_refused_refit_keeps_the_previous_model(tmp_path):
    # The refit wrote classes_/n_features_in_ of the new data before the
    # checkpoint refused it: predict then mixed the old network with them.
    X, y = _data("classifier")
    clf = NetClassifier(**SMALL).fit(X, y)
    expected = clf.predict(X)
    (tmp_path / "checkpoint.pt").write_bytes(b"another run")
    clf.set_params(checkpoint=tmp_path)
    with pytest.raises(CheckpointError):
        clf.fit(X[:, :3], np.where(y == 1, "dog", "cat"))
    assert clf.n_features_in_ == X.shape[1] and list(clf.classes_) == [0, 1]
    np.testing.assert_array_equal(clf.predict(X), expected)


def test_skorch_progress_bar_after_a_resume(tmp_path):
    # The restored history had no per-batch rows; skorch's ProgressBar read
    # them and failed with a raw ValueError.
    from skorch.callbacks import ProgressBar

    X, y = _data("regressor")

    def bar():
        return ("bar", ProgressBar(batches_per_epoch="count"))

    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[bar(), CrashAt(3)]).fit(
            X, y
        )
    NetRegressor(**SMALL, checkpoint=tmp_path, callbacks=[bar()]).fit(X, y)


def test_an_unusable_lock_is_a_checkpoint_error(tmp_path):
    X, y = _data("regressor")
    (tmp_path / "checkpoint.lock").mkdir()  # cannot be opened as the lock file
    with pytest.raises(CheckpointError, match="Cannot lock the checkpoint"):
        NetRegressor(**SMALL, checkpoint=tmp_path).fit(X, y)


def test_a_checkpoint_in_cross_validation_says_why_the_folds_meet(tmp_path):
    # Every clone writes the one directory: fold 2 was refused with "X, y
    # differ", which did not say why.
    from sklearn.model_selection import cross_val_score

    X, y = _data("regressor")
    reg = NetRegressor(**SMALL, checkpoint=tmp_path)
    with pytest.raises(
        CheckpointError, match=r"clone the estimator .* checkpoint='runs/\{data\}'"
    ):
        cross_val_score(reg, X, y, cv=2, error_score="raise")


class CrashInFit(Callback):
    """Raise mid-epoch in the ``fit``-th fit begun (counted across clones)."""

    begun = []  # a class attribute: cross-validation clones the instances

    def __init__(self, fit, epoch):
        self.fit = fit
        self.epoch = epoch

    def on_train_begin(self, net, **kwargs):
        CrashInFit.begun.append(None)
        self.mine_ = len(CrashInFit.begun)

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.mine_ == self.fit and len(net.history) == self.epoch:
            raise RuntimeError("simulated crash")


class Trained(Callback):
    """Record every epoch trained, across clones."""

    epochs = []

    def on_epoch_end(self, net, **kwargs):
        Trained.epochs.append(len(net.history))


def test_a_cross_validation_resumes_each_fold_where_it_stopped(tmp_path):
    from sklearn.model_selection import cross_val_score

    X, y = _data("regressor")
    runs = tmp_path / "{data}"
    expected = cross_val_score(NetRegressor(**SMALL), X, y, cv=3)
    CrashInFit.begun.clear()
    crashing = NetRegressor(**SMALL, checkpoint=runs, callbacks=[CrashInFit(2, 3)])
    with pytest.raises(RuntimeError, match="simulated crash"):
        cross_val_score(crashing, X, y, cv=3, error_score="raise")
    states = [
        torch.load(d / "checkpoint.pt", weights_only=True)
        for d in sorted(tmp_path.iterdir(), key=lambda d: d.stat().st_mtime)
    ]
    assert [(s["epoch"], s["done"]) for s in states] == [(4, True), (2, False)]

    Trained.epochs.clear()
    again = NetRegressor(**SMALL, checkpoint=runs, callbacks=[Trained()])
    scores = cross_val_score(again, X, y, cv=3)
    # Fold 1 is read back, fold 2 resumes after epoch 2, fold 3 trains.
    assert Trained.epochs == [3, 4, 1, 2, 3, 4]
    np.testing.assert_array_equal(scores, expected)  # as if nothing had crashed
    described = sorted(
        json.loads((d / "run.json").read_text())["data"]["n_samples"]
        for d in tmp_path.iterdir()
    )
    assert described == [106, 107, 107]  # the training rows of each fold


def test_a_search_keeps_a_run_per_candidate_and_fold(tmp_path):
    from sklearn.model_selection import GridSearchCV
    from skorch.callbacks import ProgressBar

    X, y = _data("regressor")
    grid = {"lr": np.logspace(-3, -2, 2)}  # NumPy numbers, stored as numbers
    reg = NetRegressor(
        **SMALL, checkpoint=tmp_path / "{params}-{data}", callbacks=[Trained()]
    )
    first = GridSearchCV(reg, grid, cv=2).fit(X, y)
    assert len(list(tmp_path.iterdir())) == 2 * 2 + 1  # and the refit
    Trained.epochs.clear()
    # A progress bar only watches: the runs are the same.
    reg.set_params(callbacks=[Trained(), ProgressBar()])
    again = GridSearchCV(reg, grid, cv=2).fit(X, y)
    assert Trained.epochs == []  # every run is read back
    np.testing.assert_array_equal(
        again.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"]
    )
    with pytest.raises(CheckpointError, match=r"runs/\{params\}-\{data\}"):
        # Candidates meet in a directory that names only the data.
        GridSearchCV(
            reg.set_params(checkpoint=tmp_path / "only" / "{data}"),
            grid,
            cv=2,
            error_score="raise",
        ).fit(X, y)


class ScaleGradients(Callback):
    """Scale the gradients before each step (freezes the network at 0)."""

    def __init__(self, factor):
        self.factor = factor

    def on_grad_computed(self, net, named_parameters, **kwargs):
        for _, parameter in named_parameters:
            parameter.grad.mul_(self.factor)


def test_candidates_differing_in_a_callback_keep_their_own_runs(tmp_path):
    # They shared a {params} directory: the frozen candidate read back the
    # other's finished run and reported its score.
    from sklearn.model_selection import GridSearchCV

    X, y = _data("regressor")
    grid = {"callbacks": [None, [ScaleGradients(0.0)], [ScaleGradients(0.5)]]}
    plain = GridSearchCV(NetRegressor(**SMALL), grid, cv=2, refit=False).fit(X, y)
    reg = NetRegressor(**SMALL, checkpoint=tmp_path / "{params}-{data}")
    runs = GridSearchCV(reg, grid, cv=2, refit=False).fit(X, y)
    assert len(list(tmp_path.iterdir())) == 3 * 2
    scores = runs.cv_results_["mean_test_score"]
    np.testing.assert_array_equal(scores, plain.cv_results_["mean_test_score"])
    assert len(set(scores)) == 3
    described = json.loads(next(tmp_path.glob("*/run.json")).read_text())
    assert set(described) == {"estimator", "params", "callbacks", "data"}


class Frozen(Callback):
    """A callback holding objects as parameters, as skorch's Freezer does."""

    def __init__(self, patterns, lock=None, schedule=None):
        self.patterns = patterns
        self.lock = lock
        self.schedule = schedule


def test_callbacks_differing_in_an_object_parameter_are_told_apart():
    # Before: any object parameter was described by its type alone, so two
    # candidates freezing other layers (compiled patterns) shared a run.
    import re
    import threading

    from sklearn.preprocessing import StandardScaler

    from skestimators._engine._fingerprint import callbacks_fingerprint

    def text(callback):
        return callbacks_fingerprint([callback])

    assert text(Frozen(re.compile("conv"))) != text(Frozen(re.compile("head")))
    assert text(Frozen(re.compile("conv"))) == text(Frozen(re.compile("conv")))
    # scikit-learn-style objects by their parameters
    assert text(Frozen("x", schedule=StandardScaler())) != text(
        Frozen("x", schedule=StandardScaler(with_mean=False))
    )
    # objects whose text holds a memory address: by their type, the same
    # across fits (a rerun finds its run again)
    (shown,) = text(Frozen("x", lock=threading.Lock()))
    assert shown == text(Frozen("x", lock=threading.Lock()))[0]
    assert "0x" not in shown and "lock" in shown


def test_two_fits_of_one_run_at_once_are_told_apart_from_clones(tmp_path):
    X, y = _data("regressor")
    for template, message in [
        (tmp_path / "both" / "{params}-{data}", "the same fit runs twice"),
        # Naming only the data: the candidates of a search meet.
        (tmp_path / "data" / "{data}", r"name them in the directory, checkpoint="),
    ]:
        NetRegressor(**SMALL, checkpoint=template).fit(X, y)
        (run,) = template.parent.iterdir()
        holder = CheckpointStore(run, "NetRegressor", {}, {}).acquire()
        try:
            with pytest.raises(CheckpointError, match=message):
                NetRegressor(**SMALL, checkpoint=template).fit(X, y)
        finally:
            holder.release()


def test_an_empty_directory_is_refused_and_a_tilde_is_home(tmp_path, monkeypatch):
    X, y = _data("regressor")
    with pytest.raises(ValueError, match="checkpoint='' is empty"):
        NetRegressor(**SMALL, checkpoint="").fit(X, y)
    monkeypatch.setenv("HOME", str(tmp_path))
    NetRegressor(**SMALL, checkpoint="~/runs/{data}").fit(X, y)
    assert len(list((tmp_path / "runs").glob("*/checkpoint.pt"))) == 1


def test_numpy_hyperparameters_checkpoint_and_resume(tmp_path):
    # The optimizer's groups held np.float64 learning rates, which a safe
    # load refuses: every checkpointed fit failed at epoch 1.
    X, y = _data("regressor")
    options = dict(SMALL, lr=np.float64(3e-3), weight_decay=np.float32(1e-4))
    with pytest.raises(RuntimeError, match="simulated crash"):
        NetRegressor(**options, checkpoint=tmp_path, callbacks=[CrashAt(3)]).fit(X, y)
    resumed = NetRegressor(**options, checkpoint=tmp_path).fit(X, y)
    straight = NetRegressor(**options).fit(X, y)
    np.testing.assert_array_equal(resumed.predict(X), straight.predict(X))
    # A NumPy number is the same parameter as the Python number it holds.
    same = {"lr": 3e-3, "weight_decay": float(np.float32(1e-4))}
    NetRegressor(**SMALL | same, checkpoint=tmp_path).fit(X, y)


@pytest.mark.parametrize(
    "name, message",
    [
        ("runs/{fold}", r"names \{fold\}; a checkpoint directory may name only"),
        ("runs/{data:>20}", r"names \{data:>20\}"),
        ("runs/{data!r}", r"names \{data!r\}"),
        ("runs/{", "not a valid directory template"),
    ],
)
def test_a_directory_naming_anything_else_is_refused_before_training(
    tmp_path, name, message
):
    X, y = _data("regressor")
    with pytest.raises(ValueError, match=message):
        NetRegressor(**SMALL, checkpoint=str(tmp_path / name)).fit(X, y)
    assert not (tmp_path / "runs").exists()
    # Literal braces are written doubled.
    NetRegressor(**SMALL, checkpoint=str(tmp_path / "{{x}}")).fit(X, y)
    assert (tmp_path / "{x}" / "checkpoint.pt").exists()
