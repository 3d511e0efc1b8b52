"""Defaults on small tables: NetRegressor/NetClassifier against scikit-learn.

Shuffled 5-fold cross-validation on scikit-learn's bundled real data sets
(diabetes, breast cancer, wine, wine as a regression of log proline on the
other measurements and the one-hot cultivar, and, when it is in the local
scikit-learn data cache, a 1,000-row sample of California housing) of three
estimators, each at
its defaults: the package's generic network, scikit-learn's
``MLPRegressor``/``MLPClassifier`` and ``HistGradientBoosting*``. Each runs
as a new user would run it: the raw estimator, and inside
``make_pipeline(StandardScaler(), estimator)``. The script prints the mean and
standard deviation over folds of R² (regression) or accuracy
(classification), the difference to the MLP of the same preprocessing, and
seconds per fit. For regression a fourth model, ``MLP (y scaled)``, is the
MLP with standardised targets (``TransformedTargetRegressor``), as the
package's regressor standardises its own: at its defaults the MLP does not
converge on unscaled targets such as diabetes' (the folds where it did not are
counted in the table), and ``vs MLP`` is taken against the better of the two
MLPs.

Goal: the package's defaults match or beat scikit-learn's MLP on every data
set, at least in the scaled pipelines.

California housing is read with ``download_if_missing=False``: the script
never downloads; the data set is skipped (and said so) when it is not cached.

Run: ``python benchmarks/small_data.py`` (``--datasets diabetes wine`` for a
subset; ``--net-params '{"max_epochs": 200}'`` to try other settings of the
package's networks).
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import (
    fetch_california_housing,
    load_breast_cancer,
    load_diabetes,
    load_wine,
)
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators import NetClassifier, NetRegressor

SEED = 0


def california_sample(n=1000):
    """A seeded ``n``-row sample of California housing from the local cache."""
    data = fetch_california_housing(download_if_missing=False)
    rows = np.random.default_rng(SEED).choice(len(data.target), n, replace=False)
    return data.data[rows], data.target[rows]


def wine_proline():
    """Wine as a small survey: log proline from 12 measurements and the cultivar.

    178 samples, 12 numeric covariates plus the one-hot cultivar and a log
    target: the shape of the small field surveys (soil, plots) the defaults
    must handle.
    """
    data = load_wine(as_frame=True)
    X = data.data.drop(columns="proline")
    X = pd.concat(
        [X, pd.get_dummies(data.target, prefix="cultivar", dtype=float)], axis=1
    )
    return X.to_numpy(), np.log(data.data["proline"].to_numpy())


def datasets(names):
    """``{name: (X, y, task)}`` of the data sets available offline."""
    loaders = {
        "diabetes": lambda: (*load_diabetes(return_X_y=True), "regression"),
        "california_1000": lambda: (*california_sample(), "regression"),
        "wine_proline": lambda: (*wine_proline(), "regression"),
        "breast_cancer": lambda: (*load_breast_cancer(return_X_y=True), "classif"),
        "wine": lambda: (*load_wine(return_X_y=True), "classif"),
    }
    out = {}
    for name in names:
        try:
            out[name] = loaders[name]()
        except OSError as exc:  # not in the local cache: never download
            print(f"skipped {name}: {exc}")
    return out


def models(task, net_params):
    """``{name: estimator}`` at their defaults (seeded) for ``task``."""
    if task == "regression":
        return {
            "Net": NetRegressor(random_state=SEED, **net_params),
            "MLP": MLPRegressor(random_state=SEED),
            "MLP (y scaled)": TransformedTargetRegressor(
                MLPRegressor(random_state=SEED), transformer=StandardScaler()
            ),
            "HGB": HistGradientBoostingRegressor(random_state=SEED),
        }
    return {
        "Net": NetClassifier(random_state=SEED, **net_params),
        "MLP": MLPClassifier(random_state=SEED),
        "HGB": HistGradientBoostingClassifier(random_state=SEED),
    }


def evaluate(estimator, X, y):
    """Scores over the folds of a shuffled 5-fold CV, seconds per fit, and the
    number of fits that warned they had not converged."""
    if is_classifier(estimator):
        cv, scoring = StratifiedKFold(5, shuffle=True, random_state=SEED), "accuracy"
    else:
        cv, scoring = KFold(5, shuffle=True, random_state=SEED), "r2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = cross_validate(estimator, X, y, cv=cv, scoring=scoring)
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # a failed fold's reason (FitFailedWarning...) is shown
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result["test_score"], float(np.mean(result["fit_time"])), unconverged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=[
            "diabetes",
            "california_1000",
            "wine_proline",
            "breast_cancer",
            "wine",
        ],
    )
    parser.add_argument(
        "--net-params",
        type=json.loads,
        default={},
        help="JSON keyword arguments of NetRegressor/NetClassifier",
    )
    args = parser.parse_args(argv)
    from _warm import warm_up  # beside this script

    warm_up()  # outside the clock
    rows = []
    for data_name, (X, y, task) in datasets(args.datasets).items():
        metric = "R²" if task == "regression" else "accuracy"
        for preprocessing in ("raw", "scaled"):
            results = {}
            for model_name, estimator in models(task, args.net_params).items():
                if preprocessing == "scaled":
                    estimator = make_pipeline(StandardScaler(), estimator)
                results[model_name] = evaluate(estimator, X, y)
            # The better MLP; NaN (a failed fold) only if both failed.
            mlp = np.nanmax(
                [r[0].mean() for n, r in results.items() if n.startswith("MLP")]
            )
            for model_name, (scores, seconds, unconverged) in results.items():
                rows.append(
                    {
                        "data": f"{data_name} (n={len(y)}, {metric})",
                        "prep": preprocessing,
                        "model": model_name,
                        "score": f"{scores.mean():.3f} ± {scores.std():.3f}",
                        "vs MLP": f"{scores.mean() - mlp:+.4f}",
                        "s/fit": f"{seconds:.2f}",
                        "not converged": f"{unconverged} of 5",
                    }
                )
            print(
                pd.DataFrame(rows[-len(results) :]).to_string(index=False), flush=True
            )
    table = pd.DataFrame(rows).set_index(["data", "prep", "model"])
    print()
    print(table.to_string())


if __name__ == "__main__":
    main()
