"""GPU checks: placement, mixed precision, throughput, model files, memory, searches.

One run on a machine with a GPU (3 to 4 minutes on one H200) checks and
times, for the package's estimators:

* placement: ``device="auto"`` picks the GPU; the module's weights and every
  training and validation batch sit on it; training data that fit in GPU
  memory are copied there once, not batch by batch (host-to-device copies
  counted by the PyTorch profiler in a 2-epoch fit less those of a 1-epoch
  fit, so that the copies made once per fit cancel out);
* mixed precision: ``amp="bf16"`` and ``amp="fp16"`` (with a
  ``torch.amp.GradScaler``) against float32 on the Galaxy Zoo CNN and the
  CNN-LSTM: seconds per epoch and final validation loss;
* throughput: training (seconds per epoch against a bare PyTorch loop that
  trains the same architecture with Adam, the same batch size and the data
  already on the GPU; goal <= 1.05) and prediction (rows per second from
  host arrays against a bare ``torch.inference_mode`` loop over batches of
  the same size; goal >= 0.95; a prediction in one call must equal the
  same rows predicted one batch per call; and, for information, the seconds
  of a prediction with every batch staged through pinned memory, with none,
  and with the package's size limits), for the exoplanet network (the
  ``SpectraAuxClassifier`` of ``exoplanet_pipeline("best")``), the Galaxy Zoo
  CNN (``GalaxyZooRegressor``) and the CNN-LSTM (``SpatioTemporalRegressor``);
* model files: ``soc_pipeline()`` trained on the GPU, saved with
  ``skestimators.save``, loaded and scored in a subprocess that sees no GPU
  (``CUDA_VISIBLE_DEVICES=""``), with the in-process predictions (up to
  1e-3 of their standard deviation: convolutions may run in TF32 on the GPU);
* memory: GPU memory released after ``fit`` once the estimator is deleted,
  and not growing from one search trial to the next (``GridSearchCV`` and
  ``OptunaSearchCV``);
* searches: ``GridSearchCV`` and ``OptunaSearchCV`` with ``n_jobs=2`` on one
  GPU, every fold trained on it.

It prints a markdown table and exits with status 1 when a check fails.
Without a GPU it says so and exits 0; ``--device cpu`` runs every check
that makes sense on the CPU and reports the CUDA-only ones as skipped;
``--quick`` shrinks every size (``--device cpu --quick``: about a minute on
one core).

Run: ``python benchmarks/gpu.py`` (``--out gpu.json`` also writes the rows
as JSON and the table to ``gpu.md``; ``--only amp,throughput`` runs some
checks).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

NO_GPU = "No GPU available (torch.cuda.is_available() is False): nothing checked."
PASS, FAIL, SKIP, INFO = "pass", "FAILED", "skipped", "info"
MIB = 2**20
TOTAL_BUDGET = 300  # seconds, on one H200 (measured 171-236 s)


@dataclass
class Row:
    check: str
    estimator: str
    metric: str
    value: str
    goal: str
    status: str


class Rows(list):
    """The rows of one check."""

    def __init__(self, check):
        super().__init__()
        self.check = check

    def add(self, estimator, metric, value, goal="-", ok=None):
        """A measurement: passed (``ok`` true), failed, or information (None)."""
        status = INFO if ok is None else (PASS if ok else FAIL)
        if isinstance(value, float):
            value = f"{value:.4g}"
        self.append(Row(self.check, estimator, metric, str(value), goal, status))

    def skip(self, estimator, reason):
        self.append(Row(self.check, estimator, "-", reason, "-", SKIP))


@dataclass
class Context:
    device: torch.device
    quick: bool
    seed: int = 0
    cache: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def device_param(self) -> str:
        # On a GPU every estimator is left to pick it.
        return "auto" if self.cuda else "cpu"

    def size(self, full, quick):
        return quick if self.quick else full


def _first_line(exc):
    return (str(exc).strip().splitlines() or [""])[0][:200]


@contextlib.contextmanager
def failures_as_rows(rows, estimator, metric="error"):
    """Turn an exception in the block into a failed row, and carry on."""
    try:
        yield
    except Exception as exc:
        error = f"{type(exc).__name__}: {_first_line(exc)}"
        rows.add(estimator, metric, error, "no error", False)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- data -----------------------------------------------------------------------------
def _tile(arrays, n):
    """Repeat simulated samples up to ``n`` rows (throughput ignores content)."""
    reps = -(-n // len(arrays[0]))
    return [np.concatenate([np.asarray(a)] * reps)[:n] for a in arrays]


def _cached(ctx, key, make):
    if key not in ctx.cache:
        ctx.cache[key] = make()
    return ctx.cache[key]


def galaxy_data(ctx, n):
    def make():
        from skestimators.datasets import make_galaxy_zoo

        X, y = make_galaxy_zoo(min(n, 2000), size=32, random_state=ctx.seed)
        return _tile([X.astype(np.float32), y.to_numpy(np.float32)], n)

    return _cached(ctx, ("galaxy", n), make)


def soc_data(ctx, n):
    def make():
        from skestimators.datasets import make_soc

        X, y, _ = make_soc(min(n, 2000), random_state=ctx.seed)
        y = (y - y.mean()) / y.std()  # losses of order 1, comparable across AMP
        return _tile([X.astype(np.float32), y.astype(np.float32)], n)

    return _cached(ctx, ("soc", n), make)


def exoplanet_data(ctx, n):
    """Preprocessed exoplanet inputs (dict of arrays), targets, an unfitted network."""

    def make():
        from skestimators.datasets import make_exoplanet
        from skestimators.recipes import exoplanet_pipeline

        X, y = make_exoplanet(min(n, 4000), random_state=ctx.seed)
        pipe = exoplanet_pipeline("best", random_state=ctx.seed, device="cpu")
        Xp = pipe.named_steps["preprocess"].fit_transform(X, y)
        names = list(Xp.keys())
        tiled = _tile([np.asarray(Xp[k], dtype=np.float32) for k in names] + [y], n)
        return dict(zip(names, tiled[:-1])), tiled[-1], pipe[-1]

    inputs, y, net = _cached(ctx, ("exoplanet", n), make)
    return inputs, y, clone(net)


def table_data(ctx, n, classes=False):
    rng = np.random.default_rng(ctx.seed)
    X = rng.normal(size=(n, 20)).astype(np.float32)
    y = X[:, :5].sum(1) + 0.1 * rng.normal(size=n)
    return X, ((y > 0).astype(int) if classes else y.astype(np.float32))


def _first(X):
    return next(iter(X.values())) if isinstance(X, dict) else X


def _rows_of(X, index):
    return {k: v[index] for k, v in X.items()} if isinstance(X, dict) else X[index]


def _to(X, device):
    return (
        {k: v.to(device) for k, v in X.items()} if isinstance(X, dict) else X.to(device)
    )


# -- placement ------------------------------------------------------------------------
_SEEN = {}  # written by DeviceProbe: estimators deep-copy their callbacks


class DeviceProbe(Callback):
    """Records the device type of the training and validation batches."""

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        X = _first(batch[0])
        _SEEN.setdefault("train" if training else "valid", set()).add(X.device.type)


def htod_copies(fit):
    """The bytes of every host-to-device copy made during ``fit()`` (None: unknown)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fit()
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    return [
        (event.get("args") or {}).get("bytes")
        for event in events
        if "Memcpy HtoD" in str(event.get("name", ""))
    ]


def placement_cases(ctx):
    """``name -> (estimator factory(**params), X, y)``, about 80 batches of 16."""
    from skestimators import (
        GalaxyZooRegressor,
        ImageClassifier,
        NetClassifier,
        NetRegressor,
        SpatioTemporalRegressor,
    )

    n = ctx.size(1600, 400)
    X_img, y_img = galaxy_data(ctx, n)
    X_exo, y_exo, exoplanet = exoplanet_data(ctx, n)
    width = ctx.size(16, 8)
    return {
        "NetRegressor": (NetRegressor, *table_data(ctx, n)),
        "NetClassifier": (NetClassifier, *table_data(ctx, n, classes=True)),
        "SpectraAuxClassifier": (
            lambda **p: clone(exoplanet).set_params(**p), X_exo, y_exo
        ),
        "ImageClassifier": (
            lambda **p: ImageClassifier(width=width, **p),
            X_img,
            y_img[:, :3].argmax(1),  # smooth, featured or disk, star or artefact
        ),
        "GalaxyZooRegressor": (
            lambda **p: GalaxyZooRegressor(width=width, head_width=8 * width, **p),
            X_img,
            y_img,
        ),
        "SpatioTemporalRegressor": (SpatioTemporalRegressor, *soc_data(ctx, n)),
    }  # fmt: skip


def check_placement(ctx):
    rows = Rows("placement")
    for name, (factory, X, y) in placement_cases(ctx).items():
        with failures_as_rows(rows, name):
            placement_of(rows, ctx, name, factory, X, y)
    return rows


def placement_of(rows, ctx, name, factory, X, y):
    """Where one estimator trains and, on a GPU, its host-to-device copies."""
    expected = ctx.device.type
    common = dict(
        device=ctx.device_param, random_state=ctx.seed, early_stopping=False,
        validation_fraction=0.2, lr_scheduler=None, batch_size=16,
        callbacks=[("probe", DeviceProbe())],
    )  # fmt: skip
    copies, problem = {}, None
    for epochs in (1, 2):
        _SEEN.clear()
        est = factory(max_epochs=epochs, **common)
        if ctx.cuda and problem is None:
            try:
                copies[epochs] = htod_copies(lambda: est.fit(X, y))
                continue
            except Exception as exc:  # the profiler, or the fit: fit again
                problem = f"{type(exc).__name__}: {_first_line(exc)}"
        est.fit(X, y)
    module = next(est.net_.module_.parameters()).device.type
    seen = {k: sorted(v) for k, v in sorted(_SEEN.items())}
    ok = est.device_.type == module == expected and seen == {
        "train": [expected], "valid": [expected]
    }  # fmt: skip
    value = f"device_={est.device_}, module on {module}, batches on {seen}"
    rows.add(name, "devices", value, f"all {expected}", ok)
    pred = est.predict(_rows_of(X, slice(0, 100)))
    rows.add(name, "predict returns", type(pred).__name__, "ndarray",
             isinstance(pred, np.ndarray))  # fmt: skip
    rows.add(name, "predict refuses inf at row 37", *refusal(est, X, 37))
    metric = "HtoD data copies per batch"
    if not ctx.cuda:
        rows.skip(name, f"{metric}: CUDA only")
    elif problem is not None:
        rows.add(name, metric, problem, "< 0.5", False)
    else:
        # Copies of at least a quarter of a batch of X count as data copies;
        # a per-batch copy of the data makes two (X and y) per batch.
        last = est.net_.history[-1]
        n_batches = last["train_batch_count"] + last.get("valid_batch_count", 0)
        quarter = 16 * _first(X)[0].nbytes // 4
        data = [sum(b is None or b >= quarter for b in copies[e]) for e in (1, 2)]
        per_batch = (data[1] - data[0]) / n_batches
        small = (len(copies[2]) - len(copies[1])) / n_batches - per_batch
        value = f"{per_batch:.2f} (+ {small:.2f} small) over {n_batches} batches"
        rows.add(name, metric, value, "< 0.5", per_batch < 0.5)


def refusal(est, X, row):
    """``(outcome, goal, ok)``: ``predict`` on 100 rows with inf in ``row``."""
    bad = _rows_of(X, slice(0, 100))
    bad = {k: v.copy() for k, v in bad.items()} if isinstance(bad, dict) else bad.copy()
    first = _first(bad)
    first[(row,) + (0,) * (first.ndim - 1)] = np.inf
    goal = f"ValueError naming row {row}"
    try:
        est.predict(bad)
    except ValueError as exc:
        ok = f"row {row})" in str(exc) and "infinity" in str(exc)
        return f"{type(exc).__name__}: {_first_line(exc)[:60]}...", goal, ok
    except Exception as exc:
        return f"{type(exc).__name__}: {_first_line(exc)[:60]}", goal, False
    return "no error", goal, False


# -- mixed precision ------------------------------------------------------------------
def check_amp(ctx):
    from skestimators import GalaxyZooRegressor, SpatioTemporalRegressor

    rows = Rows("amp")
    n, width = ctx.size(8000, 512), ctx.size(32, 8)
    cases = {
        "GalaxyZooRegressor": (
            GalaxyZooRegressor(width=width, head_width=8 * width, augment=False),
            *galaxy_data(ctx, n),
        ),
        "SpatioTemporalRegressor": (SpatioTemporalRegressor(), *soc_data(ctx, n)),
    }
    for name, (template, X, y) in cases.items():
        losses, times = {}, {}
        for amp in (None, "bf16", "fp16"):
            if amp == "fp16" and not ctx.cuda:
                rows.skip(name, "fp16 with gradient scaling: CUDA only")
                continue
            label = amp or "fp32"
            with failures_as_rows(rows, name, f"{label} training"):
                est = clone(template).set_params(
                    amp=amp, max_epochs=ctx.size(4, 2), early_stopping=False,
                    validation_fraction=0.2, device=ctx.device_param,
                    random_state=ctx.seed,
                ).fit(X, y)  # fmt: skip
                losses[label] = float(est.history_["valid_loss"].iloc[-1])
                times[label] = per_epoch(est.history_["dur"])
                if amp == "fp16":
                    scaler = est.net_.grad_scaler_
                    ok = isinstance(scaler, torch.amp.GradScaler)
                    rows.add(name, "grad_scaler_", type(scaler).__name__,
                             "GradScaler", ok)  # fmt: skip
        base, base_s = losses.get("fp32", np.nan), times.get("fp32", np.nan)
        for label, loss in losses.items():
            if label == "fp32":
                rows.add(name, "fp32 valid loss", loss, "finite", np.isfinite(loss))
            else:
                ok = np.isfinite(loss) and loss <= 1.5 * base + 0.02
                rows.add(name, f"{label} valid loss", loss, "<= 1.5 fp32 + 0.02", ok)
            ratio = times[label] / base_s
            rows.add(name, f"{label} s/epoch", f"{times[label]:.3f} ({ratio:.2f}x)")
    return rows


# -- throughput -----------------------------------------------------------------------
def per_epoch(times):
    times = list(times)
    # Skip the first epoch (allocator, cuDNN set-up) when there are several.
    return statistics.median(times[1:] if len(times) > 2 else times)


def fresh_copy(module, device):
    module = copy.deepcopy(module).to(device)
    for layer in module.modules():  # fresh weights, same architecture
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module


def _tensor(X, device):
    if isinstance(X, dict):
        return {k: _tensor(v, device) for k, v in X.items()}
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def _call(module, X):
    return module(**X) if isinstance(X, dict) else module(X)


def bare_train(module, X, y, loss_fn, *, est, epochs, device, seed):
    """Seconds per epoch of a bare loop over tensors already on ``device``."""
    opt = torch.optim.Adam(
        module.parameters(), lr=est.lr, weight_decay=est.weight_decay
    )
    Xt, yt = _tensor(X, device), _tensor(y, device)
    gen = torch.Generator().manual_seed(seed)
    n, batch = len(yt), est.batch_size
    module.train()
    times = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        Xe, ye = _rows_of(Xt, perm), yt[perm]
        for i in range(0, n, batch):
            opt.zero_grad(set_to_none=True)
            out = _call(module, _rows_of(Xe, slice(i, i + batch)))
            loss_fn(out, ye[i : i + batch]).backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def bare_predict(module, X, batch, device):
    """A bare inference loop from host arrays: each batch to the device and back."""
    module.eval()
    Xh = _tensor(X, "cpu")
    out = []
    with torch.inference_mode():
        for i in range(0, len(_first(Xh)), batch):
            o = _call(module, _to(_rows_of(Xh, slice(i, i + batch)), device))
            out.append(_to(o, "cpu"))
    return out


def predict_batch_size(batch_size, X):
    """The prediction batch the estimators use for ``X`` (the engine's rule)."""
    from skestimators._engine._batching import TensorData
    from skestimators._engine._placement import _predict_batch_size

    return _predict_batch_size(batch_size, TensorData(X))


def _mse(out, y):
    return torch.nn.functional.mse_loss(out.reshape(y.shape), y)


def _binary_heads(out, y):
    """One logit per target, one head each (in the order of the columns of y)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return sum(bce(o.reshape(-1), y[:, j]) for j, o in enumerate(out.values()))


def check_throughput(ctx):
    from skestimators import GalaxyZooRegressor, SpatioTemporalRegressor

    rows = Rows("throughput")
    n, width = ctx.size(16000, 2048), ctx.size(32, 8)
    X_exo, y_exo, exoplanet = exoplanet_data(ctx, n)
    galaxy = GalaxyZooRegressor(width=width, head_width=8 * width, augment=False)
    cases = {
        "SpectraAuxClassifier (exoplanet)": (
            exoplanet, X_exo, y_exo, _binary_heads, "predict_proba"
        ),
        "GalaxyZooRegressor": (galaxy, *galaxy_data(ctx, n), _mse, "predict"),
        "SpatioTemporalRegressor (CNN-LSTM)": (
            SpatioTemporalRegressor(), *soc_data(ctx, n), _mse, "predict"
        ),
    }  # fmt: skip
    for name, case in cases.items():
        with failures_as_rows(rows, name):
            throughput_of(rows, ctx, name, *case)
    return rows


def throughput_of(rows, ctx, name, est, X, y, loss_fn, method, epochs=3):
    """Training and prediction of one estimator against bare loops."""

    def judge(ok):  # a smoke run's timings are too short to judge
        return None if ctx.quick else ok

    est.set_params(
        max_epochs=epochs, early_stopping=False, validation_fraction=None,
        lr_scheduler=None, device=ctx.device_param, random_state=ctx.seed,
    )  # fmt: skip
    warm = slice(0, 20 * est.batch_size)
    clone(est).set_params(max_epochs=1).fit(_rows_of(X, warm), y[warm])
    train, walls = {"bare": [], "estimator": []}, []
    for r in range(ctx.size(2, 1)):  # interleaved: noise hits both alike
        start = time.perf_counter()
        fitted = clone(est).fit(X, y)
        walls.append(time.perf_counter() - start)
        train["estimator"] += list(fitted.history_["dur"])
        module = fresh_copy(fitted.net_.module_, ctx.device)
        train["bare"] += bare_train(
            module, X, y, loss_fn, est=est, epochs=epochs, device=ctx.device,
            seed=ctx.seed + r,
        )  # fmt: skip
        del module
    s = {k: per_epoch(v) for k, v in train.items()}
    ratio = s["estimator"] / s["bare"]
    value = (
        f"{ratio:.3f} ({s['estimator']:.3f} s vs {s['bare']:.3f} s per epoch; "
        f"whole fit {min(walls):.2f} s for {epochs} epochs of {len(y)})"
    )
    rows.add(name, "train s/epoch vs bare", value, "<= 1.05", judge(ratio <= 1.05))

    predict, module = getattr(fitted, method), fitted.net_.module_
    batch = predict_batch_size(fitted.batch_size, X)
    predict(_rows_of(X, warm))
    bare_predict(module, _rows_of(X, warm), batch, ctx.device)
    seconds = {"bare": [], "estimator": []}
    for _ in range(3):
        sync(ctx.device)
        start = time.perf_counter()
        bare_predict(module, X, batch, ctx.device)
        seconds["bare"].append(time.perf_counter() - start)
        start = time.perf_counter()
        predict(X)
        seconds["estimator"].append(time.perf_counter() - start)
    rate = {k: len(y) / min(v) for k, v in seconds.items()}
    ratio = rate["estimator"] / rate["bare"]
    value = f"{ratio:.3f} ({rate['estimator']:.0f} vs {rate['bare']:.0f} rows/s)"
    rows.add(name, "predict rows/s vs bare", value, ">= 0.95", judge(ratio >= 0.95))

    if ctx.cuda:  # the staging threshold, judged on this machine
        rows.add(name, "predict s: all staged / none staged / as shipped",
                 staging_ab(predict, X), "-")  # fmt: skip

    # Batches are staged one ahead through two pinned buffers: predicting
    # 3 batches and a partial one at once gives what predicting them one
    # call (one batch) at a time gives, so no buffer is overwritten early.
    n_rows = min(len(y), 3 * batch + 5)
    whole = _flat(predict(_rows_of(X, slice(0, n_rows))))
    pieces = np.concatenate([
        _flat(predict(_rows_of(X, slice(i, min(i + batch, n_rows)))))
        for i in range(0, n_rows, batch)
    ])  # fmt: skip
    diff = float(np.abs(whole - pieces).max() / (whole.std() or 1.0))
    rows.add(name, "predict in one call == batch by batch", f"{diff:.2e} of std",
             "<= 1e-5", diff <= 1e-5)  # fmt: skip


def staging_ab(predict, X, repeats=3):
    """Best seconds of ``predict(X)`` with every batch staged through pinned
    memory, with none, and with the package's size limits: whether the
    limits (``_STAGE_BYTES``, ``_STAGE_MAX_BYTES``) choose well here."""
    from skestimators._engine import _staging

    limits = {
        "all": (0, float("inf")),
        "none": (float("inf"), float("inf")),
        "shipped": (_staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES),
    }
    best = {}
    try:
        for label, (low, high) in limits.items():
            _staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES = low, high
            predict(X)  # warm: pinned buffers allocated once
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                predict(X)
                times.append(time.perf_counter() - start)
            best[label] = min(times)
    finally:
        _staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES = limits["shipped"]
    return " / ".join(f"{best[k] * 1e3:.1f} ms" for k in limits)


def _flat(pred):
    """Predictions (an array, or a list of them) as one 2-D float array."""
    parts = pred if isinstance(pred, list) else [pred]
    return np.concatenate(
        [np.asarray(p, dtype=np.float64).reshape(len(p), -1) for p in parts], axis=1
    )


# -- model files ----------------------------------------------------------------------
_SCORE = """
import sys, numpy as np, torch, skestimators
X = np.load(sys.argv[1])
for model, out in zip(sys.argv[2::2], sys.argv[3::2]):
    try:
        np.save(out, skestimators.load(model).predict(X))
    except Exception as exc:  # the next file is still tried
        print(f"{model}: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
print(torch.cuda.is_available())
"""


def check_model_file(ctx):
    import skestimators
    from skestimators.recipes import soc_pipeline

    rows = Rows("model_file")
    X, y = soc_data(ctx, ctx.size(2000, 256))
    y = np.exp(y)  # positive, as SOC (the recipe models its logarithm)
    pipe = soc_pipeline(random_state=ctx.seed, device=ctx.device_param)
    pipe.set_params(regressor__spatiotemporalregressor__max_epochs=ctx.size(5, 2))
    expected = pipe.fit(X, y).predict(X)
    trained_on = pipe.regressor_[-1].device_.type
    rows.add("soc_pipeline", "trained on", trained_on, ctx.device.type,
             trained_on == ctx.device.type)  # fmt: skip
    # The safe format, and a pickle (whose GPU tensors outside skorch's own
    # attributes once made it unloadable without a GPU), both loaded by one
    # process that sees no GPU (one interpreter start, not one per file).
    formats = {"auto": "soc.skops", "pickle": "soc.pkl"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args, sidecars = [str(tmp / "X.npy")], {}
        np.save(args[0], X)
        for format, name in formats.items():
            path = skestimators.save(pipe, tmp / name, format=format)
            sidecars[format] = json.loads(Path(f"{path}.json").read_text())
            args += [str(path), str(tmp / f"{format}.npy")]
        done = subprocess.run(
            [sys.executable, "-c", _SCORE, *args],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        errors = done.stderr.strip().splitlines() or ["no output"]
        if done.returncode:
            rows.add("soc_pipeline", "scoring process", errors[-1][:80], "ok", False)
            return rows
        got = {
            format: np.load(tmp / f"{format}.npy")
            for format in formats
            if (tmp / f"{format}.npy").exists()
        }
    sees = done.stdout.strip().splitlines()[-1]
    for format, name in formats.items():
        case = f"soc_pipeline ({format})"
        rows.add(case, "serialization", sidecars[format].get("serialization", "?"))
        if format not in got:
            error = next((e for e in errors if name in e), errors[-1])
            rows.add(case, "loads without a GPU", error[-80:], "ok", False)
            continue
        rows.add(case, "subprocess sees a GPU", sees, "False", sees == "False")
        # On the GPU, convolutions may run in TF32 (10-bit mantissa).
        diff = float(np.max(np.abs(got[format] - expected)) / (np.std(expected) or 1.0))
        tol = 1e-3 if ctx.cuda else 1e-6
        rows.add(case, "max abs diff / std", diff, f"<= {tol:g}", diff <= tol)
    return rows


# -- memory ---------------------------------------------------------------------------
_STARTS = []  # written by MemoryProbe


def _allocated(collect=True):
    """Allocated GPU memory, less cuBLAS's per-thread workspaces (as torch's
    tests measure it), after a garbage collection unless ``collect=False``."""
    if collect:
        gc.collect()
    torch.cuda.synchronize()
    if hasattr(torch._C, "_cuda_clearCublasWorkspaces"):
        torch._C._cuda_clearCublasWorkspaces()
    return torch.cuda.memory_allocated()


class MemoryProbe(Callback):
    """Records the allocated GPU memory at the start of every fit: as found,
    and after a garbage collection (tensors held in reference cycles)."""

    def on_train_begin(self, net, **kwargs):
        _STARTS.append((_allocated(collect=False), _allocated()))


def check_memory(ctx):
    rows = Rows("memory")
    if not ctx.cuda:
        rows.skip("-", "CUDA only")
        return rows
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.pruners import NopPruner
    from sklearn.model_selection import GridSearchCV

    from skestimators import NetRegressor
    from skestimators.model_selection import OptunaSearchCV

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with failures_as_rows(rows, "GalaxyZooRegressor"):
        memory_after_fit(rows, ctx)
    Xt, yt = table_data(ctx, 3000)
    net = NetRegressor(
        module_params={"width": 512, "depth": 3}, max_epochs=2,
        random_state=ctx.seed, callbacks=[("memory", MemoryProbe())],
    ).fit(Xt, yt)  # fmt: skip
    trials, folds = 3, 3
    searches = {
        "GridSearchCV": lambda: GridSearchCV(
            net, {"lr": [1e-3, 2e-3, 3e-3]}, cv=folds
        ),
        "OptunaSearchCV": lambda: OptunaSearchCV(
            net, {"lr": FloatDistribution(1e-4, 1e-2, log=True)}, n_trials=trials,
            cv=folds, pruner=NopPruner(), random_state=ctx.seed,
        ),
    }  # fmt: skip
    for name, make in searches.items():
        with failures_as_rows(rows, name):
            base = memory_between_trials(rows, name, make, Xt, yt, trials, folds)
            left = (_allocated() - base) / MIB  # the search is gone
            rows.add(name, "MiB left after the search", left, "<= 0.5", left <= 0.5)
    return rows


def memory_after_fit(rows, ctx):
    """GPU memory held by a fitted estimator, and after it is deleted."""
    from skestimators import GalaxyZooRegressor

    X, y = galaxy_data(ctx, 3000)  # 37 MB of images, moved to the GPU by fit
    params = dict(width=16, head_width=128, augment=False, max_epochs=2,
                  random_state=ctx.seed)  # fmt: skip
    GalaxyZooRegressor(**params).fit(X[:256], y[:256])  # cuDNN, cuBLAS set-up
    base = _allocated()
    est = GalaxyZooRegressor(**params).fit(X, y)
    kept = _allocated() - base
    weights = sum(p.numel() * p.element_size() for p in est.net_.module_.parameters())
    goal = 4 * weights + 2 * MIB  # weights, gradients, two Adam moments
    rows.add("GalaxyZooRegressor", "MiB kept after fit", kept / MIB,
             f"<= {goal / MIB:.1f} (4x weights + 2)", kept <= goal)  # fmt: skip
    del est
    left = (_allocated() - base) / MIB
    rows.add("GalaxyZooRegressor", "MiB left after del", left, "<= 0.5", left <= 0.5)


def memory_between_trials(rows, name, make_search, X, y, trials, folds):
    """GPU memory at the start of each fit of a search; returns the memory
    allocated before it."""
    _STARTS.clear()
    base = _allocated()
    make_search().fit(X, y)
    # One record per fit, the refit last. OptunaSearchCV trains the folds of
    # a trial in lockstep (fold k starts with k - 1 folds alive): each fold's
    # start is compared with the same fold's start in the second trial (the
    # first creates what is made once, such as cuDNN handles).
    starts = np.array(_STARTS[: trials * folds]).reshape(trials, folds, 2)
    growth = (starts[1:] - starts[1]).max((0, 1)) / MIB
    ok = len(_STARTS) == trials * folds + 1 and growth[1] <= 1
    value = f"{growth[1]:.2f} ({len(_STARTS)} fits)"
    rows.add(name, "MiB growth between trials", value, "<= 1", ok)
    rows.add(name, "  ... before garbage collection", float(growth[0]))
    return base


# -- searches -------------------------------------------------------------------------
def _on_device(est, X, y, kind):
    """A scorer: 1 when the fold's network trained on a ``kind`` device."""
    return float(est.device_.type == kind)


def check_search(ctx):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.pruners import NopPruner
    from sklearn.model_selection import GridSearchCV

    from skestimators import NetRegressor
    from skestimators.model_selection import OptunaSearchCV

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = Rows("search")
    X, y = table_data(ctx, ctx.size(4000, 600))
    net = NetRegressor(
        max_epochs=ctx.size(5, 2), device=ctx.device_param, random_state=ctx.seed
    )
    scoring = {
        "r2": "r2",
        "device": functools.partial(_on_device, kind=ctx.device.type),
    }
    searches = {
        "GridSearchCV": GridSearchCV(
            net, {"lr": [1e-3, 3e-3], "batch_size": [32, 64]}, cv=2, n_jobs=2,
            scoring=scoring, refit="r2",
        ),
        "OptunaSearchCV": OptunaSearchCV(
            net, {"lr": FloatDistribution(1e-4, 1e-2, log=True)}, n_trials=4,
            cv=2, n_jobs=2, scoring=scoring, refit="r2", pruner=NopPruner(),
            random_state=ctx.seed,
        ),
    }  # fmt: skip
    for name, search in searches.items():
        start = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - start
        score = float(search.best_score_)
        rows.add(name, "best_score_ (r2)", score, "finite", np.isfinite(score))
        on_device = np.asarray(search.cv_results_["mean_test_device"], dtype=float)
        value = (
            f"{ctx.device.type}: {np.sum(on_device == 1)} of {len(on_device)} trials"
        )
        ok = len(on_device) > 0 and bool(np.all(on_device == 1))  # NaN: a failure
        rows.add(name, "folds trained on", value, "every trial", ok)
        refit = search.best_estimator_.device_.type
        rows.add(name, "refit on", refit, ctx.device.type, refit == ctx.device.type)
        rows.add(name, "seconds", seconds)
    return rows


# -- driver ---------------------------------------------------------------------------
# Seconds allowed on one H200: about 1.3 times the slowest of three runs
# there (2026-12; one machine took about 1.35 times as long in all, its bare
# loops up to twice as long). They flag a check grown slow, not the GPU; the
# total (TOTAL_BUDGET) is judged on its own, below their sum.
CHECKS = {  # name: (function, seconds allowed)
    "placement": (check_placement, 36),  # measured 17-28 s
    "amp": (check_amp, 42),  # 21-32 s
    "throughput": (check_throughput, 135),  # 67-104 s
    "model_file": (check_model_file, 33),  # 16-25 s (27 s with two interpreters)
    "memory": (check_memory, 30),  # 17-21 s
    "search": (check_search, 40),  # 18-25 s
}


def warm_up(device):
    """Create the CUDA context and load cuBLAS and cuDNN before any timing."""
    if device.type != "cuda":
        return
    x = torch.randn(8, 3, 16, 16, device=device, requires_grad=True)
    conv = torch.nn.Conv2d(3, 4, 3).to(device)
    lstm = torch.nn.LSTM(4, 4, batch_first=True).to(device)
    out = conv(x).mean((2, 3)).unsqueeze(1)
    (lstm(out)[0].sum() + (out @ out.transpose(1, 2)).sum()).backward()
    sync(device)


def run_check(name, ctx):
    fn, budget = CHECKS[name]
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = fn(ctx)
    except Exception as exc:  # one failed check never stops the others
        rows = Rows(name)
        error = f"{type(exc).__name__}: {_first_line(exc)}"
        rows.add("-", "error", error, "no error", False)
    finally:
        gc.collect()
        if ctx.cuda:
            torch.cuda.empty_cache()
    seconds = time.perf_counter() - start
    timed = ctx.cuda and not ctx.quick
    rows.add("-", "seconds", seconds, f"<= {budget}" if timed else "-",
             seconds <= budget if timed else None)  # fmt: skip
    return rows


def markdown(rows):
    header = ["check", "estimator", "metric", "value", "goal", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(getattr(r, h)).replace("|", "/") for h in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(device):
    """One line naming the device and the versions of torch and CUDA."""
    versions = f"torch {torch.__version__}"
    if device.type != "cuda":
        return f"CPU only ({torch.get_num_threads()} torch threads), {versions}"
    free, total = torch.cuda.mem_get_info(device)
    return (
        f"GPU {torch.cuda.get_device_name(device)} ({free / 2**30:.0f} of "
        f"{total / 2**30:.0f} GiB free), {versions}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}"
    )


def write_rows(out, rows):
    """Write the rows as JSON to ``out`` and as a markdown table beside it."""
    out.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows) + "\n")


def main(argv=None):
    start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", help=f"comma-separated checks: {', '.join(CHECKS)}")
    parser.add_argument("--out", type=Path, help="write the rows (JSON) and PATH.md")
    args = parser.parse_args(argv)
    selected = args.only.split(",") if args.only else list(CHECKS)
    unknown = sorted(set(selected) - set(CHECKS))
    if unknown:
        parser.error(f"unknown checks {unknown}; choose among {list(CHECKS)}")
    device = torch.device("cuda" if args.device == "auto" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    if device.index is not None:  # the estimators' "auto" is the current GPU
        torch.cuda.set_device(device)
    print(describe(device), flush=True)
    warm_up(device)
    ctx = Context(device=device, quick=args.quick)
    startup = time.perf_counter() - start
    rows = []
    for name in selected:
        print(f"{name} ...", flush=True)
        rows += run_check(name, ctx)
        if args.out is not None:  # what ran so far survives a killed run
            write_rows(args.out, rows)
    total = time.perf_counter() - start
    summary = Rows("total")
    summary.add("-", "seconds to start (CUDA set-up)", startup)
    timed = ctx.cuda and not ctx.quick and len(selected) == len(CHECKS)
    summary.add("-", "seconds", total, f"<= {TOTAL_BUDGET}" if timed else "-",
                total <= TOTAL_BUDGET if timed else None)  # fmt: skip
    rows += summary
    text = markdown(rows)
    print(text)
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, SKIP)}
    print(f"\n{counts[FAIL]} failed, {counts[PASS]} passed, {counts[SKIP]} skipped.")
    if args.out is not None:
        write_rows(args.out, rows)
    return 1 if counts[FAIL] else 0


if __name__ == "__main__":
    sys.exit(main())
