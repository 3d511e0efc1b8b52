"""Soil organic carbon: CNN-LSTM recipes against tree ensembles, random vs spatial CV.

Simulated data (:func:`skestimators.datasets.make_soc`): multi-year covariate
patches at clustered locations, SOC depending on the covariates, on their
trend over the years, on a region where the relation changes and on a hidden
spatial field. Each model is cross-validated on the very same folds
(:func:`~skestimators.model_selection.compare_variants`) under three schemes:

* random: shuffled ``KFold`` (neighbouring, autocorrelated samples fall on
  both sides of a split: optimistic);
* blocks: :class:`~skestimators.model_selection.SpatialBlockKFold` over square
  blocks of ``--block-size`` metres;
* buffered: :class:`~skestimators.model_selection.BufferedKFold`, a random
  K-fold whose training sets drop every sample within ``--buffer`` metres of
  a test sample along both axes (``metric="chebyshev"``; the default,
  1250 m, is one patch width: no training patch shares a pixel with a test
  patch).

Models (every one inside a log target transform, refitted per fold):

* ``cnn_lstm (recipe)``: :func:`skestimators.recipes.soc_pipeline`, the
  package's recommended set-up (per-year centre-pixel and patch statistics,
  then the CNN-LSTM over the years);
* ``cnn_lstm (patches)``: the CNN-LSTM on the raw 5x5 patches, a per-year
  CNN then an LSTM over the years (``soc_pipeline(inputs="patches")``);
* ``pooled (recipe)``: the recipe with the years pooled instead of read by
  an LSTM;
* ``hgb`` and ``random_forest``: tree ensembles on the mean, std, 10th and
  90th percentile of every band and year
  (:func:`skestimators.recipes.soc_baseline_pipeline`), the non-neural peers.

It prints R², RMSE, MAE and RPIQ (mean ± std over folds and repeats), the
optimism of random CV (R² random minus R² spatial) and the RMSE of each model
relative to the best tree ensemble under the same scheme. Then it fits the
recipe on all samples, maps the simulated rasters with
:func:`~skestimators.mapping.predict_raster`, checks the GeoTIFF's CRS and
transform and scores the map against the noise-free SOC of the simulation.

``--missing`` runs instead the comparison for incomplete satellite series:
clouds (:func:`~skestimators.datasets.add_clouds`, spatially correlated NaN
blobs) over 0, 10 and 30 % of the point-years, spatial-CV R² of the recipe,
the CNN-LSTM on raw patches and gradient boosting, each trained on every
sample (missing values read as missing) or only on the complete samples.

Run: ``OMP_NUM_THREADS=1 python benchmarks/soc.py`` (a few minutes on two
cores); ``--big`` for 2000 samples, 3 repeats and the full-resolution map.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from skestimators.datasets import (
    NodataWarning,
    add_clouds,
    make_soc,
    make_soc_rasters,
)
from skestimators.mapping import predict_raster
from skestimators.metrics import regression_scorers
from skestimators.model_selection import (
    BufferedKFold,
    SpatialBlockKFold,
    compare_variants,
)
from skestimators.recipes import soc_baseline_pipeline, soc_pipeline

NETWORK_PREFIX = "regressor__spatiotemporalregressor__"
DISPLAY = {
    "r2": "R²",
    "neg_root_mean_squared_error": "RMSE",
    "neg_mean_absolute_error": "MAE",
    "rpiq": "RPIQ",
}
TREES = ("hgb", "random_forest")


def variants(args):
    def net(model):
        return model.set_params(**{NETWORK_PREFIX + "max_epochs": args.epochs})

    common = dict(random_state=args.seed, device=args.device)
    return {
        "cnn_lstm (recipe)": net(soc_pipeline("cnn_lstm", **common)),
        "cnn_lstm (patches)": net(soc_pipeline("cnn_lstm", inputs="patches", **common)),
        "pooled (recipe)": net(soc_pipeline("pooled", **common)),
        "hgb": soc_baseline_pipeline("hist_gradient_boosting", random_state=args.seed),
        "random_forest": soc_baseline_pipeline("random_forest", random_state=args.seed),
    }


def schemes(args):
    return {
        "random": (KFold(args.folds, shuffle=True), None),
        "blocks": (SpatialBlockKFold(args.folds, block_size=args.block_size), True),
        "buffered": (
            BufferedKFold(args.buffer, n_splits=args.folds, metric="chebyshev"),
            True,
        ),
    }


def evaluate(args, X, y, coords):
    frames = []
    for scheme, (cv, needs_coords) in schemes(args).items():
        start = time.perf_counter()
        df = compare_variants(
            variants(args), X, y, cv=cv, scoring=regression_scorers(),
            groups=coords if needs_coords else None, n_repeats=args.n_repeats,
            n_jobs=args.n_jobs, random_state=args.seed,
        )  # fmt: skip
        print(f"  {scheme}: {time.perf_counter() - start:.0f} s", flush=True)
        frames.append(df.assign(scheme=scheme))
    df = pd.concat(frames, ignore_index=True)
    negated = df["metric"].str.startswith("neg_")
    df.loc[negated, "value"] = -df.loc[negated, "value"]
    df["metric"] = df["metric"].map(DISPLAY)
    return df


def report(df):
    # NaN (a failed fit) is not skipped: a mean over the folds that worked
    # would rank the variant among the others; the failures are counted.
    stats = df.groupby(["scheme", "variant", "metric"], sort=False)["value"].agg(
        mean=lambda v: float(np.mean(v.to_numpy())),
        std=lambda v: float(np.std(v.to_numpy())),
    )
    text = stats.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1)
    table = text.unstack("metric")[list(DISPLAY.values())]
    fits = df.drop_duplicates(["scheme", "variant", "repeat", "fold"])
    fit_s = fits.groupby(["scheme", "variant"], sort=False)["fit_time"].mean()
    table["fit s"] = fit_s.map(lambda t: f"{t:.1f}")
    failed = df[df["value"].isna()].drop_duplicates(
        ["scheme", "variant", "repeat", "fold"]
    )
    if len(failed):
        counts = failed.groupby(["scheme", "variant"], sort=False).size()
        table["failed fits"] = counts.reindex(table.index, fill_value=0)
    means = stats["mean"].unstack("metric")
    rmse = means["RMSE"].unstack("scheme")
    best_tree = rmse.loc[list(TREES)].min()
    table["RMSE / best tree"] = [
        f"{rmse.loc[v, s] / best_tree[s]:.2f}" for s, v in table.index
    ]
    with pd.option_context("display.width", 160, "display.max_colwidth", 30):
        print(table.to_string())
    r2 = means["R²"].unstack("scheme")
    optimism = pd.DataFrame(
        {
            "R² random": r2["random"],
            "- blocks": r2["random"] - r2["blocks"],
            "- buffered": r2["random"] - r2["buffered"],
        }
    )
    print("\nOptimism of random CV (R² random minus R² spatial):")
    print(optimism.to_string(float_format=lambda v: f"{v:.3f}"))
    return means


def mapping_demo(args, X, y, coords):
    """Fit the recipe on every sample, map the rasters, score the map."""
    import rasterio

    model = soc_pipeline(random_state=args.seed, device=args.device)
    model.set_params(**{NETWORK_PREFIX + "max_epochs": args.epochs}).fit(X, y)
    with tempfile.TemporaryDirectory() as folder:
        paths, oc = make_soc_rasters(
            Path(folder) / "covariates", n_years=X.shape[-1],
            random_state=args.seed, return_oc=True,
        )  # fmt: skip
        start = time.perf_counter()
        out = predict_raster(
            model, paths, Path(folder) / "soc.tif", window=X.shape[2],
            stride=args.map_stride, batch_size=4096,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        with rasterio.open(paths[0]) as src, rasterio.open(out) as dst:
            assert dst.crs == src.crs, (dst.crs, src.crs)
            expected = src.transform @ rasterio.Affine.scale(args.map_stride)
            assert dst.transform == expected, (dst.transform, expected)
            soc_map = dst.read(1, masked=True)
            crs, shape = dst.crs.to_string(), dst.shape
    s = args.map_stride

    def centres(n, size):  # each map pixel's centre, as predict_raster reads it
        start = np.arange(n) * s
        return start + (np.minimum(start + s, size) - start) // 2

    truth = oc[np.ix_(centres(shape[0], oc.shape[0]), centres(shape[1], oc.shape[1]))]
    valid = ~np.ma.getmaskarray(soc_map)
    score = r2_score(truth[valid], soc_map.data[valid])
    print(
        f"\nMap: {shape[0]}x{shape[1]} pixels (stride {s}) in {seconds:.1f} s, "
        f"CRS {crs}, transform checked; R² against the noise-free SOC "
        f"{score:.3f} over {int(valid.sum())} pixels ({int((~valid).sum())} "
        "nodata at the edges)."
    )


def missing_data(args, X, y, coords):
    """Spatial-CV R² with clouds (NaN) over 0, 10 and 30 % of the point-years."""
    # The same spatial folds for every share of clouds and every model.
    cv = SpatialBlockKFold(
        args.folds, block_size=args.block_size, random_state=args.seed
    )
    folds = list(cv.split(X, y, coords))
    models = {
        "cnn_lstm (recipe)": variants(args)["cnn_lstm (recipe)"],
        "cnn_lstm (patches)": variants(args)["cnn_lstm (patches)"],
        "hgb": variants(args)["hgb"],
    }
    rows = []
    # Points clouded in every year are scored too (the models predict them
    # from the training data alone); the estimators warn of each of them.
    warnings.filterwarnings("ignore", ".*no observed value", NodataWarning)
    for fraction in (0.0, 0.1, 0.3):
        Xc = add_clouds(X, coords, fraction, random_state=args.seed)
        complete = ~np.isnan(Xc).reshape(len(Xc), -1).any(1)
        for train, test in folds:
            for name, model in models.items():
                for regime, rows_used in (
                    ("all samples", train),
                    ("complete only", train[complete[train]]),
                ):
                    if fraction == 0 and regime == "complete only":
                        continue
                    start = time.perf_counter()
                    fitted = clone(model).fit(Xc[rows_used], y[rows_used])
                    pred = fitted.predict(Xc[test])
                    rows.append(
                        {
                            "missing": f"{fraction:.0%}",
                            "model": name,
                            "trained on": regime,
                            "R²": r2_score(y[test], pred),
                            "train n": len(rows_used),
                            "fit s": time.perf_counter() - start,
                        }
                    )
        print(f"  {fraction:.0%} missing done", flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["missing", "model", "trained on"], sort=False).agg(
        r2=("R²", "mean"),
        r2_std=("R²", "std"),
        train_n=("train n", "mean"),
        fit_s=("fit s", "mean"),
    )
    table["R² (spatial CV)"] = [
        f"{m:.3f} ± {s:.3f}" for m, s in zip(table["r2"], table["r2_std"])
    ]
    print(
        "\nIncomplete series: clouds (NaN, spatially correlated blobs) over a share "
        "of the point-years, train and test alike; each model trained on every "
        "sample, or only on the samples without a missing pixel:"
    )
    print(
        table[["R² (spatial CV)", "train_n", "fit_s"]].to_string(
            float_format=lambda v: f"{v:.1f}"
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=100, help="maximum epochs")
    parser.add_argument("--n-repeats", type=int, default=1)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--block-size", type=float, default=10_000.0, help="metres")
    parser.add_argument("--buffer", type=float, default=1_250.0, help="metres")
    parser.add_argument("--map-stride", type=int, default=2)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="world and model seed")
    parser.add_argument(
        "--big", action="store_true",
        help="2000 samples, 3 repeats, map at full resolution (GPU-sized)",
    )  # fmt: skip
    parser.add_argument(
        "--missing", action="store_true",
        help="only the incomplete-series comparison (0, 10, 30 %% missing)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.big:
        args.n_samples, args.n_repeats, args.map_stride = 2000, 3, 1

    X, y, coords = make_soc(args.n_samples, random_state=args.seed)
    print(
        f"make_soc: {X.shape[0]} samples, patches {X.shape[1:]} (bands, rows, "
        f"cols, years), SOC median {np.median(y):.1f} g/kg; {args.folds} folds x "
        f"{args.n_repeats} repeat(s); torch threads {torch.get_num_threads()}"
    )
    from _warm import warm_up  # beside this script

    warm_up(args.device)  # outside the clock
    if args.missing:
        missing_data(args, X, y, coords)
        return
    df = evaluate(args, X, y, coords)
    print()
    report(df)
    mapping_demo(args, X, y, coords)


if __name__ == "__main__":
    main()
