"""What every experiment logger records, whatever the tracking tool.

A logger is a skorch callback that opens one run per fit (``on_train_begin``),
records the estimator's parameters, logs the numeric values of each epoch's
history row with the epoch number as step, and closes the run at
``on_train_end``. The tracking library is imported when a fit starts, so the
package imports without it.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import math
import numbers
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch.callbacks import Callback

# Longest parameter value logged; longer values are cut and end with "...".
MAX_VALUE_LENGTH = 250
# History keys that are bookkeeping, not measurements.
SKIPPED_KEYS = frozenset(
    {
        "epoch",
        "batches",
        "train_batch_count",
        "valid_batch_count",
    }
)
INSTALL_HINT = 'pip install "skestimators[tracking]"'


def import_tracking(module: str, package: str):
    """Import ``module`` of a tracking library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"This logger needs the {package} package, which is not installed: "
            f"{INSTALL_HINT} installs it (with the other tracking libraries)."
        ) from exc


def _scalar(value):
    """A 0-d array or tensor as its Python number; anything else unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def loggable(value):
    """``value`` as a number, bool, None or string that every tool stores.

    Numbers, bools, None and strings are kept (long strings are cut); anything
    else becomes its ``repr``, cut to ``MAX_VALUE_LENGTH`` characters.
    """
    value = _scalar(value)
    if value is None or isinstance(value, (bool, numbers.Real)):
        return value
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_VALUE_LENGTH:
        text = text[: MAX_VALUE_LENGTH - 3] + "..."
    return text


def estimator_params(net) -> tuple[str, dict]:
    """The estimator's name and loggable parameters, as the engine set them.

    The package's networks carry ``estimator_name`` and ``estimator_params``
    (the estimator's ``get_params(deep=False)``); a plain skorch net gives its
    own class name and public parameters.
    """
    if getattr(net, "estimator_params", None) is not None:
        name, params = net.estimator_name, net.estimator_params
    else:
        name = type(net).__name__
        params = {
            k: v for k, v in net.get_params(deep=False).items() if not k.startswith("_")
        }
    return str(name), {str(k): loggable(v) for k, v in params.items()}


def epoch_metrics(net) -> tuple[int, dict]:
    """The epoch number and the numeric values of the last history row.

    Bookkeeping keys (``epoch``, ``batches``, skorch's batch counts), bools
    (``*_best`` flags), non-numeric values and NaN are left out.
    """
    row = net.history[-1]
    return int(row["epoch"]), _numeric(row)


def _numeric(row) -> dict:
    """The numeric measurements of one history row, as floats."""
    metrics = {}
    for key, value in row.items():
        value = _scalar(value)
        if key in SKIPPED_KEYS or isinstance(value, bool):
            continue
        if isinstance(value, numbers.Real) and not math.isnan(value):
            metrics[str(key)] = float(value)
    return metrics


def best_epoch_metrics(net) -> dict:
    """``best_epoch`` and the metrics of the epoch whose weights early stopping
    restored, as ``best_<name>``; empty when the network keeps its last epoch.

    A run's last metrics describe the last epoch, not the network it logs.
    """
    early = dict(getattr(net, "callbacks_", None) or ()).get("early_stopping")
    best = getattr(early, "best_epoch_", None)
    if not getattr(early, "load_best", False) or best is None or not net.history:
        return {}
    if best == net.history[-1]["epoch"]:
        return {}
    rows = [row for row in net.history if row.get("epoch") == best]
    if not rows:
        return {}
    metrics = _numeric(rows[0])
    return {"best_epoch": float(best), **{f"best_{k}": v for k, v in metrics.items()}}


def make_folder(folder, owner, parameter, value):
    """Create ``folder`` and its parents when missing.

    A file in the way, or a folder that cannot be written (a read-only disk,
    no permission), gives a ``ValueError`` naming ``owner``'s ``parameter``
    (set to ``value``) rather than the operating system's error.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable", os.fspath(folder))
    except OSError as exc:  # a file in the way, a read-only disk, no permission
        blocking = _file_in_the_way(folder)
        if blocking is None:
            problem = f"it cannot be written ({exc.strerror or exc})"
        elif blocking == str(Path(folder).absolute()):
            problem = "that is a file"
        else:
            problem = f"{blocking} is a file"
        raise ValueError(
            f"{owner}: {parameter}={os.fspath(value)!r} needs the folder "
            f"{os.fspath(folder)!r}, but {problem}."
        ) from exc


def _first_line(exc) -> str:
    """An error's first line (a database error appends its SQL)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _checkpoint_folder(net):
    """The directory of the fit's checkpoint, or None without one."""
    save = dict(getattr(net, "callbacks_", None) or []).get("checkpoint")
    directory = getattr(getattr(save, "store", None), "directory", None)
    return None if directory is None else str(directory)


def _file_in_the_way(folder):
    """The existing file that ``folder`` is, or is under; None if none."""
    path = Path(folder).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else str(candidate)
    return None


@contextmanager
def model_files(net):
    """A temporary folder holding the fitted network's files.

    ``module_state_dict.pt`` (the module's ``state_dict`` as CPU tensors, for
    ``torch.load`` and ``module.load_state_dict`` on any machine) and
    ``history.json`` (skorch's history, one entry per epoch).
    """
    state = {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
    with tempfile.TemporaryDirectory(prefix="skestimators-model-") as folder:
        torch.save(state, os.path.join(folder, "module_state_dict.pt"))
        # skorch's History.to_file is a plain json.dump: NumPy numbers that a
        # callback recorded (np.float32, np.int64) failed the run.
        with open(os.path.join(folder, "history.json"), "w") as f:
            json.dump(net.history.to_list(), f, default=_json_value)
        yield folder


def _json_value(value):
    """A history value that JSON cannot hold, as one it can."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    return str(value)


class TrackingCallback(Callback):
    """One tracking run per fit; subclasses talk to their tool.

    Subclasses implement ``_start_run(name, params)``, ``_log_epoch(step,
    metrics)``, ``_end_run(net)`` and ``_abandon_run(killed=False)`` (close a
    run as failed, or killed: a fit that raised, diverged or was interrupted,
    or one left open by a plain skorch net whose fit raised), declare their
    parameters' ``_parameter_constraints`` (checked as scikit-learn does,
    when a fit starts), and list in ``_handles`` the runtime attributes that
    hold open writers, clients or runs: they are dropped when the callback is
    pickled or deep-copied, which keeps the constructor parameters and the
    plain fitted attributes (``run_id_``, ``log_dir_``).
    """

    _watches_only = True  # left out of a checkpoint directory's {params}

    _handles: tuple = ()
    _parameter_constraints: dict = {}

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self._is_open():
            # A plain skorch net does not call on_train_failed: its previous
            # fit raised before its end.
            self._abandon_run(killed=False)
            self._drop_handles()
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )
        name, params = estimator_params(net)
        # Read by load_state_dict when a checkpoint is resumed (the engine
        # restores the callbacks' state once this run is open).
        self.__dict__["_history_"] = net.history
        self.__dict__["_epochs_"] = 0  # the last epoch of this fit's run
        self.__dict__["_trained_"] = 0  # epochs this fit trained (not read back)
        self.__dict__["_lost_"] = 0  # epochs that could not be logged
        try:
            self._start_run(name, params)
            folder = _checkpoint_folder(net)
            if folder is not None:  # the run of each fold and candidate, told apart
                self._tag({"skestimators.checkpoint": folder})
        except BaseException:
            # A run opened before the failure (its parameters not logged) ends
            # failed now: left open, the next fit would close it, or a handle
            # kept from an earlier run would close that run instead.
            self._close_failed(killed=False)
            raise

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        step, metrics = epoch_metrics(net)
        self.__dict__["_epochs_"] = step
        self.__dict__["_trained_"] = self.__dict__.get("_trained_", 0) + 1
        if not self._is_open() or not metrics:
            return
        try:
            self._log_epoch(step, metrics)
        except Exception as exc:
            # A logger only watches: a full disk or a tracking server gone
            # costs the run some epochs, not the training (as a checkpoint
            # that cannot be written). Later epochs are tried again.
            self.__dict__["_lost_"] = lost = self.__dict__.get("_lost_", 0) + 1
            if lost == 1:
                warnings.warn(
                    f"{type(self).__name__} could not log epoch {step} "
                    f"({type(exc).__name__}: {_first_line(exc)}); training goes "
                    "on, the run lacks this epoch, and later epochs are tried "
                    "again (without another warning).",
                    UserWarning,
                    stacklevel=2,
                )

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if not self._is_open():
            return
        try:
            best = best_epoch_metrics(net)
            if best:
                self._log_epoch(int(net.history[-1]["epoch"]), best)
            if not self.__dict__.get("_trained_", 0) and net.history:
                # A finished checkpoint read back: this run trained nothing.
                self._tag({"skestimators.reloaded": "true"})
            self._end_run(net)
        except Exception as exc:
            # Training is over and the network fitted: a logging failure (a
            # full disk, a tracking server gone) ends the run failed, with a
            # warning, and keeps the model rather than discarding the fit.
            marked = self._close_failed(killed=False)
            warnings.warn(
                f"{type(self).__name__} could not finish its run "
                f"({type(exc).__name__}: {exc}); "
                + (
                    "the run is marked failed."
                    if marked
                    else "marking the run failed failed too, so the tracker may "
                    "show it running."
                )
                + " The fitted model is kept.",
                UserWarning,
                stacklevel=2,
            )
        except BaseException:
            self._close_failed(killed=True)  # Ctrl-C while logging the model
            raise
        finally:
            self._drop_handles()

    def state_dict(self):
        """What a checkpoint keeps of this logger: the epochs it had logged.

        When a checkpoint is resumed, :meth:`load_state_dict` logs the
        epochs trained before it into the new run, so that the run of the
        resumed fit holds the whole training curve (and the run of a
        finished checkpoint loaded again is not empty).
        """
        return {"epochs": int(self.__dict__.get("_epochs_", 0)), "run": self._run_ref()}

    def load_state_dict(self, state):
        """Log the epochs of a resumed checkpoint (up to
        ``state["epochs"]``) into the open run."""
        history = self.__dict__.get("_history_")
        if not self._is_open() or history is None:
            return
        last = int(state.get("epochs", 0))
        self.__dict__["_epochs_"] = last
        previous = state.get("run")
        if previous is not None and previous != self._run_ref():
            try:  # the run the checkpoint was written with: this one goes on
                self._supersede(previous)
            except Exception as exc:
                warnings.warn(
                    f"{type(self).__name__} could not link its run to the run "
                    f"{previous} of the resumed checkpoint ({type(exc).__name__}: "
                    f"{_first_line(exc)}).",
                    UserWarning,
                    stacklevel=2,
                )
        rows = [r for r in history if "train_loss" in r and int(r["epoch"]) <= last]
        epochs = [(int(row["epoch"]), _numeric(row)) for row in rows]
        try:
            self._log_epochs([(step, metrics) for step, metrics in epochs if metrics])
        except Exception as exc:
            # The run lacks the earlier epochs; the resumed fit goes on (a
            # tracking server's hiccup is no reason to lose a training).
            warnings.warn(
                f"{type(self).__name__} could not log the {last} epoch(s) "
                f"trained before the resume into its run ({type(exc).__name__}: "
                f"{exc}); training goes on.",
                UserWarning,
                stacklevel=2,
            )

    def _run_ref(self):
        """What identifies this fit's run in its tool (None: nothing)."""
        return getattr(self, "run_id_", None)

    def _tag(self, tags):
        """Tag the open run; tools without tags ignore them."""

    def _supersede(self, previous):
        """This run continues ``previous`` (a resumed checkpoint's run): say
        so; tools that can also end ``previous`` if a killed process left it
        running."""
        self._tag({"skestimators.resumed_from": previous})

    def _log_epochs(self, epochs):
        """Log ``[(step, metrics), ...]``; tools that can send them together
        override this."""
        for step, metrics in epochs:
            self._log_epoch(step, metrics)

    def on_train_failed(self, net, error=None, **kwargs):
        """The engine's call, instead of ``on_train_end``, when a fit fails:
        its training diverged or raised (the run ends failed, without the
        network), or Ctrl-C or a search stopped it (killed: a
        ``KeyboardInterrupt``, or an error whose ``killed`` attribute is
        true, as that of a pruned trial)."""
        if not self._is_open():
            return
        killed = isinstance(error, KeyboardInterrupt) or getattr(error, "killed", False)
        try:
            self._abandon_run(killed=bool(killed))
        finally:
            self._drop_handles()

    def _close_failed(self, killed) -> bool:
        """End an open run as failed (or killed), whatever else fails; whether
        the tracker took it."""
        if not self._is_open():
            return False
        try:
            self._abandon_run(killed=killed)
        except Exception:
            return False
        finally:
            self._drop_handles()
        return True

    def _is_open(self) -> bool:
        return any(name in self.__dict__ for name in self._handles)

    def _drop_handles(self):
        for name in (*self._handles, "_history_"):
            self.__dict__.pop(name, None)

    def __repr__(self):
        # As scikit-learn shows estimators: the parameters set to non-defaults.
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if name not in defaults or repr(value) != repr(defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in (*self._handles, "_history_"):
            state.pop(name, None)
        return state
