"""Parallel searches: torch threads per worker, Dask clusters, shared studies."""

import math
import os
import sys

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.storages import InMemoryStorage
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from torch import nn

from skestimators import NetClassifier
from skestimators.model_selection import (
    OptunaSearchCV,
    check_dask_workers,
    compare_variants,
)

from .conftest import FAST

optuna.logging.set_verbosity(optuna.logging.WARNING)

# One pytest-xdist worker runs them all: one loky pool, one Dask cluster.
pytestmark = pytest.mark.xdist_group("parallel")


class ThreadProbe(nn.Module):
    """A linear model that appends ``"<pid> <torch threads>"`` to ``log`` once."""

    def __init__(self, input_shape, n_outputs, log=""):
        super().__init__()
        self.log = log
        self.linear = nn.Linear(math.prod(input_shape), n_outputs)
        self._logged = False

    def forward(self, X):
        if self.training and self.log and not self._logged:
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {torch.get_num_threads()}\n")
            self._logged = True
        return self.linear(X)


def probe_net(log):
    return NetClassifier(
        ThreadProbe, **{**FAST, "max_epochs": 2}, module_params={"log": str(log)}
    )


def read_log(log):
    rows = [line.split() for line in log.read_text().splitlines()]
    return {int(pid) for pid, _ in rows}, {int(n) for _, n in rows}


def expected_threads(n_jobs):
    # joblib's loky backend passes OMP_NUM_THREADS on when it is set, and
    # sets it to cores // n_jobs otherwise.
    share = max(joblib.cpu_count() // n_jobs, 1)
    return int(os.environ.get("OMP_NUM_THREADS") or share)


def test_gridsearch_workers_use_their_share_of_cores(blobs, tmp_path):
    X, y = blobs
    log = tmp_path / "threads.txt"
    GridSearchCV(
        probe_net(log), {"lr": [0.01, 0.02, 0.05]}, cv=2, n_jobs=2, refit=False
    ).fit(X, y)
    pids, threads = read_log(log)
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert threads == {expected_threads(2)}


def test_compare_variants_in_parallel_equals_sequential(blobs):
    X, y = blobs
    variants = {"small": LogisticRegression(C=0.1), "large": LogisticRegression()}
    kwargs = {"cv": 3, "n_repeats": 2, "random_state": 1, "scoring": ["accuracy"]}
    sequential = compare_variants(variants, X, y, **kwargs)
    parallel = compare_variants(variants, X, y, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(
        sequential.drop(columns="fit_time"), parallel.drop(columns="fit_time")
    )


def test_optuna_trials_in_parallel_processes(blobs):
    X, y = blobs
    search = OptunaSearchCV(
        NetClassifier(**{**FAST, "max_epochs": 3}),
        {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=6,
        cv=2,
        n_jobs=2,
        random_state=0,
    ).fit(X, y)
    assert 6 <= search.n_trials_ <= 7
    assert isinstance(search.study_._storage, InMemoryStorage)
    workers = {t.user_attrs["worker"] for t in search.study_.trials}
    assert f"{os.uname().nodename}:{os.getpid()}" not in workers
    assert len({t.number for t in search.study_.trials}) == search.n_trials_


class SlowLogisticRegression(LogisticRegression):
    """Fits slowly: parallel trials overlap."""

    def fit(self, X, y, **kwargs):
        import time

        time.sleep(0.5)
        return super().fit(X, y, **kwargs)


def test_optuna_parallel_workers_start_no_more_than_n_trials(blobs):
    # Each worker counted the running trials from its own start, missing
    # those the others had begun: n_trials=2 with n_jobs=3 ran 3 trials.
    X, y = blobs
    search = OptunaSearchCV(
        SlowLogisticRegression(),
        {"C": FloatDistribution(1e-2, 10, log=True)},
        n_trials=2,
        cv=2,
        n_jobs=3,
        random_state=0,
        refit=False,
    ).fit(X, y)
    assert search.n_trials_ == 2


def test_dask_worker_check_reads_a_submodules_version_as_here():
    # The workers' probe imported the top-level package (its version) and
    # this process the submodule (none): a version mismatch was reported.
    import warnings

    from skestimators.model_selection import check_dask_workers

    class Client:  # runs the probe here, as a worker would
        def run(self, function, *args, on_error="raise"):
            return {"tcp://worker": function(*args)}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        versions = check_dask_workers(Client(), ("sklearn.linear_model",))
    assert versions == {"tcp://worker": {"sklearn.linear_model": ""}}


# -- Dask ---------------------------------------------------------------------------
distributed = pytest.importorskip("distributed", reason="needs the dask extra")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def block_import(name):
    """On a worker: make ``import name`` fail, as if it were not installed."""
    import importlib.abc

    class Blocker(importlib.abc.MetaPathFinder):
        blocks = name

        def find_spec(self, fullname, path=None, target=None):
            if fullname == name or fullname.startswith(name + "."):
                raise ImportError(f"No module named {fullname!r}")
            return None

    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
    sys.meta_path.insert(0, Blocker())


def unblock_import(name):
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "blocks", None) != name]


def test_dask_gridsearch_and_compare(blobs, client, tmp_path):
    X, y = blobs
    versions = check_dask_workers(client)
    assert len(versions) == 2
    log = tmp_path / "threads.txt"
    with joblib.parallel_config(backend="dask"):
        search = GridSearchCV(
            probe_net(log), {"lr": [0.01, 0.05]}, cv=2, n_jobs=2, refit=False
        ).fit(X, y)
        df = compare_variants(
            {"a": probe_net(""), "b": probe_net("").set_params(lr=0.05)},
            X,
            y,
            cv=2,
            n_jobs=2,
            scoring="accuracy",
        )
    sequential = compare_variants(
        {"a": probe_net(""), "b": probe_net("").set_params(lr=0.05)},
        X,
        y,
        cv=2,
        scoring="accuracy",
    )
    np.testing.assert_array_equal(df["value"], sequential["value"])
    assert search.cv_results_["mean_test_score"].shape == (2,)
    pids, threads = read_log(log)
    assert os.getpid() not in pids
    assert threads == {1}  # Dask's nanny sets OMP_NUM_THREADS=1


def test_dask_optuna_search(blobs, client):
    X, y = blobs
    with joblib.parallel_config(backend="dask"):
        search = OptunaSearchCV(
            LogisticRegression(),
            {"C": FloatDistribution(1e-2, 10, log=True)},
            n_trials=4,
            cv=2,
            n_jobs=2,
            random_state=0,
        ).fit(X, y)
    assert search.n_trials_ >= 4


def test_dask_worker_without_the_package_is_named(blobs, client):
    X, y = blobs
    worker = sorted(client.scheduler_info()["workers"])[0]
    client.run(block_import, "skestimators", workers=[worker])
    try:
        with pytest.raises(RuntimeError, match="1 of 2 Dask workers") as info:
            check_dask_workers(client)
        assert worker in str(info.value)
        with (
            joblib.parallel_config(backend="dask"),
            pytest.raises(RuntimeError, match=worker),
        ):
            compare_variants({"lr": LogisticRegression()}, X, y, cv=2, n_jobs=2)
    finally:
        client.run(unblock_import, "skestimators", workers=[worker])
    assert len(check_dask_workers(client)) == 2
