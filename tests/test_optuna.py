"""OptunaSearchCV: epoch-level pruning in lockstep, storages, sklearn behaviour."""

import pickle
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import NopPruner, ThresholdPruner
from optuna.trial import TrialState
from sklearn.base import is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators import MultiInput, NetClassifier, NetRegressor
from skestimators.model_selection import OptunaSearchCV
from skestimators.model_selection._epochwise import Lockstep
from skestimators.model_selection._routing import multimetric_scorer, scoring_spec

from .conftest import FAST

optuna.logging.set_verbosity(optuna.logging.WARNING)


def net(**params):
    return NetClassifier(**{**FAST, "max_epochs": 6, **params})


class _Never(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return False


def test_lockstep_folds_match_independent_fits(blobs):
    # Dropout draws from torch's global stream and early stopping makes folds
    # end at different epochs: lockstep must still equal plain fits.
    X, y = blobs
    est = net(
        max_epochs=12,
        patience=2,
        lr=0.05,
        module_params={"width": 16, "dropout": 0.3},
    )
    splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    rounds = []
    runner = Lockstep(
        est,
        multimetric_scorer(est, None),
        "score",
        scoring_spec(est, None)["score"],
        lambda epoch, value: rounds.append((epoch, value)) and False,
    )
    results, stopped = runner.run(X, y, splits)
    expected = cross_val_score(est, X, y, cv=splits)
    assert not stopped
    np.testing.assert_array_equal([r.scores["score"] for r in results], expected)
    epochs = [r.n_epochs for r in results]
    assert [e for e, _ in rounds] == list(range(1, max(epochs) + 1))
    assert len(set(epochs)) > 1, "early stopping should end folds at different epochs"


def test_unpruned_trial_scores_equal_cross_val_score(blobs):
    X, y = blobs
    est = net(module_params={"dropout": 0.2})
    search = OptunaSearchCV(
        est,
        {"lr": CategoricalDistribution([0.02])},
        n_trials=1,
        cv=3,
        pruner=_Never(),
        random_state=0,
    ).fit(X, y)
    expected = cross_val_score(est.set_params(lr=0.02), X, y, cv=3)
    got = [search.cv_results_[f"split{k}_test_score"][0] for k in range(3)]
    np.testing.assert_array_equal(got, expected)
    trial = search.study_.trials[0]
    # One report per epoch: the fold-averaged score on the test folds.
    assert sorted(trial.intermediate_values) == list(range(1, 7))
    assert trial.user_attrs["epochs"] == [6, 6, 6]
    assert search.cv_results_["n_epochs"][0] == 18


def test_pruned_trials_stop_after_a_few_epochs(blobs):
    X, y = blobs
    search = OptunaSearchCV(
        net(max_epochs=12, early_stopping=False),
        {"lr": CategoricalDistribution([0.05, 1e-7])},
        n_trials=6,
        cv=3,
        random_state=0,
        pruner=ThresholdPruner(lower=0.6, n_warmup_steps=2),
    ).fit(X, y)
    res = search.cv_results_
    states = set(res["state"])
    assert states == {"COMPLETE", "PRUNED"}
    pruned = res["state"] == "PRUNED"
    # Steps are epoch numbers (1, 2...): pruned at epoch 2, 3 folds each.
    assert np.all(res["n_epochs"][pruned] == 2 * 3)
    assert np.all(res["n_epochs"][~pruned] == 12 * 3)
    assert np.all(np.isnan(res["mean_test_score"][pruned]))
    ranks = res["rank_test_score"]
    assert np.all(ranks[pruned] > ranks[~pruned].max())
    assert all(p["lr"] == 1e-7 for p in np.asarray(res["params"])[pruned])
    assert search.best_params_ == {"lr": 0.05}
    for trial in search.study_.trials:
        assert trial.user_attrs["n_epochs"] == sum(trial.user_attrs["epochs"])


class CountingScaler(StandardScaler):
    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


def test_pipeline_preprocessing_fitted_once_per_fold(blobs):
    X, y = blobs
    CountingScaler.fits = 0
    search = OptunaSearchCV(
        make_pipeline(CountingScaler(), net(max_epochs=4)),
        {"netclassifier__lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=2,
        cv=3,
        random_state=0,
        pruner=_Never(),
    ).fit(X, y)
    assert CountingScaler.fits == 2 * 3 + 1  # trials x folds + refit
    assert all(len(t.intermediate_values) == 4 for t in search.study_.trials)
    assert search.predict(X[:5]).shape == (5,)


def test_keys_of_dict_parameters(blobs):
    X, y = blobs
    est = net(max_epochs=2, module_params={"width": 8})
    pipe = make_pipeline(StandardScaler(), est)
    space = {
        "netclassifier__module_params__dropout": FloatDistribution(0.0, 0.5),
        "netclassifier__module_params__activation": ["relu", "tanh"],
    }
    search = OptunaSearchCV(pipe, space, n_trials=2, cv=2, random_state=0).fit(X, y)
    fitted = search.best_estimator_[-1].module_params
    assert fitted == {
        "width": 8,
        "dropout": search.best_params_["netclassifier__module_params__dropout"],
        "activation": search.best_params_["netclassifier__module_params__activation"],
    }
    assert est.module_params == {"width": 8}  # the template is untouched


def test_nop_pruner_trains_without_epoch_reports(blobs):
    X, y = blobs
    search = OptunaSearchCV(
        net(),
        {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
        n_trials=2,
        cv=2,
        pruner=NopPruner(),
        random_state=0,
    ).fit(X, y)
    assert all(not t.intermediate_values for t in search.study_.trials)
    assert list(search.cv_results_["n_epochs"]) == [12, 12]


def test_sklearn_estimator_and_search_api(blobs):
    X, y = blobs
    search = OptunaSearchCV(
        LogisticRegression(max_iter=200),
        {"C": FloatDistribution(1e-3, 10, log=True), "fit_intercept": [True, False]},
        n_trials=4,
        cv=3,
        random_state=0,
    )
    assert is_classifier(search)
    search.fit(X, y)
    grid = GridSearchCV(LogisticRegression(max_iter=200), {"C": [1.0]}, cv=3).fit(X, y)
    assert {k for k in grid.cv_results_ if not k.startswith("param_")} <= set(
        search.cv_results_
    )
    assert search.n_trials_ == 4 == len(search.cv_results_["params"])
    assert search.cv_results_["param_C"].shape == (4,)
    assert set(search.best_params_) == {"C", "fit_intercept"}
    best = search.best_index_
    assert search.best_score_ == search.cv_results_["mean_test_score"][best]
    assert search.cv_results_["rank_test_score"][search.best_index_] == 1
    assert search.predict_proba(X[:3]).shape == (3, 3)
    assert search.score(X, y) == search.best_estimator_.score(X, y)
    np.testing.assert_array_equal(search.classes_, [0, 1, 2])
    assert all(t.user_attrs["n_epochs"] == 0 for t in search.study_.trials)
    pickle.loads(pickle.dumps(search)).predict(X[:3])


def test_same_seed_same_trials(blobs):
    X, y = blobs
    space = {
        "C": FloatDistribution(1e-3, 10, log=True),
        "max_iter": IntDistribution(50, 300),
    }

    def params(seed):
        search = OptunaSearchCV(
            LogisticRegression(),
            space,
            n_trials=3,
            cv=2,
            random_state=seed,
            refit=False,
        ).fit(X, y)
        return search.cv_results_["params"]

    assert params(1) == params(1)
    assert params(1) != params(2)


def test_multimetric_requires_refit_name(blobs):
    X, y = blobs
    space = {"C": FloatDistribution(1e-2, 10, log=True)}
    scoring = ["accuracy", "f1_macro"]
    search = OptunaSearchCV(
        LogisticRegression(), space, n_trials=2, cv=2, scoring=scoring, refit="f1_macro"
    ).fit(X, y)
    res = search.cv_results_
    keys = {"mean_test_accuracy", "mean_test_f1_macro", "split1_test_accuracy"}
    assert keys <= set(res)
    assert search.best_score_ == res["mean_test_f1_macro"][search.best_index_]
    with pytest.raises(ValueError, match="refit must name"):
        OptunaSearchCV(
            LogisticRegression(), space, n_trials=1, cv=2, scoring=scoring
        ).fit(X, y)


def test_regressor_multiinput_and_fit_params(two_inputs):
    spectra, aux, targets = two_inputs
    X = MultiInput(spectra=spectra, aux=aux)
    y = targets[:, 0] + 0.5 * aux[:, 1]
    search = OptunaSearchCV(
        NetRegressor(**{**FAST, "max_epochs": 3}),
        {"lr": FloatDistribution(1e-3, 3e-2, log=True)},
        n_trials=2,
        cv=2,
        scoring="neg_mean_squared_error",
        random_state=0,
    ).fit(X, y, sample_weight=np.ones(len(y)))
    assert search.predict(X[:4]).shape == (4,)
    assert search.best_score_ < 0


@pytest.mark.parametrize("kind", ["db", "sqlite_url", "journal", "log"])
def test_storage_resume_counts_finished_trials(blobs, tmp_path, kind):
    X, y = blobs
    storage = {
        "db": str(tmp_path / "study.db"),
        "sqlite_url": f"sqlite:///{tmp_path / 'study.sqlite3'}",
        "journal": tmp_path / "study.journal",
        "log": str(tmp_path / "study.log"),
    }[kind]
    space = {"C": FloatDistribution(1e-2, 10, log=True)}

    def search(n_trials, seed):
        return OptunaSearchCV(
            LogisticRegression(),
            space,
            n_trials=n_trials,
            cv=2,
            storage=storage,
            study_name="resume",
            random_state=seed,
            refit=False,
        ).fit(X, y)

    first = search(2, 0)
    # A trial left RUNNING by a killed process neither counts nor blocks.
    first.study_.ask(space)
    second = search(4, 1)
    assert second.n_trials_ == 4
    assert list(second.cv_results_["number"]) == [0, 1, 3, 4]
    assert second.cv_results_["params"][:2] == first.cv_results_["params"]
    assert search(3, 2).n_trials_ == 4  # nothing left to run
    states = [t.state for t in second.study_.get_trials()]
    assert states.count(TrialState.RUNNING) == 1


def test_a_resumed_study_proposes_new_parameters(blobs, tmp_path):
    # The resumed search got a sampler with the first run's seed: its random
    # start-up proposals repeated the first run's trials one by one.
    X, y = blobs

    def search(n_trials):
        return OptunaSearchCV(
            LogisticRegression(),
            {"C": FloatDistribution(1e-3, 1e3, log=True)},
            n_trials=n_trials,
            cv=2,
            storage=str(tmp_path / "study.db"),
            study_name="resumed",
            random_state=0,
            refit=False,
        ).fit(X, y)

    search(3)
    values = [p["C"] for p in search(6).cv_results_["params"]]
    assert len(values) == 6 and not set(values[:3]) & set(values[3:])


def test_ctrl_c_starts_no_fold_after_the_interrupt(blobs):
    # The interrupt reached the caller while the folds' threads went on: the
    # next folds still trained (and opened tracking runs) in the background.
    import os
    import signal
    import threading
    import time

    from skestimators._engine import Callback

    began = []

    class Interrupt(Callback):
        def on_train_begin(self, net, **kwargs):
            began.append(time.monotonic())
            if len(began) == 1:  # Ctrl-C while the first fold trains
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

        def on_epoch_end(self, net, **kwargs):
            time.sleep(0.2)

    X, y = blobs
    search = OptunaSearchCV(
        net(callbacks=[Interrupt()]),
        {"lr": [0.01, 0.05]},
        n_trials=2,
        cv=3,
        pruner=NopPruner(),
        random_state=0,
    )
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    time.sleep(1.0)
    assert len(began) == 1
    assert not [t for t in threading.enumerate() if "_fold" in t.name]


def test_a_stored_study_of_another_search_is_refused(blobs, tmp_path):
    # Resuming a named study checks that it is the same search: another
    # estimator, space, data or folds would mix its trials into this one.
    X, y = blobs
    storage = str(tmp_path / "study.db")

    def search(estimator, space, X, y, cv=2):
        return OptunaSearchCV(
            estimator, space, n_trials=2, cv=cv, storage=storage,
            study_name="s", random_state=0, refit=False,
        ).fit(X, y)  # fmt: skip

    space = {"C": FloatDistribution(1e-2, 10, log=True)}
    first = search(LogisticRegression(), space, X, y)
    with pytest.raises(ValueError, match="its estimator, search space differ"):
        search(LogisticRegression(fit_intercept=False), {"tol": [1e-4]}, X, y)
    with pytest.raises(ValueError, match="its data, cross-validation folds differ"):
        search(LogisticRegression(), space, X[:-10], y[:-10])
    with pytest.raises(ValueError, match=r"its cross-validation folds differ"):
        search(LogisticRegression(), space, X, y, cv=3)
    again = search(LogisticRegression(), space, X, y)  # the same search resumes
    assert again.n_trials_ == first.n_trials_ == 2
    # Without refit there is nothing to predict with, and it says why.
    assert not hasattr(again, "predict")
    with pytest.raises(AttributeError, match="has no attribute 'predict'") as info:
        again.predict(X)
    assert "refit=False: predict is available" in str(info.value.__cause__)


def test_a_stored_study_that_minimises_is_refused(blobs, tmp_path):
    # Created elsewhere with direction="minimize", it was resumed as is: the
    # search returned the worst-scoring parameters as the best.
    X, y = blobs
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=storage, study_name="s", direction="minimize")
    search = OptunaSearchCV(
        LogisticRegression(), {"C": [0.01, 1.0]}, n_trials=2, cv=2,
        storage=storage, study_name="s", random_state=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"direction\(s\) \['minimize'\]"):
        search.fit(X, y)


def test_a_named_study_with_a_local_scorer_resumes(blobs, tmp_path):
    # Its identity hashed the scorer with pickle: PicklingError.
    X, y = blobs

    def accuracy(estimator, X, y):
        return float((estimator.predict(X) == y).mean())

    def search():
        return OptunaSearchCV(
            LogisticRegression(), {"C": [0.01, 1.0]}, n_trials=2, cv=2,
            storage=str(tmp_path / "study.db"), study_name="s",
            scoring=accuracy, random_state=0, refit=False,
        ).fit(X, y)  # fmt: skip

    assert search().n_trials_ == 2
    assert search().n_trials_ == 2  # the same search: resumed, nothing to add


def test_a_scorer_returning_a_dict_is_named_and_leaves_no_trial_running(
    blobs, tmp_path
):
    # float() of the dict raised a TypeError outside the guard: the trial
    # stayed RUNNING in the storage.
    X, y = blobs
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def two(estimator, X, y):
        return {"accuracy": estimator.score(X, y), "zero": 0.0}

    search = OptunaSearchCV(
        LogisticRegression(), {"C": [0.01, 1.0]}, n_trials=2, cv=2,
        storage=storage, study_name="s", scoring=two, refit=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="returns several metrics"):
        search.fit(X, y)
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_failed_fits(blobs):
    X, y = blobs
    space = {"C": CategoricalDistribution([-1.0])}  # invalid: every fit fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        # Every fit failing is a data or parameter problem: its error is raised,
        # with a note about the trials.
        with pytest.raises(ValueError, match="'C' parameter") as info:
            OptunaSearchCV(LogisticRegression(), space, n_trials=2, cv=2).fit(X, y)
    if hasattr(info.value, "add_note"):  # Python >= 3.11
        assert "None of the 2 trials" in info.value.__notes__[0]
    with pytest.raises(ValueError, match="C"):
        OptunaSearchCV(
            LogisticRegression(), space, n_trials=2, cv=2, error_score="raise"
        ).fit(X, y)
    # The warning of a failed trial points at the user's call.
    space = {"C": CategoricalDistribution([-1.0, 1.0])}
    # Seeded: unseeded, all 6 trials drew C=-1 about once in 64 runs.
    search = OptunaSearchCV(
        LogisticRegression(), space, n_trials=6, cv=2, random_state=0
    )
    with pytest.warns(FitFailedWarning, match="fits failed in trial") as record:
        search.fit(X, y)
    assert {w.filename for w in record} == {__file__}


def test_invalid_arguments(blobs):
    X, y = blobs
    with pytest.raises(TypeError, match="optuna distribution"):
        OptunaSearchCV(LogisticRegression(), {"C": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="does not have"):
        OptunaSearchCV(LogisticRegression(), {"D": [1.0]}).fit(X, y)
    # Nested names are checked too (only "C" was: a raw AttributeError in the
    # first trial, which stayed RUNNING in a stored study).
    with pytest.raises(ValueError, match=r"\['C__foo'\].*does not have"):
        OptunaSearchCV(LogisticRegression(), {"C__foo": [1.0]}).fit(X, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(ValueError, match="logisticregression__D"):
        OptunaSearchCV(pipe, {"logisticregression__D": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match="would not end"):
        OptunaSearchCV(LogisticRegression(), {"C": [1.0]}, n_trials=None).fit(X, y)
    with pytest.raises(ValueError, match="storage"):
        OptunaSearchCV(LogisticRegression(), {"C": [1.0]}, storage="x.csv").fit(X, y)


KILLED_SEARCH = """
import json, os, signal, sys
import numpy as np, optuna, torch
from optuna.distributions import FloatDistribution
from optuna.pruners import NopPruner
from sklearn.datasets import make_regression
from skestimators import NetRegressor
from skestimators._engine import Callback
from skestimators.model_selection import OptunaSearchCV

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.ERROR)
root, kill = sys.argv[1], sys.argv[2] == "kill"
trained = []


class KillAt(Callback):
    # In every run (its parameters are part of the runs' {params}); it kills
    # only when asked: the fourth fit (trial 1, fold 1) after its epoch 3.
    def __init__(self, fit=4, epoch=3):
        self.fit = fit
        self.epoch = epoch

    def on_train_begin(self, net, **kwargs):
        trained.append([])

    def on_epoch_end(self, net, **kwargs):
        trained[-1].append(len(net.history))
        if kill and len(trained) == self.fit and len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


X, y = make_regression(200, 6, noise=1.0, random_state=0)
net = NetRegressor(
    max_epochs=5, batch_size=32, device="cpu", random_state=0,
    checkpoint=os.path.join(root, "runs", "{params}-{data}"), callbacks=[KillAt()],
)
search = OptunaSearchCV(
    net, {"lr": FloatDistribution(1e-3, 1e-2, log=True)}, n_trials=3, cv=2,
    pruner=NopPruner(), storage=os.path.join(root, "study.db"), study_name="s",
    random_state=0, refit=False,
).fit(X, y / 100)
trials = search.study_.get_trials()
json.dump({
    "states": [t.state.name for t in trials],
    "values": [t.value for t in trials],
    "params": [t.params for t in trials],
    "trained": trained,
}, open(os.path.join(root, "out.json"), "w"))
"""


@pytest.mark.slow
def test_a_killed_search_resumes_its_running_trial_in_place(tmp_path):
    # The trial a killed process was evaluating stayed RUNNING for good, and
    # its folds' checkpoints were never read again.
    import json
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "search.py"
    script.write_text(KILLED_SEARCH)

    def run(root, mode):
        root.mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, str(script), str(root), mode],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        return done

    killed = run(tmp_path / "a", "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(tmp_path / "a", "resume")
    assert resumed.returncode == 0, resumed.stderr
    straight = run(tmp_path / "b", "resume")
    assert straight.returncode == 0, straight.stderr
    got = json.loads((tmp_path / "a" / "out.json").read_text())
    expected = json.loads((tmp_path / "b" / "out.json").read_text())
    assert got["states"] == ["COMPLETE"] * 3  # trial 1 finished, in place
    # Trial 1's fold 0 is read back; its fold 1 continues after its last
    # checkpoint (epoch 1 or 2: epoch 2's was being written in the
    # background when the process died); then trial 2 trains both folds.
    first, second, *others = got["trained"]
    assert first == [] and second[0] in (2, 3) and second == list(range(second[0], 6))
    assert others == [[1, 2, 3, 4, 5]] * 2
    # Trials 0 and 1 as without the kill (trial 2 is a resumed study's own).
    assert got["params"][:2] == expected["params"][:2]
    assert got["values"][:2] == expected["values"][:2]


def _running_trial(tmp_path, worker):
    """A study in a journal file with trial 0 left running by ``worker``."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    trial.set_user_attr("worker", worker)
    return study, trial


def _not_called(study, trial):
    raise AssertionError(f"trial {trial.number} was resumed")


def _told(resumed):
    def objective(study, trial):
        resumed.append(trial.number)
        study.tell(trial, 1.0)

    return objective


def test_a_process_that_took_over_a_trial_is_not_taken_for_dead(tmp_path):
    # A search resuming a killed one's trial started after that trial did, so
    # other searches took it for a process id used again (ended) and trained
    # the same trial a second time, at the same moment.
    import socket
    import subprocess
    import sys
    import time

    from skestimators.model_selection._stale import resume_stale_trials

    study, trial = _running_trial(tmp_path, "elsewhere:1")
    time.sleep(3)  # the resuming process starts after the trial did
    resumer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{resumer.pid}")
        trial.set_user_attr("worker_since", time.time())  # as claim_trial does
        assert resume_stale_trials(study, _not_called) == 0
    finally:
        resumer.kill()
        resumer.wait()
    resumed = []  # once it has ended, its trial is resumed
    assert resume_stale_trials(study, _told(resumed)) == 1 and resumed == [0]


def test_one_process_of_a_machine_at_a_time_resumes_a_study(tmp_path):
    # Two searches started together both found the killed search's trial and
    # both trained it (the later one then crashed: "Cannot tell a COMPLETE
    # trial").
    import socket
    import subprocess
    import sys

    from skestimators.model_selection._stale import lock_path, resume_stale_trials

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    study, _ = _running_trial(tmp_path, f"{socket.gethostname()}:{ended.pid}")
    holder = subprocess.Popen(  # another search, resuming the study's trials
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); "
            "time.sleep(60)",
            lock_path(study),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert resume_stale_trials(study, _not_called) == 0
    finally:
        holder.kill()
        holder.wait()
    resumed = []  # the other process is gone: its lock with it
    assert resume_stale_trials(study, _told(resumed)) == 1 and resumed == [0]
    assert study.trials[0].state == TrialState.COMPLETE
    # A study of the same name in another storage has a lock of its own.
    (tmp_path / "other").mkdir()
    other, _ = _running_trial(tmp_path / "other", "elsewhere:1")
    assert lock_path(other) != lock_path(study)


def test_a_pair_of_numbers_is_neither_a_range_nor_two_choices(blobs):
    # (1e-4, 1e-2) became two categorical choices: only the ends were tried.
    X, y = blobs
    search = OptunaSearchCV(net(), {"lr": (1e-4, 1e-2)}, n_trials=2, cv=2)
    with pytest.raises(TypeError, match=r"FloatDistribution\(0.0001, 0.01\)"):
        search.fit(X, y)


def test_metadata_routing_reaches_the_estimator_the_splitter_and_the_scorer():
    # Routing was ignored: the estimator got weights it declined, the scorer
    # none of those it requested, and the splitter no groups.
    from sklearn import config_context
    from sklearn.datasets import make_classification
    from sklearn.metrics import accuracy_score, make_scorer
    from sklearn.model_selection import GroupKFold

    X, y = make_classification(120, 5, random_state=0)
    weights = np.where(y == 1, 10.0, 0.01)
    groups = np.arange(len(y)) % 4
    with config_context(enable_metadata_routing=True):
        scorer = make_scorer(accuracy_score).set_score_request(sample_weight=True)
        model = LogisticRegression().set_fit_request(sample_weight=False)
        cv = GroupKFold(2)
        params = {"sample_weight": weights, "groups": groups}
        grid = GridSearchCV(model, {"C": [1.0]}, scoring=scorer, cv=cv)
        grid.fit(X, y, **params)
        search = OptunaSearchCV(
            model,
            {"C": CategoricalDistribution([1.0])},
            n_trials=1,
            cv=cv,
            scoring=scorer,
        ).fit(X, y, **params)
    for k in range(2):
        key = f"split{k}_test_score"
        assert search.cv_results_[key][0] == pytest.approx(grid.cv_results_[key][0])
    unweighted = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(search.best_estimator_.coef_, unweighted.coef_)


def test_a_network_inside_a_target_transformer_is_counted_not_pruned():
    # The soil-carbon recipe wraps its network in a TransformedTargetRegressor:
    # the pruner given was ignored without a word, and n_epochs read 0.
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import make_regression

    X, y = make_regression(60, 4, random_state=0)
    model = TransformedTargetRegressor(
        NetRegressor(**{**FAST, "max_epochs": 2, "early_stopping": False}),
        func=np.cbrt,
        inverse_func=lambda v: v**3,
    )
    search = OptunaSearchCV(
        model,
        {"regressor__lr": FloatDistribution(1e-3, 1e-2, log=True)},
        n_trials=1,
        cv=2,
        pruner=optuna.pruners.MedianPruner(),
        refit=False,
    )
    with pytest.warns(UserWarning, match="MedianPruner cannot prune"):
        search.fit(X, y)
    assert search.cv_results_["n_epochs"].tolist() == [4]
