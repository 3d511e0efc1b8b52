"""Optuna studies for :class:`OptunaSearchCV`: storages, the trial loop, results."""

from __future__ import annotations

import copy
import numbers
import os
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import TrialState
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import check_random_state
from sklearn.utils.parallel import Parallel, delayed

from .._engine import caller_stacklevel
from ._epochwise import Lockstep
from ._stale import claim_trial, resume_stale_trials
from ._tracking import tracked_network

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def resolve_storage(storage):
    """An Optuna storage (or None, in memory) from a URL, a file path or a storage.

    ``"sqlite:///x.db"``, ``"postgresql://..."`` and other SQLAlchemy URLs give
    an ``RDBStorage``; a path ending in ``.db``/``.sqlite`` a SQLite one; a
    path ending in ``.log``/``.journal`` a ``JournalStorage`` on a file.
    """
    if storage is None or isinstance(storage, BaseStorage):
        return storage
    spec = os.fspath(storage)
    if "://" in spec:
        if spec.startswith("sqlite"):
            # Several processes writing one SQLite file wait for its lock.
            return RDBStorage(spec, engine_kwargs={"connect_args": {"timeout": 60}})
        return RDBStorage(spec, engine_kwargs={"pool_pre_ping": True})
    suffix = Path(spec).suffix.lower()
    if suffix in JOURNAL_SUFFIXES:
        return JournalStorage(JournalFileBackend(spec))
    if suffix in SQLITE_SUFFIXES:
        return resolve_storage(f"sqlite:///{Path(spec).resolve()}")
    raise ValueError(
        f"storage={storage!r}: expected a database URL (sqlite:///..., "
        f"postgresql://...), a SQLite file ({', '.join(SQLITE_SUFFIXES)}), a "
        f"journal file ({', '.join(JOURNAL_SUFFIXES)}) or an Optuna storage."
    )


#: The study's user attribute recording which search it belongs to.
IDENTITY = "skestimators_search"


def search_identity(estimator, distributions, X, y, groups, splits, scoring):
    """Digests of what makes a search's trials comparable (see :func:`open_study`)."""
    from joblib import hash as digest
    from optuna.distributions import distribution_to_json

    space = sorted((n, distribution_to_json(d)) for n, d in distributions.items())
    parts = {
        "estimator": clone(estimator),
        "search space": space,
        "data": (X, y, groups),
        "cross-validation folds": splits,
        "scoring": scoring,
    }
    return {name: _digest(name, part, digest) for name, part in parts.items()}


def _digest(name, value, digest):
    """joblib's hash of ``value``; for what pickle cannot store (a lambda or
    a local function as scorer or parameter), the hash of its cloudpickle
    (its code, stable from one run of a script to the next)."""
    try:
        return digest(value)
    except Exception:
        pass
    import hashlib

    try:  # joblib's dependency (vendored by joblib before 1.5)
        import cloudpickle
    except ImportError:
        from joblib.externals import cloudpickle

    try:
        return hashlib.sha256(cloudpickle.dumps(value)).hexdigest()
    except Exception as exc:
        raise ValueError(
            f"A named study records which search it belongs to from a hash of "
            f"its {name}, which cannot be pickled ({type(exc).__name__}: {exc}). "
            "Define it at module level, or pass study_name=None."
        ) from None


def open_study(storage, study_name, sampler, pruner, identity=None):
    """Create the study, or load it when it exists (several processes, resumes).

    With ``identity`` (:func:`search_identity`), a study that exists must have
    been created by the same search (estimator, search space, data, folds and
    scoring): resuming another would mix its trials, and its best parameters,
    into this search. A new study records it.
    """
    for attempt in range(5):
        try:
            study = optuna.create_study(
                storage=resolve_storage(storage),
                sampler=sampler,
                pruner=pruner,
                study_name=study_name,
                direction="maximize",
                load_if_exists=True,
            )
            break
        except Exception as exc:
            # Processes starting together on a new database race to create
            # its tables; the loser retries.
            if attempt == 4 or type(exc).__module__.split(".")[0] != "sqlalchemy":
                raise
            time.sleep(0.2 * (attempt + 1))
    if study.directions != [StudyDirection.MAXIMIZE]:
        # A study created elsewhere to minimise: its "best" trial would be
        # the worst-scoring one (scores are higher-is-better).
        raise ValueError(
            f"Study {study.study_name!r} in storage {storage!r} has direction(s) "
            f"{[d.name.lower() for d in study.directions]}; the search maximises "
            "its scores (higher is better, as scikit-learn's scorers). Pass "
            "another study_name."
        )
    if identity is None:
        return study
    recorded = study.user_attrs.get(IDENTITY)
    if recorded is None:
        study.set_user_attr(IDENTITY, identity)
        return study
    differ = [key for key, value in identity.items() if recorded.get(key) != value]
    if differ:
        raise ValueError(
            f"Study {study.study_name!r} in storage {storage!r} belongs to another "
            f"search: its {', '.join(differ)} differ from this one's. Resuming it "
            "would mix its trials (and its best parameters) into this search. Pass "
            "another study_name, or delete that study to start it afresh."
        )
    return study


def set_params(estimator, params):
    """``estimator.set_params(**params)``, where ``name__key`` may also set one
    key of a dict-valued parameter (``module_params__dropout``)."""
    current = estimator.get_params(deep=True)
    plain, merged = {}, {}
    for name, value in params.items():
        owner, _, key = name.rpartition("__")
        if (
            name not in current
            and owner
            and (
                isinstance(current.get(owner), dict)
                or (owner in current and current[owner] is None)
            )
        ):
            base = merged.get(owner, dict(current[owner] or {}))
            merged[owner] = {**base, key: value}
        else:
            plain[name] = value
    return estimator.set_params(**plain, **merged)


def check_distributions(param_distributions, estimator):
    """The search space as optuna distributions (lists become categorical)."""
    out = {}
    for name, dist in param_distributions.items():
        if (
            isinstance(dist, tuple)
            and len(dist) == 2
            and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in dist
            )
        ):
            low, high = dist
            raise TypeError(
                f"param_distributions[{name!r}] is the tuple {dist!r}: a range "
                f"or two choices? Write FloatDistribution({low!r}, {high!r}) "
                f"(log=True for a scale such as lr) or IntDistribution for a "
                f"range, or the list {list(dist)!r} for the two values alone."
            )
        if isinstance(dist, (list, tuple)):
            dist = CategoricalDistribution(dist)
        if not isinstance(dist, BaseDistribution):
            raise TypeError(
                f"param_distributions[{name!r}] must be an optuna distribution "
                "(optuna.distributions.FloatDistribution, IntDistribution, "
                f"CategoricalDistribution) or a list, got {dist!r}."
            )
        out[name] = dist
    params = estimator.get_params(deep=True)
    unknown = [name for name in out if not _settable(name, params)]
    if unknown:
        raise ValueError(
            f"param_distributions has parameters {sorted(unknown)} that "
            f"{type(estimator).__name__} does not have (nested names go through "
            "the steps, e.g. 'step__param', or into a dict-valued parameter, "
            "e.g. 'module_params__dropout')."
        )
    return out


def _settable(name, params) -> bool:
    """Whether :func:`set_params` can set ``name``: a parameter of the
    estimator (nested ones included), or a key of a dict-valued (or None)
    parameter."""
    if name in params:
        return True
    owner, _, _ = name.rpartition("__")
    return (
        bool(owner)
        and owner in params
        and (params[owner] is None or isinstance(params[owner], dict))
    )


def make_sampler(sampler, random_state, index=0, resumed=0):
    """The sampler of worker ``index``: a reseeded copy, or ``TPESampler(seed)``.

    ``resumed``: the number of trials the study already holds. A resumed
    study gets another seed (derived from the same ``random_state``):
    seeded as in the first run, the sampler would propose the same
    parameters again.
    """
    if sampler is not None:
        sampler = copy.deepcopy(sampler)
        if index or resumed:
            sampler.reseed_rng()
        return sampler
    seed = random_state
    if seed is not None and not isinstance(seed, numbers.Integral):
        seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
    if seed is None:
        return TPESampler(seed=None)
    if resumed:
        state = np.random.SeedSequence([int(seed), index, resumed]).generate_state(1)
        return TPESampler(seed=int(state[0] % np.iinfo(np.int32).max))
    return TPESampler(seed=int(seed) + index)


def n_started(study, since) -> int:
    """Trials finished, plus those numbered ``since`` or later being evaluated."""
    trials = study.get_trials(deepcopy=False)
    return sum(
        t.state in FINISHED or (t.state == TrialState.RUNNING and t.number >= since)
        for t in trials
    )


def run_trials(study, objective, distributions, n_trials, timeout, since=None):
    """Ask and evaluate trials until the study holds ``n_trials`` finished ones.

    Trials that other workers of this search are evaluating count too (those
    numbered ``since`` or later: the search's own, ``since`` counted when it
    started), so that parallel workers do not start more than ``n_trials``
    between them; trials left running by an interrupted earlier search (in a
    persistent storage) do not.
    """
    start = time.monotonic()
    if since is None:
        since = len(study.get_trials(deepcopy=False))
    while n_trials is None or n_started(study, since) < n_trials:
        if timeout is not None and time.monotonic() - start >= timeout:
            break
        trial = study.ask(distributions)
        objective(study, trial)


def worker(
    storage,
    study_name,
    sampler,
    pruner,
    objective,
    distributions,
    n_trials,
    timeout,
    journal_dir=None,
    since=None,
):
    """One process of a parallel search: load the shared study, run trials."""
    if journal_dir is not None and not os.path.isdir(journal_dir):
        raise RuntimeError(
            "OptunaSearchCV(storage=None, n_jobs>1) shares trials through a file "
            f"in {journal_dir}, which this worker ({socket.gethostname()}) cannot "
            "see; pass a storage all workers reach (a PostgreSQL URL)."
        )
    study = optuna.load_study(
        study_name=study_name,
        storage=resolve_storage(storage),
        sampler=sampler,
        pruner=pruner,
    )
    run_trials(study, objective, distributions, n_trials, timeout, since)


def run_parallel(
    n_jobs,
    storage,
    study_name,
    make_sampler,
    pruner,
    objective,
    distributions,
    n_trials,
    timeout,
    identity=None,
):
    """Run trials in ``n_jobs`` joblib workers sharing one study; return it.

    An in-memory search shares a temporary journal file, copied back into
    memory at the end.
    """
    journal_dir = None
    if isinstance(storage, InMemoryStorage):
        raise ValueError(
            "An InMemoryStorage cannot be shared by parallel workers; use "
            "storage=None, a file or a database URL."
        )
    if storage is None:
        journal_dir = tempfile.mkdtemp(prefix="skestimators-optuna-")
        storage = os.path.join(journal_dir, "study.journal")
    try:
        study = open_study(storage, study_name, make_sampler(0), pruner, identity)
        resumed = len(study.get_trials(deepcopy=False))
        resume_stale_trials(study, objective)
        # Counted once for every worker: a worker that starts late must count
        # the trials the others are already evaluating.
        since = len(study.get_trials(deepcopy=False))
        if n_trials is not None:
            n_jobs = max(1, min(n_jobs, n_trials))
        Parallel(n_jobs=n_jobs)(
            delayed(worker)(
                storage,
                study.study_name,
                make_sampler(i, resumed),
                pruner,
                objective,
                distributions,
                n_trials,
                timeout,
                journal_dir,
                since,
            )
            for i in range(n_jobs)
        )
        if journal_dir is None:
            return study
        memory = InMemoryStorage()
        optuna.copy_study(
            from_study_name=study.study_name,
            from_storage=resolve_storage(storage),
            to_storage=memory,
        )
        return optuna.load_study(
            study_name=study.study_name,
            storage=memory,
            sampler=make_sampler(0),
            pruner=pruner,
        )
    finally:
        if journal_dir is not None:
            shutil.rmtree(journal_dir, ignore_errors=True)


class Objective:
    """Cross-validate one trial's parameters (picklable, for parallel workers).

    ``runs`` (a :class:`._tracking.NestedRuns` or None) gives the network of
    each fold a logger of its own nested run, ``trial<n>/fold<k>``.
    """

    def __init__(
        self,
        estimator,
        X,
        y,
        splits,
        scorer,
        metric,
        epoch_scoring,
        fit_params,
        error_score,
        runs=None,
        score_params=None,
    ):
        self.estimator = estimator
        self.X = X
        self.y = y
        self.splits = splits
        self.scorer = scorer
        self.metric = metric
        self.epoch_scoring = epoch_scoring
        self.fit_params = fit_params
        self.error_score = error_score
        self.runs = runs
        self.score_params = score_params
        self.first_error = None  # of this process, to re-raise if all trials fail

    def __call__(self, study, trial):
        try:
            # Who evaluates it: a later search resumes the trials of a killed one.
            claim_trial(trial)
            estimator = set_params(clone(self.estimator), trial.params)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)  # never left running
            raise

        def on_round(epoch, value):
            trial.report(value, epoch)
            return trial.should_prune()

        args = (
            self.scorer,
            self.metric,
            self.epoch_scoring,
            on_round if self.epoch_scoring is not None else None,
        )
        if self.runs is None or tracked_network(estimator) is None:
            runner = Lockstep(estimator, *args)
        else:
            folds = [
                self.runs.attach(
                    clone(estimator),
                    f"trial{trial.number}/fold{k}",
                    {"trial": trial.number, "fold": k},
                )
                for k in range(len(self.splits))
            ]
            runner = Lockstep(folds, *args)
        told = []

        def tell(*args, **kwargs):
            told.append(True)
            study.tell(*args, **kwargs)

        try:
            results, pruned = runner.run(
                self.X, self.y, self.splits, self.fit_params, self.score_params
            )
            self._conclude(tell, trial, results, pruned)
        except BaseException:
            if not told:  # never left running
                study.tell(trial, state=TrialState.FAIL)
            raise

    def _conclude(self, tell, trial, results, pruned):
        """Record the folds' results in ``trial`` and tell the study."""
        epochs = [int(r.n_epochs) for r in results]
        trial.set_user_attr("epochs", epochs)
        failed = [k for k, r in enumerate(results) if r.error is not None]
        if failed:  # their tracking runs end FAILED (see failed_runs)
            trial.set_user_attr("failed_folds", failed)
        trial.set_user_attr("n_epochs", int(sum(epochs)))
        if pruned:
            tell(trial, state=TrialState.PRUNED)
            return
        errors = [r.error for r in results if r.error is not None]
        if errors and isinstance(self.error_score, str):  # "raise"
            tell(trial, state=TrialState.FAIL)
            raise errors[0]
        if errors:
            if self.first_error is None:
                self.first_error = errors[0]
            warnings.warn(
                f"{len(errors)} of {len(results)} fits failed in trial "
                f"{trial.number} (score set to {self.error_score}): "
                f"{type(errors[0]).__name__}: {errors[0]}",
                FitFailedWarning,
                stacklevel=caller_stacklevel(),
            )
            trial.set_user_attr("error", f"{type(errors[0]).__name__}: {errors[0]}")
        metrics = sorted({m for r in results for m in r.scores}) or [self.metric]
        if any(isinstance(v, dict) for r in results for v in r.scores.values()):
            raise ValueError(
                "scoring is a callable that returns several metrics (a dict); "
                "OptunaSearchCV takes several metrics as a list or dict of "
                "scorers, e.g. scoring={'r2': 'r2', 'mae': "
                "'neg_mean_absolute_error'} with refit='r2'."
            )
        scores = {
            m: [
                float(self.error_score) if r.error is not None else float(r.scores[m])
                for r in results
            ]
            for m in metrics
        }
        trial.set_user_attr("split_scores", scores)
        trial.set_user_attr("fit_times", [float(r.fit_time) for r in results])
        trial.set_user_attr("score_times", [float(r.score_time) for r in results])
        value = float(np.mean(scores[self.metric]))
        if np.isnan(value):
            tell(trial, state=TrialState.FAIL)
        else:
            tell(trial, value)


def cv_results(trials, metric_keys, n_splits):
    """``cv_results_`` as in scikit-learn searches, one entry per finished trial.

    ``metric_keys`` maps metric names (as stored in the trials) to the key
    used in the results (``"score"`` for a single metric).
    """
    trials = sorted((t for t in trials if t.state in FINISHED), key=lambda t: t.number)
    n = len(trials)
    results = {
        "number": np.array([t.number for t in trials], dtype=int),
        "state": np.array([t.state.name for t in trials], dtype=object),
        "n_epochs": np.array(
            [t.user_attrs.get("n_epochs", 0) for t in trials], dtype=int
        ),
    }
    for stat, key in (("fit_time", "fit_times"), ("score_time", "score_times")):
        times = _matrix([t.user_attrs.get(key) for t in trials], n_splits)
        results[f"mean_{stat}"] = _nanstat(np.nanmean, times)
        results[f"std_{stat}"] = _nanstat(np.nanstd, times)
    names = sorted({p for t in trials for p in t.params})
    for name in names:
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, t in enumerate(trials):
            if name in t.params:
                column[i] = t.params[name]
        results[f"param_{name}"] = column
    results["params"] = [dict(t.params) for t in trials]
    for metric, key in metric_keys.items():
        split = _matrix(
            [t.user_attrs.get("split_scores", {}).get(metric) for t in trials], n_splits
        )
        for k in range(n_splits):
            results[f"split{k}_test_{key}"] = split[:, k]
        mean = _nanstat(np.mean, split)
        results[f"mean_test_{key}"] = mean
        results[f"std_test_{key}"] = _nanstat(np.std, split)
        # Missing scores (pruned, failed trials) rank last, as in scikit-learn.
        filled = np.where(np.isnan(mean), -np.inf, mean)
        results[f"rank_test_{key}"] = (
            rankdata(-filled, method="min").astype(np.int32) if n else np.array([], int)
        )
    return results


def _matrix(rows, n_splits):
    out = np.full((len(rows), n_splits), np.nan)
    for i, row in enumerate(rows):
        if row is not None and len(row) == n_splits:
            out[i] = np.asarray(row, dtype=float)
    return out


def _nanstat(func, values):
    if values.size == 0:
        return np.zeros(values.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(values, axis=1)


def failed_runs(trials) -> set:
    """Tracking run names (``trial<n>/fold<k>``) of the fits that raised."""
    return {
        f"trial{t.number}/fold{k}"
        for t in trials
        for k in t.user_attrs.get("failed_folds", ())
    }
