"""The same hyper-parameter search run sequentially, in parallel, and with pruning.

A NetClassifier on ``make_classification`` data:

(a) GridSearchCV over 6 candidates x 3 folds, sequential;
(b) the same with joblib's loky backend, ``n_jobs=2``;
(c) the same on a Dask ``LocalCluster`` of 2 single-threaded worker processes;
(d) OptunaSearchCV without pruning (``NopPruner``) and with the default
    pruner (same sampler seed): epochs trained and best score;
(e) the pruned search shared by two processes through a SQLite file.

Every process that fits (this one, each pool worker, each SQLite worker)
first fits a tiny network before the clock starts: a process's first fit
pays for imports (the first torch optimizer imports ``torch._dynamo``, about
2.5 s here), which would otherwise be timed. The pools' start-up time is
printed separately, and the SQLite workers time their own search. Wall
times are for this machine under its current load; ratios are the point.

Run: ``python benchmarks/search.py`` (``--quick`` for a smoke run).
Targets: (b) and (c) faster than (a) with 2 free cores; pruning trains >= 2x
fewer epochs than no pruning for the same best score.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import joblib
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import FloatDistribution
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from skestimators import NetClassifier
from skestimators.model_selection import OptunaSearchCV, check_dask_workers

ROOT = Path(__file__).resolve().parents[1]
GRID = {"lr": [3e-4, 1e-3, 1e-2], "batch_size": [32, 128]}
SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "weight_decay": FloatDistribution(1e-6, 1e-1, log=True),
    "module_params__dropout": FloatDistribution(0.0, 0.5),
}


def data(n_samples):
    X, y = make_classification(
        n_samples,
        20,
        n_informative=8,
        n_redundant=4,
        class_sep=0.8,
        flip_y=0.05,
        random_state=0,
    )
    return X.astype(np.float32), y


def network(epochs):
    return NetClassifier(
        max_epochs=epochs,
        batch_size=64,
        device="cpu",
        random_state=0,
        early_stopping=False,
        validation_fraction=None,
        module_params={"width": 64, "depth": 2},
    )


def _warm():
    """Fit a tiny network (imports and first-optimizer costs paid); the pid.

    The short sleep keeps this worker busy, so that the pool hands the other
    warm-up task to another worker.
    """
    X, y = data(40)
    network(1).set_params(module_params={"width": 4, "depth": 1}).fit(X, y)
    time.sleep(0.5)
    return os.getpid()


def warm_pool(n_jobs):
    """Warm every worker of joblib's loky pool: until distinct pids answer."""
    seen = set()
    for _ in range(5):
        tasks = (joblib.delayed(_warm)() for _ in range(n_jobs))
        seen |= set(joblib.Parallel(n_jobs=n_jobs)(tasks))
        if len(seen) >= n_jobs:
            break
    return seen


def grid(X, y, epochs, n_jobs=None):
    start = time.perf_counter()
    search = GridSearchCV(network(epochs), GRID, cv=3, n_jobs=n_jobs, refit=False)
    search.fit(X, y)
    n_fits = len(search.cv_results_["params"]) * 3
    return {
        "wall_s": time.perf_counter() - start,
        "trials": n_fits // 3,
        "epochs": n_fits * epochs,
        "best_score": float(search.cv_results_["mean_test_score"].max()),
    }


def optuna_search(X, y, epochs, n_trials, pruner, storage=None, name=None, seed=0):
    start = time.perf_counter()
    search = OptunaSearchCV(
        network(epochs),
        SPACE,
        n_trials=n_trials,
        cv=3,
        pruner=pruner,
        random_state=seed,
        refit=False,
        storage=storage,
        study_name=name,
    ).fit(X, y)
    res = search.cv_results_
    return {
        "wall_s": time.perf_counter() - start,
        "trials": search.n_trials_,
        "pruned": int((res["state"] == "PRUNED").sum()),
        "epochs": int(res["n_epochs"].sum()),
        "best_score": search.best_score_,
    }


WORKER = textwrap.dedent("""
    import sys
    import optuna
    sys.path.insert(0, {bench!r})
    from search import data, optuna_search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import time
    from search import _warm
    _warm()  # imports and the first optimizer, outside the clock
    X, y = data({n_samples})
    start = time.time()
    optuna_search(X, y, {epochs}, {n_trials}, None, storage={storage!r},
                  name="shared", seed=int(sys.argv[1]))
    print("SPAN", start, time.time(), flush=True)
""")


def shared_sqlite(n_samples, epochs, n_trials):
    with tempfile.TemporaryDirectory() as tmp:
        storage = os.path.join(tmp, "study.db")
        # Create the study first, as a job script would before launching workers.
        optuna.create_study(
            storage=f"sqlite:///{storage}", study_name="shared", direction="maximize"
        )
        code = WORKER.format(
            bench=str(Path(__file__).parent),
            n_samples=n_samples,
            epochs=epochs,
            n_trials=n_trials,
            storage=storage,
        )
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(i)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(2)
        ]
        outputs = [w.communicate()[0] for w in workers]
        if any(w.returncode for w in workers):
            raise RuntimeError("a worker failed")
        # From the first worker's start to the last one's end, each timed by
        # itself after its warm-up (not the interpreters' start).
        spans = [
            [float(v) for v in line.split()[1:]]
            for out in outputs
            for line in out.splitlines()
            if line.startswith("SPAN ")
        ]
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        study = optuna.load_study(study_name="shared", storage=f"sqlite:///{storage}")
        trials = [t for t in study.trials if t.state.is_finished()]
        return {
            "wall_s": wall,
            "trials": len(trials),
            "pruned": sum(t.state.name == "PRUNED" for t in trials),
            "epochs": sum(t.user_attrs.get("n_epochs", 0) for t in trials),
            "best_score": study.best_value,
            "workers": len({t.user_attrs["worker"] for t in trials}),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    n_samples, epochs, n_trials = (600, 4, 6) if args.quick else (3000, 20, 20)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = data(n_samples)
    omp = os.environ.get("OMP_NUM_THREADS")
    print(
        f"data {X.shape}, {epochs} epochs per fit, 3 folds, {os.cpu_count()} "
        f"cores, OMP_NUM_THREADS={omp}"
    )
    rows = {}
    _warm()  # this process's imports and first optimizer, outside the clock
    rows["(a) grid, sequential"] = grid(X, y, epochs)

    start = time.perf_counter()
    warm_pool(2)
    loky_start = time.perf_counter() - start
    rows["(b) grid, loky n_jobs=2"] = grid(X, y, epochs, n_jobs=2)

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        check_dask_workers(client)
        client.run(_warm)
        dask_start = time.perf_counter() - start
        with joblib.parallel_config(backend="dask"):
            rows["(c) grid, Dask 2 workers"] = grid(X, y, epochs, n_jobs=2)

    rows["(d) optuna, no pruning"] = optuna_search(
        X, y, epochs, n_trials, optuna.pruners.NopPruner()
    )
    rows["(d) optuna, pruning"] = optuna_search(X, y, epochs, n_trials, None)
    rows["(e) optuna, pruning, sqlite x2 proc"] = shared_sqlite(
        n_samples, epochs, n_trials
    )

    table = pd.DataFrame(rows).T
    grid_rows = table.index.str.contains("grid")
    table["speedup"] = np.where(
        grid_rows,
        table.loc["(a) grid, sequential", "wall_s"] / table["wall_s"],
        table.loc["(d) optuna, pruning", "wall_s"] / table["wall_s"],
    )
    formats = {"wall_s": "{:.1f}", "speedup": "{:.2f}x", "best_score": "{:.4f}"}
    columns = [
        "wall_s",
        "speedup",
        "trials",
        "pruned",
        "epochs",
        "best_score",
        "workers",
    ]
    shown = pd.DataFrame(
        {
            c: [
                "" if pd.isna(v) else formats.get(c, "{:.0f}").format(v)
                for v in table.get(c, pd.Series(np.nan, table.index))
            ]
            for c in columns
        },
        index=table.index,
    )
    print(shown.to_string())
    print(
        f"pool start-up (not in wall_s): loky {loky_start:.1f} s, "
        f"Dask {dask_start:.1f} s"
    )
    plain, pruned = rows["(d) optuna, no pruning"], rows["(d) optuna, pruning"]
    print(
        f"pruning: {plain['epochs'] / pruned['epochs']:.2f}x fewer epochs "
        f"(target >= 2x), best score {pruned['best_score']:.4f} vs "
        f"{plain['best_score']:.4f} without pruning "
        f"({pruned['best_score'] - plain['best_score']:+.4f}); "
        f"wall {plain['wall_s'] / pruned['wall_s']:.2f}x faster"
    )
    print("speedup: (a)-(c) vs (a); (d)-(e) vs the pruned in-process search")


if __name__ == "__main__":
    main()
