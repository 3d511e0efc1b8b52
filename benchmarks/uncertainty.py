"""Coverage of 90 % prediction intervals for soil carbon, spatial vs random CV.

Simulated data (:func:`skestimators.datasets.make_soc`, clustered locations).
The model is a pipeline of patch statistics, a standard scaler and a
:class:`~skestimators.NetRegressor` (an MLP with dropout) on log SOC; an
interval on log SOC maps to one on SOC with the same coverage. Each method
builds nominal 90 % intervals on the training folds of an outer
cross-validation and is scored on its test fold, under two outer schemes:
:class:`~skestimators.model_selection.SpatialBlockKFold` (the test fold lies
in blocks that the model has not seen: the situation of a map) and a shuffled
``KFold`` (random, optimistic). Methods:

* ``mc_dropout``: ``predict(X, return_std=True)`` (Monte Carlo dropout),
  ``mean ± 1.645 std``;
* ``deep_ensemble``: :class:`~skestimators.uncertainty.DeepEnsembleRegressor`
  of 5 networks, ``mean ± 1.645 std``;
* ``conformal_random``: MAPIE's ``CrossConformalRegressor`` (CV+)
  calibrated on a shuffled ``KFold`` of the training data;
* ``conformal_blocks``: the same calibrated on ``SpatialBlockKFold`` with the
  blocks of the outer spatial folds (``--block-size``);
* ``conformal_matched``: the same calibrated on ``SpatialBlockKFold`` whose
  block size :func:`~skestimators.uncertainty.calibration_block_size` picks
  from the coordinates alone, so that the calibration samples are held out
  as far from their training samples as the test fold is from the training
  data (nearest-neighbour distance matching).

It prints, per method and outer scheme, the empirical coverage and the mean
width of the intervals (log SOC units) and the cost of the method (seconds
per outer fold, in units of one network fit). Under spatial cross-validation
the errors within a block are correlated, so the coverage of one data set
varies far more than a binomial count suggests: ``--repeats N`` pools N
independent simulated data sets and reports the standard deviation of the
coverage between them (``coverage_sd``).

Run: ``OMP_NUM_THREADS=1 python benchmarks/uncertainty.py`` (a few minutes
on two cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from mapie.regression import CrossConformalRegressor
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators import NetRegressor
from skestimators.datasets import make_soc
from skestimators.model_selection import SpatialBlockKFold
from skestimators.preprocessing import PatchStatistics
from skestimators.uncertainty import DeepEnsembleRegressor, calibration_block_size

Z90 = 1.6448536269514722  # the 95th percentile of the standard normal


def model(max_epochs, random_state=0):
    """Patch statistics, scaling and an MLP with dropout, on log SOC."""
    return make_pipeline(
        PatchStatistics(),
        StandardScaler(),
        NetRegressor(
            module_params={"width": 64, "depth": 2, "dropout": 0.1},
            max_epochs=max_epochs,
            device="cpu",
            random_state=random_state,
        ),
    )


def _spatial(n_splits, block_size, seed):
    return SpatialBlockKFold(
        n_splits=n_splits, block_size=block_size, random_state=seed
    )


def intervals(method, X_tr, y_tr, c_tr, X_te, c_te, args):
    """``(lower, upper)`` of the nominal 90 % interval on ``X_te``."""
    if method == "mc_dropout":
        fitted = model(args.max_epochs).fit(X_tr, y_tr)
        mean, std = _net_std(fitted, X_te)
        return mean - Z90 * std, mean + Z90 * std
    if method == "deep_ensemble":
        ens = DeepEnsembleRegressor(model(args.max_epochs), n_estimators=5,
                                    random_state=0).fit(X_tr, y_tr)  # fmt: skip
        mean, std = ens.predict(X_te, return_std=True)
        return mean - Z90 * std, mean + Z90 * std
    if method == "conformal_blocks":
        cv = _spatial(args.calibration_folds, args.block_size, 1)
    elif method == "conformal_matched":
        sizes = [s * args.block_size for s in (0.25, 0.5, 0.75, 1.0, 1.5)]
        size = calibration_block_size(
            c_tr, c_te, block_sizes=sizes, n_splits=args.calibration_folds,
            random_state=1,
        )  # fmt: skip
        print(f"  calibration block size {size:.0f}", flush=True)
        cv = _spatial(args.calibration_folds, size, 1)
    else:
        cv = KFold(args.calibration_folds, shuffle=True, random_state=1)
    mapie = CrossConformalRegressor(
        model(args.max_epochs),
        confidence_level=0.9,
        cv=cv,
        method=args.conformal_method,
    )
    groups = c_tr if isinstance(cv, SpatialBlockKFold) else None
    mapie.fit_conformalize(X_tr, y_tr, groups=groups)
    _, pis = mapie.predict_interval(X_te)
    return pis[:, 0, 0], pis[:, 1, 0]


def _net_std(pipe, X):
    """MC dropout through a pipeline: transform, then the network's predict."""
    Xt = pipe[:-1].transform(X)
    return pipe[-1].predict(Xt, return_std=True)


METHODS = [
    "mc_dropout",
    "deep_ensemble",
    "conformal_random",
    "conformal_blocks",
    "conformal_matched",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=600)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--block-size", type=float, default=10_000.0)
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=METHODS, help="subset"
    )
    parser.add_argument(
        "--outer", nargs="+", choices=["spatial", "random"],
        default=["spatial", "random"], help="outer schemes",
    )  # fmt: skip
    parser.add_argument(
        "--conformal-method", choices=["plus", "base", "minmax"], default="plus",
        help="MAPIE's CrossConformalRegressor method (CV+ by default)",
    )  # fmt: skip
    parser.add_argument(
        "--calibration-folds", type=int, default=5,
        help="folds of the conformal methods' calibration splitter",
    )  # fmt: skip
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="independent simulated data sets (random_state 0..N-1), each with "
        "its own outer folds; coverage and width are pooled over them and the "
        "spread of the coverage between data sets is reported",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    datasets = []
    for r in range(args.repeats):
        X, soc, coords = make_soc(args.n_samples, n_years=3, random_state=r)
        outer = {
            "spatial": _spatial(5, args.block_size, r),
            "random": KFold(5, shuffle=True, random_state=r),
        }
        datasets.append((X, np.log(soc), coords, outer))
    X, y, coords, _ = datasets[0]
    model(args.max_epochs).fit(X[:50], y[:50])  # warm-up
    t0 = time.perf_counter()
    model(args.max_epochs).fit(X, y)
    one_fit = time.perf_counter() - t0

    rows = []
    for scheme in args.outer:
        for method in args.methods:
            covered, widths, seconds, per_dataset = [], [], [], []
            for X, y, coords, outer in datasets:
                groups = coords if scheme == "spatial" else None
                hits = []
                for train, test in outer[scheme].split(X, y, groups=groups):
                    t0 = time.perf_counter()
                    lo, hi = intervals(
                        method, X[train], y[train], coords[train], X[test],
                        coords[test], args,
                    )  # fmt: skip
                    seconds.append(time.perf_counter() - t0)
                    hits.append((y[test] >= lo) & (y[test] <= hi))
                    widths.append(hi - lo)
                covered.extend(hits)
                per_dataset.append(np.concatenate(hits).mean())
            spread = np.std(per_dataset, ddof=1) if len(per_dataset) > 1 else np.nan
            rows.append(
                {
                    "method": method,
                    "outer_cv": scheme,
                    "coverage": np.concatenate(covered).mean(),
                    "coverage_sd": spread,
                    "mean_width": np.concatenate(widths).mean(),
                    "cost_in_fits": np.mean(seconds) / one_fit,
                }
            )
            print(
                pd.DataFrame(rows[-1:]).to_string(index=False, header=False),
                "per data set:", np.round(per_dataset, 3), flush=True,
            )  # fmt: skip
    table = pd.DataFrame(rows).pivot(index="method", columns="outer_cv")
    table = table.reindex(args.methods)
    pd.set_option("display.width", 160)
    print(f"\nnominal coverage 0.90; one network fit: {one_fit:.2f} s")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
