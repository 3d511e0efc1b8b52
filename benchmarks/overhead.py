"""Training and prediction overhead of skestimators against a bare PyTorch loop.

For each case the same module, data, optimizer and number of epochs run under
(a) a bare loop slicing pre-shuffled tensors, (b) skorch's default NeuralNet
(DataLoader over a Dataset) and (c) skestimators, in one process, and the
script prints seconds per epoch and ratios to (a). Prediction throughput on
200k rows is compared with a bare ``torch.inference_mode`` loop.

The out-of-core case trains the batch-256 MLP once more from a memory-mapped
``.npy`` file (``np.load(path, mmap_mode="r")``: every batch read from the
page cache, never the whole array), and predicts from it.

The last table prices what a user may add to a fit on the MLP cases: a
TensorBoard logger (``skestimators.tracking.TensorBoardLogger``) and a
checkpoint written at every epoch end (``checkpoint=<dir>``), each against the
same fit without it. A last table times the serialising of a checkpoint's
history after 10 to 2,000 epochs, packed by column as the engine stores it
and pickled row by row.

Run: ``python benchmarks/overhead.py`` (``--quick`` for a smaller smoke run).
Targets: training <= 1.05x the bare loop; prediction >= 0.95x its throughput;
a TensorBoard logger and per-epoch checkpoints cost <= 3 % each.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNet
from torch import nn

from skestimators import NetClassifier, NetRegressor


def mlp(n_in, n_out):
    return nn.Sequential(
        nn.Linear(n_in, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, n_out),
    )


class Conv1D(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(3, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(64, 2),
        )

    def forward(self, X):
        return self.body(X)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 37),
    )


def bare_epochs(module, X, y, loss_fn, batch_size, epochs, lr, seed):
    module = copy.deepcopy(module)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    times = []
    module.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=gen)
        Xs, ys = X[perm], y[perm]
        for i in range(0, len(X), batch_size):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(module(Xs[i : i + batch_size]), ys[i : i + batch_size])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def skorch_epochs(module, X, y, loss_cls, batch_size, epochs, lr):
    net = NeuralNet(
        copy.deepcopy(module),
        criterion=loss_cls,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,  # as the bare loop and skestimators
        verbose=0,
        device="cpu",
    )
    net.fit(X.numpy(), y.numpy())
    return [row["dur"] for row in net.history]


def ours_epochs(estimator_cls, module, X, y, batch_size, epochs, lr, seed, **options):
    X = X.numpy() if isinstance(X, torch.Tensor) else X
    est = estimator_cls(
        copy.deepcopy(module),
        max_epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        validation_fraction=None,
        early_stopping=False,
        device="cpu",
        random_state=seed,
        **options,
    )
    est.fit(X, y.numpy())
    return est, list(est.history_["dur"])


class _Stopwatch:
    """Accumulates the time spent in wrapped functions, and keeps the
    duration of each call of the one named ``per_epoch``."""

    def __init__(self, per_epoch):
        self.per_epoch = per_epoch
        self.seconds = 0.0
        self.calls = []

    def wrap(self, fn, name):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - t0
                self.seconds += took
                if name == self.per_epoch:
                    self.calls.append(took)

        return timed

    def split(self, epochs):
        """Seconds of steady work per epoch, and the rest of the fit's.

        The steady part is the median of the per-epoch calls after the first
        (a checkpoint's first write is also read back, once per fit; the
        final write at the end of training is not an epoch's).
        """
        calls = self.calls[1:epochs] or self.calls[:1]
        steady = statistics.median(calls or [0.0])
        # The first write's steady part is counted as an epoch's, like the rest.
        return steady, self.seconds - sum(calls) - steady * (epochs - len(calls))


def extras_epochs(module, X, y, batch_size, epochs, seed, extra, folder):
    """Seconds per epoch of the MLP fit with ``extra`` (None, "tensorboard"
    or "checkpoint"), and the seconds spent in the extra's own work."""
    from skestimators._engine import _checkpoint, _fingerprint
    from skestimators.tracking import TensorBoardLogger

    watch = _Stopwatch("write" if extra == "checkpoint" else "on_epoch_end")
    options = {}
    if extra == "tensorboard":
        logger = TensorBoardLogger(folder / "tb")
        for hook in ("on_train_begin", "on_epoch_end", "on_train_end"):
            setattr(logger, hook, watch.wrap(getattr(logger, hook), hook))
        options["callbacks"] = [("tb", logger)]
    elif extra == "checkpoint":
        options["checkpoint"] = Path(tempfile.mkdtemp(dir=folder))
    patched = {}
    if extra == "checkpoint":  # the fingerprint, the lock and every write
        for owner, name in (
            (_checkpoint.CheckpointStore, "acquire"),
            (_checkpoint.CheckpointStore, "load"),
            (_checkpoint.CheckpointStore, "write"),
            (_checkpoint.CheckpointStore, "release"),
            (_fingerprint, "data_fingerprint"),  # read when the fit calls it
        ):
            patched[(owner, name)] = getattr(owner, name)
            setattr(owner, name, watch.wrap(patched[(owner, name)], name))
    try:
        _, durations = ours_epochs(
            NetClassifier, module, X, y, batch_size, epochs, 1e-3, seed, **options
        )
    finally:
        for (owner, name), fn in patched.items():
            setattr(owner, name, fn)
    return durations, watch.split(epochs)


def bench_extras(name, module, X, y, *, batch_size, epochs, seed=0):
    """Cost of a TensorBoard logger and of per-epoch checkpoints.

    On a shared machine, epoch times vary by more than these costs, so the
    cost is measured directly: the time spent in the logger's hooks, or in
    fingerprinting, locking and writing checkpoints. It is split into the
    steady work of an epoch (the logger's epoch-end hook; one checkpoint
    write, serialising the state and starting its disk thread), whose share
    of the epoch without them is the cost, and the work done once per fit
    (opening the logger; hashing the training data, taking the lock, reading
    the first checkpoint back and the final write). The epoch times shown
    beside it are skorch's
    (the history's ``dur``), whose timer stops before the checkpoint and
    logger hooks run at the end of an epoch: they do not include the cost.
    """
    times = {None: [], "tensorboard": [], "checkpoint": []}
    steady = {extra: [] for extra in times}
    once = {extra: [] for extra in times}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(3):  # interleaved, so that machine noise hits all alike
            for extra in times:
                durations, (per, rest) = extras_epochs(
                    module, X, y, batch_size, epochs, seed, extra, Path(folder)
                )
                times[extra] += durations
                steady[extra].append(per)
                once[extra].append(rest)
    base = per_epoch(times[None])
    return [
        {
            "case": name,
            "added": extra or "nothing",
            "s/epoch": per_epoch(t),
            "its ms/epoch": 1000 * statistics.median(steady[extra]),
            "cost %": 100 * statistics.median(steady[extra]) / base,
            "once ms/fit": 1000 * statistics.median(once[extra]),
        }
        for extra, t in times.items()
    ]


def per_epoch(times):
    # Skip the first epoch (allocator and kernel warm-up) when there are several.
    return statistics.median(times[1:] if len(times) > 2 else times)


def bench_case(
    name, module, X, y, *, kind, batch_size, epochs, lr=1e-3, seed=0, repeats=3
):
    if kind == "multilabel":
        loss_fn, loss_cls, est_cls = (
            nn.functional.binary_cross_entropy_with_logits,
            nn.BCEWithLogitsLoss,
            NetClassifier,
        )
    else:
        loss_fn, loss_cls, est_cls = nn.functional.mse_loss, nn.MSELoss, NetRegressor
    rows = []
    # Interleave the three runners so that machine noise hits them alike; the
    # ratio of each repeat to the bare loop's in the same repeat gives the
    # spread (min-max) beside the ratio of the medians.
    results = {"bare": [], "skorch": [], "skestimators": []}
    for _ in range(repeats):
        results["bare"].append(
            bare_epochs(module, X, y, loss_fn, batch_size, epochs, lr, seed)
        )
        results["skorch"].append(
            skorch_epochs(module, X, y, loss_cls, batch_size, epochs, lr)
        )
        results["skestimators"].append(
            ours_epochs(est_cls, module, X, y, batch_size, epochs, lr, seed)[1]
        )
    base = per_epoch(sum(results["bare"], []))
    for runner, runs in results.items():
        ratios = [
            per_epoch(times) / per_epoch(bare)
            for times, bare in zip(runs, results["bare"], strict=True)
        ]
        rows.append(
            {
                "case": name,
                "runner": runner,
                "s/epoch": per_epoch(sum(runs, [])),
                "ratio": per_epoch(sum(runs, [])) / base,
                "spread": f"{min(ratios):.2f}-{max(ratios):.2f}",
            }
        )
    return rows


def bench_predict(module, n_rows, n_features, batch_size):
    X = torch.randn(n_rows, n_features)
    y = (torch.rand(2000, 2) > 0.5).float()
    est, _ = ours_epochs(NetClassifier, module, X[:2000], y, 256, 1, 1e-3, 0)
    net = est.net_.module_
    Xn = X.numpy()

    def bare():
        out = []
        net.eval()
        with torch.inference_mode():
            for i in range(0, n_rows, batch_size):
                out.append(net(X[i : i + batch_size]))
        return torch.cat(out)

    timings = {"bare": [], "skestimators": []}
    for _ in range(5):
        t0 = time.perf_counter()
        bare()
        timings["bare"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        est.predict_proba(Xn)
        timings["skestimators"].append(time.perf_counter() - t0)
    base = n_rows / min(timings["bare"])
    return [
        {
            "case": f"predict {n_rows} rows",
            "runner": r,
            "rows/s": n_rows / min(t),
            "ratio": (n_rows / min(t)) / base,
        }
        for r, t in timings.items()
    ]


def bench_out_of_core(X, y, *, batch_size, epochs, seed=0):
    """The batch-256 MLP trained and scored from a memory-mapped file."""
    module = mlp(X.shape[1], y.shape[1])
    loss_fn = nn.functional.binary_cross_entropy_with_logits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.npy"
        np.save(path, X.numpy())
        mapped = np.load(path, mmap_mode="r")
        train = {"bare": [], "in memory": [], "memory-mapped": []}
        for _ in range(2):
            train["bare"] += bare_epochs(
                module, X, y, loss_fn, batch_size, epochs, 1e-3, seed
            )
            est, times = ours_epochs(
                NetClassifier, module, X, y, batch_size, epochs, 1e-3, seed
            )
            train["in memory"] += times
            est_mapped, times = ours_epochs(
                NetClassifier, module, mapped, y, batch_size, epochs, 1e-3, seed
            )
            train["memory-mapped"] += times
        predict = {"in memory": [], "memory-mapped": []}
        Xn = X.numpy()
        for _ in range(3):
            t0 = time.perf_counter()
            est.predict_proba(Xn)
            predict["in memory"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            est_mapped.predict_proba(mapped)
            predict["memory-mapped"].append(time.perf_counter() - t0)
        del mapped, est_mapped
    base = per_epoch(train["bare"])
    rows = [
        {"runner": r, "train s/epoch": per_epoch(t), "train ratio": per_epoch(t) / base}
        for r, t in train.items()
    ]
    for row in rows:
        times = predict.get(row["runner"])
        row["predict rows/s"] = len(X) / min(times) if times else float("nan")
    return pd.DataFrame(rows)


def bench_history_writes(epochs_done=(10, 100, 500, 2000), repeats=5):
    """Milliseconds to serialise a checkpoint's history after many epochs.

    Each write of a fit stores the whole history. The engine packs it by
    column and converts each past epoch once (``HistoryPacker``); the peer
    pickles the rows as they are, converted at every write, as checkpoints
    did before. The history is synthetic: nine metrics per epoch (floats,
    booleans, the epoch number) and 50 batch rows in the last epoch.
    """
    import io

    from skestimators._engine._checkpoint import _plain
    from skestimators._engine._packed_history import HistoryPacker

    def row(i):
        return {
            "batches": [{"train_loss": 0.3, "train_batch_size": 32}] * 50,
            "epoch": i + 1,
            "train_loss": 1.0 / (i + 1),
            "valid_loss": 0.4,
            "valid_acc": 0.9,
            "dur": 0.1,
            "train_loss_best": True,
            "valid_loss_best": False,
            "valid_acc_best": False,
            "event_lr": 1e-3,
        }

    def rows_as_they_are(history):
        last = len(history) - 1
        return [
            _plain({**r, "batches": r["batches"] if i == last else []})
            for i, r in enumerate(history)
        ]

    def timed(serialise):
        t0 = time.perf_counter()
        for _ in range(repeats):
            torch.save(serialise(), io.BytesIO())
        return 1000 * (time.perf_counter() - t0) / repeats

    table = []
    for n in epochs_done:
        history = [row(i) for i in range(n)]
        packer = HistoryPacker(_plain)
        for k in range(1, n):  # the writes of the earlier epochs
            packer.pack(history[:k])
        table.append(
            {
                "epochs done": n,
                "packed ms/write": timed(lambda: packer.pack(history)),
                "rows ms/write": timed(lambda: rows_as_they_are(history)),
            }
        )
    return pd.DataFrame(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller data, fewer epochs"
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads for every runner (default: OMP_NUM_THREADS, else "
        "torch's default)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # One thread count for all: skestimators otherwise follows the machine's
    # load (fewer threads on busy cores) while the bare loop keeps torch's.
    threads = args.threads or int(
        os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads()
    )
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    scale = 0.2 if args.quick else 1.0
    epochs = 2 if args.quick else 4
    g = torch.Generator().manual_seed(0)
    n = int(20000 * scale)
    X_mlp = torch.randn(n, 361, generator=g)
    y_mlp = (torch.rand(n, 2, generator=g) > 0.5).float()
    X_c1 = torch.randn(n, 3, 52, generator=g)
    y_c1 = (torch.rand(n, 2, generator=g) > 0.5).float()
    n_img = int(4000 * scale)
    X_img = torch.randn(n_img, 3, 64, 64, generator=g)
    y_img = torch.rand(n_img, 37, generator=g)

    rows = []
    torch.manual_seed(0)
    rows += bench_case(
        "MLP 361->2, batch 32",
        mlp(361, 2),
        X_mlp,
        y_mlp,
        kind="multilabel",
        batch_size=32,
        epochs=epochs,
    )
    rows += bench_case(
        "MLP 361->2, batch 256",
        mlp(361, 2),
        X_mlp,
        y_mlp,
        kind="multilabel",
        batch_size=256,
        epochs=epochs,
    )
    rows += bench_case(
        "Conv1D (3, 52)->2, batch 64",
        Conv1D(),
        X_c1,
        y_c1,
        kind="multilabel",
        batch_size=64,
        epochs=epochs,
    )
    rows += bench_case(
        "CNN (3, 64, 64)->37, batch 64",
        small_cnn(),
        X_img,
        y_img,
        kind="regression",
        batch_size=64,
        epochs=max(2, epochs // 2),
    )
    train = pd.DataFrame(rows).pivot(index="case", columns="runner", values="ratio")
    spread = pd.DataFrame(rows).pivot(index="case", columns="runner", values="spread")
    secs = pd.DataFrame(rows).pivot(index="case", columns="runner", values="s/epoch")
    pred = pd.DataFrame(bench_predict(mlp(361, 2), int(200_000 * scale), 361, 1024))

    pd.set_option("display.width", 160)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("Training, seconds per epoch:")
    print(secs[["bare", "skorch", "skestimators"]].round(3).to_string())
    print("\nTraining, ratio to the bare loop (target: skestimators <= 1.05):")
    print(train[["bare", "skorch", "skestimators"]].round(3).to_string())
    print("\nThe same ratio in each of the interleaved repeats (min-max):")
    print(spread[["skorch", "skestimators"]].to_string())
    print("\nPrediction throughput (target: ratio >= 0.95):")
    print(pred.round(3).to_string(index=False))
    extras = []
    for batch_size in (32, 256):
        extras += bench_extras(
            f"MLP 361->2, batch {batch_size}",
            mlp(361, 2),
            X_mlp,
            y_mlp,
            batch_size=batch_size,
            epochs=epochs,
        )
    print(
        "\nA logger and checkpoints, cost per epoch (target: <= 3 % each), "
        "and their work once per fit:"
    )
    print(pd.DataFrame(extras).round(4).to_string(index=False))
    print("\nA checkpoint's history, serialised after many epochs:")
    print(bench_history_writes().round(2).to_string(index=False))
    ooc = bench_out_of_core(X_mlp, y_mlp, batch_size=256, epochs=epochs)
    print("\nOut of core: MLP 361->2, batch 256, X memory-mapped from .npy:")
    print(ooc.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
