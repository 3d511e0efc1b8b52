"""GalaxyZooRegressor against the Galaxy Challenge baselines, on simulated galaxies.

Trains on ``make_galaxy_zoo`` images and scores independent test galaxies with
the challenge metric (RMSE over the 37 vote fractions). Rows:

* all-mean benchmark: the training mean of every answer;
* central-pixel kNN: k nearest neighbours on the colour of the central pixels
  (the mean of the central 3x3, as the Kaggle "central pixel" benchmark);
* HistGradientBoosting, one model per answer, on 8x8 average-pooled pixels
  (raw and projected onto the tree with ``project_galaxy_zoo``);
* GalaxyZooRegressor (GalaxyCNN) with each output layer, without and with
  test-time augmentation (8 dihedral views), plus the unconstrained net
  projected onto the tree after the fact;
* a bare PyTorch loop training the same network for two epochs, for the
  training-throughput ratio of the estimator (no augmentation on either side).

Throughput is images per second of wall time: training counts every image of
every epoch, prediction every test image (all its views included). The
script prints one table with the RMSE ratio to the best non-neural baseline.

Run: ``OMP_NUM_THREADS=1 python benchmarks/galaxy.py`` (a few minutes on two
cores); ``--big`` for a GPU-sized run.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor

from skestimators import GalaxyZooRegressor
from skestimators.datasets import make_galaxy_zoo
from skestimators.galaxy_zoo import project_galaxy_zoo
from skestimators.metrics import galaxy_zoo_root_mean_squared_error


def central_colour(X):
    c = X.shape[-1] // 2
    return X[:, :, c - 1 : c + 2, c - 1 : c + 2].mean(axis=(2, 3))


def pooled_pixels(X, cells=8):
    n, ch, h, w = X.shape
    X = X[:, :, : h - h % cells, : w - w % cells]
    X = X.reshape(n, ch, cells, X.shape[2] // cells, cells, X.shape[3] // cells)
    return X.mean(axis=(3, 5)).reshape(n, -1)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def bare_loop_rate(reg, X, y, epochs, seed):
    """Images/s of a bare loop training ``reg``'s fitted module architecture."""
    module = copy.deepcopy(reg.net_.module_).to(reg.device_)
    for layer in module.modules():  # fresh weights, same architecture
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    opt = torch.optim.Adam(module.parameters(), lr=reg.lr)
    Xt = torch.from_numpy(X).to(reg.device_)
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32)).to(reg.device_)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen).to(reg.device_)
        Xe, ye = Xt[perm], yt[perm]
        for i in range(0, len(Xe), reg.batch_size):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(
                module(Xe[i : i + reg.batch_size]), ye[i : i + reg.batch_size]
            )
            loss.backward()
            opt.step()
    if reg.device_.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(Xt) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32, help="image side, pixels")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width", type=int, default=16, help="first-block channels")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--big",
        action="store_true",
        help="GPU-sized run: 20000 train / 5000 test galaxies at 64 px, width 32",
    )
    args = parser.parse_args(argv)
    if args.big:
        args.n_train, args.n_test, args.size, args.width = 20000, 5000, 64, 32
        args.epochs = max(args.epochs, 40)

    X, y = make_galaxy_zoo(args.n_train, size=args.size, random_state=args.seed)
    X_test, y_test = make_galaxy_zoo(
        args.n_test, size=args.size, random_state=args.seed + 1
    )
    y, y_test = y.to_numpy(), y_test.to_numpy()
    print(
        f"{args.n_train} train / {args.n_test} test galaxies, {args.size}x"
        f"{args.size} px, torch threads {torch.get_num_threads()}"
    )
    rows = []

    def add(model, y_pred, fit_s, predict_s, train_images, predict_images, neural):
        rows.append(
            {
                "model": model,
                "rmse": galaxy_zoo_root_mean_squared_error(y_test, y_pred),
                "train img/s": train_images / fit_s if fit_s else np.nan,
                "predict img/s": predict_images / predict_s if predict_s else np.nan,
                "fit s": fit_s,
                "neural": neural,
            }
        )

    n, m = args.n_train, args.n_test
    _, fit_s = timed(lambda: y.mean(0))
    add("all-mean benchmark", np.tile(y.mean(0), (m, 1)), fit_s, None, n, m, False)

    knn = KNeighborsRegressor(n_neighbors=50)
    _, fit_s = timed(knn.fit, central_colour(X), y)
    pred, pred_s = timed(knn.predict, central_colour(X_test))
    add("central-pixel colour kNN (k=50)", pred, fit_s, pred_s, n, m, False)

    hgb = MultiOutputRegressor(
        HistGradientBoostingRegressor(
            max_iter=100, early_stopping=False, random_state=0
        )
    )
    _, fit_s = timed(hgb.fit, pooled_pixels(X), y)
    pred, pred_s = timed(hgb.predict, pooled_pixels(X_test))
    add("HistGradientBoosting, 8x8 pixels", pred, fit_s, pred_s, n, m, False)
    add("  ... projected onto the tree", project_galaxy_zoo(pred), fit_s, pred_s,
        n, m, False)  # fmt: skip

    common = {
        "width": args.width, "head_width": 8 * args.width, "max_epochs": args.epochs,
        "lr_scheduler": "cosine", "patience": 8, "device": args.device,
        "random_state": args.seed,
    }  # fmt: skip
    fitted = {}
    for constraint in ("divisive", "softmax", "none"):
        reg = GalaxyZooRegressor(constraint=constraint, **common)
        _, fit_s = timed(reg.fit, X, y)
        fitted[constraint] = reg
        seen = reg.n_iter_ * len(X)  # every epoch, validation images included
        for tta in (1, 8):
            pred, pred_s = timed(reg.set_params(tta=tta).predict, X_test)
            label = f"GalaxyCNN {constraint}, tta={tta}"
            add(label, pred, fit_s, pred_s, seen, m, True)
            if constraint == "none":
                add(f"  ... projected onto the tree, tta={tta}",
                    project_galaxy_zoo(pred), fit_s, pred_s, seen, m, True)  # fmt: skip

    table = pd.DataFrame(rows).set_index("model")
    best = table.loc[~table["neural"], "rmse"].min()
    table.insert(1, "rmse / best baseline", table["rmse"] / best)
    table = table.drop(columns="neural")
    with pd.option_context("display.width", 140, "display.max_colwidth", 40):
        print(
            table.to_string(float_format=lambda v: f"{v:.4f}" if v < 10 else f"{v:.0f}")
        )

    # Training throughput of the estimator against a bare loop, same network.
    plain = GalaxyZooRegressor(
        **{**common, "max_epochs": 2}, augment=False, validation_fraction=None
    )
    _, fit_s = timed(plain.fit, X, y)
    estimator_rate = 2 * len(X) / fit_s
    bare_rate = bare_loop_rate(plain, X, y, 2, args.seed)
    print(
        f"training throughput without augmentation: estimator {estimator_rate:.0f} "
        f"img/s, bare PyTorch loop {bare_rate:.0f} img/s "
        f"(ratio {estimator_rate / bare_rate:.2f})"
    )
    for constraint, reg in fitted.items():
        print(f"{constraint}: {reg.n_iter_} epochs, best epoch {reg.best_epoch_}")


if __name__ == "__main__":
    main()
