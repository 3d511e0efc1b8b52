"""Train the fold models of one cross-validation in lockstep, epoch by epoch.

Each fold is fitted by one ordinary ``fit`` call, in its own thread, but only
one thread runs at a time: at the end of every epoch a fold's network hands
the turn to the next fold (through a callback in its ``callbacks``) and waits
for its next turn. When every fold still training has finished epoch ``e``,
``on_round(e, mean_score)`` decides whether to go on; stopping ends every
fit at its next turn. Each fit keeps its own callbacks (early stopping,
learning-rate schedules) exactly as in an uninterrupted fit, and its torch
random stream is saved and restored around each hand-over, so a fold trained
in lockstep is bit-identical to the same fold fitted alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn import config_context, get_config
from sklearn.base import clone
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples

from .._engine import BaseNet, Callback, torch_threads
from .._io import walk_estimators
from ..tracking import active_run_id, nested_under
from ._compare import free_device_memory
from ._routing import split_fit_params


class _Stop(Exception):
    """Raised inside a fold's training to end it (the trial is pruned, or
    Ctrl-C stopped the search): its experiment runs end killed, not failed."""

    killed = True


def network_step(estimator):
    """The package network trained inside ``estimator``, or None.

    ``estimator`` itself, or the final step of a (nested) Pipeline.
    """
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator if isinstance(estimator, BaseNet) else None


def epochs_trained(estimator) -> int:
    """Epochs trained by the package networks of a fitted ``estimator``,
    wherever they sit (a Pipeline, a TransformedTargetRegressor's fitted
    regressor, an ensemble's members)."""
    return sum(
        len(getattr(sub, "history_", ()))
        for _, sub in walk_estimators(estimator)
        if isinstance(sub, BaseNet)
    )


@dataclass
class FoldResult:
    scores: dict = field(default_factory=dict)
    fit_time: float = np.nan
    score_time: float = np.nan
    n_epochs: int = 0
    error: BaseException | None = None


class Lockstep:
    """Fit ``estimator`` on every fold, one epoch per fold in turn.

    Parameters
    ----------
    estimator : estimator or list of estimators
        Template, cloned per fold, or one template per fold (each fold's own
        experiment logger, for instance). Estimators without a package network
        (scikit-learn models) are simply fitted fold after fold.
    scorer : callable
        Multi-metric scorer returning ``{metric: value}``, used once a fold
        has finished.
    metric : str
        Name, among the scorer's metrics, of the one reported after each epoch.
    epoch_scoring : str, callable or None
        That metric, scored after each epoch by the network step on the test
        fold (transformed once by the pipeline's fitted preprocessing); None
        fits the folds one after the other without per-epoch scores.
    on_round : callable ``(epoch, value) -> bool`` or None
        Called after each epoch of all folds; True stops every fold.
    """

    def __init__(self, estimator, scorer, metric, epoch_scoring, on_round):
        self.estimator = estimator
        self.scorer = scorer
        self.metric = metric
        self.epoch_scoring = epoch_scoring
        self.on_round = on_round

    def run(self, X, y, splits, fit_params=None, score_params=None):
        """Fit and score every fold; return ``(results, stopped)``.

        ``fit_params`` and ``score_params`` (those of the scorer once a fold
        has finished, not of the per-epoch scores) are indexed per fold where
        they hold one entry per sample.
        """
        n = len(splits)
        self._cond = threading.Condition()
        self._turn = 0
        self._active = list(range(n))
        self._latest = [np.nan] * n
        self._reported = False
        self._epoch = 0
        self._stopped = False
        self._round_error = None
        self.results = [FoldResult() for _ in range(n)]
        config = get_config()
        self._caller_run = active_run_id()  # the folds' runs nest under it
        n_samples = _num_samples(X)
        threads = [
            threading.Thread(
                target=self._fold,
                args=(
                    i,
                    X,
                    y,
                    train,
                    test,
                    split_fit_params(fit_params, n_samples, train),
                    split_fit_params(score_params, n_samples, test),
                    config,
                ),
                daemon=True,
            )
            for i, (train, test) in enumerate(splits)
        ]
        # torch's thread count is process-wide: set it once for every fold, so
        # that a fold ending early cannot restore another value under the others.
        with torch_threads(), torch.random.fork_rng(devices=_cuda_devices()):
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    thread.join()
            except BaseException:
                # Ctrl-C: no fold starts any more, the running one ends at its
                # next batch; wait for them, so that nothing trains (or opens
                # a tracking run) after the interrupt reaches the caller.
                with self._cond:
                    self._stopped = True
                    self._cond.notify_all()
                for thread in threads:
                    thread.join()
                raise
        if self._round_error is not None:
            raise self._round_error
        return self.results, self._stopped

    # -- one fold, in its thread ------------------------------------------------------
    def _fold(self, i, X, y, train, test, fit_params, score_params, config):
        result = self.results[i]
        with self._cond:
            self._cond.wait_for(lambda: self._turn == i or self._stopped)
            stopped = self._stopped
        if stopped:  # interrupted before this fold began
            self._finish(i)
            return
        template = self.estimator
        estimator = clone(template[i] if isinstance(template, list) else template)
        net = network_step(estimator)
        try:
            with config_context(**config), nested_under(self._caller_run):
                X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
                y_train = None if y is None else _safe_indexing(y, train)
                y_test = None if y is None else _safe_indexing(y, test)
                if net is not None:
                    hook = (
                        _StopCheck(self)
                        if self.epoch_scoring is None
                        else _Hook(self, i, estimator, net, X_test, y_test)
                    )
                    net.set_params(callbacks=[*(net.callbacks or []), (_NAME, hook)])
                start = time.perf_counter()
                estimator.fit(X_train, y_train, **fit_params)
                result.fit_time = time.perf_counter() - start
                result.n_epochs = epochs_trained(estimator)
                start = time.perf_counter()
                result.scores = self.scorer(estimator, X_test, y_test, **score_params)
                result.score_time = time.perf_counter() - start
                self._latest[i] = result.scores.get(self.metric, np.nan)
        except _Stop:
            pass
        except Exception as exc:  # reported per fold; the caller decides
            result.error = exc
        finally:
            if net is not None:
                # The hook refers to this runner (locks, threads): never keep it.
                kept = [c for c in net.callbacks or [] if not _is_hook(c)]
                net.set_params(callbacks=kept or None)
                if hasattr(net, "net_"):
                    net.net_.callbacks_ = [
                        c for c in net.net_.callbacks_ if not _is_hook(c)
                    ]
            del estimator, net
            free_device_memory()
            self._finish(i)

    # -- turn taking ------------------------------------------------------------
    def _report(self, i, epoch, value):
        """Record fold ``i``'s score after ``epoch``, pass the turn, wait for it."""
        with self._cond:
            self._latest[i] = value
            self._epoch = max(self._epoch, epoch)
            self._reported = True
            self.results[i].n_epochs = epoch
            self._pass_turn(i)
            cpu, cuda = _rng_state()
            self._cond.wait_for(lambda: self._turn == i)
            _set_rng_state(cpu, cuda)
            if self._stopped:
                raise _Stop

    def _finish(self, i):
        with self._cond:
            self._active.remove(i)
            self._pass_turn(i)

    def _pass_turn(self, i):
        later = [j for j in self._active if j > i]
        following = later[0] if later else (self._active[0] if self._active else None)
        if (following is None or following <= i) and self._reported:
            self._end_round()
        self._turn = following
        self._cond.notify_all()

    def _end_round(self):
        self._reported = False
        if self._stopped:
            return
        values = np.asarray(self._latest, dtype=float)
        if np.isnan(values).all():
            return
        try:
            self._stopped = bool(self.on_round(self._epoch, float(np.nanmean(values))))
        except Exception as exc:  # e.g. a storage error: stop and re-raise later
            self._round_error = exc
            self._stopped = True


_NAME = "lockstep"


def _is_hook(item):
    return isinstance(item, tuple) and item[0] == _NAME


class _StopCheck(Callback):
    """Ends a fold's fit at the next batch once the runner is stopped (Ctrl-C)."""

    _watches_only = True  # left out of a checkpoint directory's {params}

    def __init__(self, runner):
        self.runner = runner

    def on_batch_end(self, net, **kwargs):
        if self.runner._stopped:
            raise _Stop


class _Hook(_StopCheck):
    """Epoch-end callback of one fold: score the test fold, then take turns;
    ends the fit at the next batch once the runner is stopped."""

    def __init__(self, runner, i, estimator, net, X_test, y_test):
        super().__init__(runner)
        self.i = i
        self.estimator = estimator
        self.net = net
        self.X_test = X_test
        self.y_test = y_test
        self._Xt = None
        self._scorer = None

    def on_epoch_end(self, engine_net, **kwargs):
        runner = self.runner
        try:
            if self._Xt is None:
                self._Xt = self.X_test
                if self.estimator is not self.net:
                    # Preprocessing is fitted by now; transform the test fold once.
                    self._Xt = _preprocess(self.estimator, self.X_test)
            if self._scorer is None:
                self._scorer = check_scoring(self.net, runner.epoch_scoring)
            value = float(self._scorer(self.net, self._Xt, self.y_test))
        except Exception:  # a score that fails mid-training does not stop the fit
            value = np.nan
        runner._report(self.i, len(engine_net.history), value)


def _preprocess(estimator, X):
    while isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator.steps[-1][1]
    return X


def _cuda_devices():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def _rng_state():
    cuda = None
    if _cuda_devices():
        cuda = torch.cuda.get_rng_state_all()
    return torch.get_rng_state(), cuda


def _set_rng_state(cpu, cuda):
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
