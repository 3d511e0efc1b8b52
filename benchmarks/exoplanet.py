"""Exoplanet spectra: four network branches, the package's recipe and non-neural peers.

5-fold cross-validation on the bundled real data (2,400 planets), the same
folds for every model (stratified on both targets): the four spectrum
branches (conv1d, attention, lstm, dense) on the raw spectra standardised
per feature (the ``*_raw`` variants, also trained unregularised for a fixed
50 epochs) and with the per-spectrum preprocessing (regularised, early
stopped), the recommended recipe, and logistic regression /
HistGradientBoosting on the same engineered features. Prints accuracy and
ROC AUC per target (mean ± std over folds) and fit time.

``--grouped`` uses GroupKFold over the 36 distinct star/planet
configurations instead, which measures generalisation to unseen systems.

``--learning-curve MODEL`` refits that model on 40 %, 60 %, 80 % and all of
each training fold (the same test folds) and prints its out-of-fold water
and cloud error rates: whether more planets would lower them. For the
models that read the system reference (``hgb_reference``, ``blend``), fewer
training planets also means a reference averaged over fewer siblings.

``--errors MODEL`` (``hgb``, ``hgb_reference``, ``kernel``, ``best`` or
``blend``) instead tabulates where that model errs (``hgb_reference`` is
boosting with the :class:`~skestimators.preprocessing.SystemReference`
residuals, ``kernel`` the support vector machine on the residuals against
each class of siblings, both as in the blend): out-of-fold water and cloud
error rates by equilibrium temperature (from
:class:`~skestimators.preprocessing.PhysicsFeatures`) and cloud cover, with
the same folds. It also asks whether each water error is
decidable from the data: a planet has a *noise twin* when a planet of its
system with the other water label has a spectrum consistent with its own
within the depth uncertainties (chi-squared of the difference of the two
spectra, their mean offset removed, with a p-value above 0.5 on 51 degrees
of freedom, for the closest such planet: the more siblings, the likelier
one passes by chance, the same for every planet of a system). The share of
water errors with a noise twin is printed next to the share of correctly
classified planets with one.

Run: ``python benchmarks/exoplanet.py`` (``--quick`` for a 2-fold smoke run).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators.datasets import load_exoplanet
from skestimators.model_selection import compare_variants, summarize_comparison
from skestimators.preprocessing import (
    InputTransformer,
    PhysicsFeatures,
    SystemReference,
)
from skestimators.preprocessing._physics import AUX_COLUMNS
from skestimators.preprocessing._system_reference import group_systems
from skestimators.recipes import exoplanet_features, exoplanet_pipeline
from skestimators.recipes._exoplanet import _SiblingKernel, _SystemAwareBoosting

#: Equilibrium temperature bins (K) of the error table.
TEMPERATURE_BINS = (0, 450, 525, 650, 800, 2000)


def positive_proba(estimator, X):
    proba = estimator.predict_proba(X)
    if isinstance(proba, list):  # MultiOutputClassifier: one (n, 2) per target
        return np.column_stack([p[:, 1] for p in proba])
    return proba


def per_target_scorers(names):
    def accuracy(j):
        return lambda est, X, y: accuracy_score(
            np.asarray(y)[:, j], np.asarray(est.predict(X))[:, j]
        )

    def auc(j):
        return lambda est, X, y: roc_auc_score(
            np.asarray(y)[:, j], positive_proba(est, X)[:, j]
        )

    scorers = {}
    for j, name in enumerate(names):
        scorers[f"{name}_accuracy"] = accuracy(j)
        scorers[f"{name}_roc_auc"] = auc(j)
    return scorers


def variants(quick):
    out = {}
    for branch in ("conv1d", "attention", "lstm", "dense"):
        out[f"{branch}_raw (per-feature scaling)"] = exoplanet_pipeline(
            f"{branch}_raw", device="cpu"
        )
        out[f"{branch} (per-spectrum preprocessing)"] = exoplanet_pipeline(
            branch, device="cpu"
        )
    out["recipe: exoplanet_pipeline('best') (network)"] = exoplanet_pipeline(
        "best", device="cpu"
    )
    out["recipe: exoplanet_pipeline() = 'blend' (network + boosting + kernel)"] = (
        exoplanet_pipeline("blend", device="cpu")
    )
    out["logistic regression (engineered)"] = make_pipeline(
        exoplanet_features(),
        StandardScaler(),
        MultiOutputClassifier(LogisticRegression(C=0.1, max_iter=3000)),
    )
    out["HistGradientBoosting (engineered)"] = make_pipeline(
        exoplanet_features(),
        MultiOutputClassifier(
            HistGradientBoostingClassifier(max_iter=300, early_stopping=False)
        ),
    )
    if quick:
        for est in out.values():
            keys = [k for k in est.get_params() if k.endswith("__max_epochs")]
            est.set_params(**dict.fromkeys(keys, 3))
    return out


def error_table(model, X, y, cv, groups=None):
    """Out-of-fold error rates (%) by equilibrium temperature and cloud cover.

    Also returns the water and cloud errors of every system with at least one,
    next to its median spectral spread over noise: the spread of each
    spectrum about a straight line in log-wavelength, over its mean depth
    uncertainty.
    """
    y_pred = np.asarray(cross_val_predict(model, X, y, cv=cv, groups=groups))
    wrong = y_pred != y.to_numpy()
    physics = PhysicsFeatures(log=False).set_output(transform="pandas")
    features = physics.fit_transform(X)
    temperature = features["equilibrium_temperature"].to_numpy()
    noise = np.asarray(X["spectra"])[:, :, 2].mean(axis=1)
    frame = pd.DataFrame(
        {
            "T_eq (K)": pd.cut(temperature, TEMPERATURE_BINS),
            "cloud": y["cloud"].to_numpy(),
            "water": wrong[:, 0],
            "cloud_wrong": wrong[:, 1],
        }
    )

    def summary(rows):
        return pd.Series(
            {
                "planets": len(rows),
                "water_errors": int(rows["water"].sum()),
                "water errors %": 100 * rows["water"].mean(),
                "cloud errors %": 100 * rows["cloud_wrong"].mean(),
            }
        )

    by_group = frame.groupby(["T_eq (K)", "cloud"], observed=True)
    table = by_group[["water", "cloud_wrong"]].apply(summary)
    table.loc[("all", ""), :] = summary(frame)
    table = table.astype({"planets": int, "water_errors": int})
    frame["T_eq (K)"] = temperature
    frame["spread / noise"] = features["observed_amplitude"].to_numpy() / noise
    frame["system"] = system_ids(X)
    by_system = frame.groupby("system").agg(
        planets=("water", "size"),
        T_eq=("T_eq (K)", "mean"),
        spread_over_noise=("spread / noise", "median"),
        water_errors=("water", "sum"),
        cloud_errors=("cloud_wrong", "sum"),
    )
    errs = by_system[["water_errors", "cloud_errors"]].sum(axis=1) > 0
    by_system = by_system[errs].sort_values("water_errors", ascending=False)
    twins = noise_twins(
        np.asarray(X["spectra"]), y["water"].to_numpy(), frame["system"].to_numpy()
    )
    by_system.attrs["noise twins"] = (
        f"water errors with a noise twin: {_share(twins[wrong[:, 0]])}; "
        f"correctly classified planets with one: {_share(twins[~wrong[:, 0]])}"
    )
    return table, by_system


def _share(flags):
    """``"k of n (p %)"`` for a boolean array (no percentage when empty)."""
    if not len(flags):
        return "0 of 0"
    return f"{flags.sum()} of {len(flags)} ({100 * flags.mean():.0f} %)"


def noise_twins(spectra, water, systems, p_value=0.5):
    """Whether a planet of the same system with the other water label has a
    spectrum consistent with each planet's within the noise.

    The two spectra are compared bin by bin in units of their combined depth
    uncertainty, after removing their weighted mean offset (the depth level,
    set by the planet's radius, carries no label); the difference is
    consistent when its chi-squared on ``n_bins - 1`` degrees of freedom has
    a p-value above ``p_value``.
    """
    from scipy.stats import chi2

    depth, sigma = spectra[:, :, 1], spectra[:, :, 2]
    twins = np.zeros(len(depth), dtype=bool)
    for i in range(len(depth)):
        other = np.flatnonzero((systems == systems[i]) & (water != water[i]))
        if not len(other):
            continue
        diff = depth[other] - depth[i]
        var = sigma[other] ** 2 + sigma[i] ** 2
        diff -= np.average(diff, axis=1, weights=1 / var)[:, None]
        statistic = (diff**2 / var).sum(axis=1).min()
        twins[i] = chi2.sf(statistic, depth.shape[1] - 1) > p_value
    return twins


def learning_curve(make_model, X, y, folds, fractions=(0.4, 0.6, 0.8, 1.0)):
    """Out-of-fold error rates (%) with each training fold subsampled.

    The subsample of every fold is stratified on both targets and nested
    (a larger fraction keeps the planets of a smaller one), so the rows
    differ only by the number of training planets.
    """
    Y = y.to_numpy()
    rows = []
    for fraction in fractions:
        wrong = np.zeros_like(Y, dtype=bool)
        n_train = []
        for k, (train, test) in enumerate(folds):
            order = np.random.default_rng(k).permutation(train)
            if fraction < 1:
                strata = Y[order, 0] * 2 + Y[order, 1]
                # Nested stratified subsample: the first planets of each
                # stratum in one fixed random order.
                rank = pd.Series(strata).groupby(strata).cumcount().to_numpy()
                size = np.bincount(strata)[strata]
                order = order[rank < np.round(fraction * size)]
            n_train.append(len(order))
            model = make_model().fit(X[order], y.iloc[order])
            wrong[test] = np.asarray(model.predict(X[test])) != Y[test]
        rows.append(
            {
                "training fraction": fraction,
                "training planets": int(np.mean(n_train)),
                "water errors": int(wrong[:, 0].sum()),
                "water errors %": 100 * wrong[:, 0].mean(),
                "cloud errors": int(wrong[:, 1].sum()),
                "cloud errors %": 100 * wrong[:, 1].mean(),
            }
        )
    return pd.DataFrame(rows)


def system_ids(X):
    """One integer per star/planet system, as SystemReference groups them."""
    return group_systems(X["aux"][list(AUX_COLUMNS)].to_numpy())[1]


ERROR_MODELS = {
    "hgb": lambda: make_pipeline(
        exoplanet_features(),
        MultiOutputClassifier(
            HistGradientBoostingClassifier(max_iter=300, early_stopping=False)
        ),
    ),
    "hgb_reference": lambda: make_pipeline(
        InputTransformer(
            {
                "features": (exoplanet_features(), ["spectra", "aux"]),
                "reference": (SystemReference(), ["spectra", "aux"]),
            },
            remainder="drop",
        ),
        _SystemAwareBoosting(),
    ),
    "kernel": lambda: make_pipeline(
        InputTransformer(
            {
                "siblings": (
                    SystemReference(per_class=True, centre=True, min_planets=2),
                    ["spectra", "aux"],
                ),
            },
            remainder="drop",
        ),
        _SiblingKernel(),
    ),
    "best": lambda: exoplanet_pipeline("best", device="cpu", random_state=0),
    "blend": lambda: exoplanet_pipeline("blend", device="cpu", random_state=0),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 folds, 3 epochs (smoke run)"
    )
    parser.add_argument("--grouped", action="store_true", help="GroupKFold by system")
    parser.add_argument("--only", nargs="*", help="substrings of variant names to run")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument(
        "--errors", choices=sorted(ERROR_MODELS),
        help="tabulate where this model errs instead of comparing variants",
    )  # fmt: skip
    parser.add_argument(
        "--learning-curve", choices=sorted(ERROR_MODELS),
        help="this model's errors against the number of training planets",
    )  # fmt: skip
    args = parser.parse_args(argv)
    X, y = load_exoplanet()
    from _warm import warm_up  # beside this script

    warm_up()  # outside the clock
    n_splits = 2 if args.quick else 5
    strata = (y["water"] * 2 + y["cloud"]).to_numpy()
    systems = system_ids(X)
    if args.grouped:
        cv, groups = GroupKFold(n_splits), systems
    else:
        folds = list(
            StratifiedKFold(n_splits, shuffle=True, random_state=0).split(
                np.zeros(len(y)), strata
            )
        )
        cv, groups = folds, None
    if args.learning_curve:
        t0 = time.perf_counter()
        folds = cv if groups is None else list(cv.split(X, y, groups))
        table = learning_curve(ERROR_MODELS[args.learning_curve], X, y, folds)
        seconds = time.perf_counter() - t0
        print(f"{args.learning_curve}: learning curve, {seconds:.0f} s")
        print(table.round(2).to_string(index=False))
        return
    if args.errors:
        t0 = time.perf_counter()
        table, by_system = error_table(ERROR_MODELS[args.errors](), X, y, cv, groups)
        print(f"{args.errors}: out-of-fold errors, {time.perf_counter() - t0:.0f} s")
        print(table.round(2).to_string())
        print("\nSystems with errors:")
        print(by_system.round(2).to_string())
        print("\n" + by_system.attrs["noise twins"])
        return
    todo = variants(args.quick)
    if args.only:
        todo = {k: v for k, v in todo.items() if any(s in k for s in args.only)}
    t0 = time.perf_counter()
    df = compare_variants(
        todo,
        X,
        y,
        cv=cv,
        groups=groups,
        scoring=per_target_scorers(list(y.columns)),
        random_state=0,
        n_jobs=args.n_jobs,
    )
    summary = summarize_comparison(df)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    split = (
        "GroupKFold by system" if args.grouped else "StratifiedKFold (water x cloud)"
    )
    print(
        f"{n_splits}-fold {split}, {len(y)} planets, {os.cpu_count()} cores, "
        f"total {time.perf_counter() - t0:.0f} s\n"
    )
    print(summary.to_string())


if __name__ == "__main__":
    main()
