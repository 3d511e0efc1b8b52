"""User callbacks run beside the engine's, see every metric, clone and pickle."""

import pickle
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import EpochScoring

from skestimators import MultiInput, NetClassifier, SpectraAuxClassifier
from skestimators._engine import Callback

from .conftest import FAST


class Recorder(Callback):
    """Records the events it sees and the history rows at each epoch end."""

    def __init__(self, tag="r"):
        self.tag = tag

    def initialize(self):
        self.events_ = []
        self.rows_ = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.events_.append("train_begin")

    def on_epoch_end(self, net, **kwargs):
        self.events_.append("epoch_end")
        self.rows_.append(dict(net.history[-1]))

    def on_train_end(self, net, **kwargs):
        self.events_.append("train_end")
        self.final_weights_ = {
            k: v.clone() for k, v in net.module_.state_dict().items()
        }


@pytest.fixture(scope="module")
def spectra():
    rng = np.random.RandomState(0)
    X = MultiInput(spectra=rng.normal(size=(200, 12, 3)), aux=rng.normal(size=(200, 4)))
    y = pd.DataFrame(
        {
            "water": (X["spectra"][:, :, 1].mean(1) > 0).astype(int),
            "cloud": (X["aux"][:, 0] > 0).astype(int),
        }
    )
    return X, y


def test_user_callback_sees_every_epoch_and_per_target_metrics(spectra):
    X, y = spectra
    recorder = Recorder()
    clf = SpectraAuxClassifier(
        **dict(FAST, max_epochs=40), width=8, patience=2, callbacks=[("rec", recorder)]
    ).fit(X, y)
    assert recorder.events_[0] == "train_begin" and recorder.events_[-1] == "train_end"
    # Every epoch, the last one of an early stop included, reached the callback.
    assert recorder.events_.count("epoch_end") == clf.n_iter_ == len(clf.history_)
    assert clf.n_iter_ < 40  # early stopping did stop
    last = recorder.rows_[-1]
    for key in ("valid_water_accuracy", "valid_cloud_roc_auc", "valid_loss"):
        assert last[key] == pytest.approx(clf.history_[key].iloc[-1])
    # At train end, the best epoch's weights are already restored.
    final = clf.net_.module_.state_dict()
    assert all(torch.equal(final[k], recorder.final_weights_[k]) for k in final)


def test_callbacks_run_in_the_documented_order(blobs):
    X, y = blobs
    clf = NetClassifier(
        **FAST,
        lr_scheduler="cosine",
        verbose=1,
        callbacks=[Recorder(), ("second", Recorder("b"))],
        checkpoint=None,
    ).fit(X, y)
    names = [name for name, _ in clf.net_.callbacks_]
    assert names == [
        "epoch_timer",
        "early_stopping",
        "lr_scheduler",
        "Recorder",
        "second",
        "progress",
        "stop_training",
    ]


@pytest.mark.parametrize(
    "callbacks, error, match",
    [
        ([Recorder(), Recorder()], ValueError, "two callbacks are named 'Recorder'"),
        ([("early_stopping", Recorder())], ValueError, "used by the engine"),
        ([Recorder], TypeError, "instance of a skorch Callback"),
        ([("a", "b", "c")], ValueError, r"\(name, callback\) pairs"),
        ([object()], TypeError, "instance of a skorch Callback"),
        ([EpochScoring("r2")], TypeError, "EpochScoring is not supported"),
    ],
)
def test_bad_callbacks_are_refused_clearly(blobs, callbacks, error, match):
    X, y = blobs
    with pytest.raises(error, match=match):
        NetClassifier(**FAST, callbacks=callbacks).fit(X, y)


def test_callbacks_are_cloned_and_pickled_with_the_estimator(blobs):
    X, y = blobs
    clf = NetClassifier(**FAST, callbacks=[("rec", Recorder())])
    copy = clone(clf)
    assert copy.callbacks[0][1] is not clf.callbacks[0][1]
    clf.fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.callbacks[0][1].events_.count("epoch_end") == clf.n_iter_
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_callbacks_in_pipeline_and_grid_search(blobs):
    X, y = blobs
    pipe = make_pipeline(
        StandardScaler(), NetClassifier(**FAST, callbacks=[("rec", Recorder())])
    )
    search = GridSearchCV(pipe, {"netclassifier__lr": [0.01, 0.02]}, cv=2).fit(X, y)
    best = search.best_estimator_[-1]
    assert best.callbacks[0][1].events_.count("epoch_end") == best.n_iter_


def test_on_grad_computed_is_called_when_defined(blobs):
    X, y = blobs

    class GradNorms(Callback):
        def initialize(self):
            self.norms_ = []
            return self

        def on_grad_computed(self, net, named_parameters, **kwargs):
            total = sum(p.grad.norm() ** 2 for _, p in named_parameters)
            self.norms_.append(float(total) ** 0.5)

    grads = GradNorms()
    clf = NetClassifier(**FAST, validation_fraction=None, callbacks=[grads])
    clf.fit(X, y)
    n_batches = int(np.ceil(len(X) / FAST["batch_size"]))
    assert len(grads.norms_) == n_batches * clf.n_iter_
    assert all(np.isfinite(grads.norms_))


def test_fit_then_partial_fit_twice_at_defaults(blobs):
    X, y = blobs
    clf = NetClassifier(max_epochs=3, random_state=0, device="cpu").fit(X, y)
    clf.partial_fit(X, y).partial_fit(X, y)
    assert clf.n_iter_ == 5
    # Epochs trained by partial_fit have no validation split.
    assert clf.history_["valid_loss"].isna().tolist() == [False] * 3 + [True] * 2
    assert clf.score(X, y) > 0.5


def _ctrl_c():
    signal.raise_signal(signal.SIGINT)  # as Ctrl-C: a signal, not a callback's stop


class InterruptAt(Callback):
    """Raise KeyboardInterrupt in epoch ``epoch``: as Ctrl-C would
    (``deliberate=False``), or as a callback stopping training does."""

    def __init__(self, epoch, deliberate=False):
        self.epoch = epoch
        self.deliberate = deliberate

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            if self.deliberate:
                raise KeyboardInterrupt  # skorch's way for a callback to stop
            _ctrl_c()


def test_ctrl_c_reaches_the_caller_and_keeps_the_epochs_done(blobs, tmp_path):
    # skorch swallows KeyboardInterrupt; a Ctrl-C must still stop the
    # program, with the finished epochs kept (and checkpointed).
    X, y = blobs
    params = dict(FAST, max_epochs=6, validation_fraction=None)
    clf = NetClassifier(**params, callbacks=[InterruptAt(3)], checkpoint=tmp_path)
    with pytest.raises(KeyboardInterrupt, match="after 2 epoch.*resume"):
        clf.fit(X, y)
    assert clf.n_iter_ == 2 and clf.predict(X).shape == y.shape
    resumed = NetClassifier(**params, checkpoint=tmp_path).fit(X, y)
    reference = NetClassifier(**params).fit(X, y)
    assert resumed.n_iter_ == 6
    np.testing.assert_allclose(
        resumed.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    # A callback raising it on purpose still just ends training, with the
    # epochs it completed (the one cut short is not counted).
    clf = NetClassifier(**params, callbacks=[InterruptAt(3, deliberate=True)])
    assert clf.fit(X, y).n_iter_ == 2


class SignalInCallback(Callback):
    """Ctrl-C arriving while a callback's own code runs (a slow logger)."""

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_a_callback_is_not_taken_for_a_stop(blobs):
    # The exception's innermost frame is the callback's: it was taken for a
    # deliberate stop, and fit returned normally after 2 of 5 epochs.
    X, y = blobs
    clf = NetClassifier(**FAST, callbacks=[SignalInCallback()])
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's
    try:
        with pytest.raises(KeyboardInterrupt, match="after 2 epoch"):
            clf.fit(X, y)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_users_early_stopping_finishes_the_checkpointed_fit(blobs, tmp_path):
    # skorch's EarlyStopping stops by raising in on_epoch_end, before the
    # engine's checkpoint of that epoch: the checkpoint was never marked
    # done, and fitting again trained past the stop.
    from skorch.callbacks import EarlyStopping

    X, y = blobs

    def make():
        return NetClassifier(
            **dict(FAST, max_epochs=40, lr=0.05, early_stopping=False),
            callbacks=[("mine", EarlyStopping(patience=1, load_best=False))],
            checkpoint=tmp_path,
        )

    first = make().fit(X, y)
    assert first.n_iter_ < 40
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["done"] and state["epoch"] == first.n_iter_
    again = make().fit(X, y)
    assert again.n_iter_ == first.n_iter_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


class FailsAt(Callback):
    def __init__(self, where):
        self.where = where

    def initialize(self):
        if self.where == "initialize":
            raise RuntimeError("logger could not connect")
        return super().initialize()

    def on_batch_end(self, net, **kwargs):
        if self.where == "batch":
            raise RuntimeError("logger lost connection")


@pytest.mark.parametrize("where", ["initialize", "batch"])
def test_a_failing_callback_leaves_the_estimator_as_before(blobs, where):
    # The error of initialize() was hidden behind an AttributeError, and a
    # fit that failed mid-epoch left a half-trained network that predicted.
    from sklearn.exceptions import NotFittedError

    X, y = blobs
    clf = NetClassifier(**FAST, callbacks=[FailsAt(where)])
    with pytest.raises(RuntimeError, match="logger"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    fitted = NetClassifier(**FAST).fit(X, y)
    expected = fitted.predict_proba(X)
    with pytest.raises(RuntimeError, match="logger"):
        fitted.set_params(callbacks=[FailsAt(where)]).fit(X, y)
    np.testing.assert_array_equal(fitted.predict_proba(X), expected)


def test_skorchs_own_checkpoint_print_log_and_batch_records(blobs, tmp_path, capsys):
    # skorch's Checkpoint failed at epoch 1 (no valid_loss_best in the
    # history), PrintLog shifted its columns after the first row (a key of
    # that row only) and printed nothing at verbose=1, and the batch rows
    # held no losses.
    from skorch.callbacks import Checkpoint, PrintLog

    X, y = blobs
    clf = NetClassifier(
        **dict(FAST, max_epochs=4),
        verbose=1,
        callbacks=[Checkpoint(dirname=str(tmp_path)), PrintLog()],
    ).fit(X, y)
    history = clf.net_.history
    losses = history[:, "valid_loss"]
    assert history[:, "valid_loss_best"] == [
        v < min(losses[:i], default=np.inf) for i, v in enumerate(losses)
    ]
    assert (tmp_path / "params.pt").exists()  # saved at the best epochs
    assert not {"valid_loss_best", "train_loss_best"} & set(clf.history_)
    table = [line for line in capsys.readouterr().out.splitlines() if "|" not in line]
    header = next(line for line in table if "train_loss" in line)
    rows = [line.split() for line in table if line.split()[:1] in (["2"], ["4"])]
    assert len(rows) == 2 and all(len(r) == len(header.split()) for r in rows)
    # Each batch's loss and size, as skorch records them.
    batches = history[-1, "batches"]
    n_train = history[-1, "train_batch_count"]
    assert [b["train_batch_size"] for b in batches[:n_train]][0] == FAST["batch_size"]
    sizes = np.array([b["train_batch_size"] for b in batches[:n_train]])
    train = np.array(history[-1, "batches", :n_train, "train_loss"])
    assert np.average(train, weights=sizes) == pytest.approx(history[-1, "train_loss"])
    assert "valid_loss" in batches[-1]
