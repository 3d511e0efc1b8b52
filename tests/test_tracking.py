"""Experiment loggers: what each tool holds after a fit, read with its own reader."""

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback
from skorch.history import History

from skestimators import NetClassifier, NetRegressor
from skestimators.model_selection import OptunaSearchCV, compare_variants
from skestimators.tracking import MLflowLogger, TensorBoardLogger, WandbLogger
from skestimators.tracking._common import (
    MAX_VALUE_LENGTH,
    epoch_metrics,
    estimator_params,
    loggable,
)

pytestmark = [
    # One worker runs them all, so that the MLflow database is created once.
    pytest.mark.xdist_group("tracking"),
    # MLflow's SQL store still uses a loader strategy SQLAlchemy 2.1 deprecates.
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    ),
]

FAST = dict(max_epochs=3, batch_size=32, device="cpu", random_state=0)
LOGGERS = [
    TensorBoardLogger("runs", prefix="p"),
    MLflowLogger("sqlite:///x.db", run_name="r", tags={"a": "b"}),
    WandbLogger("project", dir="wandb", group="g", tags=["t"]),
]


@pytest.fixture(scope="module")
def data():
    X, y = make_regression(100, 4, noise=5.0, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def two_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 5)).astype(np.float32)
    y = pd.DataFrame(
        {"water": (X[:, 0] > 0).astype(int), "cloud": (X[:, 1] > 0).astype(int)}
    )
    return X, y


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    pytest.importorskip("mlflow", reason="needs the tracking extra")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def no_telemetry(monkeypatch):
    # MLflow reports usage over the network unless told not to.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture
def client(mlflow_uri, no_telemetry):
    from mlflow.tracking import MlflowClient

    return MlflowClient(mlflow_uri)


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B offline, silent, writing only under ``tmp_path``."""
    pytest.importorskip("wandb", reason="needs the tracking extra")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR", "ARTIFACT_DIR"):
        monkeypatch.setenv(f"WANDB_{name}", str(tmp_path / f"wandb_{name.lower()}"))
    return tmp_path


def _experiment(request):
    """An experiment name of its own for each test."""
    return request.node.name.replace("[", "-").replace("]", "")


def _crashed(logger, name, data, tmp_path):
    """A checkpointed fit logged by ``logger`` that crashes in epoch 2: the
    estimator, set to resume without the crash, and the crashed run."""
    params = dict(FAST, max_epochs=4, checkpoint=tmp_path / "ckpt")
    est = NetRegressor(callbacks=[(name, logger), ("fail", _FailAt(2))], **params)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(*data)
    return est.set_params(callbacks=[(name, logger)]), logger._run_ref()


class _FailAt(Callback):
    """Raise at the end of epoch ``epoch`` (a fit that crashes)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError("boom")


def _mlflow_logger_for(client, request, tmp_path):
    return MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )


def _tensorboard_logger_for(client, request, tmp_path):
    return TensorBoardLogger(tmp_path / "tb")


# -- what is logged ----------------------------------------------------------------
def test_loggable_values():
    assert loggable(3) == 3 and loggable(0.5) == 0.5 and loggable(None) is None
    assert loggable(True) is True and loggable("adam") == "adam"
    assert loggable(np.float32(0.25)) == 0.25 and isinstance(loggable(np.int64(2)), int)
    assert loggable((16, 8)) == "(16, 8)"
    long = loggable(list(range(1000)))
    assert len(long) == MAX_VALUE_LENGTH and long.endswith("...")


def test_epoch_metrics_skip_bookkeeping_bools_and_nan():
    class Net:
        history = History()

    net = Net()
    net.history.new_epoch()
    row = dict(
        epoch=4, batches=[], train_loss=0.5, valid_loss=float("nan"),
        valid_loss_best=True, dur=np.float64(0.1), note="text",
        valid_r2=torch.tensor(0.75),
    )  # fmt: skip
    for key, value in row.items():
        net.history.record(key, value)
    step, metrics = epoch_metrics(net)
    assert step == 4
    assert metrics == {"train_loss": 0.5, "dur": 0.1, "valid_r2": 0.75}


def test_params_of_a_plain_skorch_net():
    net = NeuralNetRegressor(torch.nn.Linear(2, 1), lr=0.1)
    name, params = estimator_params(net)
    assert name == "NeuralNetRegressor"
    assert params["lr"] == 0.1 and params["module"].startswith("Linear(")
    assert not any(k.startswith("_") for k in params)


@pytest.mark.parametrize("logger", LOGGERS, ids=lambda x: type(x).__name__)
def test_unfitted_logger_pickles_copies_and_clones(logger):
    for other in (
        pickle.loads(pickle.dumps(logger)),
        copy.deepcopy(logger),
        clone(logger),
    ):
        assert type(other) is type(logger)
        assert other.get_params() == logger.get_params()


def test_missing_library_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    net = NetRegressor(callbacks=[WandbLogger()], **FAST)
    with pytest.raises(ImportError, match=r"skestimators\[tracking\]"):
        net.fit(*data)


# -- TensorBoard -------------------------------------------------------------------
def _scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(log_dir, size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def test_tensorboard_plain_skorch_net(tmp_path, data):
    pytest.importorskip("tensorboard", reason="needs the tracking extra")
    X, y = data
    logger = TensorBoardLogger(tmp_path)
    net = NeuralNetRegressor(
        torch.nn.Linear(4, 1), max_epochs=2, callbacks=[("tb", logger)], verbose=0
    ).fit(X, y.reshape(-1, 1).astype(np.float32))
    assert Path(logger.log_dir_).parent == tmp_path
    assert Path(logger.log_dir_).name.startswith("NeuralNetRegressor-")
    events = _scalars(logger.log_dir_)
    logged = [(e.step, e.value) for e in events.Scalars("valid_loss")]
    expected = [(row["epoch"], row["valid_loss"]) for row in net.history]
    np.testing.assert_allclose(logged, expected, rtol=1e-6)


def test_tensorboard_resumed_checkpoint_run_holds_the_whole_curve(tmp_path, data):
    pytest.importorskip("tensorboard", reason="needs the tracking extra")
    logger = TensorBoardLogger(tmp_path / "runs")
    est, crashed = _crashed(logger, "tb", data, tmp_path)
    est.fit(*data)
    assert logger.log_dir_ != crashed
    for folder, n in ((logger.log_dir_, 4), (crashed, 2)):
        logged = [(e.step, e.value) for e in _scalars(folder).Scalars("train_loss")]
        expected = list(est.history_["train_loss"].items())[:n]
        np.testing.assert_allclose(logged, expected, rtol=1e-6)
    # The run says which run it continues, and its checkpoint (TEXT tab).
    texts = _scalars(logger.log_dir_).Tags()["tensors"]
    assert {"skestimators.resumed_from/text_summary", "params/text_summary"} <= set(
        texts
    )
    assert "skestimators.checkpoint/text_summary" in texts


def test_tensorboard_net_regressor(tmp_path, data):
    pytest.importorskip("tensorboard", reason="needs the tracking extra")
    logger = TensorBoardLogger(tmp_path)
    est = NetRegressor(callbacks=[("tb", logger)], **FAST).fit(*data)
    first = logger.log_dir_
    events = _scalars(first)
    assert sorted(events.Tags()["scalars"]) == sorted(est.history_)
    for column in est.history_:
        logged = events.Scalars(column)
        assert [e.step for e in logged] == est.history_.index.tolist()
        np.testing.assert_allclose(
            [e.value for e in logged], est.history_[column], rtol=1e-6
        )
    (text,) = events.Tensors("params/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    assert "**NetRegressor**" in table and "| max_epochs | 3 |" in table
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    # Picklable after a fit, with the estimator; a new fit is a new run.
    restored = pickle.loads(pickle.dumps(est))
    assert dict(restored.net_.callbacks_)["tb"].log_dir_ == first
    est.fit(*data)
    assert logger.log_dir_ != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(first).name, Path(logger.log_dir_).name]
    )


def test_tensorboard_prefix_names_the_run(tmp_path, data):
    pytest.importorskip("tensorboard", reason="needs the tracking extra")
    logger = TensorBoardLogger(tmp_path / "runs", prefix="small")
    NetRegressor(callbacks=[logger], **dict(FAST, max_epochs=1)).fit(*data)
    assert Path(logger.log_dir_).name.startswith("small-")


# -- MLflow ------------------------------------------------------------------------
def test_model_files_hold_numpy_numbers_a_callback_recorded(data):
    # skorch's History.to_file is a plain json.dump: an np.int64 in the
    # history failed every run that logged the model (status FAILED).
    from skestimators.tracking._common import model_files

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("steps", np.int64(len(net.history) * 3))
            net.history.record("norm", np.float32(1.5))

    est = NetRegressor(callbacks=[("record", Record())], **FAST).fit(*data)
    with model_files(est.net_) as folder:
        rows = json.loads(Path(folder, "history.json").read_text())
    assert [(row["steps"], row["norm"]) for row in rows] == [
        (3, 1.5),
        (6, 1.5),
        (9, 1.5),
    ]


def test_a_continuing_fit_logs_its_own_parameters(data, client, request):
    # The parameters recorded when the network was built were logged again
    # for every warm-started fit: lr=0.001 for a fit at 0.01.
    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    est = NetRegressor(callbacks=[("mlflow", logger)], **{**FAST, "lr": 1e-3})
    est.fit(*data)
    est.set_params(warm_start=True, lr=1e-2, batch_size=16, max_epochs=1).fit(*data)
    params = client.get_run(logger.run_id_).data.params
    assert (params["lr"], params["batch_size"], params["warm_start"]) == (
        "0.01",
        "16",
        "True",
    )


class _PoisonLastUpdate(Callback):
    """The last training step makes the weights NaN (its loss was finite):
    one batch per epoch, poisoned in the last epoch."""

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == net.max_epochs:
            with torch.no_grad():
                for parameter in net.module_.parameters():
                    parameter.fill_(float("nan"))


class _NaNWhenEvaluating(torch.nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(input_shape[0], n_outputs)

    def forward(self, x):
        out = self.lin(x)
        return out if self.training else out * float("nan")


@pytest.mark.parametrize("failure", ["last update", "validation", "early stopped"])
def test_failures_seen_after_the_last_epoch_end_the_run_failed(
    tmp_path, data, client, request, failure
):
    # Both were found once training had ended: the run was FINISHED with the
    # model uploaded, and the checkpoint marked complete with NaN weights.
    from skestimators.exceptions import TrainingDivergedError

    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    settings = {**FAST, "callbacks": [("mlflow", logger)], "max_epochs": 2}
    settings["checkpoint"] = str(tmp_path / "ck")
    if failure == "last update":  # an update gone wrong, after a finite loss
        settings.update(early_stopping=False, validation_fraction=None, batch_size=128)
        settings["callbacks"] = [
            ("poison", _PoisonLastUpdate()),
            *settings["callbacks"],
        ]
        error = TrainingDivergedError
    else:  # early stopping ends training by raising, before those checks
        settings.update(module=_NaNWhenEvaluating, validation_fraction=0.2)
        if failure == "early stopped":
            settings.update(max_epochs=5, patience=1)
        error = ValueError
    with pytest.raises(error, match="last update|not finite in any"):
        NetRegressor(**settings).fit(*data)
    assert client.get_run(logger.run_id_).info.status == "FAILED"
    assert not client.list_artifacts(logger.run_id_, "model")
    kept = tmp_path / "ck" / "checkpoint.pt"
    if kept.exists():  # never marked complete: a rerun trains again
        assert not torch.load(kept, weights_only=True)["done"]


def test_mlflow_two_targets(tmp_path, two_targets, client, request):
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), tags={"team": "x"}
    )
    est = NetClassifier(callbacks=[("mlflow", logger)], **FAST).fit(*two_targets)
    run = client.get_run(logger.run_id_)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "NetClassifier"
    assert run.data.tags["estimator"] == "NetClassifier"
    assert run.data.tags["team"] == "x"
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.params["max_epochs"] == "3"
    assert run.data.params["random_state"] == "0"
    assert "callbacks" not in run.data.params
    assert (
        "valid_water_roc_auc" in est.history_ and "valid_cloud_accuracy" in est.history_
    )
    for column in est.history_:
        history = client.get_metric_history(logger.run_id_, column)
        assert [m.step for m in history] == est.history_.index.tolist()
        np.testing.assert_allclose(
            [m.value for m in history], est.history_[column], rtol=1e-6
        )
    names = sorted(a.path for a in client.list_artifacts(logger.run_id_, "model"))
    assert names == ["model/history.json", "model/module_state_dict.pt"]
    folder = client.download_artifacts(logger.run_id_, "model", str(tmp_path))
    state = torch.load(Path(folder) / "module_state_dict.pt")
    for key, value in est.net_.module_.state_dict().items():
        torch.testing.assert_close(state[key], value)
    epochs = [
        row["epoch"] for row in json.loads(Path(folder, "history.json").read_text())
    ]
    assert epochs == [1, 2, 3]
    # Artifacts live beside the database, not in the working directory.
    assert run.info.artifact_uri.startswith(
        (Path(client.tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    )
    restored = pickle.loads(pickle.dumps(logger))
    assert restored.run_id_ == logger.run_id_
    assert not hasattr(restored, "client_")


def test_mlflow_failed_fit_then_new_run(data, client, request):
    # A fit that raised left its run RUNNING until the next fit.
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est = NetRegressor(callbacks=[("mlflow", logger), ("fail", _FailAt(2))], **FAST)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(*data)
    failed = logger.run_id_
    assert client.get_run(failed).info.status == "FAILED"
    assert len(client.get_metric_history(failed, "train_loss")) == 2
    copy.deepcopy(logger)
    est.set_params(callbacks=[("mlflow", logger)]).fit(*data)
    assert logger.run_id_ != failed
    assert client.get_run(failed).info.status == "FAILED"
    assert client.get_run(logger.run_id_).info.status == "FINISHED"
    assert client.list_artifacts(logger.run_id_) == []


def test_mlflow_resumed_checkpoint_run_holds_the_whole_curve(
    data, client, request, tmp_path
):
    # A resumed fit's run began at the resumed epoch, and a finished
    # checkpoint loaded again gave a run with no curve at all.
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est, crashed = _crashed(logger, "mlflow", data, tmp_path)
    client.update_run(crashed, status="RUNNING")  # as a SIGKILLed process leaves it
    est.fit(*data)
    resumed = logger.run_id_
    assert client.get_run(crashed).info.status == "KILLED"  # it stayed RUNNING
    losses = list(est.history_["train_loss"])
    for run in (resumed, crashed):
        curve = client.get_metric_history(run, "train_loss")
        steps = sorted((m.step, m.value) for m in curve)
        n = 4 if run == resumed else 2
        assert [step for step, _ in steps] == list(range(1, n + 1))
        np.testing.assert_allclose([v for _, v in steps], losses[:n], rtol=1e-6)
    # Loaded again, finished: the new run still holds the curve.
    est.fit(*data)
    assert logger.run_id_ not in (crashed, resumed)
    curve = client.get_metric_history(logger.run_id_, "train_loss")
    assert sorted(m.step for m in curve) == [1, 2, 3, 4]
    assert client.get_run(logger.run_id_).info.status == "FINISHED"
    # Told apart: each run names its checkpoint and the run it continues, and
    # the run of a checkpoint only read back says so (a rerun cross-validation
    # gave copies of its finished folds that nothing marked).
    tags = {r: client.get_run(r).data.tags for r in (resumed, logger.run_id_)}
    assert tags[resumed]["skestimators.resumed_from"] == crashed
    assert "skestimators.reloaded" not in tags[resumed]
    assert tags[logger.run_id_]["skestimators.resumed_from"] == resumed
    assert tags[logger.run_id_]["skestimators.reloaded"] == "true"
    assert tags[resumed]["skestimators.checkpoint"] == str(tmp_path / "ckpt")

    # A tracker that fails while the earlier epochs are logged again: a
    # warning, and the resumed fit goes on (it was a CheckpointError).
    def refuse(epochs):
        raise ValueError("tracking server gone")

    failing = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est.set_params(callbacks=[("mlflow", failing)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(failing, "_log_epochs", refuse)
        with pytest.warns(UserWarning, match="could not log the 4 epoch.*gone"):
            est.fit(*data)
    # Plain fits and warm starts log each epoch once.
    plain = NetRegressor(callbacks=[("mlflow", logger)], **FAST).fit(*data)
    curve = client.get_metric_history(logger.run_id_, "train_loss")
    assert sorted(m.step for m in curve) == [1, 2, 3]
    # The history it read is not kept, nor taken for a parameter.
    kept = pickle.loads(pickle.dumps(dict(plain.net_.callbacks_)["mlflow"]))
    assert "_history_" not in kept.__dict__
    assert all(not name.startswith("_") for name in logger.get_params())


def test_plain_skorch_net_failed_fit_closed_by_the_next(data, client, request):
    # skorch's own NeuralNet does not tell its callbacks that a fit raised:
    # the next fit ends that run.
    X, y = data
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    net = NeuralNetRegressor(
        torch.nn.Linear(4, 1),
        max_epochs=2,
        callbacks=[("mlflow", logger), ("fail", _FailAt(1))],
        verbose=0,
    )
    target = y.reshape(-1, 1).astype(np.float32)
    with pytest.raises(RuntimeError, match="boom"):
        net.fit(X, target)
    failed = logger.run_id_
    assert client.get_run(failed).info.status == "RUNNING"
    copy.deepcopy(logger)  # an open run does not stop copies
    net.set_params(callbacks=[("mlflow", logger)]).fit(X, target)
    assert client.get_run(failed).info.status == "FAILED"
    assert client.get_run(logger.run_id_).info.status == "FINISHED"


def _raising(method, error):
    """A callback raising ``error`` in ``method`` (a fit that crashes there)."""

    def fail(self, net, **kwargs):
        raise error

    return type("Raise", (Callback,), {method: fail})()


@pytest.mark.parametrize("method", ["on_train_begin", "on_epoch_end", "on_train_end"])
def test_mlflow_fit_that_raises_fails_its_run(data, client, request, method):
    # Only divergence and Ctrl-C ended the run: any other error left it
    # RUNNING (W&B: closed at exit as a success).
    error = LookupError("user callback")
    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    callbacks = [("mlflow", logger), ("raise", _raising(method, error))]
    if method == "on_train_end":  # before the logger ends its run
        callbacks.reverse()
    est = NetRegressor(callbacks=callbacks, **FAST)
    with pytest.raises(LookupError) as raised:
        est.fit(*data)
    assert raised.value is error  # the error goes on unchanged
    assert client.get_run(logger.run_id_).info.status == "FAILED"
    assert client.list_artifacts(logger.run_id_) == []


def test_logger_that_cannot_fail_its_run_keeps_the_error(
    data, client, request, monkeypatch
):
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )

    def server_down(*args, **kwargs):
        raise ConnectionError("tracking server down")

    monkeypatch.setattr(type(client), "set_terminated", server_down)
    est = NetRegressor(callbacks=[("mlflow", logger), ("fail", _FailAt(1))], **FAST)
    with pytest.warns(UserWarning, match="'mlflow'.*server down"):
        with pytest.raises(RuntimeError, match="boom"):
            est.fit(*data)


@pytest.mark.parametrize("where", ["fit", "search"])
def test_mlflow_nests_under_the_active_run(data, client, request, where):
    # A search fits its folds in threads of their own, where MLflow's active
    # run (per thread) was none: the folds' runs had no parent.
    import mlflow
    from optuna.distributions import FloatDistribution

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(client.tracking_uri)
    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    net = NetRegressor(callbacks=[logger], **dict(FAST, max_epochs=1))
    try:
        with mlflow.start_run() as active:
            if where == "fit":
                net.fit(*data)
            else:
                OptunaSearchCV(
                    net,
                    {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
                    n_trials=1,
                    cv=2,
                    refit=False,
                ).fit(*data)
    finally:
        mlflow.set_tracking_uri(previous)
    experiment = client.get_experiment_by_name(_experiment(request))
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == (1 if where == "fit" else 2)
    for run in runs:
        assert run.data.tags["mlflow.parentRunId"] == active.info.run_id


def _children(client, parent):
    experiment = parent.info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    return client.search_runs([experiment], query)


def _parent(client, request, name):
    experiment = client.get_experiment_by_name(_experiment(request))
    query = "tags.`mlflow.runName` = '" + name + "'"
    (parent,) = client.search_runs([experiment.experiment_id], query)
    return parent


def test_compare_variants_nested_runs_in_parallel(data, client, request):
    from sklearn.compose import TransformedTargetRegressor

    variants = {
        "a": NetRegressor(**FAST),
        "b": make_pipeline(StandardScaler(), NetRegressor(**FAST)),
        # As soc_pipeline() wraps its network: its folds were not tracked.
        "c": TransformedTargetRegressor(
            make_pipeline(StandardScaler(), NetRegressor(**FAST)),
            transformer=StandardScaler(),
        ),
        "ridge": Ridge(),
    }
    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    results = compare_variants(variants, *data, cv=2, n_jobs=2, tracking=logger)
    assert len(results) == 8
    assert not hasattr(logger, "run_id_")  # the user's logger is only a template
    parent = _parent(client, request, "compare_variants")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["variants"] == "a, b, c, ridge"
    children = _children(client, parent)
    names = sorted(run.info.run_name for run in children)
    assert names == [
        "a/repeat0/fold0", "a/repeat0/fold1", "b/repeat0/fold0", "b/repeat0/fold1",
        "c/repeat0/fold0", "c/repeat0/fold1",
    ]  # fmt: skip
    for run in children:
        variant, _, fold = run.info.run_name.split("/")
        assert run.info.status == "FINISHED"
        assert run.data.tags["variant"] == variant
        assert run.data.tags["fold"] == fold[-1] and run.data.tags["repeat"] == "0"
        assert run.data.params["max_epochs"] == "3"
        steps = client.get_metric_history(run.info.run_id, "valid_loss")
        assert [m.step for m in steps] == [1, 2, 3]
    # The variants themselves are left as they were.
    assert variants["a"].callbacks is None


def test_compare_variants_failed_fit_fails_the_parent(data, client, request):
    variants = {"a": NetRegressor(callbacks=[("fail", _FailAt(1))], **FAST)}
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    with pytest.raises(RuntimeError, match="boom"):
        compare_variants(variants, *data, cv=2, tracking=logger, error_score="raise")
    parent = _parent(client, request, "compare_variants")
    assert parent.info.status == "FAILED"
    (child,) = _children(client, parent)
    # The fit that raised was marked KILLED, as if cut short.
    assert child.info.status == "FAILED"


def test_compare_variants_failed_fits_fail_their_runs_only(data, client, request):
    variants = {
        "bad": NetRegressor(callbacks=[("fail", _FailAt(1))], **FAST),
        "good": NetRegressor(**FAST),
    }
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    with pytest.warns(FitFailedWarning, match="2 of 4 fits failed"):
        compare_variants(variants, *data, cv=2, tracking=logger)
    parent = _parent(client, request, "compare_variants")
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["failed_fits"] == 2
    statuses = {c.info.run_name: c.info.status for c in _children(client, parent)}
    assert statuses == {
        "bad/repeat0/fold0": "FAILED",
        "bad/repeat0/fold1": "FAILED",
        "good/repeat0/fold0": "FINISHED",
        "good/repeat0/fold1": "FINISHED",
    }


def test_tracking_must_be_an_mlflow_logger(data, tmp_path):
    with pytest.raises(TypeError, match="MLflowLogger"):
        compare_variants({"r": Ridge()}, *data, cv=2, tracking=TensorBoardLogger("x"))
    search = OptunaSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, tracking="mlflow")
    with pytest.raises(InvalidParameterError, match="tracking"):
        search.fit(*data)


def test_optuna_search_nested_runs(data, client, request):
    from optuna.distributions import FloatDistribution

    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    search = OptunaSearchCV(
        make_pipeline(StandardScaler(), NetRegressor(**FAST)),
        {"netregressor__lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=2,
        cv=2,
        random_state=0,
        tracking=logger,
    ).fit(*data)
    assert clone(search).get_params()["tracking__experiment_name"] == _experiment(
        request
    )
    parent = _parent(client, request, "OptunaSearchCV")
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_score"] == pytest.approx(search.best_score_)
    assert parent.data.params["n_trials"] == "2"
    children = _children(client, parent)
    assert sorted(run.info.run_name for run in children) == [
        "trial0/fold0", "trial0/fold1", "trial1/fold0", "trial1/fold1"
    ]  # fmt: skip
    for run in children:
        trial, fold = run.info.run_name.split("/")
        assert run.data.tags["trial"] == trial[-1] and run.data.tags["fold"] == fold[-1]
        assert run.info.status == "FINISHED"
        lr = float(run.data.params["lr"])
        assert lr == pytest.approx(search.cv_results_["params"][int(trial[-1])][
            "netregressor__lr"
        ])  # fmt: skip
    # The refitted best estimator does not log.
    assert search.best_estimator_[-1].callbacks is None


def test_runs_of_pruned_trials_end_killed(data, client, request):
    # The folds of a pruned trial were stopped by an error, and their runs
    # ended FAILED, like fits that crashed; the docs promise KILLED.
    import optuna
    from optuna.distributions import FloatDistribution

    class PruneLater(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number >= 1

    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    search = OptunaSearchCV(
        NetRegressor(**{**FAST, "max_epochs": 3}),
        {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=2,
        cv=2,
        random_state=0,
        pruner=PruneLater(),
        tracking=logger,
    ).fit(*data)
    assert [t.state.name for t in search.study_.trials] == ["COMPLETE", "PRUNED"]
    status = {
        run.info.run_name: run.info.status
        for run in _children(client, _parent(client, request, "OptunaSearchCV"))
    }
    assert status == {
        "trial0/fold0": "FINISHED",
        "trial0/fold1": "FINISHED",
        "trial1/fold0": "KILLED",
        "trial1/fold1": "KILLED",
    }


def test_mlflow_diverged_and_interrupted_fits_do_not_finish(data, client, request):
    # A diverged fit ended its run FINISHED, with the diverged network as its
    # model; Ctrl-C too. They end FAILED and KILLED, without the network.
    import signal

    from skestimators.exceptions import TrainingDivergedError

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                signal.raise_signal(signal.SIGINT)

    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))
    diverging = NetRegressor(
        **{**FAST, "lr": 1e12, "optimizer": "sgd", "validation_fraction": None},
        callbacks=[("mlflow", logger)],
    )
    with pytest.raises(TrainingDivergedError):
        diverging.fit(*data)
    assert client.get_run(logger.run_id_).info.status == "FAILED"
    assert client.list_artifacts(logger.run_id_) == []
    interrupted = NetRegressor(**FAST, callbacks=[("mlflow", logger), CtrlC()])
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(*data)
    assert client.get_run(logger.run_id_).info.status == "KILLED"
    assert len(client.get_metric_history(logger.run_id_, "train_loss")) == 2


@pytest.mark.parametrize("setting", ["environment", "default"])
def test_mlflow_default_store_is_created_under_a_lock(
    tmp_path, monkeypatch, no_telemetry, setting
):
    # With tracking_uri=None, parallel workers created MLflow's default store
    # without the lock ("table experiments already exists", a broken store).
    pytest.importorskip("mlflow", reason="needs the tracking extra")
    import filelock
    from mlflow.tracking._tracking_service import utils

    from skestimators.tracking import make_client

    monkeypatch.setattr(utils, "_tracking_uri", None)  # no mlflow.set_tracking_uri
    monkeypatch.chdir(tmp_path)
    database = tmp_path / ("env.db" if setting == "environment" else "mlflow.db")
    if setting == "environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    locks = []

    class Recorded(filelock.FileLock):
        def __init__(self, lock_file, *args, **kwargs):
            locks.append(Path(lock_file).resolve())
            super().__init__(lock_file, *args, **kwargs)

    monkeypatch.setattr(filelock, "FileLock", Recorded)
    client = make_client(None)
    assert locks == [Path(f"{database}.lock")]
    assert client.search_experiments()  # the store is usable
    assert database.exists()


def test_mlflow_parallel_folds_create_a_new_store_together(data, tmp_path):
    # Two joblib workers creating a new SQLite store raced on its migrations
    # (alembic "Online migration expected to match one row"), failing folds.
    from sklearn.model_selection import cross_validate

    uri = f"sqlite:///{tmp_path / 'new.db'}"
    est = NetRegressor(**FAST, callbacks=[("mlflow", MLflowLogger(uri))])
    scores = cross_validate(est, *data, cv=4, n_jobs=2, error_score="raise")
    assert np.isfinite(scores["test_score"]).all()


def test_optuna_search_marks_failed_fits_failed(data, client, request):
    # Runs of fits that raised ended KILLED, as if cut short, where
    # compare_variants marks them FAILED.
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    net = NetRegressor(**FAST, callbacks=[("fail", _FailAt(3))])
    with pytest.warns(FitFailedWarning):
        OptunaSearchCV(
            net,
            {"max_epochs": [2, 3]},
            n_trials=4,
            cv=2,
            random_state=0,
            tracking=logger,
        ).fit(*data)
    parent = _parent(client, request, "OptunaSearchCV")
    status = {
        run.info.run_name: (run.data.params["max_epochs"], run.info.status)
        for run in _children(client, parent)
    }
    assert {"FAILED", "FINISHED"} <= {state for _, state in status.values()}
    for epochs, state in status.values():
        assert state == ("FAILED" if epochs == "3" else "FINISHED")


def test_safe_key_gives_names_mlflow_accepts():
    pytest.importorskip("mlflow", reason="needs the tracking extra")
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name

    from skestimators.tracking._mlflow import safe_key

    for key in ["valid_loss", "valid_water_roc_auc", "pH 1:5", "a/b", ".hidden"]:
        assert safe_key(key) == key  # valid names are kept
    keys = [
        "valid_a//b_rmse", "soil%", "soil#", "t" * 260, "../up", "/root", "a/./b",
        "...x", "a/", ".", "", "x" * 245 + "/" + "y" * 20,
    ]  # fmt: skip
    names = [safe_key(key) for key in keys]
    for name in names:
        _validate_metric_name(name)
        _validate_param_name(name)
        assert len(name) <= 250
    assert len(set(names)) == len(keys)
    assert safe_key("soil%") == safe_key("soil%")  # the same in every process
    assert safe_key("valid_a//b_rmse").startswith("valid_a/b_rmse-")


def _logged_curves(client, run_id, history):
    """Check each column of ``history`` has its own MLflow curve."""
    from skestimators.tracking._mlflow import safe_key

    names = {column: safe_key(column) for column in history}
    assert len(set(names.values())) == len(names)
    for column, name in names.items():
        logged = client.get_metric_history(run_id, name)
        assert [m.step for m in logged] == history.index.tolist()
        np.testing.assert_allclose([m.value for m in logged], history[column])


def test_mlflow_target_names_it_refuses(data, client, request):
    # A metric name MLflow refuses (too long, "//") aborted the fit with an
    # MlflowException and left the run RUNNING.
    X, y = data
    targets = pd.DataFrame({"a//b": y, "t" * 260: -y})
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est = NetRegressor(callbacks=[("mlflow", logger)], **FAST).fit(X, targets)
    assert client.get_run(logger.run_id_).info.status == "FINISHED"
    _logged_curves(client, logger.run_id_, est.history_)


def test_mlflow_alike_target_names_keep_their_curves(data, client, request):
    # "soil%" and "soil#" both became valid_soil__rmse: one curve mixing both.
    X, y = data
    targets = pd.DataFrame({"soil%": y, "soil#": 2 * y + 5})
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est = NetRegressor(callbacks=[("mlflow", logger)], **FAST).fit(X, targets)
    assert "valid_soil%_rmse" in est.history_ and "valid_soil#_rmse" in est.history_
    _logged_curves(client, logger.run_id_, est.history_)


# -- settings checked when a fit starts ---------------------------------------------
@pytest.mark.parametrize(
    "make_logger, message",
    [
        (lambda f: WandbLogger(mode="offlne"), "'mode' parameter of WandbLogger"),
        (lambda f: WandbLogger(dir=f), r"WandbLogger: dir=.*that is a file"),
        (
            lambda f: TensorBoardLogger(f),
            r"TensorBoardLogger: log_dir=.*that is a file",
        ),
        (
            lambda f: TensorBoardLogger(Path(f) / "runs"),
            r"TensorBoardLogger: log_dir=.*runs.*afile is a file",
        ),
        (
            lambda f: MLflowLogger(f"sqlite:///{f}/m.db"),
            r"MLflowLogger: tracking_uri=.*m\.db.*that is a file",
        ),
        (
            lambda f: MLflowLogger("sqlite:///m.db", log_model="yes"),
            "'log_model' parameter of MLflowLogger",
        ),
    ],
    ids=["wandb-mode", "wandb-dir", "tb-file", "tb-under-file", "mlflow", "bool"],
)
def test_bad_logger_settings_name_the_parameter(
    data, tmp_path, no_telemetry, make_logger, message
):
    # Raw third-party errors (pydantic, NotADirectoryError, FileExistsError).
    afile = tmp_path / "afile"
    afile.write_text("x")
    logger = make_logger(str(afile))
    est = NetRegressor(callbacks=[("logger", logger)], **FAST)
    with pytest.raises(ValueError, match=message):
        est.fit(*data)
    assert not hasattr(est, "history_")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


# -- Weights & Biases --------------------------------------------------------------
def _wandb_records(run_dir):
    """The records of an offline run, read by W&B's own ``leet inspect``."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    result = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(log)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=dict(os.environ),
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_wandb_offline_run(wandb_env, two_targets):
    logger = WandbLogger(dir=wandb_env / "runs", group="folds", tags=["test"])
    est = NetClassifier(callbacks=[("wandb", logger)], **FAST).fit(*two_targets)
    assert Path(logger.run_dir_).parent == wandb_env / "runs" / "wandb"
    records = _wandb_records(logger.run_dir_)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["run_id"] == logger.run_id_ and run["display_name"] == "NetClassifier"
    assert run["run_group"] == "folds" and run["tags"] == ["test"]
    config = run["config"]["update"]
    assert config["max_epochs"] == 3 and config["optimizer"] == "adam"
    history = {
        r["history"]["step"]["num"]: r["history"]["item"]
        for r in records
        if r["type"] == "history"
    }
    assert sorted(history) == est.history_.index.tolist()
    for column in est.history_:
        logged = [history[epoch][column] for epoch in est.history_.index]
        np.testing.assert_allclose(logged, est.history_[column], rtol=1e-6)
    (artifact,) = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert artifact["type"] == "model" and artifact["name"] == f"model-{run['run_id']}"
    assert sorted(f["path"] for f in artifact["manifest"]["contents"]) == [
        "history.json",
        "module_state_dict.pt",
    ]
    (exit_,) = [r["exit"] for r in records if r["type"] == "exit"]
    assert exit_.get("exit_code", 0) == 0
    restored = pickle.loads(pickle.dumps(est))
    assert dict(restored.net_.callbacks_)["wandb"].run_id_ == logger.run_id_


def test_wandb_mode_follows_wandb_mode_unless_set(wandb_env, data, monkeypatch):
    # mode="offline" was always passed: WANDB_MODE=disabled (W&B switched off
    # in CI) still wrote offline runs, though the docs said it applied.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = WandbLogger(dir=wandb_env / "off", log_model=False)
    NetRegressor(callbacks=[("wandb", logger)], **FAST).fit(*data)
    assert not list((wandb_env / "off").glob("wandb/offline-run-*"))
    logger.set_params(mode="offline")
    NetRegressor(callbacks=[("wandb", logger)], **FAST).fit(*data)
    assert Path(logger.run_dir_).parent == wandb_env / "off" / "wandb"


def test_wandb_resumed_run_says_what_it_continues(wandb_env, data, tmp_path):
    logger = WandbLogger(dir=wandb_env / "runs")
    est, crashed = _crashed(logger, "wandb", data, tmp_path)
    est.fit(*data)
    updates = {}
    for record in _wandb_records(logger.run_dir_):
        if record["type"] == "config":
            updates.update(record["config"].get("update", {}))
    assert updates["skestimators.resumed_from"] == crashed
    assert updates["skestimators.checkpoint"] == str(tmp_path / "ckpt")


def test_wandb_failed_fit_then_new_run(wandb_env, data):
    # The run of a fit that raised stayed open, and W&B closed it at exit as
    # a success when the caller caught the error.
    logger = WandbLogger(dir=wandb_env, log_model=False)
    est = NetRegressor(callbacks=[("wandb", logger), ("fail", _FailAt(1))], **FAST)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(*data)
    failed, failed_dir = logger.run_id_, logger.run_dir_
    (exit_,) = [r["exit"] for r in _wandb_records(failed_dir) if r["type"] == "exit"]
    assert exit_["exit_code"] == 1
    pickle.loads(pickle.dumps(logger))
    est.set_params(callbacks=[("wandb", logger)]).fit(*data)
    assert logger.run_id_ != failed


def test_mlflow_run_that_cannot_finish_fails_and_keeps_the_model(
    data, client, request, monkeypatch
):
    # A full disk while logging the network left the run RUNNING for ever and
    # discarded the fitted estimator.
    logger = MLflowLogger(client.tracking_uri, experiment_name=_experiment(request))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(client), "log_artifacts", full_disk)
    est = NetRegressor(callbacks=[("mlflow", logger)], **FAST)
    with pytest.warns(UserWarning, match="No space left.*the run is marked failed"):
        est.fit(*data)
    assert est.predict(data[0][:3]).shape == (3,)
    assert client.get_run(logger.run_id_).info.status == "FAILED"
    # When the tracker cannot be told either, the warning says so.
    monkeypatch.setattr(type(client), "set_terminated", full_disk)
    with pytest.warns(UserWarning, match="marking the run failed failed too"):
        est.fit(*data)


def test_mlflow_failed_start_leaves_the_previous_run_alone(
    data, client, request, monkeypatch
):
    # A run that could not be created left the client set with the previous
    # run's id: the next fit marked that finished run FAILED.
    from skestimators.tracking import _mlflow

    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est = NetRegressor(callbacks=[("mlflow", logger)], **FAST).fit(*data)
    first = logger.run_id_

    def server_down(*args, **kwargs):
        raise ConnectionError("tracking server down")

    with monkeypatch.context() as patch:
        patch.setattr(_mlflow, "start_run", server_down)
        with pytest.raises(ConnectionError, match="server down"):
            est.fit(*data)
    est.fit(*data)
    assert client.get_run(first).info.status == "FINISHED"
    assert client.get_run(logger.run_id_).info.status == "FINISHED"


def test_runs_log_the_epoch_early_stopping_restored(data, client, request):
    # The run's last metrics were those of the last epoch, not of the network
    # it logs.
    logger = MLflowLogger(
        client.tracking_uri, experiment_name=_experiment(request), log_model=False
    )
    est = NetRegressor(
        callbacks=[("mlflow", logger)],
        **{**FAST, "max_epochs": 30, "lr": 0.3},
        patience=2,
    ).fit(*data)
    best = est.best_epoch_
    assert best == dict(est.net_.callbacks_)["early_stopping"].best_epoch_
    assert best < len(est.history_)
    metrics = client.get_run(logger.run_id_).data.metrics
    assert metrics["best_epoch"] == best
    assert metrics["best_valid_loss"] == pytest.approx(est.history_["valid_loss"][best])
    assert metrics["valid_loss"] == pytest.approx(est.history_["valid_loss"].iloc[-1])


@pytest.mark.parametrize("make", [_mlflow_logger_for, _tensorboard_logger_for])
def test_a_logger_that_fails_mid_training_keeps_the_fit(
    data, client, request, tmp_path, make
):
    # A full disk under the logger aborted the fit and discarded the model.
    logger = make(client, request, tmp_path)
    calls = []

    def full_disk(step, metrics):
        calls.append(step)
        if step >= 2:
            raise OSError(28, "No space left on device")

    logger._log_epoch = full_disk
    est = NetRegressor(callbacks=[("log", logger)], **FAST)
    with pytest.warns(UserWarning, match="could not log epoch 2 .*No space left"):
        est.fit(*data)
    assert est.n_iter_ == 3 and calls == [1, 2, 3]  # tried again, warned once
