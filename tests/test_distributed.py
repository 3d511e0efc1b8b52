"""Data-parallel training: 2 processes (gloo, CPU) against a single process.

The same script runs once under ``torchrun --nproc_per_node=2`` and once as a
plain process. With the same global batch size, the learning curves and the
weights must match (the gradients of the shards, weighted by their share and
summed, are the gradient of the batch; only the order of floating-point sums
differs), every process must end with the same estimator, and only process 0
writes checkpoints and model files.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading

import joblib
import numpy as np
import pytest
import torch

import skestimators
from skestimators._engine._distributed import DataParallel, _launched
from skestimators.distributed import is_main_process, world_size

pytestmark = [
    pytest.mark.xdist_group("distributed"),
    pytest.mark.skipif(
        not torch.distributed.is_available(), reason="torch.distributed missing"
    ),
]

# Tolerances of the comparison with a single process: float32 sums in another
# order, through a few epochs of Adam.
RTOL, ATOL = 1e-4, 1e-5

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np, torch
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.pipeline import make_pipeline
    import skestimators
    from skestimators import NetRegressor, SpatioTemporalRegressor
    from skestimators._engine import Callback
    from skestimators.datasets import make_soc
    from skestimators.distributed import is_main_process, world_size
    from skestimators.tracking import TensorBoardLogger

    torch.set_num_threads(1)
    out = sys.argv[1]
    rank = int(os.environ.get("RANK", "0"))
    results = {"world_size": world_size(), "main": is_main_process()}

    def record(name, net):
        results[name] = {
            "history": net.history_.drop(columns="dur").to_dict("list"),
            "state": {
                k: v.double().numpy().ravel().tolist()
                for k, v in net.net_.module_.state_dict().items()
            },
        }

    rng = np.random.RandomState(0)
    X = rng.normal(size=(320, 8)).astype("float32")
    y = (np.tanh(X[:, :3]).sum(1) + 0.1 * rng.normal(size=320)).astype("float32")

    # 1. NetRegressor, early stopping on a validation split, cosine schedule.
    net = NetRegressor(
        module_params={"batch_norm": False, "dropout": 0.0, "width": 32},
        max_epochs=6, batch_size=32, lr_scheduler="cosine", random_state=0,
        device="cpu",
    ).fit(X, y)
    record("net", net)

    # 2. The CNN-LSTM inside TransformedTargetRegressor (log target).
    Xp, yp, _ = make_soc(96, n_years=3, window=5, random_state=0)
    ttr = TransformedTargetRegressor(
        SpatioTemporalRegressor(
            width=4, head_width=8, dropout=0.0, max_epochs=3, batch_size=16,
            random_state=0, device="cpu",
        ),
        func=np.log, inverse_func=np.exp,
    ).fit(Xp, yp)
    record("cnn_lstm", ttr.regressor_)
    results["cnn_lstm_pred"] = ttr.predict(Xp[:8]).tolist()

    # 3. Checkpoints: a crash after epoch 3 on every process, then a resumed fit.
    class CrashAt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3 and not os.path.exists(out + ".crashed"):
                raise RuntimeError("simulated crash")

    folder = out + "_ckpt"
    make = lambda: NetRegressor(
        module_params={"batch_norm": False, "dropout": 0.0, "width": 16},
        max_epochs=6, batch_size=32, random_state=1, device="cpu",
        checkpoint=folder, callbacks=[CrashAt()],
    )
    try:
        make().fit(X, y)
    except RuntimeError as exc:
        results["crash"] = str(exc)
    if rank == 0:
        open(out + ".crashed", "w").close()
    if world_size() > 1:
        torch.distributed.barrier()
    record("resumed", make().fit(X, y))
    results["checkpoint_files"] = sorted(os.listdir(folder))

    # 4. Only process 0 writes the model file and the experiment logs.
    # Every process returns once the file exists (the others returned at once,
    # and a load that followed failed on them).
    path = skestimators.save(net, out + ".skops")
    results["saved"] = os.path.exists(path)
    results["loaded"] = type(skestimators.load(path)).__name__
    if is_main_process():  # a save guarded as the docs advise: no waiting
        start = time.perf_counter()
        skestimators.save(net, out + "_guarded.skops")
        results["guarded_seconds"] = time.perf_counter() - start
    from skestimators._io import _model_file

    if rank == 0:  # process 0 fails to write: every process says so
        def full_disk(*args):
            raise _model_file.ModelFileError("disk full (simulated)")

        _model_file._write = full_disk
    try:
        skestimators.save(net, out + "_failed.skops")
    except _model_file.ModelFileError as exc:
        results["failed_save"] = str(exc)
    logs = out + "_tensorboard"
    NetRegressor(
        max_epochs=2, random_state=0, device="cpu",
        callbacks=[("tensorboard", TensorBoardLogger(logs, prefix="run"))],
    ).fit(X, y)
    if world_size() > 1:
        torch.distributed.barrier()
    results["log_runs"] = sorted(os.listdir(logs))

    # 5. Different data in each process: a clear error everywhere, no hang.
    if world_size() > 1:
        try:
            NetRegressor(max_epochs=1, random_state=0, device="cpu").fit(
                X[: 300 + rank], y[: 300 + rank]
            )
        except ValueError as exc:
            results["mismatch"] = str(exc)
        # Too few samples to give each process two: every batch was dropped
        # and the fit silently trained nothing.
        try:
            NetRegressor(
                max_epochs=1, batch_size=4, random_state=0, device="cpu",
                validation_fraction=None,
            ).fit(X[:3], y[:3])  # fmt: skip
        except ValueError as exc:
            results["too_few"] = str(exc)
        # Data failing fit's checks in one process only (a NaN target): the
        # others waited for it in their next collective call.
        bad = y[:300].copy()
        bad[0] = float("nan") if rank == 1 else bad[0]
        try:
            NetRegressor(max_epochs=1, random_state=0, device="cpu").fit(X[:300], bad)
        except (ValueError, RuntimeError) as exc:
            results["bad_data"] = str(exc)

    # 6. A callback failing on process 0 only (as a checkpoint or a logger
    # can): every process stops at the end of the epoch, none waits for the
    # others until the timeout.
    class FailOnMain(Callback):
        def on_epoch_end(self, net, **kwargs):
            if rank == 0 and len(net.history) == 2:
                raise RuntimeError("process 0 failed alone")

    try:
        NetRegressor(
            max_epochs=4, random_state=0, device="cpu", callbacks=[FailOnMain()]
        ).fit(X, y)
    except RuntimeError as exc:
        results["alone"] = str(exc)

    # 7. The batch losses kept for the epoch are not views of the gradients.
    class LossStorage(Callback):
        sizes = []

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.sizes.append(kwargs["loss"].untyped_storage().nbytes())

    NetRegressor(
        max_epochs=1, random_state=0, device="cpu", callbacks=[LossStorage()]
    ).fit(X, y)
    results["loss_bytes"] = max(LossStorage.sizes)

    # 8. Validation scores differing by process (as GPU arithmetic can): the
    # processes read those of process 0, and stop early together.
    class Skewed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 1)

        def forward(self, X):
            out = self.linear(X).squeeze(-1)
            return out if self.training else out + 0.05 * rank

    skewed = NetRegressor(
        Skewed, max_epochs=8, patience=2, random_state=0, device="cpu"
    ).fit(X, y)
    results["skewed_valid"] = skewed.history_["valid_loss"].tolist()

    # 9. Fits in threads train alone, also once the process group exists.
    import threading

    alone = []

    class Alone(Callback):
        def on_train_begin(self, net, **kwargs):
            alone.append(net.data_parallel is None)

    thread = threading.Thread(
        target=lambda: NetRegressor(
            max_epochs=1, random_state=0, device="cpu", callbacks=[Alone()]
        ).fit(X[:64], y[:64])
    )
    thread.start()
    thread.join()
    results["thread_alone"] = alone

    with open(f"{out}_{rank}.json", "w") as f:
        json.dump(results, f)
    """
)


def _env():
    # A hang fails within a minute, not the default half hour.
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        SKESTIMATORS_DISTRIBUTED_TIMEOUT="60",
    )
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _run(tmp_path, name, launch):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = str(tmp_path / name)
    prefix = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        + ["--nproc_per_node=2"]
        if launch
        else [sys.executable]
    )
    proc = subprocess.run(
        prefix + [str(script), out],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = range(2) if launch else range(1)
    return out, [json.loads(open(f"{out}_{r}.json").read()) for r in ranks]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    single_out, (single,) = _run(tmp, "single", launch=False)
    multi_out, multi = _run(tmp, "multi", launch=True)
    return single, multi, single_out, multi_out


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["net", "cnn_lstm", "resumed"])
def test_two_processes_match_one(runs, name):
    single, multi, _, _ = runs
    reference = single[name]
    for result in multi:
        history = result[name]["history"]
        assert set(history) == set(reference["history"])
        for column in ("train_loss", "valid_loss"):
            _close(history[column], reference["history"][column])
        for key, value in reference["state"].items():
            _close(result[name]["state"][key], value)


@pytest.mark.parametrize("name", ["net", "cnn_lstm", "resumed"])
def test_every_process_ends_with_the_same_estimator(runs, name):
    _, (first, second), _, _ = runs
    assert first[name]["history"] == second[name]["history"]
    assert first[name]["state"] == second[name]["state"]


def test_transformed_target_predictions_match(runs):
    single, multi, _, _ = runs
    for result in multi:
        _close(result["cnn_lstm_pred"], single["cnn_lstm_pred"])


def test_resume_after_crash_on_every_process(runs):
    single, multi, _, _ = runs
    for result in [single, *multi]:
        assert result["crash"] == "simulated crash"
        assert len(result["resumed"]["history"]["train_loss"]) == 6
    # One checkpoint file, written by process 0 only (no stray temporary files).
    assert multi[0]["checkpoint_files"] == single["checkpoint_files"]


def test_only_process_zero_writes_and_the_model_loads_alone(runs):
    single, multi, _, multi_out = runs
    assert [r["world_size"] for r in multi] == [2, 2]
    assert [r["main"] for r in multi] == [True, False]
    assert single["world_size"] == 1 and single["main"]
    model = skestimators.load(multi_out + ".skops")
    state = model.net_.module_.state_dict()
    for key, value in multi[1]["net"]["state"].items():
        np.testing.assert_array_equal(state[key].double().numpy().ravel(), value)


def test_every_process_returns_from_save_once_the_model_file_exists(runs):
    single, multi, _, _ = runs
    for result in [single, *multi]:
        assert result["saved"] and result["loaded"] == "NetRegressor"
    assert single["failed_save"] == multi[0]["failed_save"] == "disk full (simulated)"
    assert "failed to write: ModelFileError: disk full" in multi[1]["failed_save"]
    # Process 0 alone saving waited for the others in a collective call.
    assert multi[0]["guarded_seconds"] < 20


def test_only_process_zero_logs(runs):
    single, multi, _, _ = runs
    for result in [single, *multi]:
        assert len(result["log_runs"]) == 1, result["log_runs"]


def test_different_data_in_the_processes_is_a_clear_error(runs):
    _, multi, _, _ = runs
    for result in multi:
        assert "needs the same data in all 2 processes" in result["mismatch"]


def test_too_few_samples_for_the_processes_is_a_clear_error(runs):
    _, multi, _, _ = runs
    for result in multi:
        assert "3 training sample(s) cannot give each of the 2" in result["too_few"]


def test_data_failing_its_checks_in_one_process_stops_every_process(runs):
    _, multi, _, _ = runs
    assert "NaN" in multi[1]["bad_data"]
    assert (
        "1 other process(es) of the 2 failed checking their data"
        in (multi[0]["bad_data"])
    )


def test_a_callback_failing_on_process_zero_stops_every_process(runs):
    _, multi, _, _ = runs
    assert multi[0]["alone"] == "process 0 failed alone"
    assert "1 other process(es) of the 2 failed during training" in multi[1]["alone"]


def test_batch_losses_do_not_keep_the_gradient_buffer(runs):
    single, multi, _, _ = runs
    assert single["loss_bytes"] <= 8
    assert all(result["loss_bytes"] <= 8 for result in multi)


def test_processes_read_the_validation_scores_of_process_zero(runs):
    _, multi, _, _ = runs
    assert multi[0]["skewed_valid"] == multi[1]["skewed_valid"]


def test_fits_in_threads_train_alone_once_the_group_exists(runs):
    _, multi, _, _ = runs
    assert all(result["thread_alone"] == [True] for result in multi)


# -- in-process units ----------------------------------------------------------------
def test_outside_a_launched_job_training_is_single_process():
    assert world_size() == 1 and is_main_process()


def test_workers_and_threads_of_a_launched_process_train_alone(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert _launched()
    assert not is_main_process()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_launched()))
    thread.start()
    thread.join()
    assert seen == [False]
    child = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_launched)() for _ in range(2)
    )
    assert child == [False, False]
    monkeypatch.setenv("SKESTIMATORS_DISTRIBUTED", "0")
    assert not _launched()


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("n", [4, 9, 32, 33])
def test_shards_cover_each_batch_once(size, n):
    shards = []
    for rank in range(size):
        parallel = DataParallel.__new__(DataParallel)
        parallel.rank, parallel.size = rank, size
        shards.append(parallel.shard(10, 10 + n))
    assert shards[0][0] == 10 and shards[-1][1] == 10 + n
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
    sizes = [hi - lo for lo, hi in shards]
    assert max(sizes) - min(sizes) <= 1


def test_each_process_takes_its_gpu_or_the_only_one_it_sees(monkeypatch):
    # With one GPU per process (a scheduler setting CUDA_VISIBLE_DEVICES),
    # set_device(LOCAL_RANK) failed with "invalid device ordinal".
    from skestimators._engine._distributed import _local_gpu

    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _local_gpu() == 0
    # Two processes on a machine with one GPU: a clear error, not both on it.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="LOCAL_RANK=1 names a GPU"):
        _local_gpu()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert _local_gpu() == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    with pytest.raises(RuntimeError, match="LOCAL_RANK=3 names a GPU"):
        _local_gpu()
