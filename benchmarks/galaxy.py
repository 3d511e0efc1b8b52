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
* GalaxyZooRegressor with torchvision's ResNet-18 (``module="resnet18"``, extra
  ``vision``) and the divisive output layer, from random weights and, with
  ``--weights PATH`` (a local ResNet-18 state dict, e.g. ImageNet weights saved
  with ``torch.save(model.state_dict(), PATH)``), fine-tuned from them with the
  first epoch frozen; ``--resnet-epochs`` epochs (10 by default: a ResNet-18
  epoch costs about ten GalaxyCNN epochs on a CPU);
* a bare PyTorch loop training the same network for two epochs, for the
  training-throughput ratio of the estimator (no augmentation on either side).

Throughput is images per second of wall time: training counts every image of
every epoch, prediction every test image (all its views included). The
script prints one table with the RMSE ratio to the best non-neural baseline.

Real galaxies (``--real FOLDER``): a folder of real SDSS images with their
Galaxy Zoo 1 classes (``images/<objid>.jpg`` and ``classes.csv``, e.g.
``../shared/data/galaxy_gz1``), loaded as the judged set-up loads them
(:func:`~skestimators.datasets.load_galaxy_zoo`'s centre crop of 207 px,
resized to 69 px), scored by stratified K-fold cross-validated 6-class balanced
accuracy for:

* ``ImageClassifier(max_epochs=12, class_weight="balanced")`` at otherwise
  default settings, whose test-time augmentation averages the four rotations
  of each image (``tta="auto"``), and the same fitted model without it
  (``tta=1``);
* a plain CNN in bare PyTorch: four blocks of 3x3 convolution, batch
  normalisation, ReLU and max pooling (32-256 channels), global average
  pooling, class-weighted cross-entropy, a random rotation by a multiple of
  90 degrees per batch, Adam 1e-3, batch 64, 12 epochs, per-channel
  standardisation;
* HistGradientBoosting (balanced class weights) on 23x23 pixels (3x3 means).

Run: ``OMP_NUM_THREADS=1 python benchmarks/galaxy.py`` (a few minutes on two
cores); ``--quick`` for a one-minute smoke run (500/200 galaxies, 3 epochs);
``--big`` for a GPU-sized run; ``--real ../shared/data/galaxy_gz1``
for the real-image section only (about 3 minutes per fold and model on two
cores; ``--folds`` sets K; ``--set NAME=VALUE``, repeatable, changes a
parameter of the ImageClassifier, to measure a default against another value
on the same folds).
"""

from __future__ import annotations

import argparse
import ast
import copy
import time

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.utils.class_weight import compute_class_weight

from skestimators import GalaxyZooRegressor, ImageClassifier
from skestimators.datasets import load_galaxy_zoo, make_galaxy_zoo
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


def has_torchvision():
    try:
        from skestimators.nn._backbones import _torchvision_models

        _torchvision_models()
    except ImportError:
        return False
    return True


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


def plain_cnn(X, y, X_test, *, epochs=12, seed=0):
    """Class predictions of the plain bare-PyTorch CNN of the module docstring."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    mean = X.mean(axis=(0, 2, 3), keepdims=True)
    std = X.std(axis=(0, 2, 3), keepdims=True)
    Xt = torch.from_numpy((X - mean) / std).float()
    Xs = torch.from_numpy((X_test - mean) / std).float()
    classes, codes = np.unique(y, return_inverse=True)
    layers, c_in = [], X.shape[1]
    for c in (32, 64, 128, 256):
        layers += [
            torch.nn.Conv2d(c_in, c, 3, padding=1),
            torch.nn.BatchNorm2d(c),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        ]
        c_in = c
    net = torch.nn.Sequential(
        *layers,
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(c_in, len(classes)),
    )
    weight = compute_class_weight("balanced", classes=np.arange(len(classes)), y=codes)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight).float())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = torch.from_numpy(codes).long()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(Xt), generator=gen)
        for i in range(0, len(Xt), 64):
            idx = perm[i : i + 64]
            k = int(torch.randint(0, 4, (1,), generator=gen))
            opt.zero_grad()
            loss_fn(net(torch.rot90(Xt[idx], k, (2, 3))), target[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(Xs[i : i + 256]) for i in range(0, len(Xs), 256)])
    return classes[logits.argmax(1).numpy()]


def _parameter(text):
    """``NAME=VALUE`` of ``--set``: the value as a Python literal, else a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def real_images(folder, *, folds, seed, device, params=()):
    """Cross-validated balanced accuracy on real galaxies (``--real``).

    ``params``: ``(name, value)`` pairs set on the ImageClassifier (``--set``),
    to measure a default against another value on the same folds.
    """
    from pathlib import Path

    folder = Path(folder)
    X, _, ids = load_galaxy_zoo(folder / "images", crop=207, size=69)
    table = pd.read_csv(folder / "classes.csv").set_index("objid")
    y = table.loc[ids, "class"].to_numpy()
    print(f"{len(y)} real galaxies, classes {np.bincount(y).tolist()}, {folds} folds")

    changed = ", ".join(f"{k}={v!r}" for k, v in params)
    label = f"ImageClassifier({changed})" if params else "ImageClassifier defaults"

    def package(X_train, y_train, X_test):
        clf = ImageClassifier(
            max_epochs=12, class_weight="balanced", random_state=seed, device=device
        )
        clf.set_params(**dict(params)).fit(X_train, y_train)
        # The default tta="auto" averages the 4 rotations training draws.
        return {
            label: clf.predict(X_test),
            "  ... without test-time augmentation": clf.set_params(tta=1).predict(
                X_test
            ),
        }

    def hgb(X_train, y_train, X_test):
        def pixels(Z):
            return pooled_pixels(Z, cells=23)

        model = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
        return model.fit(pixels(X_train), y_train).predict(pixels(X_test))

    models = {
        label: package,
        "plain CNN (bare PyTorch)": lambda a, b, c: plain_cnn(a, b, c, seed=seed),
        "HistGradientBoosting, 23x23 pixels": hgb,
    }
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = {}
    for train, test in cv.split(X, y):
        for name, predict in models.items():
            start = time.perf_counter()
            pred = predict(X[train], y[train], X[test])
            for row, p in (pred if isinstance(pred, dict) else {name: pred}).items():
                scores.setdefault(row, []).append(balanced_accuracy_score(y[test], p))
                print(
                    f"  {row}: {scores[row][-1]:.3f} "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    for name, values in scores.items():
        print(f"{name:40s} {np.mean(values):.3f} +- {np.std(values):.3f}")


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
        "--real",
        metavar="FOLDER",
        help="real SDSS galaxies with Galaxy Zoo 1 classes: run that section only",
    )
    parser.add_argument("--folds", type=int, default=3, help="K of --real")
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        type=_parameter,
        action="append",
        default=[],
        help="--real: set an ImageClassifier parameter (repeatable), e.g. "
        "--set validation_fraction=0.1 --set early_stopping=True",
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="local ResNet-18 state dict: adds a fine-tuned resnet18 row",
    )
    parser.add_argument("--resnet-epochs", type=int, default=10)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 500 train / 200 test galaxies, 3 epochs",
    )
    parser.add_argument(
        "--big",
        action="store_true",
        help="GPU-sized run: 20000 train / 5000 test galaxies at 64 px, width 32",
    )
    args = parser.parse_args(argv)
    if args.real:
        real_images(
            args.real,
            folds=args.folds,
            seed=args.seed,
            device=args.device,
            params=args.set,
        )
        return
    if args.big:
        args.n_train, args.n_test, args.size, args.width = 20000, 5000, 64, 32
        args.epochs = max(args.epochs, 40)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.resnet_epochs = 500, 200, 3, 3

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
    # The first network fit of a process pays for imports (the first torch
    # optimizer imports torch._dynamo): paid here, outside the timings.
    GalaxyZooRegressor(**{**common, "max_epochs": 1}).fit(X[:64], y[:64])
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

    resnets = {"resnet18, random weights": {}}
    if args.weights:
        resnets["resnet18, pretrained (1 frozen epoch)"] = {
            "pretrained_weights": args.weights,
            "freeze_epochs": 1,
        }
    for label, params in resnets.items():
        if not has_torchvision():
            print("resnet18 rows skipped: torchvision is not installed (extra vision)")
            break
        # Pooled features straight to the output layer, as in ImageNet models.
        reg = GalaxyZooRegressor(
            "resnet18",
            dropout=0.0,
            **{**common, "max_epochs": args.resnet_epochs, "head_width": None},
            **params,
        )
        _, fit_s = timed(reg.fit, X, y)
        pred, pred_s = timed(reg.set_params(tta=1).predict, X_test)
        add(f"{label}, tta=1", pred, fit_s, pred_s, reg.n_iter_ * len(X), m, True)
        fitted[label] = reg

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
